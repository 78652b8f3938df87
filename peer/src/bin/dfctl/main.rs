//! `dfctl`: the operator's command line, in Dragonfly's habits. `dfctl preheat` asks the manager
//! to warm caches (`/oapi/v1/jobs`, a personal access token), or a scheduler directly where no
//! manager runs (`--scheduler`, an operator's certificate); `dfctl task` lists, shows and
//! removes the tasks cached by the local dfdaemon (its unix socket).
//!
//! Exit status: 0 when done (a preheat that succeeded, or was created without `--wait`); 1 when a
//! preheat failed, or the manager, the scheduler or the dfdaemon could not be reached or refused;
//! 2 for bad arguments, including a missing token or certificate.

mod manager;
mod preheat;
mod scheduler;
mod table;
mod task;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Preheat caches through the manager (or a scheduler) and manage the local dfdaemon's tasks.
#[derive(Debug, Parser)]
#[command(version = common::VERSION, after_help = "Examples:\n  \
    dfctl preheat https://registry.example/v2/library/alpine/manifests/3.19 --scope all_peers --wait\n  \
    dfctl preheat https://example.com/model.bin --type file --percentage 50\n  \
    dfctl preheat https://example.com/model.bin --scheduler 10.0.0.5:8002 --cert op.crt --key op.key --ca ca.crt\n  \
    dfctl task ls\n  \
    dfctl task rm <task id>")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Warm the caches of a cluster's hosts with an image or files (a manager job), or files on a scheduler.
    Preheat(Box<preheat::Args>),
    /// The tasks this host's dfdaemon caches.
    Task(task::Args),
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    /// Columns for people.
    Table,
    /// JSON for scripts.
    Json,
}

/// Why a command did not succeed, by its exit status.
#[derive(Debug)]
enum Failure {
    /// Bad arguments or missing settings (exit 2).
    Usage(String),
    /// The work failed, or the manager or the dfdaemon could not do it (exit 1).
    Failed(String),
    /// Failed, and what to say was already said (exit 1).
    Reported,
}

impl Failure {
    fn failed(message: impl Into<String>) -> Self {
        Self::Failed(message.into())
    }

    fn usage(message: impl Into<String>) -> Self {
        Self::Usage(message.into())
    }
}

/// The innermost cause of an error: what a transport error wraps ("Connection refused", "No such
/// file or directory") is what a user can act on.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Preheat(args) => preheat::run(*args).await,
        Command::Task(args) => task::run(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("dfctl: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Failed(message)) => {
            eprintln!("dfctl: {message}");
            ExitCode::FAILURE
        }
        Err(Failure::Reported) => ExitCode::FAILURE,
    }
}

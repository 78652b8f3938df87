//! `dfctl task ls|stat|rm`: the local dfdaemon's cached tasks, over its unix socket.

use std::{
    path::{Path, PathBuf},
    time::{SystemTime, UNIX_EPOCH},
};

use clap::Subcommand;
use common::ids::TaskId;
use proto::dfdaemon::v1::{self as pb, dfdaemon_client::DfdaemonClient};
use serde::Serialize;
use tonic::{Code, transport::Channel};

use crate::{Failure, Output, table};

/// The dfdaemon's socket when its configuration leaves `server.socket` empty.
const DEFAULT_SOCKET: &str = "/var/lib/damselfly/dfdaemon/dfdaemon.sock";

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
    /// The dfdaemon's socket.
    #[arg(short = 'e', long = "socket", visible_alias = "endpoint", env = "DFCTL_SOCKET", default_value = DEFAULT_SOCKET, global = true)]
    socket: PathBuf,
    /// How to print the tasks.
    #[arg(long, value_enum, default_value_t = Output::Table, global = true)]
    output: Output,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the cached tasks, most recently used first.
    Ls,
    /// Show one cached task.
    Stat {
        /// The task id (64 hex digits, as `dfctl task ls` shows).
        #[arg(value_parser = parse_task_id)]
        task_id: TaskId,
    },
    /// Remove a task from the cache (root and the dfdaemon's user only; refused while a download
    /// uses it). Files already downloaded stay.
    Rm {
        #[arg(value_parser = parse_task_id)]
        task_id: TaskId,
    },
}

fn parse_task_id(s: &str) -> Result<TaskId, String> {
    TaskId::parse(s).map_err(|e| e.to_string())
}

/// A task as dfctl prints it in JSON.
#[derive(Debug, Serialize)]
struct TaskRow {
    task_id: String,
    url: String,
    content_length: Option<u64>,
    piece_length: Option<u64>,
    finished_pieces: u32,
    total_pieces: u32,
    /// `complete` or `partial`.
    state: &'static str,
    disk_bytes: u64,
    /// Unix seconds.
    last_access: u64,
    in_use: bool,
}

impl From<pb::TaskInfo> for TaskRow {
    fn from(t: pb::TaskInfo) -> Self {
        let state = match t.state() {
            pb::TaskState::Complete => "complete",
            _ => "partial",
        };
        Self {
            task_id: t.task_id,
            url: t.url,
            content_length: t.content_length,
            piece_length: t.piece_length,
            finished_pieces: t.finished_pieces,
            total_pieces: t.total_pieces,
            state,
            disk_bytes: t.disk_bytes,
            last_access: t.last_access_unix_secs,
            in_use: t.in_use,
        }
    }
}

impl TaskRow {
    fn state_text(&self) -> String {
        if self.in_use { format!("{} (in use)", self.state) } else { self.state.to_owned() }
    }

    fn pieces(&self) -> String {
        if self.total_pieces == 0 { "-".into() } else { format!("{}/{}", self.finished_pieces, self.total_pieces) }
    }

    fn size(&self) -> String {
        self.content_length.map_or_else(|| "-".into(), table::bytes)
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn json(value: &impl Serialize) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Failure::failed(e.to_string()))?;
    println!("{text}");
    Ok(())
}

/// One line for a refusal; a bad argument exits 2 like clap's own.
fn refused(status: tonic::Status) -> Failure {
    match status.code() {
        Code::InvalidArgument => Failure::usage(status.message()),
        _ => Failure::failed(status.message()),
    }
}

async fn client(socket: &Path) -> Result<DfdaemonClient<Channel>, Failure> {
    let channel = peer::rpc::connect_unix(socket.to_owned()).await.map_err(|e| {
        let why = crate::root_cause(&e);
        Failure::failed(format!(
            "cannot reach the dfdaemon at {}: {why} (is it running? see --socket)",
            socket.display()
        ))
    })?;
    Ok(DfdaemonClient::new(channel))
}

pub async fn run(args: Args) -> Result<(), Failure> {
    let mut client = client(&args.socket).await?;
    match args.command {
        Command::Ls => {
            let tasks = client.list_tasks(pb::ListTasksRequest {}).await.map_err(refused)?.into_inner().tasks;
            let rows: Vec<TaskRow> = tasks.into_iter().map(TaskRow::from).collect();
            if args.output == Output::Json {
                return json(&rows);
            }
            let now = now();
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|t| {
                    vec![
                        t.task_id.clone(),
                        t.size(),
                        t.pieces(),
                        t.state_text(),
                        table::ago(t.last_access, now),
                        t.url.clone(),
                    ]
                })
                .collect();
            print!("{}", table::render(&["ID", "SIZE", "PIECES", "STATE", "LAST ACCESS", "URL"], &cells));
        }
        Command::Stat { task_id } => {
            let request = pb::StatTaskRequest { task_id: task_id.0 };
            let task = TaskRow::from(client.stat_task(request).await.map_err(refused)?.into_inner());
            if args.output == Output::Json {
                return json(&task);
            }
            let piece = task.piece_length.map_or_else(|| "-".into(), table::bytes);
            println!("id:           {}", task.task_id);
            println!("url:          {}", task.url);
            println!("state:        {}", task.state_text());
            println!(
                "size:         {}",
                task.content_length.map_or_else(|| "unknown".into(), |n| format!("{n} bytes"))
            );
            println!("pieces:       {} of {piece}", task.pieces());
            println!("on disk:      {}", table::bytes(task.disk_bytes));
            println!("last access:  {} (unix {})", table::ago(task.last_access, now()), task.last_access);
        }
        Command::Rm { task_id } => {
            let request = pb::DeleteTaskRequest { task_id: task_id.0.clone() };
            let freed = client.delete_task(request).await.map_err(refused)?.into_inner().freed_bytes;
            if args.output == Output::Json {
                return json(&serde_json::json!({"task_id": task_id.0, "freed_bytes": freed}));
            }
            println!("removed {task_id} ({} freed)", table::bytes(freed));
        }
    }
    Ok(())
}

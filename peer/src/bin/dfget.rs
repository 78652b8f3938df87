//! `dfget`: download a URL through the local dfdaemon (a wget for the P2P network).
//!
//! Exit status: 0 only when the file is complete and verified; 1 when the download failed;
//! 2 for bad arguments.

use std::{
    io::IsTerminal,
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

use clap::Parser;
use common::digest::Digest;
use indicatif::{ProgressBar, ProgressStyle};
use proto::dfdaemon::v1::{self as pb, download_response::Event};

/// Download a URL through the local dfdaemon, from peers where possible and the origin otherwise.
#[derive(Debug, Parser)]
#[command(version = common::VERSION, after_help = "Example:\n  dfget https://example.com/big.iso -O /tmp/big.iso --digest sha256:<hex>")]
struct Cli {
    /// The URL to download (http or https).
    #[arg(value_parser = parse_url)]
    url: url::Url,
    /// Where to write the file.
    #[arg(short = 'O', long)]
    output: PathBuf,
    /// The dfdaemon's download socket.
    #[arg(short, long, env = "DFGET_ENDPOINT", default_value = "/var/lib/damselfly/dfdaemon/dfdaemon.sock")]
    endpoint: PathBuf,
    /// Expected digest of the whole file: sha256:<hex> or blake3:<hex>.
    #[arg(long, value_parser = parse_digest)]
    digest: Option<Digest>,
    /// Header for the origin, "Name: value" (repeatable).
    #[arg(short = 'H', long = "header", value_parser = parse_header)]
    headers: Vec<(String, String)>,
    /// Tag: downloads of one URL with different tags are different tasks.
    #[arg(long, default_value = "")]
    tag: String,
    /// Application name, part of the task id.
    #[arg(long, default_value = "")]
    application: String,
    /// Query parameter to ignore when identifying the task (repeatable).
    #[arg(long = "filtered-query-param")]
    filtered_query_params: Vec<String>,
    /// Piece length in bytes (suffixes KiB, MiB accepted) [default: chosen from the size].
    #[arg(long, value_parser = parse_size)]
    piece_length: Option<u64>,
    /// Give up after this many seconds (0 = never).
    #[arg(long, default_value_t = 0)]
    timeout: u64,
    /// Fail instead of fetching from the origin when no peer has the content.
    #[arg(long)]
    disable_back_to_source: bool,
    /// Replace the output file if it exists.
    #[arg(long)]
    overwrite: bool,
    /// Fail unless the output can be hard-linked to the dfdaemon's cache. Without it the output
    /// is a hard link when it is on the cache's file system (no copy; editing it in place makes
    /// the cache drop its copy), else a copy.
    #[arg(long)]
    force_hard_link: bool,
    /// Do not show a progress bar.
    #[arg(long)]
    no_progress: bool,
}

fn parse_url(s: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(s).map_err(|e| format!("invalid URL {s:?}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("unsupported URL scheme {:?} (use http or https)", url.scheme()));
    }
    Ok(url)
}

fn parse_digest(s: &str) -> Result<Digest, String> {
    s.parse().map_err(|e: common::digest::DigestError| e.to_string())
}

fn parse_header(s: &str) -> Result<(String, String), String> {
    let (name, value) = s.split_once(':').ok_or_else(|| format!("header {s:?} must be \"Name: value\""))?;
    let name = name.trim();
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b)) {
        return Err(format!("header name {name:?} is not a valid HTTP header name"));
    }
    Ok((name.to_owned(), value.trim().to_owned()))
}

fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = digits.parse().map_err(|_| format!("{s:?} is not a size such as 4194304 or 4MiB"))?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" | "kb" => 1 << 10,
        "m" | "mib" | "mb" => 1 << 20,
        "g" | "gib" | "gb" => 1 << 30,
        other => return Err(format!("unknown size unit {other:?} (use KiB, MiB or GiB)")),
    };
    let bytes = n.checked_mul(mult).ok_or_else(|| format!("{s:?} is too large"))?;
    if !(1 << 10..=1 << 30).contains(&bytes) {
        return Err(format!("piece length {bytes} must be between 1 KiB and 1 GiB"));
    }
    Ok(bytes)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dfget: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    let url = cli.url;
    let output = absolute(&cli.output)?;
    if output.is_dir() {
        return Err(format!("{} is a directory; give a file name", output.display()));
    }
    if !cli.overwrite && output.exists() {
        return Err(format!("{} already exists (pass --overwrite to replace it)", output.display()));
    }
    match output.parent() {
        Some(dir) if dir.is_dir() => {}
        _ => return Err(format!("directory of {} does not exist", output.display())),
    }

    let channel = peer::rpc::connect_unix(cli.endpoint.clone()).await.map_err(|e| {
        format!("cannot reach the dfdaemon at {}: {e} (is it running? see --endpoint)", cli.endpoint.display())
    })?;
    let mut client = pb::dfdaemon_client::DfdaemonClient::new(channel);
    let request = pb::DownloadRequest {
        url: url.to_string(),
        output_path: output.display().to_string(),
        request_headers: cli.headers.into_iter().collect(),
        tag: cli.tag,
        application: cli.application,
        filtered_query_params: cli.filtered_query_params,
        piece_length: cli.piece_length,
        digest: cli.digest.map(|d| d.to_string()),
        disable_back_to_source: cli.disable_back_to_source,
        overwrite: cli.overwrite,
        force_hard_link: cli.force_hard_link,
        timeout_ms: Duration::from_secs(cli.timeout).as_millis() as u64,
    };
    let mut stream = client.download(request).await.map_err(describe)?.into_inner();
    let bar = (!cli.no_progress && std::io::stderr().is_terminal()).then(ProgressBar::new_spinner);
    while let Some(message) = stream.message().await.map_err(describe)? {
        match message.event {
            Some(Event::Started(s)) => {
                if let (Some(bar), Some(len)) = (&bar, s.content_length) {
                    bar.set_length(len);
                    bar.set_style(
                        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
                            .unwrap_or_else(|_| ProgressStyle::default_bar()),
                    );
                }
            }
            Some(Event::Progress(p)) => {
                if let Some(bar) = &bar {
                    bar.set_position(p.finished_bytes);
                }
            }
            Some(Event::Finished(f)) => {
                if let Some(bar) = &bar {
                    bar.finish_and_clear();
                }
                if f.digest.is_empty() {
                    eprintln!("dfget: {} ({} bytes, every piece verified)", output.display(), f.content_length);
                } else {
                    eprintln!("dfget: {} ({} bytes, {})", output.display(), f.content_length, f.digest);
                }
                return Ok(());
            }
            None => {}
        }
    }
    Err("the dfdaemon ended the download without finishing it".into())
}

fn describe(status: tonic::Status) -> String {
    status.message().to_owned()
}

fn absolute(path: &Path) -> Result<PathBuf, String> {
    if path.is_absolute() {
        return Ok(path.to_owned());
    }
    std::env::current_dir().map(|d| d.join(path)).map_err(|e| format!("cannot resolve {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_headers_parse_or_explain() {
        assert_eq!(parse_size("4MiB").unwrap(), 4 << 20);
        assert_eq!(parse_size("65536").unwrap(), 65536);
        assert!(parse_size("12").unwrap_err().contains("between"));
        assert!(parse_size("4 parsecs").unwrap_err().contains("unit"));
        assert_eq!(parse_header("Authorization: Bearer x").unwrap(), ("Authorization".into(), "Bearer x".into()));
        assert!(parse_header("no colon").is_err());
        assert!(parse_header("bad name: x").is_err());
    }
}

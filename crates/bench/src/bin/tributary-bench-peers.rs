//! `tributary-bench-peers nats|redis WORKLOAD [flags]`: `tributary bench`'s workloads against
//! NATS JetStream or Redis Streams, with the same flags and the same report, so figures sit
//! side by side. A binary of its own so that `tributary` does not link the peers' clients.

use clap::Parser;
use tributary_bench::BenchArgs;
use tributary_bench::peers::{self, Peer};

#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// The system to drive.
    #[arg(value_enum)]
    peer: Peer,
    /// Where it listens (default: nats://127.0.0.1:4222, redis://127.0.0.1:6379).
    #[arg(long)]
    url: Option<String>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    bench: BenchArgs,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let url = cli
        .url
        .clone()
        .unwrap_or_else(|| cli.peer.default_url().to_owned());
    match runtime.block_on(peers::run(cli.peer, &url, &cli.bench)) {
        Ok(report) => {
            if cli.json {
                println!("{}", report.to_json());
            } else {
                print!("{report}");
            }
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            let mut msg = format!("error: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                msg += &format!(": {s}");
                source = s.source();
            }
            eprintln!("{msg}");
            std::process::ExitCode::FAILURE
        }
    }
}

//! `crashloop`: kills a real `tributary serve` with SIGKILL at random moments while
//! idempotent producers write to a `sync` stream, restarts it in place, and checks every
//! acknowledged record at the end (`tributary_e2e::crashloop`). Exits 1 on any violation.
//!
//! ```text
//! cargo build --release --workspace
//! target/release/crashloop --rounds 200 --seed 42
//! ```

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use tributary_e2e::crashloop::{self, Options};

#[derive(Debug, Parser)]
#[command(
    about = "Kill -9 a tributary server at random moments under idempotent producers, and check every acknowledged record"
)]
struct Args {
    /// Kills and restarts
    #[arg(long, default_value_t = 20)]
    rounds: u32,
    /// Seed of the kill moments (random when not given; printed either way)
    #[arg(long)]
    seed: Option<u64>,
    /// Concurrent idempotent producers, each on its own connection
    #[arg(long, default_value_t = 4)]
    producers: u32,
    /// Partitions of the topic
    #[arg(long, default_value_t = 4)]
    partitions: u32,
    /// Longest time the server runs before a kill (each is random up to this), e.g. 1500ms
    #[arg(long, default_value = "1500ms", value_parser = humantime::parse_duration)]
    max_uptime: Duration,
    /// Records a producer may have unacknowledged at once
    #[arg(long, default_value_t = 2000)]
    window: usize,
    /// Records per second each producer offers
    #[arg(long, default_value_t = 2000)]
    rate: u64,
    /// Directory for the data directory (default: the system's temporary directory)
    #[arg(long)]
    work_dir: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let seed = args.seed.unwrap_or_else(rand::random);
    println!("seed {seed}");
    let opts = Options {
        rounds: args.rounds,
        seed,
        producers: args.producers,
        partitions: args.partitions,
        max_uptime: args.max_uptime,
        window: args.window,
        rate: args.rate,
        work_dir: args.work_dir,
    };
    let report = crashloop::run(&opts).await?;
    let restarts = &report.restart_ms;
    let mean = restarts.iter().sum::<u64>() / restarts.len().max(1) as u64;
    println!(
        "rounds survived {} of {}, records checked {}, acknowledged {}, failed sends {} ({} of them stored), restart mean {mean} ms max {} ms, {:.1} s",
        report.rounds,
        opts.rounds,
        report.checked,
        report.acknowledged,
        report.failed,
        report.failed_but_stored,
        restarts.iter().max().copied().unwrap_or(0),
        report.elapsed.as_secs_f64(),
    );
    if report.passed() {
        println!(
            "ok: every acknowledged record stored once, in order, at its offset; offsets dense"
        );
        return Ok(());
    }
    for v in &report.violations {
        println!("violation: {v}");
    }
    println!("{} violations (seed {seed})", report.violation_count);
    if let Some(d) = &report.kept_dir {
        println!("data directory kept at {}", d.display());
    }
    std::process::exit(1);
}

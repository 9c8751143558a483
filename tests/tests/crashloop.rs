//! The crash loop's short form (the long one runs by hand: docs/RELIABILITY.md §1): a few
//! SIGKILLs at random moments under idempotent producers on a `sync` stream, then every
//! acknowledged record is checked.

use std::time::Duration;

use tributary_e2e::crashloop::{self, Options};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_records_survive_kill_9_exactly_once_in_order() {
    let seed = std::env::var("CRASHLOOP_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(9);
    let opts = Options {
        rounds: 4,
        seed,
        producers: 3,
        partitions: 3,
        max_uptime: Duration::from_millis(800),
        ..Options::default()
    };
    let report = crashloop::run(&opts).await.expect("the crash loop runs");
    println!(
        "seed {seed}: {} rounds, {} records checked, {} acknowledged, {} failed sends",
        report.rounds, report.checked, report.acknowledged, report.failed
    );
    assert!(
        report.passed(),
        "seed {seed} (repeat with CRASHLOOP_SEED={seed}): {} violations, data kept at {:?}:\n{}",
        report.violation_count,
        report.kept_dir,
        report.violations.join("\n")
    );
    assert_eq!(report.rounds, opts.rounds);
    assert!(report.acknowledged > 0, "the producers got nothing through");
    assert!(report.checked >= report.acknowledged);
}

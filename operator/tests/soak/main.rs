//! The bounded soak with faults (issue 10): a steady write load on a RedisCluster managed by
//! the operator, Backups one after another, and faults injected at chosen moments, each
//! scenario repeated `FERROCACHE_SOAK_RUNS` times. Every backup that becomes available is
//! restored by a Restore and every key compared; every backup that fails is checked for what
//! it left behind. The table at the end counts what was lost.
//!
//! Run it with `make soak` (scripts/soak.sh starts a bed of its own and stops it). Settings:
//!
//! - `FERROCACHE_SOAK_RUNS` (default 2): runs of each scenario.
//! - `FERROCACHE_SOAK_KEYS` (default 48000): static keys of `FERROCACHE_SOAK_VALUE_BYTES`
//!   (default 1000) loaded in the source, enough for the forkless walk to outlast its buffer.
//! - `FERROCACHE_SOAK_WRITER_KEYS` (default 2000): keys the steady writer overwrites.
//! - `FERROCACHE_SOAK_SCENARIOS`: a comma-separated subset of the scenario names.
//! - `FERROCACHE_SOAK_SEED`: the seed of every random choice (default: the time).
//! - `FERROCACHE_SOAK_REPORT`: a file to write the table to (Markdown).

mod bed;
mod local;
mod proxy;
mod random;
mod scenarios;
mod tally;
mod typed;
mod writer;

use std::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a soak of several minutes on the test bed: run make soak"]
async fn soak_with_faults_loses_nothing() {
    let settings = scenarios::Settings::from_env();
    eprintln!("soak: {settings:?}");
    let started = Instant::now();
    let mut soak = scenarios::Soak::prepare(settings).await.expect("the soak's cluster and operator start");
    soak.run_all().await;
    let tally = soak.finish().await;
    let elapsed = started.elapsed();
    let table = tally.markdown();
    let notes = tally.notes_markdown();
    println!("\nsoak finished in {:.1} min\n\n{table}\n{notes}", elapsed.as_secs_f64() / 60.0);
    if let Ok(path) = std::env::var("FERROCACHE_SOAK_REPORT") {
        let report = format!(
            "Soak of {:.1} min, finished {}.\n\n{table}\n{notes}",
            elapsed.as_secs_f64() / 60.0,
            jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M UTC")
        );
        std::fs::write(&path, report).expect("write the report");
    }
    let total = tally.total();
    assert!(!total.lost_something(), "the soak lost something:\n{table}\n{notes}");
    assert_eq!(total.incomplete, 0, "some runs could not be carried out, so they measured nothing:\n{table}\n{notes}");
}

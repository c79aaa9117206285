//! `hilt runs recover DIR`: repair, backfill, refresh status.json and write
//! recovery_summary.md — executing nothing.

use std::path::Path;

use hilt_runner::classify::exit;
use hilt_runner::workflow::recover::{RecoverError, recover as recover_dir};

pub fn recover(dir: &Path, json: bool) -> anyhow::Result<i32> {
    let dir = hilt_runner::rundir::absolute(dir);
    let report = match recover_dir(&dir) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(match e {
                RecoverError::NotARunDir(_) => exit::CONFIG_ERROR,
                RecoverError::Io { .. } => exit::BENCH_ERROR,
            });
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(exit::PASSED);
    }
    println!(
        "run {} — {} (monitoring: {})",
        report.results_dir, report.state, report.monitoring
    );
    if report.monitoring == "stalled" {
        println!("  Attention: stalled");
    }
    println!(
        "  tests with a result: {} of {}",
        report.tests_done, report.tests_total
    );
    for r in &report.repairs {
        println!(
            "  repaired {}: {} (original kept as {})",
            r.file, r.what, r.kept_as
        );
    }
    for b in &report.backfilled {
        println!("  backfilled {} from {}", b.file, b.from);
    }
    println!("  summary: {}", report.summary_path);
    match &report.next_command {
        Some(c) => println!("  next: {c}"),
        None => println!("  nothing to resume"),
    }
    Ok(exit::PASSED)
}

//! `hilt run`: a local run with live progress and a verdict.

use hilt_hw::CancelToken;
use hilt_runner::rundir::zip::{LOCAL_ZIP, write_zip_file};
use hilt_runner::{RunOptions, classify::exit};

use crate::cli::RunArgs;
use crate::progress::Progress;
use crate::{render, signals};

pub fn run(a: RunArgs) -> anyhow::Result<i32> {
    if a.agent.is_some() {
        return super::remote::run(a);
    }
    // clap guarantees --bench without --agent (--bench-id requires --agent).
    let Some(bench) = a.bench else {
        eprintln!("error: --bench is required for a local run");
        return Ok(exit::USAGE);
    };
    let opts = RunOptions {
        bench,
        suite: a.suite,
        artifact: a.artifact,
        skip_flash: a.skip_flash,
        verbose: a.verbose,
        results_root: a.results_dir,
        junit: a.junit,
        ctrf: a.ctrf,
        strict: a.strict,
        ..RunOptions::default()
    };
    execute(&opts, a.json, !a.no_zip)
}

/// Runs with progress on stderr; writes the run directory's `artifacts.zip` (with `zip`);
/// prints the verdict (and results.json with `json`).
pub fn execute(opts: &RunOptions, json: bool, zip: bool) -> anyhow::Result<i32> {
    let cancel = CancelToken::new();
    signals::cancel_on_signals(&cancel);
    let mut progress = Progress::new(opts.verbose);
    let outcome = hilt_runner::run(opts, &mut progress, &cancel);
    progress.finish();
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(exit::BENCH_ERROR);
        }
    };
    render::diagnostics("warning", &outcome.warnings);
    let dir = &outcome.results_dir;
    let archive = dir.join(LOCAL_ZIP);
    // The archive comes after every document of the run; a failure to write it is reported
    // and changes nothing else (the run directory is the record).
    let archive = match zip.then(|| write_zip_file(dir, &archive)) {
        Some(Ok(())) => Some(archive),
        Some(Err(e)) => {
            eprintln!("warning: cannot write {}: {e}", archive.display());
            None
        }
        None => None,
    };
    render::verdict(&outcome.results, dir);
    if let Some(a) = archive {
        eprintln!("archive: {}", a.display());
    }
    // A publish that fails does not change the run's verdict: its ledger says what to do.
    match &outcome.published {
        Some(Ok(ledger)) => super::publish::render_after_run(ledger),
        Some(Err(e)) => eprintln!("publish: {e}"),
        None => {}
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&outcome.results)?);
    }
    Ok(outcome.exit_code)
}

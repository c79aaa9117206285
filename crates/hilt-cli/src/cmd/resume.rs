//! `hilt runs resume DIR`: continue an interrupted run from its first incomplete step.

use std::path::Path;

use hilt_hw::CancelToken;
use hilt_runner::classify::exit;
use hilt_runner::workflow::{ResumeError, resume as resume_run};

use crate::progress::Progress;
use crate::{render, signals};

pub fn resume(dir: &Path, verbose: bool, json: bool) -> anyhow::Result<i32> {
    let cancel = CancelToken::new();
    signals::cancel_on_signals(&cancel);
    let mut progress = Progress::new(verbose);
    let r = resume_run(dir, &mut progress, &cancel);
    progress.finish();
    let r = match r {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(match e {
                ResumeError::Complete { .. } => exit::PASSED,
                ResumeError::NotARunDir(_)
                | ResumeError::NoInputs { .. }
                | ResumeError::InputChanged { .. } => exit::CONFIG_ERROR,
                ResumeError::StillRunning { .. } => exit::RUN_ERROR,
                ResumeError::Io { .. } | ResumeError::Run(_) => exit::BENCH_ERROR,
            });
        }
    };
    for rep in &r.repairs {
        eprintln!(
            "repaired {}: {} (original kept as {})",
            rep.file, rep.what, rep.kept_as
        );
    }
    for b in &r.backfilled {
        eprintln!("backfilled {} from {}", b.file, b.from);
    }
    eprintln!(
        "resumed as attempt {}: {} test(s) kept from earlier attempts",
        r.attempt, r.tests_kept
    );
    render::diagnostics("warning", &r.outcome.warnings);
    render::verdict(&r.outcome.results, &r.outcome.results_dir);
    if json {
        println!("{}", serde_json::to_string_pretty(&r.outcome.results)?);
    }
    Ok(r.outcome.exit_code)
}

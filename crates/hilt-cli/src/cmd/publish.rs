//! `hilt runs publish DIR`: commits a finished run into the git repositories its bench and
//! suite declare under `publish:`, pushes and opens pull requests as they ask, and records
//! each target's state in `DIR/publish_ledger.json`. Running it again changes nothing that
//! is already done.

use std::path::{Path, PathBuf};

use clap::Args;
use hilt_hw::CancelToken;
use hilt_model::LoadOptions;
use hilt_runner::classify::exit;
use hilt_runner::publish::{self, PrState, PublishError, TargetState};
use serde_json::Value;

#[derive(Args)]
pub struct PublishArgs {
    /// The run directory.
    pub dir: PathBuf,
    /// Publish only this target (repeatable; default every target).
    #[arg(long = "target", value_name = "NAME")]
    pub targets: Vec<String>,
    /// Read the targets from this bench file instead of the run's copy (relative
    /// repository paths are then taken from its directory).
    #[arg(long, short = 'b')]
    pub bench: Option<PathBuf>,
    /// Read the targets from this suite file instead of the run's copy.
    #[arg(long, short = 's')]
    pub suite: Option<PathBuf>,
    /// Print the ledger as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Where the run's bench and suite came from: the paths evidence.json recorded (so
/// relative repository paths mean what they meant at run time), else the copies in
/// `inputs/`.
fn original(dir: &Path, key: &str, field: &str, copy: &str) -> (PathBuf, PathBuf) {
    let ev: Option<Value> = std::fs::read(dir.join("evidence.json"))
        .ok()
        .and_then(|t| serde_json::from_slice(&t).ok());
    let copy = dir.join("inputs").join(copy);
    let recorded = ev
        .as_ref()
        .and_then(|e| e[key][field].as_str())
        .map(PathBuf::from)
        .filter(|p| p.parent().is_some_and(Path::is_dir));
    (copy.clone(), recorded.unwrap_or(copy))
}

pub fn publish(a: PublishArgs, cancel: &CancelToken) -> anyhow::Result<i32> {
    let lo = LoadOptions { strict: false };
    let (bench_text, bench_at) = match &a.bench {
        Some(b) => (b.clone(), b.clone()),
        None => original(&a.dir, "bench", "config_path", "bench.yaml"),
    };
    let (suite_text, suite_at) = match &a.suite {
        Some(s) => (s.clone(), s.clone()),
        None => original(&a.dir, "suite", "path", "suite.yaml"),
    };
    let bench = match hilt_model::load_bench(&bench_text, lo) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(exit::CONFIG_ERROR);
        }
    };
    let suite = match hilt_model::load_suite(&suite_text, lo) {
        Ok(s) => Some(s),
        Err(e) if a.suite.is_some() => {
            eprintln!("error: {e}");
            return Ok(exit::CONFIG_ERROR);
        }
        Err(_) => None,
    };
    let all = publish::targets(
        Some((&bench.value, &bench_at)),
        suite.as_ref().map(|s| (&s.value, suite_at.as_path())),
    );
    let chosen = match publish::select(all, &a.targets) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(exit::CONFIG_ERROR);
        }
    };
    let ledger = match publish::publish(&a.dir, &chosen, cancel) {
        Ok(l) => l,
        Err(e @ PublishError::NoResults { .. }) => {
            eprintln!("error: {e}");
            return Ok(exit::CONFIG_ERROR);
        }
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(exit::RUN_ERROR);
        }
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&ledger)?);
    }
    let mut all_ok = true;
    for (name, t) in &ledger.targets {
        let ok = target_ok(t);
        all_ok &= ok;
        if a.json {
            continue;
        }
        let actions = t
            .attempts
            .last()
            .and_then(|a| a["actions"].as_array())
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "nothing to do".into());
        let state = serde_json::to_value(t.state).unwrap_or_default();
        println!(
            "{name}: {} — branch {} in {} ({actions})",
            state.as_str().unwrap_or_default(),
            t.branch,
            t.repo
        );
        if let Some(c) = &t.commit {
            println!("  commit {c}");
        }
        if let Some(u) = &t.pull_request.url {
            println!("  pull request {u}");
        }
        for d in [&t.detail, &t.remote.detail, &t.pull_request.detail]
            .into_iter()
            .flatten()
        {
            println!("  {d}");
        }
    }
    if !a.json {
        eprintln!("ledger: {}", a.dir.join(publish::LEDGER_FILE).display());
    }
    Ok(if all_ok {
        exit::PASSED
    } else {
        exit::RUN_ERROR
    })
}

/// One line per target after `hilt run` published by itself (on stderr).
pub fn render_after_run(ledger: &publish::PublishLedger) {
    for (name, t) in &ledger.targets {
        let state = serde_json::to_value(t.state).unwrap_or_default();
        let detail = [&t.detail, &t.remote.detail, &t.pull_request.detail]
            .into_iter()
            .flatten()
            .next()
            .map(|d| format!(": {d}"))
            .unwrap_or_default();
        eprintln!(
            "publish {name}: {} on branch {}{detail}",
            state.as_str().unwrap_or_default(),
            t.branch
        );
    }
}

/// Whether a target reached what it asked for.
fn target_ok(t: &publish::TargetRecord) -> bool {
    let state_ok = match t.state {
        TargetState::Committed | TargetState::Pushed => true,
        TargetState::Failed
        | TargetState::RemoteMissing
        | TargetState::RemoteUnreachable
        | TargetState::RemoteMismatch
        | TargetState::PushFailed => false,
    };
    let pr_ok = match t.pull_request.state {
        PrState::NotRequested | PrState::Reused | PrState::Created => true,
        PrState::NotPushed | PrState::GhMissing | PrState::GhUnauthenticated | PrState::Failed => {
            false
        }
    };
    state_ok && pr_ok
}

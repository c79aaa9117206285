//! `hilt validate --scope connectivity|staging|publish|all`: the file checks first (as a
//! `config` check), then `hilt_runner::readiness` for the asked scopes. Prints one line per
//! check, writes the JSON report, and exits 0 (every required check passed), 3 (the files
//! are invalid: nothing else is checked) or 4 (a required check failed).

use std::path::{Path, PathBuf};

use clap::ValueEnum;
use hilt_hw::CancelToken;
use hilt_model::bench::Bench;
use hilt_model::suite::Suite;
use hilt_runner::classify::exit;
use hilt_runner::readiness::{self, Check, Inputs, Scope, Status};
use serde_json::json;

use crate::cli::ValidateArgs;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScopeArg {
    Connectivity,
    Staging,
    Publish,
    All,
}

impl ScopeArg {
    fn name(self) -> &'static str {
        match self {
            ScopeArg::Connectivity => "connectivity",
            ScopeArg::Staging => "staging",
            ScopeArg::Publish => "publish",
            ScopeArg::All => "all",
        }
    }
}

/// How the file checks went.
pub struct ConfigOutcome {
    pub ok: bool,
    pub errors: Vec<String>,
    pub warnings: usize,
}

/// The report's default place: the bench's results directory (`artifacts.root_dir`,
/// relative to the current directory as for a run).
fn default_report(bench: Option<&Bench>) -> PathBuf {
    let root = bench
        .map(|b| b.artifacts.root_dir.clone())
        .unwrap_or_else(|| "benchci-results".into());
    Path::new(&root).join("validate-report.json")
}

pub fn run(
    a: &ValidateArgs,
    scope: ScopeArg,
    config: ConfigOutcome,
    loaded: Option<(Bench, Option<Suite>)>,
) -> anyhow::Result<i32> {
    let cancel = CancelToken::new();
    crate::signals::cancel_on_signals(&cancel);
    let mut checks = vec![if config.ok {
        Check::new(
            "config.files",
            Scope::Config,
            Status::Pass,
            format!(
                "{} valid ({} warning{})",
                if a.suite.is_some() {
                    "bench and suite are"
                } else {
                    "bench is"
                },
                config.warnings,
                if config.warnings == 1 { "" } else { "s" }
            ),
        )
    } else {
        Check::new(
            "config.files",
            Scope::Config,
            Status::Fail,
            config.errors.join("\n"),
        )
        .fix("fix the located errors (hilt validate without --scope lists them)")
    }];
    let all = scope == ScopeArg::All;
    if config.ok
        && let Some((bench, suite)) = &loaded
    {
        let inputs = Inputs {
            bench,
            bench_path: &a.bench,
            suite: suite.as_ref().zip(a.suite.as_deref()),
            hosts: &a.host,
            connectivity: all || scope == ScopeArg::Connectivity,
            staging: all || scope == ScopeArg::Staging,
            publish: all || scope == ScopeArg::Publish,
        };
        checks.extend(readiness::check(&inputs, &cancel));
    }
    let failed = checks
        .iter()
        .filter(|c| c.required && c.status == Status::Fail)
        .count();
    let count = |s: Status| checks.iter().filter(|c| c.status == s).count();
    let report = json!({
        "schema_version": "hilt.validate_report.v1",
        "generated_at": hilt_model::run::now(),
        "bench": std::path::absolute(&a.bench).unwrap_or_else(|_| a.bench.clone()),
        "suite": a.suite.as_ref().map(|s| std::path::absolute(s).unwrap_or_else(|_| s.clone())),
        "scope": scope.name(),
        "hosts": a.host,
        "ok": failed == 0,
        "summary": {"pass": count(Status::Pass), "fail": count(Status::Fail), "skip": count(Status::Skip), "required_failed": failed},
        "checks": checks,
    });
    let path = a
        .report
        .clone()
        .unwrap_or_else(|| default_report(loaded.as_ref().map(|(b, _)| b)));
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut text = serde_json::to_vec_pretty(&report)?;
    text.push(b'\n');
    hilt_runner::rundir::write_atomic(&path, &text, false)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for c in &checks {
            let mark = match c.status {
                Status::Pass => "pass",
                Status::Fail if c.required => "FAIL",
                Status::Fail => "warn",
                Status::Skip => "skip",
            };
            println!("{mark:4} {}: {}", c.id, c.detail);
            if c.status == Status::Fail
                && let Some(f) = &c.fix
            {
                println!("     fix: {f}");
            }
        }
    }
    eprintln!(
        "{}: {} passed, {} failed, {} skipped; report {}",
        if failed == 0 { "ok" } else { "not ready" },
        count(Status::Pass),
        count(Status::Fail),
        count(Status::Skip),
        path.display()
    );
    Ok(if !config.ok {
        exit::CONFIG_ERROR
    } else if failed > 0 {
        exit::BENCH_ERROR
    } else {
        exit::PASSED
    })
}

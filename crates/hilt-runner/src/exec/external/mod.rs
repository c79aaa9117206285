//! run_external: bench-owned commands and HTTP jobs under the bench's safety policy.
//!
//! A step triggers a target of `safety.external.targets` — a command (`argv_prefix` plus
//! the suite's `args`, never a shell) or an HTTP job (trigger, then optional polling) —
//! then reads the declared JUnit/CTRF reports and collects logs and artifacts into the
//! run directory. Every suite-supplied path stays inside its root: absolute paths, `..`
//! and symlinks leading outside are refused (`EXTERNAL_OUTPUT_SECURITY_VIOLATION`).
//!
//! The step record (run-results spec §6.3) is returned under `external_record` in the step
//! data; a failing step carries it in `failure.details.external_record`.

mod collect;
mod command;
mod http;
pub(crate) mod paths;

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{Map, Value, json};

use hilt_model::bench::{Bench, ExternalTarget};
use hilt_model::run::{Category, EventKind, Failure, Source, checks, now, round3};
use hilt_model::suite::RunExternal;

use crate::data;
use crate::events::Events;
use crate::exec::{Exec, StepError, StepResult};
use collect::Collected;

pub const SCHEMA_VERSION: &str = "benchci.external_results.v1";
const STEP_TYPE: &str = "run_external";
/// Failed tests named in a failure message at most.
const NAMED_FAILURES: usize = 10;

/// What every part of one run_external step needs to know.
pub(crate) struct Ctx<'a> {
    pub r: &'a RunExternal,
    pub t: &'a ExternalTarget,
    pub target: &'a str,
    pub test_name: String,
    pub step_index: usize,
    /// Absolute run directory.
    pub run_dir: PathBuf,
    /// The step's own log (command output or HTTP transcript), relative to the run dir.
    pub log_rel: String,
}

impl Ctx<'_> {
    fn mode(&self) -> &'static str {
        if self.r.http.is_some() {
            "http"
        } else {
            "command"
        }
    }

    pub fn log_path(&self) -> PathBuf {
        self.run_dir.join(&self.log_rel)
    }
}

/// How the trigger (command or HTTP job) ended.
pub(crate) struct Trigger {
    /// The record's `trigger` object.
    pub record: Value,
    pub failure: Option<Failure>,
    pub timed_out: bool,
    pub cancelled: bool,
}

impl Trigger {
    fn failed(record: Value, failure: Failure) -> Trigger {
        Trigger {
            record,
            failure: Some(failure),
            timed_out: false,
            cancelled: false,
        }
    }
}

pub fn run(exec: &mut Exec, r: &RunExternal, ev: &mut Events) -> StepResult {
    let bench: &Bench = exec.bench;
    let t = check_policy(bench, r).map_err(|m| {
        StepError::Run(
            Failure::new(Category::ConfigError, m)
                .with_detail("target", r.target.clone())
                .with_suggestions([checks::EXTERNAL_POLICY]),
        )
    })?;
    let test_name = exec.current_test.clone();
    let step_index = exec.current_step;
    let ctx = Ctx {
        r,
        t,
        target: &r.target,
        log_rel: format!(
            "logs/external/{}-step{}-{}.log",
            paths::slug(&test_name),
            step_index,
            paths::slug(&r.target)
        ),
        test_name,
        step_index,
        run_dir: exec.dir.clone(),
    };
    let started_at = now();
    let clock = Instant::now();
    ev.emit(
        EventKind::EXTERNAL_STARTED,
        None,
        data!("test_name" => ctx.test_name, "step_index" => ctx.step_index, "step_type" => STEP_TYPE,
              "target" => ctx.target, "mode" => ctx.mode()),
    );

    let (trigger, collected) = execute(exec, &ctx);
    if trigger.cancelled {
        ev.emit(
            EventKind::EXTERNAL_FAILED,
            Some("external run cancelled".into()),
            data!("test_name" => ctx.test_name, "step_index" => ctx.step_index, "step_type" => STEP_TYPE,
                  "target" => ctx.target, "mode" => ctx.mode(), "cancelled" => true,
                  "duration_s" => round3(clock.elapsed().as_secs_f64())),
        );
        return Err(StepError::Cancelled);
    }
    let failure = decide(&ctx, &trigger, &collected);
    finish(&ctx, ev, started_at, clock, trigger, collected, failure)
}

/// Runs the trigger and collects its outputs. Failures that stop the step before the
/// trigger (work root missing, cwd escaping) come back as a failed trigger.
fn execute(exec: &mut Exec, ctx: &Ctx) -> (Trigger, Collected) {
    let pending = json!({"type": ctx.mode()});
    let work_root = match Path::new(&ctx.t.work_root).canonicalize() {
        Ok(p) if p.is_dir() => p,
        Ok(_) | Err(_) => {
            let f = Failure::new(
                Category::ExternalRunFailed,
                format!(
                    "work_root {} of external target `{}` is not an accessible directory",
                    ctx.t.work_root, ctx.target
                ),
            )
            .with_source(Source::BenchInfrastructure)
            .with_suggestions([checks::EXTERNAL_WORK_ROOT]);
            return (Trigger::failed(pending, f), Collected::default());
        }
    };
    let cwd = match &ctx.r.cwd {
        None => work_root.clone(),
        Some(c) => match paths::confine(&work_root, c, "cwd") {
            Ok(Some(p)) if p.is_dir() => p,
            Ok(_) => {
                let f = Failure::new(
                    Category::ExternalRunFailed,
                    format!(
                        "cwd `{c}` is not a directory under the work_root of external target `{}`",
                        ctx.target
                    ),
                )
                .with_source(Source::Configuration);
                return (Trigger::failed(pending, f), Collected::default());
            }
            Err(e) => {
                let f = security_failure(ctx, std::slice::from_ref(&e.0));
                return (Trigger::failed(pending, f), Collected::default());
            }
        },
    };
    if let Some(dir) = ctx.log_path().parent()
        && let Err(e) = std::fs::create_dir_all(dir)
    {
        let f = Failure::new(
            Category::ExternalRunFailed,
            format!("cannot create {}: {e}", dir.display()),
        )
        .with_source(Source::BenchInfrastructure);
        return (Trigger::failed(pending, f), Collected::default());
    }
    let trigger = match &ctx.r.http {
        Some(h) => http::run(ctx, h, &exec.cancel),
        None => command::run(exec, ctx, &cwd),
    };
    if trigger.cancelled {
        return (trigger, Collected::default());
    }
    let output_root = match &ctx.t.output_root {
        Some(o) => PathBuf::from(o),
        None => cwd,
    };
    // A missing output root is not an error in itself: every declared path is then missing.
    let output_root = output_root.canonicalize().ok().filter(|p| p.is_dir());
    let collected = collect::collect(ctx, output_root.as_deref());
    (trigger, collected)
}

/// The step's failure, most important first: a refused path, a timeout, the trigger's own
/// failure, unreadable reports, empty reports, failed external tests.
fn decide(ctx: &Ctx, trigger: &Trigger, c: &Collected) -> Option<Failure> {
    if !c.violations.is_empty() {
        return Some(security_failure(ctx, &c.violations));
    }
    let failed = failed_tests(c);
    if let Some(f) = &trigger.failure {
        let mut f = f.clone();
        if !trigger.timed_out && !failed.is_empty() {
            f.message = format!("{}; {}", f.message, failed_message(c, &failed));
            f.raw_error = f.message.clone();
        }
        return Some(f.with_detail("failed_tests", failed_names(&failed)));
    }
    if let Some(p) = c.report_problems.first() {
        return Some(
            Failure::new(Category::ExternalRunFailed, p.clone())
                .with_source(Source::Configuration)
                .with_detail("report_problems", c.report_problems.clone()),
        );
    }
    if !c.empty_reports.is_empty() {
        return Some(Failure::new(
            Category::ExternalResultsEmpty,
            format!(
                "external report {} of target `{}` contains zero tests",
                c.empty_reports.join(", "),
                ctx.target
            ),
        ));
    }
    if !failed.is_empty() {
        return Some(
            Failure::new(Category::ExternalRunFailed, failed_message(c, &failed))
                .with_detail("failed_tests", failed_names(&failed)),
        );
    }
    None
}

fn failed_tests(c: &Collected) -> Vec<&crate::report::ExternalTest> {
    c.tests
        .iter()
        .filter(|t| t.status == "failed" || t.status == "error")
        .collect()
}

fn test_label(t: &crate::report::ExternalTest) -> String {
    match &t.classname {
        Some(c) if !c.is_empty() => format!("{c}.{}", t.name),
        _ => t.name.clone(),
    }
}

fn failed_names(failed: &[&crate::report::ExternalTest]) -> Value {
    if failed.is_empty() {
        return Value::Null;
    }
    failed.iter().map(|t| test_label(t)).collect()
}

fn failed_message(c: &Collected, failed: &[&crate::report::ExternalTest]) -> String {
    let mut names: Vec<String> = failed
        .iter()
        .take(NAMED_FAILURES)
        .map(|t| {
            let mut s = format!("{} ({})", test_label(t), t.status);
            if let Some(m) = t.failure_message.as_deref().filter(|m| !m.is_empty()) {
                let short: String = m.lines().next().unwrap_or("").chars().take(200).collect();
                s.push_str(&format!(": {short}"));
            }
            s
        })
        .collect();
    if failed.len() > NAMED_FAILURES {
        names.push(format!("and {} more", failed.len() - NAMED_FAILURES));
    }
    format!(
        "{} of {} external tests failed: {}",
        failed.len(),
        c.tests.len(),
        names.join("; ")
    )
}

fn security_failure(ctx: &Ctx, violations: &[String]) -> Failure {
    let more = if violations.len() > 1 {
        format!(" (and {} more)", violations.len() - 1)
    } else {
        String::new()
    };
    Failure::new(
        Category::ExternalOutputSecurityViolation,
        format!(
            "external target `{}`: {}{more}",
            ctx.target,
            violations
                .first()
                .map(String::as_str)
                .unwrap_or("path refused")
        ),
    )
    .with_detail("violations", violations.to_vec())
}

fn finish(
    ctx: &Ctx,
    ev: &mut Events,
    started_at: String,
    clock: Instant,
    trigger: Trigger,
    c: Collected,
    failure: Option<Failure>,
) -> StepResult {
    let duration_s = round3(clock.elapsed().as_secs_f64());
    let tests: Vec<Value> = c
        .tests
        .iter()
        .map(|t| {
            let mut v = serde_json::to_value(t).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.insert("source".into(), json!(ctx.r.source));
                o.insert("framework".into(), json!(ctx.r.framework));
            }
            v
        })
        .collect();
    let test_count = tests.len();
    let status = if failure.is_some() {
        "failed"
    } else {
        "passed"
    };
    let record = json!({
        "schema_version": SCHEMA_VERSION,
        "target": ctx.target,
        "source": ctx.r.source,
        "framework": ctx.r.framework,
        "status": status,
        "started_at": started_at,
        "finished_at": now(),
        "duration_s": duration_s,
        "test_name": ctx.test_name,
        "step_index": ctx.step_index,
        "trigger": trigger.record,
        "reports": c.reports,
        "tests": tests,
        "logs": c.logs,
        "artifacts": c.artifacts,
        "failure": failure.as_ref().map(|f| json!({
            "category": f.category, "title": f.title, "message": f.message, "details": f.details,
        })),
    });
    match failure {
        Some(f) => {
            let mut f = f
                .with_detail("target", ctx.target)
                .with_detail("external_record", record);
            let log = ctx.log_path();
            let mut n = 0;
            if log.is_file() {
                n += 1;
                f = f.with_artifact(&format!("external_log_{n}"), log.display().to_string());
            }
            for l in &c.log_files {
                n += 1;
                f = f.with_artifact(&format!("external_log_{n}"), l.display().to_string());
            }
            f = f.with_artifact(
                "external_results_json",
                ctx.run_dir
                    .join("external-results.json")
                    .display()
                    .to_string(),
            );
            ev.emit(
                EventKind::EXTERNAL_FAILED,
                Some(f.summary()),
                data!("test_name" => ctx.test_name, "step_index" => ctx.step_index, "step_type" => STEP_TYPE,
                      "target" => ctx.target, "mode" => ctx.mode(), "test_count" => test_count,
                      "duration_s" => duration_s, "failure" => f),
            );
            Err(StepError::Test(f))
        }
        None => {
            ev.emit(
                EventKind::EXTERNAL_FINISHED,
                None,
                data!("test_name" => ctx.test_name, "step_index" => ctx.step_index, "step_type" => STEP_TYPE,
                      "target" => ctx.target, "mode" => ctx.mode(), "test_count" => test_count,
                      "duration_s" => duration_s),
            );
            let mut d = Map::new();
            d.insert("target".into(), ctx.target.into());
            d.insert("mode".into(), ctx.mode().into());
            d.insert("status".into(), "passed".into());
            d.insert("test_count".into(), test_count.into());
            d.insert("duration_s".into(), duration_s.into());
            d.insert("external_record".into(), record);
            Ok(d)
        }
    }
}

// ---------------------------------------------------------------------------------------
// Policy (cross-validation already ran; these are cheap, defensive re-checks)
// ---------------------------------------------------------------------------------------

fn check_policy<'b>(bench: &'b Bench, r: &RunExternal) -> Result<&'b ExternalTarget, String> {
    let policy = &bench.safety.external;
    if !policy.enabled {
        return Err("run_external is not enabled on this bench (safety.external.enabled)".into());
    }
    let Some(t) = policy.targets.get(&r.target) else {
        return Err(format!("unknown external target `{}`", r.target));
    };
    if r.timeout_ms == 0 || r.timeout_ms > t.max_timeout_ms {
        return Err(format!(
            "timeout_ms {} is outside 1..={} (the target's max_timeout_ms)",
            r.timeout_ms, t.max_timeout_ms
        ));
    }
    if !Path::new(&t.work_root).is_absolute() {
        return Err(format!(
            "work_root `{}` of target `{}` is not an absolute path",
            t.work_root, r.target
        ));
    }
    if let Some(o) = &t.output_root
        && !Path::new(o).is_absolute()
    {
        return Err(format!(
            "output_root `{o}` of target `{}` is not an absolute path",
            r.target
        ));
    }
    if let Some(cwd) = &r.cwd
        && let Err(e) = paths::relative(cwd, "cwd")
    {
        return Err(e.0);
    }
    match &r.http {
        None => {
            if t.argv_prefix.is_empty() {
                return Err(format!(
                    "target `{}` has no argv_prefix; command mode is not allowed",
                    r.target
                ));
            }
            let patterns = t.arg_regexes();
            for a in &r.args {
                if !patterns.iter().any(|p| p.is_match(a)) {
                    return Err(format!(
                        "argument `{a}` matches none of the arg_patterns of target `{}`",
                        r.target
                    ));
                }
            }
        }
        Some(h) => {
            if !r.args.is_empty() {
                return Err("`args` must be empty in HTTP mode".into());
            }
            let Some(base) = &t.base_url else {
                return Err(format!(
                    "target `{}` has no base_url; HTTP mode is not allowed",
                    r.target
                ));
            };
            let allowed = |m: &str| t.methods.iter().any(|a| a.eq_ignore_ascii_case(m));
            if !under_base(&h.url, base) {
                return Err(format!(
                    "url `{}` is not under the target's base_url `{base}`",
                    h.url
                ));
            }
            if !allowed(&h.method) {
                return Err(format!(
                    "method `{}` is not allowed by target `{}`",
                    h.method, r.target
                ));
            }
            if let Some(p) = &h.poll {
                if !under_base(&p.url, base) {
                    return Err(format!(
                        "poll url `{}` is not under the target's base_url `{base}`",
                        p.url
                    ));
                }
                if !allowed(&p.method) {
                    return Err(format!(
                        "poll method `{}` is not allowed by target `{}`",
                        p.method, r.target
                    ));
                }
                if p.interval_ms < 500 || p.interval_ms > t.max_poll_interval_ms {
                    return Err(format!(
                        "poll interval_ms {} is outside 500..={} (the target's max_poll_interval_ms)",
                        p.interval_ms, t.max_poll_interval_ms
                    ));
                }
            }
        }
    }
    Ok(t)
}

/// `url` starts with `base` at a path boundary and has no `..` segment, backslash or
/// user-info trick after it.
fn under_base(url: &str, base: &str) -> bool {
    let Some(rest) = url.strip_prefix(base) else {
        return false;
    };
    let boundary = base.ends_with('/') || rest.is_empty() || rest.starts_with(['/', '?', '#']);
    if !boundary || url.contains('\\') {
        return false;
    }
    let path = rest.split(['?', '#']).next().unwrap_or("");
    !path
        .split('/')
        .any(|s| s.to_ascii_lowercase().replace("%2e", ".") == "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_stay_under_base() {
        let b = "http://lab:8080/api";
        assert!(under_base("http://lab:8080/api", b));
        assert!(under_base("http://lab:8080/api/jobs?x=1", b));
        assert!(under_base("http://lab:8080/api/jobs/{job_id}", b));
        assert!(!under_base("http://lab:8080/apix", b));
        assert!(!under_base("http://lab:8080/api/../admin", b));
        assert!(!under_base("http://lab:8080/api/%2E%2e/admin", b));
        assert!(!under_base("http://lab:8080/api\\..\\x", b));
        assert!(!under_base("http://lab:80801/api", "http://lab:8080"));
        assert!(!under_base("http://lab:8080@evil/api", "http://lab:8080"));
        assert!(under_base("http://lab:8080/x", "http://lab:8080/"));
    }
}

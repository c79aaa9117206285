//! Commands that talk to an agent: `hilt run --agent`, `hilt agent health`,
//! `hilt benches list|show`.
//!
//! A remote run submits (multipart with an uploaded bench, JSON with a registered one),
//! shows live progress from the agent's events, downloads and extracts `artifacts.zip`,
//! prints the verdict and exits with the code a local run would have.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use hilt_api::{Accepted, BenchDetail, BenchSummary, RunState, RunView};
use hilt_hw::CancelToken;
use hilt_model::run::{EventKind, RunResults};
use hilt_runner::Observer;
use hilt_runner::classify::{exit, exit_code};
use serde_json::{Map, Value, json};

use crate::cli::{AgentConn, AgentHealthArgs, RunArgs};
use crate::client::events::{self, Feed};
use crate::client::{AgentClient, ClientError, body, resolve_token, results, segment};
use crate::progress::Progress;
use crate::{render, signals};

/// Where results go without `--results-dir` (BenchCI's client uses the same name).
const DEFAULT_RESULTS: &str = "benchci-results";

/// A command ending early: what to print and the exit code.
struct Stop {
    code: i32,
    message: String,
}

impl From<ClientError> for Stop {
    fn from(e: ClientError) -> Stop {
        Stop {
            code: e.exit_code(),
            message: e.to_string(),
        }
    }
}

fn config_error(message: String) -> Stop {
    Stop {
        code: exit::CONFIG_ERROR,
        message,
    }
}

fn finish(r: Result<i32, Stop>) -> anyhow::Result<i32> {
    Ok(match r {
        Ok(code) => code,
        Err(s) => {
            eprintln!("error: {}", s.message);
            s.code
        }
    })
}

fn connect(url: &str, token: Option<String>) -> Result<AgentClient, Stop> {
    Ok(AgentClient::new(url, resolve_token(token))?)
}

/// `hilt run --agent URL …`.
pub fn run(a: RunArgs) -> anyhow::Result<i32> {
    finish(run_inner(&a))
}

fn run_inner(a: &RunArgs) -> Result<i32, Stop> {
    let client = connect(a.agent.as_deref().unwrap_or_default(), a.token.clone())?;
    if a.strict {
        eprintln!("warning: --strict applies to local runs; the agent loads the files itself");
    }
    let accepted = submit(&client, a)?;
    if !plain_id(&accepted.run_id) {
        return Err(Stop::from(ClientError::Protocol(format!(
            "the submission answer has no usable run_id: {:?}",
            accepted.run_id
        ))));
    }
    let run_id = accepted.run_id.clone();
    let queue = accepted.queue_depth;
    eprintln!(
        "submitted run {run_id} to {} ({}, {})",
        client.base(),
        accepted.mode,
        match queue {
            0 | 1 => "queued".to_string(),
            n => format!("queued; {n} runs in the agent's queue"),
        }
    );

    let cancel = CancelToken::new();
    signals::cancel_on_signals(&cancel);
    let cancelled = follow(&client, &run_id, a.verbose, &cancel)?;

    let view: RunView = client.get_as(&format!("/v1/runs/{}", segment(&run_id)))?;
    let root = a
        .results_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_RESULTS));
    let zip_path = root.join(format!("agent_{run_id}.zip"));
    let run_dir = root.join(&run_id);
    let have_zip = results::download(&client, &run_id, &zip_path)?;
    let doc = if have_zip {
        let skipped = results::extract(&zip_path, &run_dir).map_err(|e| Stop {
            code: exit::BENCH_ERROR,
            message: format!("cannot extract {}: {e}", zip_path.display()),
        })?;
        for s in skipped {
            eprintln!(
                "warning: artifacts.zip entry {:?} not extracted: {}",
                s.name, s.why
            );
        }
        std::fs::read_to_string(run_dir.join("results.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
    } else {
        None
    };
    if let Some(doc) = &doc {
        write_reports(doc, a.junit.as_deref(), a.ctrf.as_deref());
    }
    let parsed = doc
        .as_ref()
        .and_then(|d| serde_json::from_value::<RunResults>(d.clone()).ok())
        .map(|r| localize(r, &run_dir));
    let code = match &parsed {
        Some(r) => {
            render::verdict(r, &run_dir);
            if cancelled {
                exit::INTERRUPTED
            } else {
                exit_code(r.status, r.failure.as_ref())
            }
        }
        None => {
            let status = view.status.as_str();
            eprintln!();
            match &view.error {
                Some(e) => eprintln!("run {run_id} {status}: {e}"),
                None => eprintln!("run {run_id} {status}"),
            }
            if let Some(n) = &view.notice {
                eprintln!("agent: {n}");
            }
            if doc.is_some() {
                eprintln!("results: {}", run_dir.join("results.json").display());
            }
            code_without_results(&view, cancelled)
        }
    };
    if have_zip {
        eprintln!("artifacts: {}", zip_path.display());
    }
    if a.json {
        let view = serde_json::to_value(&view).unwrap_or_default();
        let out = doc.as_ref().unwrap_or(&view);
        println!(
            "{}",
            serde_json::to_string_pretty(out).unwrap_or_else(|_| out.to_string())
        );
    }
    Ok(code)
}

/// Paths in the failure that point into the agent's results directory, pointed at the
/// extracted copy instead (for the verdict only; results.json stays as the agent wrote it).
fn localize(mut r: RunResults, run_dir: &Path) -> RunResults {
    let remote = r.results_dir.trim_end_matches('/').to_string();
    if remote.is_empty() {
        return r;
    }
    if let Some(f) = &mut r.failure {
        for v in f.artifacts.values_mut() {
            if let Some(rest) = v.as_str().and_then(|p| p.strip_prefix(remote.as_str()))
                && (rest.is_empty() || rest.starts_with('/'))
                && results::safe_path(rest.trim_start_matches('/')).is_ok()
            {
                *v = run_dir
                    .join(rest.trim_start_matches('/'))
                    .display()
                    .to_string()
                    .into();
            }
        }
    }
    r
}

/// A run id the agent gave us, safe as a file name.
fn plain_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// Exit code of a run whose results.json is missing or not hilt's.
fn code_without_results(view: &RunView, cancelled: bool) -> i32 {
    if cancelled || view.cancelled || view.status == RunState::Cancelled {
        return exit::INTERRUPTED;
    }
    if view.status == RunState::Done {
        return exit::PASSED;
    }
    if view.exit_code == Some(1) {
        return exit::TESTS_FAILED;
    }
    let error = view.error.as_deref().unwrap_or("");
    if error.starts_with("CONFIG_ERROR") || error.to_ascii_lowercase().contains("configuration") {
        exit::CONFIG_ERROR
    } else {
        exit::BENCH_ERROR
    }
}

fn write_reports(doc: &Value, junit: Option<&Path>, ctrf: Option<&Path>) {
    if let Some(p) = junit {
        let xml = hilt_runner::report::junit_xml(doc);
        if let Err(e) = hilt_runner::rundir::write_atomic(p, xml.as_bytes(), true) {
            eprintln!("warning: cannot write JUnit report {}: {e}", p.display());
        }
    }
    if let Some(p) = ctrf {
        let text =
            serde_json::to_vec_pretty(&hilt_runner::report::ctrf_json(doc)).unwrap_or_default();
        if let Err(e) = hilt_runner::rundir::write_atomic(p, &text, true) {
            eprintln!("warning: cannot write CTRF report {}: {e}", p.display());
        }
    }
}

fn base_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

fn open(p: &Path, what: &str) -> Result<(Box<dyn std::io::Read + Send>, u64), Stop> {
    body::open(p).map_err(|e| config_error(format!("cannot read the {what} {}: {e}", p.display())))
}

/// Submits the run: JSON for a registered bench, multipart for an uploaded one.
fn submit(client: &AgentClient, a: &RunArgs) -> Result<Accepted, Stop> {
    let artifact = match &a.artifact {
        Some(p) => Some((base_name(p), open(p, "artifact")?)),
        None => None,
    };
    if let Some(bench_id) = &a.bench_id {
        let suite = hilt_model::load::read_capped(&a.suite, hilt_model::load::MAX_FILE_BYTES)
            .and_then(|b| {
                String::from_utf8(b).map_err(|_| std::io::Error::other("not valid UTF-8"))
            })
            .map_err(|e| {
                config_error(format!("cannot read the suite {}: {e}", a.suite.display()))
            })?;
        let mut fields = Map::new();
        fields.insert("bench_id".into(), bench_id.clone().into());
        fields.insert("suite_yaml".into(), suite.into());
        fields.insert("skip_flash".into(), a.skip_flash.into());
        fields.insert("verbose".into(), a.verbose.into());
        let content = match artifact {
            Some((name, content)) => {
                fields.insert("artifact_filename".into(), name.into());
                Some(content)
            }
            None => None,
        };
        let mut b = body::run_json(&fields, content);
        let len = b.len();
        Ok(client.post_stream_as("/v1/runs/json", "application/json", len, &mut b)?)
    } else {
        let bench = a
            .bench
            .as_deref()
            .ok_or_else(|| config_error("give --bench FILE or --bench-id ID".into()))?;
        let mut m = body::Multipart::new();
        let (b, bl) = open(bench, "bench")?;
        m.file("bench_yaml", "bench.yaml", "application/x-yaml", b, bl);
        let (s, sl) = open(&a.suite, "suite")?;
        m.file("suite_yaml", "suite.yaml", "application/x-yaml", s, sl);
        if let Some((name, (content, len))) = artifact {
            m.file("artifact", &name, "application/octet-stream", content, len);
        }
        m.text("skip_flash", if a.skip_flash { "true" } else { "false" });
        m.text("verbose", if a.verbose { "true" } else { "false" });
        let content_type = m.content_type();
        let mut b = m.finish();
        let len = b.len();
        Ok(client.post_stream_as("/v1/runs", &content_type, len, &mut b)?)
    }
}

/// Shows progress until the run ends. Ctrl-C asks the agent to cancel and keeps following.
/// Returns whether the run was cancelled from here.
fn follow(
    client: &AgentClient,
    run_id: &str,
    verbose: bool,
    cancel: &CancelToken,
) -> Result<bool, Stop> {
    let (tx, rx) = mpsc::channel();
    {
        let client = client.clone();
        let run_id = run_id.to_string();
        std::thread::Builder::new()
            .name("hilt-follow".into())
            .spawn(move || events::follow(client, run_id, tx))
            .map_err(|e| Stop {
                code: exit::INTERNAL,
                message: format!("cannot start a thread: {e}"),
            })?;
    }
    let mut progress = Progress::new(verbose);
    let mut cancel_sent = false;
    let end = loop {
        if cancel.is_cancelled() && !cancel_sent {
            cancel_sent = true;
            request_cancel(client, run_id);
        }
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(Feed::Event(e)) => {
                // What the agent did to this run when it shut down (queued runs).
                if e.event_type == "run.notice" {
                    if let Some(m) = &e.message {
                        eprintln!("agent: {m}");
                    }
                    continue;
                }
                // The agent's own run.started has no details; the runner's follows.
                if e.event_type == EventKind::RUN_STARTED && !e.data.contains_key("tests_total") {
                    continue;
                }
                progress.event(&e);
            }
            Ok(Feed::Ended) => break Ok(()),
            Ok(Feed::Failed(e)) => break Err(e),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                break Err(ClientError::Protocol(
                    "stopped following the run's events".into(),
                ));
            }
        }
    };
    progress.finish();
    end.map_err(|e| {
        let mut s = Stop::from(e);
        s.message = format!(
            "{}\n  run {run_id} may still be going on the agent: {}/v1/runs/{run_id}",
            s.message,
            client.base()
        );
        if cancel_sent {
            s.code = exit::INTERRUPTED;
        }
        s
    })?;
    Ok(cancel_sent)
}

fn request_cancel(client: &AgentClient, run_id: &str) {
    match client.post_json(&format!("/v1/runs/{}/cancel", segment(run_id)), &json!({})) {
        Ok(_) => eprintln!("asked the agent to cancel run {run_id}; waiting for it to stop"),
        Err(ClientError::Status { status: 409, .. }) => {}
        Err(ClientError::Status {
            status: 404 | 405, ..
        }) => eprintln!(
            "this agent cannot cancel runs; waiting for run {run_id} to end (Ctrl-C again stops waiting)"
        ),
        Err(e) => eprintln!("warning: cannot cancel run {run_id}: {e}"),
    }
}

/// `hilt agent health URL`.
pub fn health(a: AgentHealthArgs) -> anyhow::Result<i32> {
    finish(health_inner(&a))
}

fn health_inner(a: &AgentHealthArgs) -> Result<i32, Stop> {
    let client = connect(&a.url, a.token.clone())?;
    let h = client.get_json("/health")?;
    if a.json {
        println!("{}", pretty(&h));
    } else {
        print_health(client.base(), &h);
    }
    Ok(if h.get("ok").and_then(Value::as_bool) == Some(true) {
        exit::PASSED
    } else {
        exit::BENCH_ERROR
    })
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("-")
}

fn n(v: &Value, k: &str) -> u64 {
    v.get(k).and_then(Value::as_u64).unwrap_or(0)
}

fn print_health(url: &str, h: &Value) {
    let ok = h.get("ok").and_then(Value::as_bool) == Some(true);
    println!(
        "{} {} ({}) at {url}: {}",
        s(h, "service"),
        s(h, "agent_id"),
        s(h, "agent_name"),
        if ok { "ok" } else { "NOT OK" }
    );
    println!(
        "  version {}, auth {}, queue depth {}{}",
        s(h, "version"),
        match h.get("auth_enabled").and_then(Value::as_bool) {
            Some(true) => "on",
            Some(false) => "off",
            None => "?",
        },
        n(h, "queue_depth"),
        match h.get("active_runs").and_then(Value::as_u64) {
            Some(a) => format!(", {a} running"),
            None => String::new(),
        }
    );
    let bh = &h["bench_health"];
    println!(
        "  benches: {} registered ({} healthy, {} degraded, {} failing, {} unknown)",
        n(h, "registered_benches"),
        n(bh, "healthy"),
        n(bh, "degraded"),
        n(bh, "failing"),
        n(bh, "unknown")
    );
    if h.get("accepting_runs").and_then(Value::as_bool) == Some(false) {
        println!("  not accepting new runs (stopping)");
    }
}

/// `hilt benches list|show --agent URL`.
pub fn benches(list_or_show: Option<&str>, c: &AgentConn) -> anyhow::Result<i32> {
    finish(match list_or_show {
        None => list(c),
        Some(id) => show(id, c),
    })
}

fn transports(b: &BenchSummary) -> String {
    joined_or(&b.capabilities.transports, ",")
}

/// The list joined by `sep`, or `-` when empty.
fn joined_or(items: &[String], sep: &str) -> String {
    if items.is_empty() {
        "-".into()
    } else {
        items.join(sep)
    }
}

/// The start of a body for an error message.
fn snippet(v: &Value) -> String {
    let text = v.to_string();
    match text.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text,
    }
}

/// The typed body, or a protocol error naming what did not fit.
fn decode<T: serde::de::DeserializeOwned>(v: &Value) -> Result<T, Stop> {
    serde_json::from_value(v.clone())
        .map_err(|e| Stop::from(ClientError::Protocol(format!("{e} in {}", snippet(v)))))
}

fn list(c: &AgentConn) -> Result<i32, Stop> {
    let client = connect(&c.agent, c.token.clone())?;
    let v = client.get_json("/v1/benches")?;
    if c.json {
        println!("{}", pretty(&v));
        return Ok(exit::PASSED);
    }
    let benches: Vec<BenchSummary> = decode(&v)?;
    if benches.is_empty() {
        eprintln!(
            "{} has no registered benches (uploaded benches only)",
            client.base()
        );
        return Ok(exit::PASSED);
    }
    let rows: Vec<[String; 5]> = benches
        .iter()
        .map(|b| {
            [
                b.bench_id.clone(),
                b.name.clone(),
                b.status.as_str().to_string(),
                b.health_status.clone().unwrap_or_else(|| "-".into()),
                transports(b),
            ]
        })
        .collect();
    let header = ["BENCH", "NAME", "STATUS", "HEALTH", "TRANSPORTS"];
    let mut w = header.map(str::len);
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |r: [&str; 5]| {
        println!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {:<w3$}  {}",
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            w0 = w[0],
            w1 = w[1],
            w2 = w[2],
            w3 = w[3]
        )
    };
    line(header);
    for r in &rows {
        line([&r[0], &r[1], &r[2], &r[3], &r[4]]);
    }
    Ok(exit::PASSED)
}

fn show(id: &str, c: &AgentConn) -> Result<i32, Stop> {
    let client = connect(&c.agent, c.token.clone())?;
    let b = client.get_json(&format!("/v1/benches/{}", segment(id)))?;
    if c.json {
        println!("{}", pretty(&b));
        return Ok(exit::PASSED);
    }
    let d: BenchDetail = decode(&b)?;
    let (b, caps) = (&d.summary, &d.summary.capabilities);
    let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    println!("{} — {}", b.bench_id, b.name);
    if let Some(d) = &b.description {
        println!("  {d}");
    }
    println!("  agent:        {}", b.agent_id);
    println!(
        "  status:       {}{}",
        b.status.as_str(),
        match &b.current_run_id {
            Some(r) => format!(" (run {r})"),
            None => String::new(),
        }
    );
    println!(
        "  health:       {} — {} (checked {})",
        or_dash(&b.health_status),
        or_dash(&b.health_summary),
        or_dash(&b.health_checked_at)
    );
    println!("  tags:         {}", joined_or(&b.tags, ", "));
    println!("  nodes:        {}", joined_or(&d.node_names, ", "));
    println!("  transports:   {}", joined_or(&caps.transports, ", "));
    println!("  flash:        {}", joined_or(&caps.flash_backends, ", "));
    println!("  power:        {}", joined_or(&caps.power_backends, ", "));
    println!(
        "  measurement:  {}",
        joined_or(&caps.measurement_backends, ", ")
    );
    println!(
        "  gpio:         {}",
        if caps.has_gpio { "yes" } else { "no" }
    );
    if !d.bench_file.is_empty() {
        println!("  bench file:   {} (on the agent host)", d.bench_file);
    }
    Ok(exit::PASSED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_without_results() {
        let view = |v: Value| -> RunView {
            let mut base =
                json!({"run_id": "r", "mode": "uploaded", "created_at": "t", "queue_depth": 0});
            for (k, x) in v.as_object().unwrap() {
                base[k] = x.clone();
            }
            serde_json::from_value(base).unwrap()
        };
        let v = |status: &str, error: &str| {
            view(json!({"status": status, "error": error, "exit_code": null}))
        };
        assert_eq!(code_without_results(&v("done", ""), false), 0);
        assert_eq!(
            code_without_results(&v("failed", "CONFIG_ERROR: refused"), false),
            3
        );
        assert_eq!(
            code_without_results(&v("failed", "invalid bench configuration"), false),
            3
        );
        assert_eq!(code_without_results(&v("failed", "port busy"), false), 4);
        assert_eq!(code_without_results(&v("failed", "x"), true), 130);
        assert_eq!(
            code_without_results(&view(json!({"status": "failed", "exit_code": 1})), false),
            1
        );
    }

    #[test]
    fn run_ids_must_be_plain() {
        assert!(plain_id("3f9c2a7b1d04"));
        assert!(!plain_id("../x"));
        assert!(!plain_id(".."));
        assert!(!plain_id(""));
        assert!(!plain_id("a/b"));
    }
}

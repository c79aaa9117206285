//! HTTP mode: trigger a job on a lab service, then poll its status until it passes,
//! fails or the step's deadline passes.
//!
//! Plain HTTP only (the bench network); no proxy from the environment, no redirects (a
//! redirect could leave `base_url`). Requests run on a helper thread so that a
//! cancellation is noticed while a request is in flight. Header values are never written
//! to records or logs: `headers_env` values and secret-looking plain headers show as `***`.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use hilt_hw::CancelToken;
use hilt_model::run::{Category, Failure, Source, checks, now, round3};
use hilt_model::suite::ExternalHttp;

use super::{Ctx, Trigger};

/// How often a waiting request checks for cancellation.
const CANCEL_SLICE: Duration = Duration::from_millis(50);
/// Response bodies shown in the transcript log at most.
const LOG_BODY_CHARS: usize = 4096;
/// Response bodies read at most, whatever the target allows.
const MIN_BODY_CAP: u64 = 64 * 1024;
pub const REDACTED: &str = "***";

struct Reply {
    status: u16,
    body: String,
}

enum CallError {
    Cancelled,
    Deadline,
    Unreachable(String),
    Other(String),
}

/// Appends a human-readable transcript to the step log; write errors are ignored (the
/// record is the evidence).
struct Transcript(Option<std::fs::File>);

impl Transcript {
    fn open(path: PathBuf) -> Transcript {
        Transcript(OpenOptions::new().create(true).append(true).open(path).ok())
    }

    fn line(&mut self, text: &str) {
        if let Some(f) = &mut self.0 {
            let _ = writeln!(f, "{} {text}", now());
        }
    }

    fn reply(&mut self, what: &str, method: &str, url: &str, r: &Reply) {
        let body: String = r.body.chars().take(LOG_BODY_CHARS).collect();
        let more = if r.body.chars().count() > LOG_BODY_CHARS {
            " …"
        } else {
            ""
        };
        self.line(&format!(
            "{what}: {method} {url} -> HTTP {}\n{body}{more}",
            r.status
        ));
    }
}

pub fn run(ctx: &Ctx, h: &ExternalHttp, cancel: &CancelToken) -> Trigger {
    let clock = Instant::now();
    let deadline = clock + Duration::from_millis(ctx.r.timeout_ms);
    let body_cap = ctx.t.max_results_document_bytes.max(MIN_BODY_CAP);
    let mut log = Transcript::open(ctx.log_path());
    let method = h.method.to_ascii_uppercase();

    let mut headers: Vec<(String, String)> = Vec::new();
    let mut shown = Map::new();
    for (k, v) in &h.headers {
        headers.push((k.clone(), v.clone()));
        let v = if secret_header(k) {
            REDACTED
        } else {
            v.as_str()
        };
        shown.insert(k.clone(), v.into());
    }
    let mut missing_env = Vec::new();
    for (k, var) in &h.headers_env {
        match std::env::var(var) {
            Ok(v) => headers.push((k.clone(), v)),
            Err(_) => missing_env.push(format!("{var} (header {k})")),
        }
        shown.insert(k.clone(), REDACTED.into());
    }
    let mut record = json!({
        "type": "http",
        "method": method,
        "url": h.url,
        "headers": shown,
        "expected_status": h.expected_status,
        "timeout_ms": ctx.r.timeout_ms,
        "output_log": ctx.log_rel,
        "status_code": null,
        "job_id": null,
        "poll": h.poll.as_ref().map(|p| json!({
            "method": p.method.to_ascii_uppercase(),
            "url": p.url,
            "interval_ms": p.interval_ms,
            "expected_status": p.expected_status,
            "status_json_path": p.status_json_path,
            "attempts": 0,
            "status_code": null,
            "status_value": null,
        })),
    });
    let finish = |record: &mut Value| {
        record["duration_s"] = round3(clock.elapsed().as_secs_f64()).into();
    };
    if !missing_env.is_empty() {
        finish(&mut record);
        let f = Failure::new(
            Category::ExternalRunFailed,
            format!(
                "external target `{}`: environment variable {} is not set on the bench host",
                ctx.target,
                missing_env.join(", ")
            ),
        )
        .with_source(Source::Configuration)
        .with_suggestions([checks::EXTERNAL_HEADERS_ENV]);
        return Trigger::failed(record, f);
    }

    // Trigger.
    let body = h
        .json
        .as_ref()
        .map(|j| serde_json::to_vec(j).unwrap_or_default());
    log.line(&format!("trigger: {method} {}", h.url));
    let reply = match call(cancel, &method, &h.url, &headers, body, deadline, body_cap) {
        Ok(r) => r,
        Err(e) => {
            finish(&mut record);
            return call_failed(ctx, record, e, &mut log, "trigger", &method, &h.url, None);
        }
    };
    log.reply("trigger", &method, &h.url, &reply);
    record["status_code"] = reply.status.into();
    if !h.expected_status.contains(&reply.status) {
        finish(&mut record);
        let f = Failure::new(
            Category::ExternalRunFailed,
            format!(
                "external target `{}`: trigger {method} {} returned HTTP {}, expected one of {:?}",
                ctx.target, h.url, reply.status, h.expected_status
            ),
        )
        .with_detail("status_code", reply.status)
        .with_detail("response", snippet(&reply.body));
        return Trigger::failed(record, f);
    }
    let doc: Option<Value> = serde_json::from_str(&reply.body).ok();
    let job_id = doc
        .as_ref()
        .and_then(|d| lookup(d, &h.job_id_json_path))
        .and_then(scalar);
    record["job_id"] = json!(job_id);

    let Some(p) = &h.poll else {
        finish(&mut record);
        return ok(record);
    };
    let poll_url = if p.url.contains("{job_id}") {
        match &job_id {
            Some(j) => p.url.replace("{job_id}", &encode_segment(j)),
            None => {
                finish(&mut record);
                let f = Failure::new(
                    Category::ExternalRunFailed,
                    format!(
                        "external target `{}`: the trigger response has no job id at `{}`, needed by the poll url",
                        ctx.target, h.job_id_json_path
                    ),
                )
                .with_detail("response", snippet(&reply.body));
                return Trigger::failed(record, f);
            }
        }
    } else {
        p.url.clone()
    };
    let poll_method = p.method.to_ascii_uppercase();
    record["poll"]["url"] = poll_url.clone().into();
    let interval = Duration::from_millis(p.interval_ms);
    let matches = |values: &[String], v: &str| {
        values
            .iter()
            .any(|x| x.trim().eq_ignore_ascii_case(v.trim()))
    };
    let mut attempts = 0u64;
    let mut last: Option<String> = None;
    loop {
        if Instant::now() >= deadline {
            finish(&mut record);
            return timed_out(ctx, record, job_id.as_deref(), last.as_deref());
        }
        attempts += 1;
        record["poll"]["attempts"] = attempts.into();
        let reply = match call(
            cancel,
            &poll_method,
            &poll_url,
            &headers,
            None,
            deadline,
            body_cap,
        ) {
            Ok(r) => r,
            Err(CallError::Deadline) => {
                finish(&mut record);
                return timed_out(ctx, record, job_id.as_deref(), last.as_deref());
            }
            Err(e) => {
                finish(&mut record);
                return call_failed(
                    ctx,
                    record,
                    e,
                    &mut log,
                    "poll",
                    &poll_method,
                    &poll_url,
                    job_id.as_deref(),
                );
            }
        };
        log.reply(
            &format!("poll #{attempts}"),
            &poll_method,
            &poll_url,
            &reply,
        );
        record["poll"]["status_code"] = reply.status.into();
        if !p.expected_status.contains(&reply.status) {
            finish(&mut record);
            let f = Failure::new(
                Category::ExternalRunFailed,
                format!(
                    "external target `{}`: poll {poll_method} {poll_url} returned HTTP {}, expected one of {:?}",
                    ctx.target, reply.status, p.expected_status
                ),
            )
            .with_detail("status_code", reply.status)
            .with_detail("job_id", job_id.clone())
            .with_detail("response", snippet(&reply.body));
            return Trigger::failed(record, f);
        }
        let value = serde_json::from_str::<Value>(&reply.body)
            .ok()
            .as_ref()
            .and_then(|d| lookup(d, &p.status_json_path))
            .and_then(scalar);
        record["poll"]["status_value"] = json!(value);
        if let Some(v) = &value {
            if matches(&p.success_values, v) {
                finish(&mut record);
                return ok(record);
            }
            if matches(&p.failure_values, v) {
                finish(&mut record);
                let job = job_id
                    .as_deref()
                    .map(|j| format!(" `{j}`"))
                    .unwrap_or_default();
                let f = Failure::new(
                    Category::ExternalRunFailed,
                    format!(
                        "external job{job} of target `{}` reported status `{v}`",
                        ctx.target
                    ),
                )
                .with_detail("job_id", job_id.clone())
                .with_detail("status_value", v.clone())
                .with_detail("response", snippet(&reply.body));
                return Trigger::failed(record, f);
            }
        }
        last = value;
        let left = deadline.saturating_duration_since(Instant::now());
        if cancel.wait_timeout(interval.min(left)) {
            return Trigger {
                record,
                failure: None,
                timed_out: false,
                cancelled: true,
            };
        }
    }
}

fn ok(record: Value) -> Trigger {
    Trigger {
        record,
        failure: None,
        timed_out: false,
        cancelled: false,
    }
}

fn timed_out(ctx: &Ctx, record: Value, job_id: Option<&str>, last: Option<&str>) -> Trigger {
    let last = last
        .map(|l| format!(" (last status `{l}`)"))
        .unwrap_or_default();
    let f = Failure::new(
        Category::ExternalRunTimeout,
        format!(
            "external HTTP job of target `{}` did not finish within {} ms{last}",
            ctx.target, ctx.r.timeout_ms
        ),
    )
    .with_detail("job_id", job_id.map(str::to_string))
    .with_detail("timeout_ms", ctx.r.timeout_ms);
    Trigger {
        record,
        failure: Some(f),
        timed_out: true,
        cancelled: false,
    }
}

#[allow(clippy::too_many_arguments)]
fn call_failed(
    ctx: &Ctx,
    mut record: Value,
    e: CallError,
    log: &mut Transcript,
    what: &str,
    method: &str,
    url: &str,
    job_id: Option<&str>,
) -> Trigger {
    let (msg, unreachable) = match e {
        CallError::Cancelled => {
            log.line(&format!("{what}: cancelled"));
            return Trigger {
                record,
                failure: None,
                timed_out: false,
                cancelled: true,
            };
        }
        CallError::Deadline => {
            log.line(&format!("{what}: deadline reached"));
            return timed_out(ctx, record, job_id, None);
        }
        CallError::Unreachable(m) => (m, true),
        CallError::Other(m) => (m, false),
    };
    log.line(&format!("{what}: {method} {url} failed: {msg}"));
    record["error"] = msg.clone().into();
    let text = if unreachable {
        format!(
            "cannot reach the external service of target `{}`: {what} {method} {url} failed: {msg}",
            ctx.target
        )
    } else {
        format!(
            "external target `{}`: {what} {method} {url} failed: {msg}",
            ctx.target
        )
    };
    let f = Failure::new(Category::ExternalRunFailed, text)
        .with_source(Source::BenchInfrastructure)
        .with_detail("job_id", job_id.map(str::to_string))
        .with_suggestions([checks::LAB_SERVICE_REACHABLE]);
    Trigger::failed(record, f)
}

/// One request, on a helper thread so a cancellation or the deadline ends the wait.
fn call(
    cancel: &CancelToken,
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: Option<Vec<u8>>,
    deadline: Instant,
    body_cap: u64,
) -> Result<Reply, CallError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(CallError::Deadline);
    }
    let (tx, rx) = mpsc::channel();
    let (m, u, hs) = (method.to_string(), url.to_string(), headers.to_vec());
    std::thread::Builder::new()
        .name("hilt-external-http".into())
        .spawn(move || {
            let _ = tx.send(request(&m, &u, &hs, body, left, body_cap));
        })
        .map_err(|e| CallError::Other(format!("cannot start a request thread: {e}")))?;
    // The request carries its own timeout; a little slack covers connection set-up.
    let give_up = deadline + Duration::from_secs(2);
    loop {
        match rx.recv_timeout(CANCEL_SLICE) {
            Ok(r) => return r,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if cancel.is_cancelled() {
                    return Err(CallError::Cancelled);
                }
                if Instant::now() >= give_up {
                    return Err(CallError::Deadline);
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(CallError::Other(
                    "the request thread ended unexpectedly".into(),
                ));
            }
        }
    }
}

fn request(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: Option<Vec<u8>>,
    timeout: Duration,
    body_cap: u64,
) -> Result<Reply, CallError> {
    use ureq::http;
    hilt_hw::tls::check_url(url).map_err(CallError::Other)?;
    let agent: ureq::Agent = hilt_hw::tls::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .max_redirects(0)
        .timeout_global(Some(timeout))
        .build()
        .into();
    let m = http::Method::from_bytes(method.as_bytes())
        .map_err(|_| CallError::Other(format!("invalid HTTP method `{method}`")))?;
    let mut b = http::Request::builder().method(m).uri(url);
    for (k, v) in headers {
        b = b.header(k.as_str(), v.as_str());
    }
    let bad = |e: http::Error| CallError::Other(format!("invalid request: {e}"));
    let sent = match body {
        Some(bytes) => {
            if !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            {
                b = b.header("content-type", "application/json");
            }
            agent.run(b.body(bytes).map_err(bad)?)
        }
        None => agent.run(b.body(()).map_err(bad)?),
    };
    let resp = sent.map_err(|e| classify(e, url))?;
    let status = resp.status().as_u16();
    let mut body = resp.into_body();
    let text = body
        .with_config()
        .limit(body_cap)
        .read_to_string()
        .map_err(|e| match e {
            ureq::Error::Timeout(_) => CallError::Deadline,
            e => CallError::Other(format!("cannot read the response body: {e}")),
        })?;
    Ok(Reply { status, body: text })
}

fn classify(e: ureq::Error, url: &str) -> CallError {
    if hilt_hw::tls::certificate_problem(&e).is_some() {
        return CallError::Unreachable(hilt_hw::tls::describe(&e, url));
    }
    match e {
        ureq::Error::Timeout(_) => CallError::Deadline,
        ureq::Error::Io(_) | ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => {
            CallError::Unreachable(e.to_string())
        }
        e => CallError::Other(e.to_string()),
    }
}

/// Header names whose plain values are redacted in records anyway.
fn secret_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "authorization",
        "cookie",
        "token",
        "secret",
        "password",
        "api-key",
        "apikey",
        "api_key",
    ]
    .iter()
    .any(|s| n.contains(s))
}

/// A dot path (`a.b.0.c`) into a JSON document; numeric parts index arrays.
fn lookup<'v>(doc: &'v Value, path: &str) -> Option<&'v Value> {
    if path.is_empty() {
        return Some(doc);
    }
    path.split('.').try_fold(doc, |v, part| match v {
        Value::Object(o) => o.get(part),
        Value::Array(a) => part.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Percent-encodes everything but letters, digits, `-`, `_` and `~`, so a job id can
/// neither add path segments nor be a dot segment.
fn encode_segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn snippet(body: &str) -> String {
    body.chars().take(1000).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_paths() {
        let d = json!({"a": {"b": [{"c": 7}]}, "s": "x"});
        assert_eq!(lookup(&d, "a.b.0.c").and_then(scalar).as_deref(), Some("7"));
        assert_eq!(lookup(&d, "s").and_then(scalar).as_deref(), Some("x"));
        assert!(lookup(&d, "a.x").is_none());
        assert!(lookup(&d, "a.b.9").is_none());
    }

    #[test]
    fn job_ids_cannot_escape() {
        assert_eq!(encode_segment("j-1_a~"), "j-1_a~");
        assert_eq!(encode_segment("../x"), "%2E%2E%2Fx");
        assert_eq!(encode_segment("a b"), "a%20b");
    }

    #[test]
    fn secret_headers() {
        assert!(secret_header("Authorization"));
        assert!(secret_header("X-Api-Key"));
        assert!(!secret_header("Accept"));
    }
}

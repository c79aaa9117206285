//! The cloud-agent calls of agent-api §6 against `hilt server` (or any BenchCI-compatible
//! backend), with the typed bodies of `hilt-api`. Every call says whether it may be
//! retried: network errors, 5xx and 429 may; 401/403 stop the agent; 409 `run_cancelled`
//! cancels the run; any other refusal is final for that call.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use hilt_api::{
    Ack, BenchSync, BenchSyncReply, CompleteRun, EventBatch, FENCING_TOKEN_HEADER, Heartbeat,
    HeartbeatReply, NextAssignment,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use ureq::http::Response;

/// Largest JSON answer read (an assignment carries the firmware as base64).
const MAX_ANSWER: u64 = 400 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// No connection, a broken transfer, a 5xx or 429: worth retrying.
    Retry(String),
    /// 401/403: the token is wrong, revoked, or bound to another machine.
    Auth { status: u16, message: String },
    /// 409 `run_cancelled`: a user cancelled the run.
    Cancelled(String),
    /// Any other 4xx: the server refuses this report (a lost lease, an unknown run).
    Refused { status: u16, message: String },
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Retry(m) => write!(f, "{m}"),
            CallError::Auth { status, message } => write!(
                f,
                "the server refused the agent token (HTTP {status}): {message}; check --token, HILT_AGENT_TOKEN or BENCHCI_AGENT_TOKEN (an agent token is bound to the first machine that used it)"
            ),
            CallError::Cancelled(m) => write!(f, "run cancelled: {m}"),
            CallError::Refused { status, message } => {
                write!(f, "the server refused the call (HTTP {status}): {message}")
            }
        }
    }
}

/// Who the agent is on every call.
#[derive(Debug, Clone)]
pub struct Identity {
    pub token: String,
    pub machine_id: String,
    pub machine_name: String,
}

pub struct Client {
    base: String,
    id: Identity,
    http: ureq::Agent,
    /// The assignment long-poll: its answer may take the server's whole wait.
    poll: ureq::Agent,
}

fn agent(read: Duration) -> ureq::Agent {
    hilt_hw::tls::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(10)))
        .timeout_per_read(Some(read))
        .timeout_per_write(Some(Duration::from_secs(60)))
        .user_agent(version())
        .build()
        .new_agent()
}

pub fn version() -> String {
    format!("hilt/{}", env!("CARGO_PKG_VERSION"))
}

impl Client {
    /// `base` is `http://host:port` or `https://host:port` (a trailing `/` is dropped).
    pub fn new(base: &str, id: Identity) -> Result<Client, String> {
        let base = base.trim().trim_end_matches('/').to_string();
        let scheme = ["http://", "https://"]
            .into_iter()
            .find(|s| base.starts_with(s));
        match scheme {
            Some(s) if base.len() > s.len() => {}
            _ => {
                return Err(format!(
                    "the server URL must look like http://host:port or https://host:port, got {base:?}"
                ));
            }
        }
        hilt_hw::tls::check_url(&base)?;
        Ok(Client {
            base,
            id,
            http: agent(Duration::from_secs(60)),
            poll: agent(Duration::from_secs(90)),
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        fence: Option<i64>,
    ) -> ureq::http::request::Builder {
        let mut rb = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {}", self.id.token))
            .header("Accept", "application/json")
            .header("X-BenchCI-Agent-Machine-ID", &self.id.machine_id)
            .header("X-BenchCI-Agent-Machine-Name", &self.id.machine_name)
            .header("X-BenchCI-Agent-Version", version());
        if let Some(f) = fence {
            rb = rb.header(FENCING_TOKEN_HEADER, f.to_string());
        }
        rb
    }

    fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        fence: Option<i64>,
        body: &B,
    ) -> Result<T, CallError> {
        let bytes = serde_json::to_vec(body).map_err(|e| CallError::Retry(e.to_string()))?;
        let req = self
            .request("POST", path, fence)
            .header("Content-Type", "application/json")
            .body(bytes)
            .map_err(|e| CallError::Retry(e.to_string()))?;
        let resp = self.http.run(req).map_err(|e| self.net(e))?;
        answer(resp)
    }

    fn net(&self, e: ureq::Error) -> CallError {
        CallError::Retry(format!(
            "cannot reach the server at {}: {}",
            self.base,
            hilt_hw::tls::describe(&e, &self.base)
        ))
    }

    pub fn heartbeat(&self, hb: &Heartbeat) -> Result<HeartbeatReply, CallError> {
        self.post("/v1/agents/heartbeat", None, hb)
    }

    pub fn sync(&self, s: &BenchSync) -> Result<BenchSyncReply, CallError> {
        self.post("/v1/agents/benches/sync", None, s)
    }

    /// The long-poll: `{"assignment": null}` after the server's wait.
    pub fn next(&self) -> Result<NextAssignment, CallError> {
        let req = self
            .request("GET", "/v1/agents/assignments/next", None)
            .body(())
            .map_err(|e| CallError::Retry(e.to_string()))?;
        let resp = self.poll.run(req).map_err(|e| self.net(e))?;
        answer(resp)
    }

    pub fn events(&self, run_id: &str, fence: i64, b: &EventBatch) -> Result<(), CallError> {
        self.post::<_, Ack>(&format!("/v1/agents/runs/{run_id}/events"), Some(fence), b)
            .map(|_| ())
    }

    pub fn complete(&self, run_id: &str, fence: i64, c: &CompleteRun) -> Result<(), CallError> {
        self.post::<_, Ack>(
            &format!("/v1/agents/runs/{run_id}/complete"),
            Some(fence),
            c,
        )
        .map(|_| ())
    }

    /// Uploads `zip` as the multipart part `artifact_zip`, streamed from the file.
    pub fn artifacts(&self, run_id: &str, fence: i64, zip: &Path) -> Result<(), CallError> {
        let file = std::fs::File::open(zip)
            .map_err(|e| CallError::Retry(format!("{}: {e}", zip.display())))?;
        let len = file
            .metadata()
            .map_err(|e| CallError::Retry(e.to_string()))?
            .len();
        let boundary = format!("hilt-{}", uuid::Uuid::new_v4().simple());
        let head = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"artifact_zip\"; filename=\"artifacts.zip\"\r\nContent-Type: application/zip\r\n\r\n"
        );
        let tail = format!("\r\n--{boundary}--\r\n");
        let total = head.len() as u64 + len + tail.len() as u64;
        let mut body = std::io::Cursor::new(head.into_bytes())
            .chain(file.take(len))
            .chain(std::io::Cursor::new(tail.into_bytes()));
        let req = self
            .request(
                "POST",
                &format!("/v1/agents/runs/{run_id}/artifacts"),
                Some(fence),
            )
            .header(
                "Content-Type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .header("Content-Length", total.to_string())
            .body(ureq::SendBody::from_reader(&mut body))
            .map_err(|e| CallError::Retry(e.to_string()))?;
        let resp = self.http.run(req).map_err(|e| self.net(e))?;
        answer::<Ack>(resp).map(|_| ())
    }
}

/// A 2xx answer decoded, or the error the status means.
fn answer<T: DeserializeOwned>(mut resp: Response<ureq::Body>) -> Result<T, CallError> {
    let status = resp.status().as_u16();
    let text = resp
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER)
        .read_to_string()
        .map_err(|e| CallError::Retry(format!("the server's answer broke off: {e}")))?;
    if (200..300).contains(&status) {
        return serde_json::from_str(&text).map_err(|e| {
            CallError::Retry(format!(
                "unexpected answer from the server ({e}): {}",
                snippet(&text)
            ))
        });
    }
    let (message, code) = error_text(&text);
    Err(match status {
        401 | 403 => CallError::Auth { status, message },
        409 if code.as_deref() == Some("run_cancelled") => CallError::Cancelled(message),
        408 | 429 | 500..=599 => CallError::Retry(format!("HTTP {status}: {message}")),
        _ => CallError::Refused { status, message },
    })
}

/// The error text (`error`, else `detail`) and the machine-readable `code` of an error
/// body; the raw text when it is not JSON.
fn error_text(text: &str) -> (String, Option<String>) {
    let v: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
    let msg = v["error"]
        .as_str()
        .or_else(|| v["detail"].as_str())
        .map(str::to_string)
        .unwrap_or_else(|| snippet(text));
    (msg, v["code"].as_str().map(str::to_string))
}

fn snippet(t: &str) -> String {
    let t = t.trim();
    match t.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &t[..i]),
        None => t.to_string(),
    }
}

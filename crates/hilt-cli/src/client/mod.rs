//! The agent client: a small synchronous HTTP client for the agent API (agent-api spec §3),
//! streamed request bodies (`body`), following a run's events (`events`) and fetching its
//! results (`results`). Works against a hilt agent and, where the hilt extensions are
//! missing, against a BenchCI agent.

pub mod body;
pub mod events;
pub mod results;

use std::fmt;
use std::io::Read;
use std::time::Duration;

use hilt_runner::classify::exit;
use serde_json::Value;
use ureq::http::Response;

/// An answer in the agent API's shape (hilt-api), or a protocol error saying what is off.
fn typed<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, ClientError> {
    serde_json::from_value(v.clone()).map_err(|e| {
        ClientError::Protocol(format!(
            "unexpected answer from the agent ({e}): {}",
            snippet(&v.to_string())
        ))
    })
}

/// Largest JSON answer read into memory (bench lists, run views, event lists).
const MAX_JSON: u64 = 64 * 1024 * 1024;

/// What went wrong talking to an agent; each maps to one exit code.
#[derive(Debug)]
pub enum ClientError {
    /// The URL is not something this client can talk to.
    BadUrl(String),
    /// No connection, a timeout, a broken transfer.
    Unreachable { url: String, reason: String },
    /// 401/403: wrong or missing token.
    Auth { status: u16, message: String },
    /// Any other non-2xx answer.
    Status { status: u16, message: String },
    /// A 2xx answer that is not what the API promises.
    Protocol(String),
    /// The agent closed the connection in the middle of an upload but is reachable: it
    /// refused a part that is too large (its 413 answer cannot be read at that point).
    UploadCut { len: u64 },
}

impl ClientError {
    /// Exit code of a command that ends on this error (README "Exit codes").
    pub fn exit_code(&self) -> i32 {
        match self {
            ClientError::BadUrl(_) | ClientError::Auth { .. } => exit::USAGE,
            ClientError::Status { status, .. } => match status {
                400 | 404 | 413 | 422 => exit::CONFIG_ERROR,
                _ => exit::BENCH_ERROR,
            },
            ClientError::UploadCut { .. } => exit::CONFIG_ERROR,
            ClientError::Unreachable { .. } | ClientError::Protocol(_) => exit::BENCH_ERROR,
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::BadUrl(m) => write!(f, "{m}"),
            ClientError::Unreachable { url, reason } => {
                write!(f, "cannot reach the agent at {url}: {reason}")
            }
            ClientError::Auth { status, message } => write!(
                f,
                "authentication failed: {message} (HTTP {status}; check --token, HILT_AGENT_TOKEN or BENCHCI_AGENT_TOKEN)"
            ),
            ClientError::Status { status, message } => {
                write!(
                    f,
                    "the agent refused the request (HTTP {status}): {message}"
                )
            }
            ClientError::Protocol(m) => write!(f, "unexpected answer from the agent: {m}"),
            ClientError::UploadCut { len } => write!(
                f,
                "the agent stopped reading the upload ({len} bytes) and closed the connection: a file most likely exceeds its upload limit"
            ),
        }
    }
}

impl std::error::Error for ClientError {}

/// A connection to one agent: base URL, optional bearer token, one HTTP agent (pooled
/// connections). Cheap to clone.
#[derive(Clone)]
pub struct AgentClient {
    base: String,
    token: Option<String>,
    http: ureq::Agent,
}

/// The token to use: the flag, else HILT_AGENT_TOKEN, else BENCHCI_AGENT_TOKEN; an empty
/// (or all-whitespace) one counts as unset, and the token sent is trimmed.
pub fn resolve_token(flag: Option<String>) -> Option<String> {
    let set = |t: String| Some(t.trim().to_string()).filter(|t| !t.is_empty());
    flag.and_then(set)
        .or_else(|| std::env::var("HILT_AGENT_TOKEN").ok().and_then(set))
        .or_else(|| std::env::var("BENCHCI_AGENT_TOKEN").ok().and_then(set))
}

impl AgentClient {
    /// `url` is `http://host:port` or `https://host:port` (a bare `host:port` gets
    /// `http://`); TLS is hilt-hw's `tls.rs`.
    pub fn new(url: &str, token: Option<String>) -> Result<AgentClient, ClientError> {
        let url = url.trim();
        let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
        if scheme != "http" && scheme != "https" {
            return Err(ClientError::BadUrl(format!(
                "{url}: the agent URL must start with http:// or https://"
            )));
        }
        let rest = rest.trim_end_matches('/');
        if rest.is_empty() {
            return Err(ClientError::BadUrl(
                "the agent URL is empty (expected http://host:port or https://host:port)".into(),
            ));
        }
        let base = format!("{scheme}://{rest}");
        hilt_hw::tls::check_url(&base).map_err(ClientError::BadUrl)?;
        let config = hilt_hw::tls::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            // Reads and writes that make no progress at all; the SSE stream has keep-alives
            // every 15 s, uploads and downloads may take as long as they need overall.
            .timeout_per_read(Some(Duration::from_secs(60)))
            .timeout_per_write(Some(Duration::from_secs(60)))
            .user_agent(format!("hilt/{}", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(AgentClient {
            base,
            token,
            http: config.new_agent(),
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A failed exchange; a certificate problem is named with its fix (hilt-hw `tls.rs`).
    fn unreachable(&self, e: ureq::Error) -> ClientError {
        ClientError::Unreachable {
            url: self.base.clone(),
            reason: hilt_hw::tls::describe(&e, &self.base),
        }
    }

    fn auth<B>(&self, rb: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.token {
            Some(t) => rb.header("Authorization", format!("Bearer {t}")),
            None => rb,
        }
    }

    /// A GET whose 2xx response is returned unread (streams, downloads). `Ok(None)` for 404
    /// when `missing_ok`.
    pub fn get_raw(
        &self,
        path: &str,
        accept: &str,
        missing_ok: bool,
    ) -> Result<Option<Response<ureq::Body>>, ClientError> {
        let resp = self
            .auth(self.http.get(self.url(path)))
            .header("Accept", accept)
            .call()
            .map_err(|e| self.unreachable(e))?;
        if missing_ok && resp.status().as_u16() == 404 {
            return Ok(None);
        }
        check(resp).map(Some)
    }

    /// GET a typed answer of the agent API.
    pub fn get_as<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let v = self.get_json(path)?;
        typed(v)
    }

    pub fn get_json(&self, path: &str) -> Result<Value, ClientError> {
        let resp = self
            .auth(self.http.get(self.url(path)))
            .header("Accept", "application/json")
            .call()
            .map_err(|e| self.unreachable(e))?;
        self.json(check(resp)?)
    }

    pub fn post_json(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        let bytes = serde_json::to_vec(body).map_err(|e| ClientError::Protocol(e.to_string()))?;
        let resp = self
            .auth(self.http.post(self.url(path)))
            .header("Accept", "application/json")
            .header("Content-Type", "application/json")
            .send(&bytes[..])
            .map_err(|e| self.unreachable(e))?;
        self.json(check(resp)?)
    }

    /// POSTs a body of known length read from `body` (never held in memory as a whole).
    pub fn post_stream(
        &self,
        path: &str,
        content_type: &str,
        len: u64,
        body: &mut dyn Read,
    ) -> Result<Value, ClientError> {
        let resp = self
            .auth(self.http.post(self.url(path)))
            .header("Accept", "application/json")
            .header("Content-Type", content_type)
            .header("Content-Length", len.to_string())
            // A refusal that needs no body (auth, a draining agent) arrives before the
            // upload is sent.
            .header("Expect", "100-continue")
            .send(ureq::SendBody::from_reader(body))
            .map_err(|e| self.upload_error(e, len))?;
        self.json(check(resp)?)
    }

    /// An upload that broke off. An agent that refuses a too-large part answers 413 and
    /// closes the connection while the body is still being sent, so the answer cannot be
    /// read; when the agent is otherwise reachable, that is what happened.
    fn upload_error(&self, e: ureq::Error, len: u64) -> ClientError {
        let broken = matches!(&e, ureq::Error::Io(io) if matches!(
            io.kind(),
            std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
        ));
        if broken && self.get_json("/health").is_ok() {
            return ClientError::UploadCut { len };
        }
        self.unreachable(e)
    }

    /// POSTs a streamed body and reads a typed answer.
    pub fn post_stream_as<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        content_type: &str,
        len: u64,
        body: &mut dyn Read,
    ) -> Result<T, ClientError> {
        typed(self.post_stream(path, content_type, len, body)?)
    }

    fn json(&self, mut resp: Response<ureq::Body>) -> Result<Value, ClientError> {
        let text = resp
            .body_mut()
            .with_config()
            .limit(MAX_JSON)
            .read_to_string()
            .map_err(|e| self.unreachable(e))?;
        serde_json::from_str(&text)
            .map_err(|e| ClientError::Protocol(format!("not JSON ({e}): {}", snippet(&text))))
    }
}

/// Passes 2xx through; turns anything else into the matching error with the server's text.
fn check(mut resp: Response<ureq::Body>) -> Result<Response<ureq::Body>, ClientError> {
    let status = resp.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(resp);
    }
    let text = resp
        .body_mut()
        .with_config()
        .limit(64 * 1024)
        .lossy_utf8(true)
        .read_to_string()
        .unwrap_or_default();
    let message = server_message(&text).unwrap_or_else(|| {
        resp.status()
            .canonical_reason()
            .unwrap_or("error")
            .to_string()
    });
    Err(match status {
        401 | 403 => ClientError::Auth { status, message },
        _ => ClientError::Status { status, message },
    })
}

/// The text of an error body: `error`, or `detail` (a string or FastAPI's list of
/// `{loc, msg}`), or the raw body.
pub fn server_message(body: &str) -> Option<String> {
    let body = body.trim();
    if body.is_empty() {
        return None;
    }
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        return Some(snippet(body));
    };
    if let Some(s) = v.get("error").and_then(Value::as_str) {
        return Some(s.to_string());
    }
    match v.get("detail") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|i| {
                    let loc = i["loc"]
                        .as_array()
                        .map(|l| {
                            l.iter()
                                .map(|p| match p {
                                    Value::String(s) => s.clone(),
                                    other => other.to_string(),
                                })
                                .collect::<Vec<_>>()
                                .join(".")
                        })
                        .unwrap_or_default();
                    let msg = i["msg"].as_str().unwrap_or("invalid");
                    if loc.is_empty() {
                        msg.to_string()
                    } else {
                        format!("{loc}: {msg}")
                    }
                })
                .collect::<Vec<_>>()
                .join("; "),
        ),
        Some(other) if !other.is_null() => Some(other.to_string()),
        _ => Some(snippet(body)),
    }
}

fn snippet(s: &str) -> String {
    let s = s.trim();
    if s.chars().count() > 300 {
        format!("{}…", s.chars().take(300).collect::<String>())
    } else {
        s.to_string()
    }
}

/// Percent-encodes one path segment (run and bench ids are plain, but be safe).
pub fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_from_both_error_shapes() {
        assert_eq!(
            server_message(r#"{"error": "bench not found"}"#).as_deref(),
            Some("bench not found")
        );
        assert_eq!(
            server_message(r#"{"detail": "Invalid token"}"#).as_deref(),
            Some("Invalid token")
        );
        assert_eq!(
            server_message(
                r#"{"detail": [{"loc": ["body", "bench_id"], "msg": "field required"}]}"#
            )
            .as_deref(),
            Some("body.bench_id: field required")
        );
        assert_eq!(server_message("oops").as_deref(), Some("oops"));
        assert_eq!(server_message(""), None);
    }

    #[test]
    fn urls() {
        assert_eq!(
            AgentClient::new("127.0.0.1:8080/", None).unwrap().base(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            AgentClient::new("https://x:8443/", None).unwrap().base(),
            "https://x:8443"
        );
        assert!(matches!(
            AgentClient::new("ftp://x", None),
            Err(ClientError::BadUrl(_))
        ));
        assert!(matches!(
            AgentClient::new("https://", None),
            Err(ClientError::BadUrl(_))
        ));
        assert_eq!(segment("a b/c"), "a%20b%2Fc");
    }

    #[test]
    fn exit_codes() {
        let s = |status| ClientError::Status {
            status,
            message: String::new(),
        };
        assert_eq!(s(400).exit_code(), 3);
        assert_eq!(s(413).exit_code(), 3);
        assert_eq!(s(503).exit_code(), 4);
        assert_eq!(
            ClientError::Auth {
                status: 403,
                message: String::new()
            }
            .exit_code(),
            2
        );
    }
}

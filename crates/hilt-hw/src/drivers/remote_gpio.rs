//! `remote_gpio`: lines of a GPIO chip on another host, through that host's agent
//! (`/v1/gpio/*`, agent-api §3.11) over plain `http://<host>:<port>`.
//!
//! Opening checks the agent (`GET /health`), starts one session with the node's lines
//! (`session/start`) and sets the outputs to their logical-inactive level; `set`/`get` are
//! one request each; dropping the lines stops the session. The bearer token comes from
//! the environment variable named by `token_env` (unset or empty: a configuration error at
//! the field). Every request times out after `timeout_ms/1000 + 2` s (2 s for all but
//! `wait_edge`, which the runner sends in slices of at most 500 ms so a cancel is seen; `gpio_expect` samples `get`). A node uses one
//! (host, port, token_env, chip); each line number appears once.

use std::collections::BTreeMap;
use std::time::Duration;

use hilt_api::{
    GpioChannel, GpioGet, GpioLevel, GpioLineConfig, GpioSet, GpioStart, GpioStop, GpioWaitEdge,
};
use hilt_model::bench::{Direction, Edge, GpioBackend, GpioLine};

use super::local_gpio::{NoLines, inactive_level, line_requests};
use super::{GpioDriver, Problem};
use crate::gpio::NodeLines;
use crate::gpiochip::{ChipError, ChipLines, Transition};
use crate::locks::LockSpec;
use crate::{HwError, ResourceKind};

pub struct RemoteGpio;

/// The chip when the line names none.
pub const DEFAULT_CHIP: &str = "/dev/gpiochip0";

/// Longest answer body read.
const MAX_BODY: u64 = 64 * 1024;

/// The HTTP timeout for a call that waits up to `timeout_ms` on the agent (agent-api §3.11).
pub fn call_timeout(timeout_ms: u64) -> Duration {
    Duration::from_secs(timeout_ms / 1000 + 2)
}

/// Where a remote line lives.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target<'a> {
    host: &'a str,
    port: u32,
    token_env: &'a str,
    chip: &'a str,
}

fn target(line: &GpioLine) -> Option<(Target<'_>, Option<u32>)> {
    match &line.backend {
        GpioBackend::RemoteGpio {
            host,
            port,
            token_env,
            chip,
            line,
        } => Some((
            Target {
                host,
                port: *port,
                token_env,
                chip: chip.as_deref().unwrap_or(DEFAULT_CHIP),
            },
            *line,
        )),
        GpioBackend::MockGpio { .. } | GpioBackend::LocalGpio { .. } => None,
    }
}

/// The token from the variable `name`, or why not.
fn token(name: &str) -> Result<String, String> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Ok(v.trim().to_string()),
        Ok(_) => Err(format!(
            "environment variable `{name}` (named by token_env) is empty"
        )),
        Err(_) => Err(format!(
            "environment variable `{name}` (named by token_env) is not set"
        )),
    }
}

impl GpioDriver for RemoteGpio {
    fn tag(&self) -> &'static str {
        "remote_gpio"
    }

    fn check(&self, line: &GpioLine) -> Vec<Problem> {
        let Some((t, n)) = target(line) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if t.host.trim().is_empty() {
            out.push(Problem::new("host", "must name the agent's host"));
        }
        if !(1..=65535).contains(&t.port) {
            out.push(Problem::new("port", "must be 1..65535"));
        }
        if n.is_none() {
            out.push(Problem::new(
                "",
                "remote_gpio needs `line` (the line number on the remote chip)",
            ));
        }
        if t.token_env.trim().is_empty() {
            out.push(Problem::new(
                "token_env",
                "must name an environment variable",
            ));
        } else if let Err(e) = token(t.token_env) {
            out.push(
                Problem::new("token_env", e)
                    .with_help(format!("export {}=<the remote agent's token>", t.token_env)),
            );
        }
        out
    }

    fn lock_spec(&self, node: &str, name: &str, line: &GpioLine) -> LockSpec {
        let (t, n) = target(line).unwrap_or((
            Target {
                host: "",
                port: 0,
                token_env: "",
                chip: "",
            },
            None,
        ));
        let n = n.unwrap_or_default();
        LockSpec::new(
            format!("gpio:remote:{}:{}:{}:{n}", t.host, t.port, t.chip),
            format!("{}:{} {} line {n}", t.host, t.port, t.chip),
            "gpio_line",
        )
        .with_detail("node", node.to_string())
        .with_detail("line", name.to_string())
        .with_detail("backend", "remote_gpio")
        .with_detail("host", t.host.to_string())
        .with_detail("port", t.port.to_string())
        .with_detail("chip", t.chip.to_string())
        .with_detail("offset", n.to_string())
    }

    fn open(
        &self,
        node: &str,
        lines: &BTreeMap<String, GpioLine>,
        drive_outputs: bool,
    ) -> Result<NodeLines, HwError> {
        let fail = |reason: String| {
            HwError::open(
                ResourceKind::Gpio,
                "remote GPIO lines of node",
                node,
                reason,
            )
        };
        let mut targets: Vec<Target<'_>> = Vec::new();
        let mut numbered = Vec::new();
        for (name, line) in lines {
            let Some((t, n)) = target(line) else {
                return Err(fail(format!(
                    "line `{name}` uses backend `{}`; a node uses one backend",
                    line.backend.name()
                )));
            };
            let n = n.ok_or_else(|| fail(format!("line `{name}` has no `line` number")))?;
            if !targets.contains(&t) {
                targets.push(t);
            }
            // The self-test drives nothing: it requests only the inputs.
            if drive_outputs || line.direction == Direction::Input {
                numbered.push((name, n, line));
            }
        }
        let t = match targets.as_slice() {
            [one] => one.clone(),
            [] => return Err(fail("the node has no GPIO lines".into())),
            _ => {
                let list: Vec<String> = targets
                    .iter()
                    .map(|t| format!("{}:{} {} ({})", t.host, t.port, t.chip, t.token_env))
                    .collect();
                return Err(fail(format!(
                    "the node's remote_gpio lines use several (host, port, token_env, chip): {}; \
                     a node uses one",
                    list.join(", ")
                )));
            }
        };
        let (requests, offsets) = line_requests(node, numbered.into_iter()).map_err(fail)?;
        let token = token(t.token_env).map_err(fail)?;
        let client = Client::new(t.host, t.port, t.token_env, token);
        client.health().map_err(fail)?;
        if requests.is_empty() {
            // A self-test of a node with only outputs: the agent answers, nothing to take.
            let label = format!("{} {}", client.addr, t.chip);
            return Ok(NodeLines::new(label, Box::new(NoLines), offsets));
        }
        let start = GpioStart {
            chip: t.chip.to_string(),
            lines: requests
                .iter()
                .map(|r| {
                    (
                        r.line.to_string(),
                        GpioLineConfig {
                            direction: r.direction,
                            bias: r.bias,
                            edge: r.edge,
                        },
                    )
                })
                .collect(),
        };
        let answer = client
            .post("/v1/gpio/session/start", &start, None)
            .map_err(fail)?;
        let session_id = answer
            .get("session_id")
            .and_then(|v| v.as_str())
            .ok_or_else(|| {
                fail(format!(
                    "the agent at {} answered session/start without a session_id",
                    client.addr
                ))
            })?
            .to_string();
        let mut handle = RemoteLines {
            client,
            chip: t.chip.to_string(),
            session_id,
        };
        for (name, line) in lines {
            if line.direction == Direction::Output
                && let Some(n) = offsets.get(name)
            {
                handle
                    .set(*n, inactive_level(line))
                    .map_err(|e| fail(e.to_string()))?;
            }
        }
        let label = format!("{} {}", handle.client.addr, t.chip);
        Ok(NodeLines::new(label, Box::new(handle), offsets))
    }
}

/// The HTTP side: one agent, one token.
struct Client {
    http: ureq::Agent,
    /// `host:port`, as errors name it.
    addr: String,
    token_env: String,
    token: String,
}

impl Client {
    fn new(host: &str, port: u32, token_env: &str, token: String) -> Client {
        let http: ureq::Agent = crate::tls::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(call_timeout(0)))
            .build()
            .into();
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.to_string()
        };
        Client {
            http,
            addr: format!("{host}:{port}"),
            token_env: token_env.to_string(),
            token,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `GET /health`: is the agent there at all.
    fn health(&self) -> Result<(), String> {
        let resp = self
            .http
            .get(self.url("/health"))
            .header("Authorization", format!("Bearer {}", self.token))
            .call();
        self.answer("/health", resp, None).map(|_| ())
    }

    /// POSTs `body` as JSON; the answer as JSON, or a message naming the agent.
    fn post(
        &self,
        path: &str,
        body: &impl serde::Serialize,
        session: Option<&str>,
    ) -> Result<serde_json::Value, String> {
        self.post_waiting(path, body, session, 0)
    }

    /// [`Client::post`] for a call that waits up to `timeout_ms` on the agent.
    fn post_waiting(
        &self,
        path: &str,
        body: &impl serde::Serialize,
        session: Option<&str>,
        timeout_ms: u64,
    ) -> Result<serde_json::Value, String> {
        let text = serde_json::to_string(body).map_err(|e| e.to_string())?;
        let resp = self
            .http
            .post(self.url(path))
            .config()
            .timeout_global(Some(call_timeout(timeout_ms)))
            .build()
            .header("Authorization", format!("Bearer {}", self.token))
            .content_type("application/json")
            .send(text.as_str());
        self.answer(path, resp, session)
    }

    fn answer(
        &self,
        path: &str,
        resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
        session: Option<&str>,
    ) -> Result<serde_json::Value, String> {
        let addr = &self.addr;
        let mut resp = resp.map_err(|e| {
            format!("the remote GPIO agent at {addr} is not reachable ({path}): {e}")
        })?;
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_string()
            .map_err(|e| format!("reading the answer of the agent at {addr} to {path}: {e}"))?;
        let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let detail = json
            .get("detail")
            .or_else(|| json.get("error"))
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| {
                let t = body.trim();
                t[..t.floor_char_boundary(200)].to_string()
            });
        match status {
            200..=299 => Ok(json),
            401 | 403 => Err(format!(
                "the remote GPIO agent at {addr} refused the token from `{}` (HTTP {status} on \
                 {path}): {detail}",
                self.token_env
            )),
            404 => Err(match session {
                Some(id) => format!(
                    "the remote GPIO agent at {addr} no longer has session {id} (HTTP 404 on \
                     {path}; it restarted or closed the session): {detail}"
                ),
                None => format!(
                    "the agent at {addr} has no {path} (HTTP 404): is it a hilt agent? {detail}"
                ),
            }),
            _ => Err(format!(
                "the remote GPIO agent at {addr} answered HTTP {status} to {path}: {detail}"
            )),
        }
    }
}

/// A session's lines on the remote agent; dropping stops the session.
struct RemoteLines {
    client: Client,
    chip: String,
    session_id: String,
}

impl RemoteLines {
    fn io(&self, reason: String) -> ChipError {
        ChipError::Io {
            chip: format!("{} on {}", self.chip, self.client.addr),
            reason,
        }
    }
}

impl ChipLines for RemoteLines {
    fn set(&mut self, line: u32, level: bool) -> Result<(), ChipError> {
        let body = GpioSet {
            session_id: self.session_id.clone(),
            channel: GpioChannel::Number(line.into()),
            value: GpioLevel::Bool(level),
        };
        self.client
            .post("/v1/gpio/set", &body, Some(&self.session_id))
            .map(|_| ())
            .map_err(|e| self.io(e))
    }

    fn get(&mut self, line: u32) -> Result<bool, ChipError> {
        let body = GpioGet {
            session_id: self.session_id.clone(),
            channel: GpioChannel::Number(line.into()),
        };
        let answer = self
            .client
            .post("/v1/gpio/get", &body, Some(&self.session_id))
            .map_err(|e| self.io(e))?;
        answer
            .get("value")
            .and_then(|v| v.as_bool())
            .ok_or_else(|| self.io(format!("get answered without a boolean value: {answer}")))
    }

    fn read_edges(&mut self, _line: u32) -> Result<Option<Vec<Transition>>, ChipError> {
        Ok(None)
    }

    fn wait_edge(
        &mut self,
        line: u32,
        edge: Edge,
        timeout: Duration,
    ) -> Result<Option<bool>, ChipError> {
        let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        let body = GpioWaitEdge {
            session_id: self.session_id.clone(),
            channel: GpioChannel::Number(line.into()),
            edge,
            timeout_ms,
        };
        let answer = self
            .client
            .post_waiting(
                "/v1/gpio/wait_edge",
                &body,
                Some(&self.session_id),
                timeout_ms,
            )
            .map_err(|e| self.io(e))?;
        answer
            .get("matched")
            .and_then(|v| v.as_bool())
            .map(Some)
            .ok_or_else(|| self.io(format!("wait_edge answered without `matched`: {answer}")))
    }
}

impl Drop for RemoteLines {
    fn drop(&mut self) {
        let body = GpioStop {
            session_id: self.session_id.clone(),
        };
        // Best effort: the agent also expires idle sessions.
        let _ = self
            .client
            .post("/v1/gpio/session/stop", &body, Some(&self.session_id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(token_env: &str, n: Option<u32>) -> GpioLine {
        GpioLine {
            backend: GpioBackend::RemoteGpio {
                host: "127.0.0.1".into(),
                port: 8090,
                token_env: token_env.into(),
                chip: None,
                line: n,
            },
            direction: Direction::Output,
            active_high: true,
            bias: None,
            edge: None,
        }
    }

    #[test]
    fn checks_name_the_field() {
        let p = RemoteGpio.check(&line("HILT_UNIT_REMOTE_GPIO_UNSET", Some(1)));
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].field, "token_env");
        assert!(
            p[0].message.contains("`HILT_UNIT_REMOTE_GPIO_UNSET`"),
            "{}",
            p[0].message
        );
        assert!(p[0].message.contains("not set"));
        let p = RemoteGpio.check(&line("PATH", None));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].message.contains("needs `line`"));
    }

    #[test]
    fn lock_key_follows_the_locks_spec() {
        let spec = RemoteGpio.lock_spec("n", "led", &line("T", Some(17)));
        assert_eq!(spec.key, "gpio:remote:127.0.0.1:8090:/dev/gpiochip0:17");
        assert_eq!(spec.category, "gpio_line");
    }

    #[test]
    fn timeouts_follow_the_spec() {
        assert_eq!(call_timeout(0), Duration::from_secs(2));
        assert_eq!(call_timeout(2500), Duration::from_secs(4));
    }

    #[test]
    fn node_restrictions() {
        let two = BTreeMap::from([
            ("a".to_string(), line("PATH", Some(1))),
            ("b".to_string(), {
                let mut l = line("PATH", Some(2));
                if let GpioBackend::RemoteGpio { port, .. } = &mut l.backend {
                    *port = 8091;
                }
                l
            }),
        ]);
        let e = RemoteGpio.open("n", &two, true).err().unwrap().to_string();
        assert!(e.contains("several (host, port, token_env, chip)"), "{e}");
        let dup = BTreeMap::from([
            ("a".to_string(), line("PATH", Some(1))),
            ("b".to_string(), line("PATH", Some(1))),
        ]);
        let e = RemoteGpio.open("n", &dup, true).err().unwrap().to_string();
        assert!(e.contains("both use line number 1"), "{e}");
    }

    #[test]
    fn an_agent_that_is_down_is_named() {
        // A port nothing listens on: bind, read the port, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut l = line("PATH", Some(1));
        if let GpioBackend::RemoteGpio { port: p, .. } = &mut l.backend {
            *p = port.into();
        }
        let lines = BTreeMap::from([("a".to_string(), l)]);
        let e = RemoteGpio
            .open("n", &lines, true)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains(&format!(
                "remote GPIO agent at 127.0.0.1:{port} is not reachable"
            )),
            "{e}"
        );
    }
}

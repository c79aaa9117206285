//! A simulated HTTP relay board, for the `http_relay` power driver.
//!
//! It behaves like a cheap network relay: every request takes `latency_ms`, each channel
//! keeps its own state, and it fails on demand. Routes (any method unless noted):
//!
//! - `/relay/<ch>/on`, `/relay/<ch>/off`, `/relay/<ch>/set/<v>` (`v` = `1`/`0`/`true`/
//!   `false`): switch channel `<ch>`; answer `200 ok`.
//! - `GET /relay/<ch>`: readback, `{"state": "on"}` or `{"state": "off"}`.
//! - `/sim/fail/<n>[/<status>]`: the next `n` relay requests answer `<status>` (503).
//! - `GET /sim/state`: every channel, `{"1": "on", …}`.
//!
//! With `require_header` set, relay requests without that exact header answer 401. Every
//! relay request is recorded ([`HttpRelaySim::requests`]) so tests can check the exact
//! request shapes a driver sends.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// Longest request head accepted.
const MAX_HEAD: usize = 16 * 1024;
/// Longest request body read (and ignored).
const MAX_BODY: usize = 64 * 1024;
/// A client that sends nothing for this long is dropped.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Default)]
pub struct HttpRelayConfig {
    /// Delay before each answer, in ms.
    pub latency_ms: u64,
    /// `(name, value)` every relay request must carry, else 401.
    pub require_header: Option<(String, String)>,
}

/// One relay request as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// Header names lower-cased.
    pub headers: BTreeMap<String, String>,
}

#[derive(Default)]
struct State {
    channels: BTreeMap<String, bool>,
    fail: Option<(u32, u16)>,
    requests: Vec<RecordedRequest>,
}

/// A running simulated relay; stops when dropped.
pub struct HttpRelaySim {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HttpRelaySim {
    /// Listens on `bind` (`127.0.0.1:0` for any free port).
    pub fn start(bind: &str, cfg: HttpRelayConfig) -> io::Result<HttpRelaySim> {
        let listener = TcpListener::bind(bind)?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        let cfg = Arc::new(cfg);
        let thread = std::thread::Builder::new()
            .name("http-relay-sim".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if sp.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let (st, cfg) = (st.clone(), cfg.clone());
                    let _ = std::thread::Builder::new()
                        .name("http-relay-conn".into())
                        .spawn(move || {
                            let _ = serve(conn, &st, &cfg);
                        });
                }
            })?;
        Ok(HttpRelaySim {
            addr,
            state,
            stop,
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The state of a channel; `None` before it was first switched.
    pub fn channel(&self, ch: &str) -> Option<bool> {
        lock(&self.state).channels.get(ch).copied()
    }

    /// The next `n` relay requests answer `status`.
    pub fn fail_next(&self, n: u32, status: u16) {
        lock(&self.state).fail = Some((n, status));
    }

    /// Every relay request so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state).requests.clone()
    }

    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for HttpRelaySim {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn lock(s: &Mutex<State>) -> MutexGuard<'_, State> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

struct Request {
    method: String,
    path: String,
    headers: BTreeMap<String, String>,
}

fn read_request(conn: &TcpStream) -> io::Result<Option<Request>> {
    conn.set_read_timeout(Some(READ_TIMEOUT))?;
    let mut r = BufReader::new(conn.take((MAX_HEAD + MAX_BODY) as u64));
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
        return Err(io::Error::other("bad request line"));
    };
    let (method, path) = (method.to_string(), path.to_string());
    let mut headers = BTreeMap::new();
    let mut head = line.len();
    loop {
        line.clear();
        let n = r.read_line(&mut line)?;
        head += n;
        if n == 0 || head > MAX_HEAD {
            return Err(io::Error::other("request head too long or cut short"));
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len.min(MAX_BODY)];
    r.read_exact(&mut body)?;
    Ok(Some(Request {
        method,
        path,
        headers,
    }))
}

fn serve(mut conn: TcpStream, state: &Mutex<State>, cfg: &HttpRelayConfig) -> io::Result<()> {
    let Some(req) = read_request(&conn)? else {
        return Ok(());
    };
    if cfg.latency_ms > 0 {
        std::thread::sleep(Duration::from_millis(cfg.latency_ms));
    }
    let (status, body) = answer(&req, state, cfg);
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        _ => "Error",
    };
    let content_type = if body.starts_with('{') {
        "application/json"
    } else {
        "text/plain"
    };
    write!(
        conn,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    conn.flush()
}

fn answer(req: &Request, state: &Mutex<State>, cfg: &HttpRelayConfig) -> (u16, String) {
    let path = req.path.split('?').next().unwrap_or("");
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let mut st = lock(state);
    match segs.as_slice() {
        ["sim", "fail", n, rest @ ..] => {
            let (Ok(n), Some(Ok(status))) = (
                n.parse::<u32>(),
                rest.first().map(|s| s.parse::<u16>()).or(Some(Ok(503))),
            ) else {
                return (400, "bad fail request".into());
            };
            st.fail = Some((n, status));
            (200, "ok".into())
        }
        ["sim", "state"] => {
            let m: serde_json::Map<String, serde_json::Value> = st
                .channels
                .iter()
                .map(|(k, v)| (k.clone(), on_off(*v).into()))
                .collect();
            (200, serde_json::Value::Object(m).to_string())
        }
        ["relay", ch, action @ ..] => {
            st.requests.push(RecordedRequest {
                method: req.method.clone(),
                path: req.path.clone(),
                headers: req.headers.clone(),
            });
            if let Some((name, value)) = &cfg.require_header
                && req.headers.get(&name.to_ascii_lowercase()) != Some(value)
            {
                return (401, format!("missing header {name}"));
            }
            if let Some((n, status)) = st.fail
                && n > 0
            {
                st.fail = (n > 1).then_some((n - 1, status));
                return (status, "relay fault (simulated)".into());
            }
            let ch = ch.to_string();
            let set = match action {
                [] if req.method == "GET" => {
                    let s = st.channels.get(&ch).copied().unwrap_or(false);
                    return (200, format!("{{\"state\": \"{}\"}}", on_off(s)));
                }
                ["on"] => Some(true),
                ["off"] => Some(false),
                ["set", "1" | "true"] => Some(true),
                ["set", "0" | "false"] => Some(false),
                _ => None,
            };
            match set {
                Some(on) => {
                    st.channels.insert(ch, on);
                    (200, "ok".into())
                }
                None => (404, format!("no route {}", req.path)),
            }
        }
        _ => (404, format!("no route {}", req.path)),
    }
}

fn on_off(v: bool) -> &'static str {
    if v { "on" } else { "off" }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
        let mut c = TcpStream::connect(addr).unwrap();
        write!(
            c,
            "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
        )
        .unwrap();
        let mut s = String::new();
        c.read_to_string(&mut s).unwrap();
        let status = s[9..12].parse().unwrap();
        let body = s.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
        (status, body)
    }

    #[test]
    fn channels_switch_read_back_and_fail_on_demand() {
        let sim = HttpRelaySim::start("127.0.0.1:0", HttpRelayConfig::default()).unwrap();
        let a = sim.addr();
        assert_eq!(get(a, "GET", "/relay/2").1, r#"{"state": "off"}"#);
        assert_eq!(get(a, "POST", "/relay/2/on").0, 200);
        assert_eq!(sim.channel("2"), Some(true));
        assert_eq!(sim.channel("3"), None, "channels are independent");
        assert_eq!(get(a, "GET", "/relay/2").1, r#"{"state": "on"}"#);
        assert_eq!(get(a, "PUT", "/relay/2/set/0").0, 200);
        assert_eq!(sim.channel("2"), Some(false));
        assert_eq!(get(a, "GET", "/sim/fail/2/500").0, 200);
        assert_eq!(get(a, "GET", "/relay/2/on").0, 500);
        assert_eq!(get(a, "GET", "/relay/2/on").0, 500);
        assert_eq!(get(a, "GET", "/relay/2/on").0, 200);
        assert_eq!(get(a, "GET", "/relay/2/bogus").0, 404);
        assert_eq!(get(a, "GET", "/sim/state").1, r#"{"2":"on"}"#);
        let r = sim.requests();
        assert_eq!(
            (r[1].method.as_str(), r[1].path.as_str()),
            ("POST", "/relay/2/on")
        );
        sim.stop();
    }

    #[test]
    fn required_header_is_enforced() {
        let cfg = HttpRelayConfig {
            require_header: Some(("X-Token".into(), "s3cret".into())),
            ..HttpRelayConfig::default()
        };
        let sim = HttpRelaySim::start("127.0.0.1:0", cfg).unwrap();
        assert_eq!(get(sim.addr(), "GET", "/relay/1/on").0, 401);
        assert_eq!(sim.channel("1"), None);
    }
}

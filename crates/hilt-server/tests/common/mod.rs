//! The real server in-process on 127.0.0.1:0 (its own runtime thread) and a blocking HTTP
//! client speaking as a user, an admin or a cloud agent.

#![allow(dead_code)]

pub mod moto;
mod postgres;

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};

pub const BOOT: &str = "boot-secret";

/// The smallest valid suite.
pub const SUITE: &str = "version: 1\nsuite: {name: s}\ntests: []\n";

/// The database a scenario runs on: the same scenarios run on every backend.
#[derive(Clone)]
pub enum Db {
    Sqlite,
    Postgres(String),
}

impl Db {
    /// A fresh PostgreSQL database, or `None` when the backend is skipped.
    pub fn postgres() -> Option<Db> {
        postgres::fresh_database().map(Db::Postgres)
    }
}

/// One `#[test]` per scenario and backend: `sqlite::NAME` and `postgres::NAME` call
/// `NAME(db)`.
#[macro_export]
macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { super::$name($crate::common::Db::Sqlite) } )*
        }
        mod postgres {
            $( #[test] fn $name() {
                if let Some(db) = $crate::common::Db::postgres() { super::$name(db) }
            } )*
        }
    };
}

pub struct Server {
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    pub fn start(db: &Db, tune: impl FnOnce(&mut hilt_server::ServerSettings)) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = hilt_server::ServerSettings::new(dir.path().join("data"));
        if let Db::Postgres(url) = db {
            settings.database = Some(url.clone());
        }
        settings.bootstrap_token = Some(BOOT.into());
        settings.long_poll = Duration::from_millis(300);
        tune(&mut settings);
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(l.local_addr().unwrap()).unwrap();
                hilt_server::serve(l, settings, async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
            });
        });
        let addr = addr_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        let s = Server {
            addr,
            dir,
            stop: Some(stop),
            thread: Some(thread),
        };
        for _ in 0..200 {
            if s.call("GET", "/health", None, &[], None).status == 200 {
                return s;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("the server did not answer /health");
    }

    /// One request; `token` as a bearer token, extra headers, a JSON or raw body.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<(&str, Vec<u8>)>,
    ) -> Resp {
        self.try_call(method, path, token, headers, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// [`Server::call`], or the transport error (a server refusing a large body may close
    /// the connection while it is still being sent).
    pub fn try_call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Resp, ureq::Error> {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .new_agent();
        let url = format!("http://{}{path}", self.addr);
        let mut req = ureq::http::Request::builder().method(method).uri(&url);
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = match body {
            Some((ct, bytes)) => agent.run(req.header("Content-Type", ct).body(bytes).unwrap()),
            None => agent.run(req.body(()).unwrap()),
        };
        let mut resp = resp?;
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        Ok(Resp {
            status,
            content_type,
            text,
        })
    }

    pub fn user(&self, token: &str, method: &str, path: &str, body: Option<Value>) -> Resp {
        let body = body.map(|b| ("application/json", b.to_string().into_bytes()));
        self.call(method, path, Some(token), &[], body)
    }

    pub fn agent(
        &self,
        token: &str,
        machine: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Resp {
        let body = body.map(|b| ("application/json", b.to_string().into_bytes()));
        self.call(
            method,
            path,
            Some(token),
            &[("X-BenchCI-Agent-Machine-ID", machine)],
            body,
        )
    }

    pub fn token(&self, admin: &str, workspace: &str, kind: &str) -> (String, String) {
        let r = self.user(
            admin,
            "POST",
            "/v1/tokens",
            Some(json!({"workspace": workspace, "kind": kind})),
        );
        assert_eq!(r.status, 201, "{}", r.text);
        let v = r.json();
        (
            v["id"].as_str().unwrap().to_string(),
            v["token"].as_str().unwrap().to_string(),
        )
    }

    pub fn workspace(&self, name: &str) {
        let r = self.user(
            BOOT,
            "POST",
            "/v1/workspaces",
            Some(json!({ "name": name })),
        );
        assert_eq!(r.status, 201, "{}", r.text);
    }

    /// Agent `token` on `machine` reports one healthy bench; returns the id it got.
    pub fn sync(&self, token: &str, machine: &str, bench: &str, health: &str) -> String {
        let r = self.agent(
            token,
            machine,
            "POST",
            "/v1/agents/benches/sync",
            Some(
                json!({"benches": [{"bench_id": bench, "name": bench, "status": "idle",
                "health_status": health, "capabilities": {"transports": ["uart"]}}]}),
            ),
        );
        assert_eq!(r.status, 200, "{}", r.text);
        r.json()["bench_id_mappings"][0]["bench_id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Agent `token` on `machine` reports these bench summaries; returns the ids they got.
    pub fn sync_all(&self, token: &str, machine: &str, benches: Value) -> Vec<String> {
        let r = self.agent(
            token,
            machine,
            "POST",
            "/v1/agents/benches/sync",
            Some(json!({ "benches": benches })),
        );
        assert_eq!(r.status, 200, "{}", r.text);
        r.json()["bench_id_mappings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["bench_id"].as_str().unwrap().to_string())
            .collect()
    }

    /// Submits `body` (a suite is added when missing); returns the run as the server shows it.
    pub fn submit_json(&self, token: &str, mut body: Value) -> Value {
        if body.get("suite_yaml").is_none() {
            body["suite_yaml"] = json!(SUITE);
        }
        let r = self.user(token, "POST", "/v1/runs", Some(body));
        assert_eq!(r.status, 201, "{}", r.text);
        r.json()
    }

    /// The next assignment of agent `token` on `machine` (its run id), if any.
    pub fn next(&self, token: &str, machine: &str) -> Option<String> {
        let r = self.agent(token, machine, "GET", "/v1/agents/assignments/next", None);
        assert_eq!(r.status, 200, "{}", r.text);
        r.json()["assignment"]["run_id"]
            .as_str()
            .map(str::to_string)
    }

    pub fn run(&self, token: &str, run: &str) -> Value {
        let r = self.user(token, "GET", &format!("/v1/runs/{run}"), None);
        assert_eq!(r.status, 200, "{}", r.text);
        r.json()
    }

    pub fn submit(&self, token: &str, bench: &str) -> String {
        let r = self.user(
            token,
            "POST",
            "/v1/runs",
            Some(json!({"bench_id": bench, "suite_yaml": SUITE})),
        );
        assert_eq!(r.status, 201, "{}", r.text);
        r.json()["run_id"].as_str().unwrap().to_string()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub struct Resp {
    pub status: u16,
    pub content_type: String,
    pub text: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// Asserts the status and the error body shape; returns the error text.
    pub fn error(&self, status: u16) -> String {
        assert_eq!(self.status, status, "{}", self.text);
        assert!(
            self.content_type.starts_with("application/json"),
            "error without a JSON body: {:?} {}",
            self.content_type,
            self.text
        );
        let v = self.json();
        v["error"].as_str().expect("an error text").to_string()
    }
}

/// A multipart body with one file part.
pub fn multipart(name: &str, filename: &str, data: &[u8]) -> (String, Vec<u8>) {
    let boundary = "hiltboundary7f3a";
    let mut b = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: application/zip\r\n\r\n"
    )
    .into_bytes();
    b.extend_from_slice(data);
    b.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), b)
}

//! Simulated cloud agents for the `server-*` benchmarks: cheap async clients (tokio +
//! reqwest, one connection pool for all of them) that make the real agent calls of
//! agent-api §6 — heartbeat, bench sync, the assignment long-poll, event batches with
//! `seq`, completion — each agent with its own agent token, machine id and one healthy
//! bench.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use reqwest::Method;
use serde_json::{Value, json};

use crate::server_rig::BOOT;

/// A call that did not answer 2xx.
#[derive(Debug)]
pub enum CallError {
    /// The server answered with this status (503: over its connection cap).
    Status(u16, String),
    /// No answer: connection refused or reset, timeout.
    Transport(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Status(s, body) => write!(f, "HTTP {s}: {body}"),
            CallError::Transport(e) => write!(f, "no answer: {e}"),
        }
    }
}

impl std::error::Error for CallError {}

/// One HTTP client (a connection pool) for many simulated agents.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
}

impl Api {
    pub fn new() -> anyhow::Result<Api> {
        // Plain http only, but the client is built with rustls and needs a provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(60))
            .pool_idle_timeout(Duration::from_secs(120))
            .build()
            .context("building the HTTP client")?;
        Ok(Api { http })
    }

    pub async fn call(
        &self,
        method: Method,
        url: &str,
        token: &str,
        machine: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Value, CallError> {
        let mut req = self
            .http
            .request(method, url)
            .header("Authorization", format!("Bearer {token}"));
        if let Some(m) = machine {
            req = req.header("X-BenchCI-Agent-Machine-ID", m);
        }
        if let Some(b) = body {
            req = req
                .header("Content-Type", "application/json")
                .body(b.to_string());
        }
        let resp = req
            .send()
            .await
            .map_err(|e| CallError::Transport(e.to_string()))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| CallError::Transport(e.to_string()))?;
        if !(200..300).contains(&status) {
            return Err(CallError::Status(
                status,
                String::from_utf8_lossy(&bytes).chars().take(300).collect(),
            ));
        }
        serde_json::from_slice(&bytes).map_err(|e| CallError::Transport(format!("bad JSON: {e}")))
    }

    /// Submits a run pinned to `bench_id` as the admin user; returns its id.
    pub async fn submit(&self, base: &str, bench_id: &str) -> anyhow::Result<String> {
        let body = json!({"bench_id": bench_id, "suite_yaml": SUITE});
        let v = self
            .call(
                Method::POST,
                &format!("{base}/v1/runs"),
                BOOT,
                None,
                Some(&body),
            )
            .await?;
        Ok(v["run_id"].as_str().context("run_id")?.to_string())
    }
}

/// The smallest valid suite.
pub const SUITE: &str = "version: 1\nsuite: {name: s}\ntests: []\n";

/// An assignment as the agent holds it.
pub struct Held {
    pub run_id: String,
    pub fence: i64,
}

/// One simulated agent: its token, machine id, the server it talks to and its bench.
pub struct SimAgent {
    pub base: String,
    pub token: String,
    pub machine: String,
    pub bench_id: String,
}

impl SimAgent {
    /// A new agent token (made through `admin_base`), then a heartbeat and a sync of one
    /// healthy bench through `base`.
    pub async fn register(
        api: &Api,
        admin_base: &str,
        base: &str,
        i: usize,
    ) -> anyhow::Result<SimAgent> {
        let v = api
            .call(
                Method::POST,
                &format!("{admin_base}/v1/tokens"),
                BOOT,
                None,
                Some(&json!({"workspace": "default", "kind": "agent"})),
            )
            .await?;
        let mut a = SimAgent {
            base: base.to_string(),
            token: v["token"].as_str().context("token")?.to_string(),
            machine: format!("bench-machine-{i}"),
            bench_id: String::new(),
        };
        a.heartbeat(api).await?;
        let sync = json!({"benches": [{"bench_id": format!("rig-{i}"), "status": "idle",
            "health_status": "healthy"}]});
        let v = a.post("/v1/agents/benches/sync", &sync, api).await?;
        a.bench_id = v["bench_id_mappings"][0]["bench_id"]
            .as_str()
            .context("bench_id_mappings")?
            .to_string();
        Ok(a)
    }

    /// `n` agents, spread round-robin over `urls`, `parallel` registrations at a time.
    pub async fn register_many(
        api: &Api,
        urls: &[String],
        n: usize,
        first: usize,
        parallel: usize,
    ) -> anyhow::Result<Vec<Arc<SimAgent>>> {
        let gate = Arc::new(tokio::sync::Semaphore::new(parallel.max(1)));
        let mut set = tokio::task::JoinSet::new();
        for i in first..first + n {
            let (api, gate) = (api.clone(), gate.clone());
            let (admin, base) = (urls[0].clone(), urls[i % urls.len()].clone());
            set.spawn(async move {
                let _permit = gate.acquire_owned().await?;
                let a = SimAgent::register(&api, &admin, &base, i).await?;
                anyhow::Ok((i, a))
            });
        }
        let mut agents = Vec::with_capacity(n);
        while let Some(r) = set.join_next().await {
            agents.push(r.context("registration task")??);
        }
        agents.sort_by_key(|(i, _)| *i);
        Ok(agents.into_iter().map(|(_, a)| Arc::new(a)).collect())
    }

    async fn post(&self, path: &str, body: &Value, api: &Api) -> Result<Value, CallError> {
        api.call(
            Method::POST,
            &format!("{}{path}", self.base),
            &self.token,
            Some(&self.machine),
            Some(body),
        )
        .await
    }

    pub async fn heartbeat(&self, api: &Api) -> Result<Value, CallError> {
        let body = json!({"agent_name": self.machine, "endpoint_url": null, "region": "bench"});
        self.post("/v1/agents/heartbeat", &body, api).await
    }

    /// One long-poll: the assignment, or `None` when the server's wait ran out.
    pub async fn next(&self, api: &Api) -> Result<Option<Held>, CallError> {
        let v = api
            .call(
                Method::GET,
                &format!("{}/v1/agents/assignments/next", self.base),
                &self.token,
                Some(&self.machine),
                None,
            )
            .await?;
        let a = &v["assignment"];
        Ok(a["run_id"].as_str().map(|id| Held {
            run_id: id.to_string(),
            fence: a["lease"]["fencing_token"].as_i64().unwrap_or(0),
        }))
    }

    /// Posts events `first..first + n` (agent seqs) of a held run in one call, shaped like
    /// the step events a run sends.
    pub async fn events(
        &self,
        api: &Api,
        held: &Held,
        first: u64,
        n: u64,
    ) -> Result<Value, CallError> {
        let events: Vec<Value> = (first..first + n)
            .map(|seq| {
                json!({"seq": seq, "timestamp": "2026-12-03T12:00:00.000000Z",
                    "event_type": "step.finished", "message": null,
                    "data": {"test": "bench", "step": seq, "kind": "expect_uart",
                        "status": "passed", "duration_ms": 3}})
            })
            .collect();
        let body = json!({ "events": events });
        let req = api
            .http
            .post(format!(
                "{}/v1/agents/runs/{}/events",
                self.base, held.run_id
            ))
            .header("Authorization", format!("Bearer {}", self.token))
            .header("X-BenchCI-Agent-Machine-ID", &self.machine)
            .header(hilt_api::FENCING_TOKEN_HEADER, held.fence.to_string())
            .header("Content-Type", "application/json")
            .body(body.to_string());
        let resp = req
            .send()
            .await
            .map_err(|e| CallError::Transport(e.to_string()))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        if !(200..300).contains(&status) {
            return Err(CallError::Status(status, text));
        }
        serde_json::from_str(&text).map_err(|e| CallError::Transport(format!("bad JSON: {e}")))
    }

    pub async fn complete(&self, api: &Api, held: &Held) -> Result<Value, CallError> {
        // As `hilt agent cloud` reports it: with its start (the queue view's durations).
        let body = json!({"status": "done", "exit_code": 0, "started_at": jiff::Timestamp::now().to_string()});
        self.post(
            &format!("/v1/agents/runs/{}/complete", held.run_id),
            &body,
            api,
        )
        .await
    }
}

/// Raises this process's open-file limit to its hard maximum (every simulated agent holds
/// a connection); returns the new soft limit.
pub fn raise_nofile() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) => {
            if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
                hard
            } else {
                soft
            }
        }
        Err(_) => 0,
    }
}

/// A tokio runtime with one worker per CPU (the benchmark's client side).
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

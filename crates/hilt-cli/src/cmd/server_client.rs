//! Commands that talk to a `hilt server` with a user token: `hilt workspaces create`,
//! `hilt tokens create|revoke`, `hilt runs submit|show|list|events|cancel|download`.

use std::time::{Duration, Instant};

use hilt_api::{EventsPage, ServerRun, ServerRunList, TokenCreated, Workspace};
use hilt_runner::classify::exit;
use serde_json::{Value, json};

use crate::client::{AgentClient, ClientError, body};
use crate::server_cli::{
    RunsSubmitArgs, ServerConn, TokenKindArg, TokensCommand, WorkspacesCommand,
};

pub(super) fn connect(conn: &ServerConn) -> Result<AgentClient, ClientError> {
    AgentClient::new(&conn.server, Some(conn.token.trim().to_string()))
}

/// Runs a client command; a refused or failed request prints why (in the server's terms:
/// the shared client speaks of an agent) and gives its exit code.
pub(super) fn report(r: Result<i32, ClientError>) -> anyhow::Result<i32> {
    Ok(r.unwrap_or_else(|e| {
        match &e {
            ClientError::Unreachable { url, reason } => {
                eprintln!("error: cannot reach the server at {url}: {reason}")
            }
            ClientError::Auth { status, message } => eprintln!(
                "error: authentication failed: {message} (HTTP {status}; check --token or HILT_TOKEN)"
            ),
            ClientError::Status { status, message } => {
                eprintln!("error: the server refused the request (HTTP {status}): {message}")
            }
            other => eprintln!("error: {other}"),
        }
        e.exit_code()
    }))
}

pub(super) fn typed<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, ClientError> {
    serde_json::from_value(v).map_err(|e| ClientError::Protocol(e.to_string()))
}

pub fn workspaces(cmd: WorkspacesCommand) -> anyhow::Result<i32> {
    let WorkspacesCommand::Create { name, conn } = cmd;
    report((|| {
        let v = connect(&conn)?.post_json("/v1/workspaces", &json!({ "name": name }))?;
        if conn.json {
            println!("{v}");
        } else {
            let w: Workspace = typed(v)?;
            println!("workspace {} created (id {})", w.name, w.id);
        }
        Ok(0)
    })())
}

pub fn tokens(cmd: TokensCommand) -> anyhow::Result<i32> {
    report(match cmd {
        TokensCommand::Create {
            workspace,
            kind,
            label,
            conn,
        } => (|| {
            let kind = match kind {
                TokenKindArg::Agent => "agent",
                TokenKindArg::User => "user",
            };
            let v = connect(&conn)?.post_json(
                "/v1/tokens",
                &json!({ "workspace": workspace, "kind": kind, "label": label }),
            )?;
            if conn.json {
                println!("{v}");
            } else {
                let t: TokenCreated = typed(v)?;
                eprintln!(
                    "{kind} token {} for workspace {} (shown once, keep it secret):",
                    t.id, t.workspace
                );
                println!("{}", t.token);
            }
            Ok(0)
        })(),
        TokensCommand::Revoke { id, conn } => (|| {
            let path = format!("/v1/tokens/{}/revoke", crate::client::segment(&id));
            let v = connect(&conn)?.post_json(&path, &json!({}))?;
            if conn.json {
                println!("{v}");
            } else {
                println!("token {id} revoked");
            }
            Ok(0)
        })(),
    })
}

pub fn submit(a: RunsSubmitArgs) -> anyhow::Result<i32> {
    let suite = match hilt_model::load::read_capped(&a.suite, hilt_model::load::MAX_FILE_BYTES)
        .and_then(|b| String::from_utf8(b).map_err(|_| std::io::Error::other("not valid UTF-8")))
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot read the suite {}: {e}", a.suite.display());
            return Ok(exit::CONFIG_ERROR);
        }
    };
    let artifact = match &a.artifact {
        Some(p) => match body::open(p) {
            Ok(part) => Some((p, part)),
            Err(e) => {
                eprintln!("error: cannot read the artifact {}: {e}", p.display());
                return Ok(exit::CONFIG_ERROR);
            }
        },
        None => None,
    };
    report((|| {
        let client = connect(&a.conn)?;
        // With firmware: multipart, so the image streams from the file into the server's
        // artifact store; without: the JSON body.
        let run: ServerRun = match artifact {
            Some((p, (content, len))) => {
                let name = p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let mut m = body::Multipart::new();
                if let Some(b) = &a.bench_id {
                    m.text("bench_id", b);
                }
                if !a.tags.is_empty() {
                    m.text("tags", &a.tags.join(","));
                }
                if !a.capabilities.is_empty() {
                    m.text("capabilities", &a.capabilities.join(","));
                }
                m.text("priority", &a.priority.to_string());
                m.text("suite_yaml", &suite);
                m.text("skip_flash", if a.skip_flash { "true" } else { "false" });
                m.file("artifact", &name, "application/octet-stream", content, len);
                let ct = m.content_type();
                let mut b = m.finish();
                let len = b.len();
                client.post_stream_as("/v1/runs", &ct, len, &mut b)?
            }
            None => {
                let mut fields = serde_json::Map::new();
                if let Some(b) = &a.bench_id {
                    fields.insert("bench_id".into(), json!(b));
                }
                if !a.tags.is_empty() {
                    fields.insert("tags".into(), json!(a.tags));
                }
                if !a.capabilities.is_empty() {
                    fields.insert("capabilities".into(), json!(a.capabilities));
                }
                fields.insert("priority".into(), json!(a.priority));
                fields.insert("suite_yaml".into(), json!(suite));
                fields.insert("skip_flash".into(), json!(a.skip_flash));
                let mut b = body::run_json(&fields, None);
                let len = b.len();
                client.post_stream_as("/v1/runs", "application/json", len, &mut b)?
            }
        };
        let target = match (&run.bench_id, run.tags.is_empty()) {
            (Some(b), _) => format!("bench {b}"),
            (None, false) => format!("a bench with tags {}", run.tags.join(",")),
            (None, true) => format!("a bench with capabilities {}", run.capabilities.join(",")),
        };
        if run.status.is_terminal() {
            // Refused at once (no bench could ever take it).
            if a.conn.json {
                println!("{}", serde_json::to_string(&run).unwrap_or_default());
            } else {
                println!("{}", run.run_id);
            }
            return Ok(verdict(&run));
        }
        eprintln!("run {} queued for {target}", run.run_id);
        if !a.wait {
            println!("{}", run.run_id);
            return Ok(0);
        }
        let deadline = Instant::now() + Duration::from_secs(a.timeout_s);
        let run = wait(&client, &run.run_id, deadline)?;
        if a.conn.json {
            println!("{}", serde_json::to_string(&run).unwrap_or_default());
        }
        Ok(verdict(&run))
    })())
}

/// Follows a run until it ends (or `deadline`), printing its events as they arrive.
fn wait(client: &AgentClient, run_id: &str, deadline: Instant) -> Result<ServerRun, ClientError> {
    let mut seen = 0;
    let mut said = String::new();
    loop {
        let page: EventsPage = client.get_as(&format!("/v1/runs/{run_id}/events"))?;
        for e in page.events.iter().skip(seen) {
            eprintln!(
                "  {} {}",
                e.event_type,
                e.message.as_deref().unwrap_or_default()
            );
        }
        seen = seen.max(page.events.len());
        let run: ServerRun = client.get_as(&format!("/v1/runs/{run_id}"))?;
        if run.status.is_terminal() {
            return Ok(run);
        }
        let now = match (&run.queue, run.cancel_requested) {
            (Some(q), _) => format!(
                "  queued (position {}): {}{}",
                q.position,
                q.reason,
                q.estimated_start_at
                    .as_deref()
                    .map(|t| format!("; estimated start {t}"))
                    .unwrap_or_default()
            ),
            (None, true) => "  cancel requested; waiting for the agent to stop the run".into(),
            (None, false) => format!(
                "  {} on bench {}",
                run.status.as_str(),
                run.bench_id.as_deref().unwrap_or("-")
            ),
        };
        // The estimate moves every poll: say a line again only when the rest changed.
        let key = now
            .split("; estimated")
            .next()
            .unwrap_or_default()
            .to_string();
        if key != said {
            eprintln!("{now}");
            said = key;
        }
        if Instant::now() > deadline {
            return Err(ClientError::Protocol(format!(
                "run {run_id} has not ended in time (status {})",
                run.status.as_str()
            )));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Prints how a run ended and returns the exit code for it.
fn verdict(run: &ServerRun) -> i32 {
    let category = run
        .failure
        .as_ref()
        .and_then(|f| f.get("category"))
        .and_then(Value::as_str);
    eprintln!(
        "run {}: {}{}{}",
        run.run_id,
        if run.cancelled {
            "cancelled"
        } else {
            run.status.as_str()
        },
        category.map(|c| format!(" ({c})")).unwrap_or_default(),
        run.error
            .as_deref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default()
    );
    match (run.status, run.exit_code) {
        _ if run.cancelled => exit::INTERRUPTED,
        (hilt_api::RunState::Done, _) => exit::PASSED,
        (_, Some(-1)) => exit::BENCH_ERROR,
        (_, Some(c)) if (1..=125).contains(&c) => c,
        _ => exit::RUN_ERROR,
    }
}

pub fn show(id: &str, conn: &ServerConn) -> anyhow::Result<i32> {
    report((|| {
        let v = connect(conn)?.get_json(&format!("/v1/runs/{}", crate::client::segment(id)))?;
        if conn.json {
            println!("{v}");
            return Ok(0);
        }
        let run: ServerRun = typed(v)?;
        println!(
            "{}  {}  bench {}  created {}  exit {}",
            run.run_id,
            state_of(&run),
            run.bench_id.as_deref().unwrap_or("-"),
            run.created_at,
            run.exit_code.map_or("-".into(), |c| c.to_string())
        );
        if !run.tags.is_empty() || !run.capabilities.is_empty() {
            println!(
                "  wants: tags {} capabilities {} (priority {})",
                run.tags.join(","),
                run.capabilities.join(","),
                run.priority
            );
        }
        if let Some(q) = &run.queue {
            println!("  queue: position {}: {}", q.position, q.reason);
            if let Some(t) = &q.estimated_start_at {
                println!(
                    "  estimated start: {t} ({})",
                    q.estimate_basis.as_deref().unwrap_or_default()
                );
            }
        }
        if run.cancel_requested {
            println!("  cancel requested: waiting for its agent to stop it");
        }
        if let Some(e) = &run.error {
            println!("  error: {e}");
        }
        Ok(0)
    })())
}

pub fn list(conn: &ServerConn) -> anyhow::Result<i32> {
    report((|| {
        let v = connect(conn)?.get_json("/v1/runs")?;
        if conn.json {
            println!("{v}");
            return Ok(0);
        }
        let list: ServerRunList = typed(v)?;
        for r in list.runs {
            let bench = match (&r.bench_id, r.tags.is_empty()) {
                (Some(b), _) => b.clone(),
                (None, false) => format!("tags:{}", r.tags.join(",")),
                (None, true) => format!("caps:{}", r.capabilities.join(",")),
            };
            println!(
                "{}  {:<9}  {}  {}",
                r.run_id,
                state_of(&r),
                bench,
                r.created_at
            );
        }
        Ok(0)
    })())
}

pub fn events(id: &str, conn: &ServerConn) -> anyhow::Result<i32> {
    report((|| {
        let v =
            connect(conn)?.get_json(&format!("/v1/runs/{}/events", crate::client::segment(id)))?;
        if conn.json {
            println!("{v}");
            return Ok(0);
        }
        let page: EventsPage = typed(v)?;
        for e in page.events {
            println!(
                "{:>5} {} {} {}",
                e.seq,
                e.timestamp,
                e.event_type,
                e.message.unwrap_or_default()
            );
        }
        Ok(0)
    })())
}

/// The state to show: `cancelled` where the wire says `failed` for BenchCI clients.
fn state_of(run: &ServerRun) -> &'static str {
    if run.cancelled {
        "cancelled"
    } else {
        run.status.as_str()
    }
}

pub fn cancel(id: &str, conn: &ServerConn) -> anyhow::Result<i32> {
    report((|| {
        let path = format!("/v1/runs/{}/cancel", crate::client::segment(id));
        let v = connect(conn)?.post_json(&path, &json!({}))?;
        if conn.json {
            println!("{v}");
            return Ok(0);
        }
        let run: ServerRun = typed(v)?;
        if run.cancelled {
            println!("run {} cancelled", run.run_id);
        } else {
            println!(
                "run {} is {}: cancel requested, its agent stops it",
                run.run_id,
                run.status.as_str()
            );
        }
        Ok(0)
    })())
}

pub fn download(
    id: &str,
    output: Option<std::path::PathBuf>,
    conn: &ServerConn,
) -> anyhow::Result<i32> {
    report((|| {
        let path = format!("/v1/runs/{}/artifacts.zip", crate::client::segment(id));
        let resp = connect(conn)?
            .get_raw(&path, "application/zip", false)?
            .ok_or_else(|| ClientError::Protocol("no archive".into()))?;
        let dest =
            output.unwrap_or_else(|| std::path::PathBuf::from(format!("hilt_{id}_artifacts.zip")));
        let tmp = dest.with_extension("zip.part");
        let written = (|| -> std::io::Result<u64> {
            let mut f = std::fs::File::create(&tmp)?;
            let n = std::io::copy(&mut resp.into_body().into_reader(), &mut f)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &dest)?;
            Ok(n)
        })();
        match written {
            Ok(n) => {
                eprintln!("{n} bytes written to {}", dest.display());
                Ok(0)
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                eprintln!("error: cannot write {}: {e}", dest.display());
                Ok(exit::RUN_ERROR)
            }
        }
    })())
}

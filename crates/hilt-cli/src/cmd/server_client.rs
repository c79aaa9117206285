//! Commands that talk to a `hilt server` with a user token: `hilt workspaces create`,
//! `hilt tokens create|revoke`, `hilt runs submit|show|list|events`.

use std::time::{Duration, Instant};

use hilt_api::{EventsPage, ServerRun, ServerRunList, TokenCreated, Workspace};
use hilt_runner::classify::exit;
use serde_json::{Value, json};

use crate::client::{AgentClient, ClientError, body};
use crate::server_cli::{
    RunsSubmitArgs, ServerConn, TokenKindArg, TokensCommand, WorkspacesCommand,
};

fn connect(conn: &ServerConn) -> Result<AgentClient, ClientError> {
    AgentClient::new(&conn.server, Some(conn.token.trim().to_string()))
}

/// Runs a client command; a refused or failed request prints why (in the server's terms:
/// the shared client speaks of an agent) and gives its exit code.
fn report(r: Result<i32, ClientError>) -> anyhow::Result<i32> {
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

fn typed<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, ClientError> {
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
                m.text("bench_id", &a.bench_id);
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
                fields.insert("bench_id".into(), json!(a.bench_id));
                fields.insert("suite_yaml".into(), json!(suite));
                fields.insert("skip_flash".into(), json!(a.skip_flash));
                let mut b = body::run_json(&fields, None);
                let len = b.len();
                client.post_stream_as("/v1/runs", "application/json", len, &mut b)?
            }
        };
        eprintln!("run {} queued on bench {}", run.run_id, run.bench_id);
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
        run.status.as_str(),
        category.map(|c| format!(" ({c})")).unwrap_or_default(),
        run.error
            .as_deref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default()
    );
    match (run.status, run.exit_code) {
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
            run.status.as_str(),
            run.bench_id,
            run.created_at,
            run.exit_code.map_or("-".into(), |c| c.to_string())
        );
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
            println!(
                "{}  {:<9}  {}  {}",
                r.run_id,
                r.status.as_str(),
                r.bench_id,
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

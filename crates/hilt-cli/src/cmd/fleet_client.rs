//! `hilt benches list|show` (of an agent with `--agent`, else of a server) and `hilt agents
//! list`: a server's fleet as its agents last reported it.

use hilt_api::{ServerAgentList, ServerBench, ServerBenchList};
use hilt_runner::classify::exit;

use super::server_client::{connect, report, typed};
use crate::cli::{AgentConn, BenchesCommand, BenchesConn};
use crate::client::segment;
use crate::server_cli::{AgentsCommand, ServerConn};

pub fn benches(cmd: BenchesCommand) -> anyhow::Result<i32> {
    let (id, c) = match cmd {
        BenchesCommand::List(c) => (None, c),
        BenchesCommand::Show { id, conn } => (Some(id), conn),
    };
    if let Some(agent) = c.agent {
        let conn = AgentConn {
            agent,
            token: c.token,
            json: c.json,
        };
        return super::remote::benches(id.as_deref(), &conn);
    }
    let Some(conn) = server_conn(c) else {
        return Ok(exit::USAGE);
    };
    match id {
        None => list(&conn),
        Some(id) => show(&id, &conn),
    }
}

/// The server and its token (HILT_TOKEN unless --token), or why there is none.
fn server_conn(c: BenchesConn) -> Option<ServerConn> {
    let Some(server) = c.server.filter(|s| !s.trim().is_empty()) else {
        eprintln!("error: give --agent URL, or a server with --server URL or HILT_SERVER");
        return None;
    };
    let token = c
        .token
        .or_else(|| std::env::var("HILT_TOKEN").ok())
        .filter(|t| !t.trim().is_empty());
    let Some(token) = token else {
        eprintln!("error: the server needs a user token: give --token or set HILT_TOKEN");
        return None;
    };
    Some(ServerConn {
        server,
        token,
        json: c.json,
    })
}

/// Column-aligned rows under a header.
fn table<const N: usize>(header: [&str; N], rows: &[[String; N]]) {
    let mut w = header.map(str::len);
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == N {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<width$}  ", width = w[i]));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}

fn or_dash(items: &[String]) -> String {
    if items.is_empty() {
        "-".into()
    } else {
        items.join(",")
    }
}

fn seen(b: &ServerBench) -> String {
    format!(
        "{} ({})",
        b.agent_last_seen_at.as_deref().unwrap_or("never"),
        if b.agent_online { "online" } else { "lost" }
    )
}

fn list(conn: &ServerConn) -> anyhow::Result<i32> {
    report((|| {
        let v = connect(conn)?.get_json("/v1/benches")?;
        if conn.json {
            println!("{v}");
            return Ok(0);
        }
        let list: ServerBenchList = typed(v)?;
        if list.benches.is_empty() {
            eprintln!("no benches: no agent of this workspace has synced one yet");
            return Ok(0);
        }
        let rows: Vec<[String; 6]> = list
            .benches
            .iter()
            .map(|b| {
                [
                    b.bench_id.clone(),
                    b.health_status.clone().unwrap_or_else(|| "-".into()),
                    match &b.current_run_id {
                        Some(r) if b.status == "busy" => format!("busy ({r})"),
                        _ => b.status.clone(),
                    },
                    or_dash(&b.tags),
                    b.agent_id.clone(),
                    seen(b),
                ]
            })
            .collect();
        table(
            ["BENCH", "HEALTH", "STATUS", "TAGS", "AGENT", "LAST SEEN"],
            &rows,
        );
        Ok(0)
    })())
}

fn show(id: &str, conn: &ServerConn) -> anyhow::Result<i32> {
    report((|| {
        let v = connect(conn)?.get_json(&format!("/v1/benches/{}", segment(id)))?;
        if conn.json {
            println!("{v}");
            return Ok(0);
        }
        let b: ServerBench = typed(v)?;
        println!("{} — {}", b.bench_id, b.name);
        println!(
            "  health:     {}",
            b.health_status.as_deref().unwrap_or("missing")
        );
        println!("  status:     {}", b.status);
        if let Some(r) = &b.current_run_id {
            println!("  run:        {r}");
        }
        println!("  tags:       {}", or_dash(&b.tags));
        println!("  agent:      {}", b.agent_id);
        println!("  last seen:  {}", seen(&b));
        for w in &b.warnings {
            println!(
                "  warning:    {} [{}] {}",
                w.check_id,
                w.concerns,
                w.message.as_deref().unwrap_or_default()
            );
        }
        if let Some(history) = &b.health_history {
            println!("  health history (newest first):");
            for h in history {
                println!(
                    "    {}  {}{}",
                    h.changed_at,
                    h.status,
                    h.summary
                        .as_deref()
                        .map(|s| format!("  {s}"))
                        .unwrap_or_default()
                );
            }
        }
        Ok(0)
    })())
}

pub fn agents(cmd: AgentsCommand) -> anyhow::Result<i32> {
    let AgentsCommand::List(conn) = cmd;
    report((|| {
        let v = connect(&conn)?.get_json("/v1/agents")?;
        if conn.json {
            println!("{v}");
            return Ok(0);
        }
        let list: ServerAgentList = typed(v)?;
        if list.agents.is_empty() {
            eprintln!("no agents: none of this workspace has called the server yet");
            return Ok(0);
        }
        let rows: Vec<[String; 5]> = list
            .agents
            .iter()
            .map(|a| {
                [
                    a.agent_id.clone(),
                    a.name.clone().unwrap_or_else(|| "-".into()),
                    a.machine_name
                        .clone()
                        .unwrap_or_else(|| a.machine_id.clone()),
                    a.last_seen_at.clone(),
                    if a.online { "online" } else { "lost" }.into(),
                ]
            })
            .collect();
        table(["AGENT", "NAME", "MACHINE", "LAST SEEN", "STATE"], &rows);
        Ok(0)
    })())
}

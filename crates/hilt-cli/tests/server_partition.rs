//! A network partition of a cloud agent, with a real network: the agent runs inside a
//! network namespace made for this test (a veth pair, a private /30), `hilt server` on the
//! host side bound to the veth address, a simulated DUT on a real pty. Mid-run the link is
//! cut (`ip link set … down`):
//! - the agent's lease expires (`--lease-s 3`) and its run fails `AGENT_LOST`, exit -1;
//! - meanwhile a run by tag goes to the other agent (on the host), not to the lost one;
//! - the link comes back: the agent's late reports under the stale lease are refused
//!   (409), it stops that run and never executes it again, the server's record of it does
//!   not change, and the agent takes the next run normally.
//!
//! No run executes twice: each run's directory exists on one agent and the lost run was
//! assigned once (fencing token 1). Needs root for `ip netns` (skipped, saying so,
//! otherwise unless HILT_REQUIRE_PEERS=1); namespace and link are removed even when the
//! test fails (a Drop guard), with names unique to the test process.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::Bench;
use common::cloud::{agent_log, bench_row, events, suite, wait_for};
use common::server::{Proc, agent_token, client, server_get, start_agent, text};
use serde_json::Value;

/// `ip ARGS…`; the error names the command and what it printed.
fn ip(args: &[&str]) -> Result<(), String> {
    let o = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if o.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        ))
    }
}

/// A network namespace joined to the host by a veth pair on a private /30; removed (with
/// any process left in it) when dropped.
struct Netns {
    name: String,
    host_if: String,
    host_addr: String,
    created_link: bool,
}

impl Netns {
    /// `None` (after saying why) when namespaces cannot be made here and peers are not
    /// required.
    fn create() -> Option<Netns> {
        let pid = std::process::id();
        let name = format!("hilt-part-{pid}");
        // Interface names are at most 15 bytes; the /30 comes from the pid too, so test
        // processes running at once do not collide.
        let (host_if, ns_if) = (format!("hp{pid}h"), format!("hp{pid}n"));
        // Names carrying this pid can only be left over by a killed earlier process.
        if Path::new("/run/netns").join(&name).exists() {
            let _ = ip(&["netns", "del", &name]);
        }
        if Path::new("/sys/class/net").join(&host_if).exists() {
            let _ = ip(&["link", "del", &host_if]);
        }
        if let Err(why) = ip(&["netns", "add", &name]) {
            if std::env::var("HILT_REQUIRE_PEERS").as_deref() == Ok("1") {
                panic!("network namespaces are required (HILT_REQUIRE_PEERS=1): {why}");
            }
            eprintln!("SKIPPED (network namespace, needs root and iproute2): {why}");
            return None;
        }
        let (b, c) = ((pid >> 6) & 0xff, (pid & 0x3f) * 4);
        let host_addr = format!("10.231.{b}.{}", c + 1);
        let ns_addr = format!("10.231.{b}.{}", c + 2);
        let mut n = Netns {
            name,
            host_if,
            host_addr,
            created_link: false,
        };
        let name = n.name.clone();
        let setup = (|| {
            ip(&[
                "link", "add", &n.host_if, "type", "veth", "peer", "name", &ns_if,
            ])?;
            n.created_link = true;
            ip(&["link", "set", &ns_if, "netns", &name])?;
            ip(&[
                "addr",
                "add",
                &format!("{}/30", n.host_addr),
                "dev",
                &n.host_if,
            ])?;
            ip(&["link", "set", &n.host_if, "up"])?;
            let inside = |args: &[&str]| {
                let mut a = vec!["netns", "exec", &name, "ip"];
                a.extend_from_slice(args);
                ip(&a)
            };
            inside(&["addr", "add", &format!("{ns_addr}/30"), "dev", &ns_if])?;
            inside(&["link", "set", &ns_if, "up"])?;
            inside(&["link", "set", "lo", "up"])
        })();
        if let Err(e) = setup {
            panic!("cannot wire the network namespace: {e}");
        }
        Some(n)
    }

    fn link(&self, up: bool) {
        ip(&["link", "set", &self.host_if, if up { "up" } else { "down" }]).unwrap();
    }

    /// A command run inside the namespace.
    fn exec(&self, program: &Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Processes this test started inside (the agent normally is gone already).
        if let Ok(o) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
        {
            for pid in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                if let Ok(pid) = pid.parse::<i32>() {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        }
        if self.created_link {
            let _ = ip(&["link", "del", &self.host_if]);
        }
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// `hilt agent cloud` inside the namespace, as `common::server::start_agent` starts one.
fn start_agent_inside(
    ns: &Netns,
    dir: &Path,
    url: &str,
    token: &str,
    sim: &Bench,
    id: &str,
) -> Proc {
    let work = dir.join(format!("agent-{id}"));
    std::fs::create_dir_all(&work).unwrap();
    let locks = sim.path("locks");
    std::fs::create_dir_all(&locks).unwrap();
    let mut c = ns.exec(&assert_cmd::cargo::cargo_bin("hilt"));
    c.args(["agent", "cloud", "--bench"])
        .arg(&sim.bench)
        .args(["--bench-id", id, "--agent-name", &format!("lab-{id}")])
        .args(["--tag", "part", "--heartbeat-s", "0.5", "--work-dir"])
        .arg(&work)
        .env("NO_COLOR", "1")
        .env_remove("HILT_TOKEN")
        .env_remove("HILT_MACHINE_ID")
        .env_remove("BENCHCI_MACHINE_ID")
        .env("HILT_SERVER", url)
        .env("HILT_AGENT_TOKEN", token)
        .env("HILT_LOCK_DIR", &locks)
        .env("HOME", &work)
        .env("HILT_LOG", "info")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(work.join("stdout.log")).unwrap())
        .stderr(std::fs::File::create(work.join("stderr.log")).unwrap());
    Proc(c.spawn().unwrap())
}

fn submit(url: &str, target: &[&str], suite: &Path) -> String {
    let mut args = vec!["runs", "submit"];
    args.extend_from_slice(target);
    args.extend_from_slice(&["--suite", suite.to_str().unwrap(), "--json"]);
    let o = client(url, &args);
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn run_view(url: &str, id: &str) -> Value {
    server_get(url, &format!("/v1/runs/{id}"))
}

fn ended(v: &Value) -> bool {
    matches!(v["status"].as_str(), Some("done" | "failed"))
}

/// The fencing token of a run (how many times it was assigned), from the server's SQLite
/// file.
fn fence(data: &Path, run: &str) -> i64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::Connection;
        let url = format!("sqlite://{}?mode=ro", data.join("hilt-server.db").display());
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        let (f,): (i64,) = sqlx::query_as("SELECT fence FROM runs WHERE id = $1")
            .bind(run)
            .fetch_one(&mut c)
            .await
            .unwrap();
        f
    })
}

#[test]
fn a_partitioned_agent_loses_its_lease_and_never_runs_it_twice() {
    let Some(ns) = Netns::create() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let data = dir.join("data");
    let bind = format!("{}:0", ns.host_addr);
    let (_server, url) = common::server::start_server(
        &data,
        None,
        &["--bind", &bind, "--lease-s", "3", "--long-poll-s", "5"],
    );
    let (sim_in, sim_host) = (Bench::start(), Bench::start());
    let _inside = start_agent_inside(&ns, dir, &url, &agent_token(&url), &sim_in, "inside");
    let _host = start_agent(
        dir,
        &url,
        &agent_token(&url),
        &sim_host.bench,
        "host",
        "part",
        &sim_host.path("locks"),
    );
    let log = || format!("{}\n{}", agent_log(dir, "inside"), agent_log(dir, "host"));
    for id in ["inside", "host"] {
        let row = wait_for("bench synced", 90, &log, || {
            bench_row(&url, id).filter(|b| b["health_status"] != Value::Null)
        });
        assert_eq!(row["health_status"], "healthy", "{row}\n{}", log());
    }

    // A long run on the agent inside the namespace; the link is cut once it reports.
    let long = suite(dir, "long", 40);
    let lost = submit(&url, &["--bench-id", "inside"], &long);
    wait_for("the run reports events", 60, &log, || {
        (events(&url, &lost).len() >= 4).then_some(())
    });
    ns.link(false);
    let cut = Instant::now();
    let v = wait_for("the run failed as agent lost", 30, &log, || {
        Some(run_view(&url, &lost)).filter(ended)
    });
    let after = cut.elapsed();
    eprintln!(
        "link cut: run failed {} after {after:?}",
        v["failure"]["category"]
    );
    assert_eq!(v["status"], "failed", "{v}");
    assert_eq!(v["exit_code"], -1, "{v}");
    assert_eq!(v["failure"]["category"], "AGENT_LOST", "{v}");
    // Lease 3 s + one sweep (2 s) + slack for a loaded machine.
    assert!(after < Duration::from_secs(15), "{after:?}");
    let stored = events(&url, &lost).len();

    // While the agent is cut off, a run by tag goes to the agent that can be reached.
    let quick = suite(dir, "quick", 0);
    let next = submit(&url, &["--tags", "part"], &quick);
    let v = wait_for("the tag run ended", 60, &log, || {
        Some(run_view(&url, &next)).filter(ended)
    });
    assert_eq!(v["status"], "done", "{v}\n{}", log());
    assert!(dir.join("agent-host/cloud-runs").join(&next).is_dir());

    // The link comes back: the late reports under the lost lease are refused.
    ns.link(true);
    let refused = wait_for("the late reports refused", 120, &log, || {
        agent_log(dir, "inside")
            .lines()
            .find(|l| l.contains(&lost) && l.contains("HTTP 409"))
            .map(str::to_string)
    });
    eprintln!("link back: {refused}");
    let v = run_view(&url, &lost);
    assert_eq!(v["status"], "failed", "{v}");
    assert_eq!(v["exit_code"], -1, "{v}");
    assert_eq!(v["failure"]["category"], "AGENT_LOST", "{v}");
    assert_eq!(
        events(&url, &lost).len(),
        stored,
        "events were stored under the lost lease"
    );

    // The agent is back in service: it takes the next run, and only that one.
    let again = submit(&url, &["--bench-id", "inside"], &quick);
    let v = wait_for("the run after the partition ended", 90, &log, || {
        Some(run_view(&url, &again)).filter(ended)
    });
    assert_eq!(v["status"], "done", "{v}\n{}", log());

    // No run executed twice.
    let inside_log = agent_log(dir, "inside");
    let assigned = |id: &str| {
        inside_log
            .lines()
            .filter(|l| l.contains(&format!("run {id}: assigned")))
            .count()
    };
    assert_eq!(assigned(&lost), 1, "{inside_log}");
    assert_eq!(assigned(&again), 1, "{inside_log}");
    assert_eq!(assigned(&next), 0, "{inside_log}");
    for (id, on) in [(&lost, "inside"), (&next, "host"), (&again, "inside")] {
        assert_eq!(fence(&data, id), 1, "run {id} assigned more than once");
        let dirs: Vec<&str> = ["inside", "host"]
            .into_iter()
            .filter(|a| dir.join(format!("agent-{a}/cloud-runs/{id}")).is_dir())
            .collect();
        assert_eq!(dirs, [on], "run {id}");
    }
}

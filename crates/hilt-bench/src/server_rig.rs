//! The server side of the `server-*` benchmarks: `hilt server` processes (one, or N
//! replicas on one PostgreSQL), a throwaway PostgreSQL cluster (`hilt_testkit::postgres`,
//! fsync on: the realistic setting), where their files are (disk or tmpfs, from the
//! scratch directory: `--work-dir /dev/shm/…` for tmpfs), and the server's CPU time and
//! memory from `/proc`.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

use crate::env::Env;

/// The admin token the servers are bootstrapped with.
pub const BOOT: &str = "bench-boot-token";

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Database {
    /// One file in the server's data dir (the default backend).
    Sqlite,
    /// A throwaway PostgreSQL cluster started for the benchmark.
    Postgres,
}

/// What the servers are started with.
#[derive(clap::Args, Clone)]
pub struct RigArgs {
    /// Storage backend.
    #[arg(long, value_enum, default_value = "sqlite")]
    pub database: Database,
    /// `hilt server` processes on one database (more than one needs PostgreSQL); agents and
    /// submissions are spread over them round-robin.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=8))]
    pub replicas: u64,
    /// The servers' `--max-connections` [default: the server's own default].
    #[arg(long)]
    pub max_connections: Option<u64>,
}

/// A blocking client for the admin calls of the benchmarks that drive real agents.
pub struct Http {
    agent: ureq::Agent,
    base: String,
}

impl Http {
    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        machine: Option<&str>,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {token}"));
        if let Some(m) = machine {
            req = req.header("X-BenchCI-Agent-Machine-ID", m);
        }
        let resp = match body {
            Some(b) => self.agent.run(
                req.header("Content-Type", "application/json")
                    .body(b.to_string().into_bytes())?,
            ),
            None => self.agent.run(req.body(())?),
        };
        let mut resp = resp.with_context(|| format!("{method} {path}"))?;
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string()?;
        if !(200..300).contains(&status) {
            bail!("{method} {path}: HTTP {status}: {text}");
        }
        Ok(serde_json::from_str(&text)?)
    }
}

pub fn http(base: &str) -> Http {
    Http {
        agent: ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .new_agent(),
        base: base.to_string(),
    }
}

impl RigArgs {
    /// One server on SQLite with its default connection cap.
    pub fn sqlite() -> RigArgs {
        RigArgs {
            database: Database::Sqlite,
            replicas: 1,
            max_connections: None,
        }
    }
}

/// One `hilt server` process, stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Server {
    child: Option<Child>,
    pub url: String,
    pub pid: u32,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(c) = self.child.take() {
            crate::child::terminate(c, Duration::from_secs(5));
        }
    }
}

/// The servers of one benchmark and what they run on.
pub struct Rig {
    pub servers: Vec<Server>,
    /// `SQLite` or `PostgreSQL N (fsync on)`, with `, 2 replicas` when there are several.
    pub label: String,
    /// `tmpfs` or `disk (ext4)`: where the database and data dir are.
    pub storage: String,
    /// The PostgreSQL database, when there is one.
    database: Option<String>,
}

impl Rig {
    pub fn start(env: &Env, name: &str, a: &RigArgs, long_poll_s: u64) -> anyhow::Result<Rig> {
        if a.replicas > 1 && a.database == Database::Sqlite {
            bail!("--replicas {} needs --database postgres", a.replicas);
        }
        let dir = env.scratch(name)?;
        let storage = storage_kind(&dir);
        let (database, mut label) = match a.database {
            Database::Sqlite => (None, "SQLite".to_string()),
            Database::Postgres => {
                let opts = hilt_testkit::postgres::ClusterOptions {
                    parent: Some(dir.clone()),
                    fsync: true,
                    max_connections: 200,
                };
                let base = hilt_testkit::postgres::start_cluster(&opts)
                    .map_err(|e| anyhow::anyhow!("PostgreSQL: {e}"))?;
                hilt_testkit::postgres::create_database(&base, "hilt_bench")
                    .map_err(|e| anyhow::anyhow!("PostgreSQL: {e}"))?;
                (
                    Some(format!("{base}/hilt_bench")),
                    format!("PostgreSQL {} (fsync on)", pg_version()),
                )
            }
        };
        if a.replicas > 1 {
            label.push_str(&format!(", {} replicas", a.replicas));
        }
        let mut servers = Vec::new();
        for _ in 0..a.replicas {
            servers.push(start_server(
                env,
                &dir.join("data"),
                database.as_deref(),
                long_poll_s,
                a.max_connections,
            )?);
        }
        Ok(Rig {
            servers,
            label,
            storage,
            database,
        })
    }

    /// Has PostgreSQL gather its planner statistics now, as autovacuum does by itself within
    /// a minute of the first writes (`autovacuum_naptime`). A throwaway database has none
    /// before that, and its first minute is planned as if every table were empty: the
    /// figures are meant to be those of a database in service. No-op on SQLite, whose
    /// planner keeps no statistics unless asked to.
    pub fn analyze(&self) -> anyhow::Result<()> {
        if let Some(url) = &self.database {
            hilt_testkit::postgres::psql(url, "ANALYZE")
                .map_err(|e| anyhow::anyhow!("PostgreSQL: {e}"))?;
        }
        Ok(())
    }

    pub fn urls(&self) -> Vec<String> {
        self.servers.iter().map(|s| s.url.clone()).collect()
    }

    /// CPU seconds (user + system) of every server process so far.
    pub fn cpu_s(&self) -> f64 {
        self.servers.iter().map(|s| cpu_seconds(s.pid)).sum()
    }

    /// Resident memory of every server process now, MiB.
    pub fn rss_mib(&self) -> f64 {
        self.servers
            .iter()
            .map(|s| status_kib(s.pid, "VmRSS:") as f64 / 1024.0)
            .sum()
    }

    /// Peak resident memory of every server process, MiB.
    pub fn peak_rss_mib(&self) -> f64 {
        self.servers
            .iter()
            .map(|s| status_kib(s.pid, "VmHWM:") as f64 / 1024.0)
            .sum()
    }

    /// The rig line every table notes.
    pub fn describe(&self) -> String {
        format!(
            "rig: {} hilt server process(es), {}, data on {}, {} CPUs, release build",
            self.servers.len(),
            self.label,
            self.storage,
            std::thread::available_parallelism().map_or(0, |n| n.get())
        )
    }
}

fn start_server(
    env: &Env,
    data: &Path,
    database: Option<&str>,
    long_poll_s: u64,
    max_connections: Option<u64>,
) -> anyhow::Result<Server> {
    use std::io::BufRead;
    let mut cmd = env.hilt();
    cmd.args(["server", "--bind", "127.0.0.1:0", "--long-poll-s"])
        .arg(long_poll_s.to_string())
        .arg("--data-dir")
        .arg(data);
    if let Some(db) = database {
        cmd.arg("--database").arg(db);
    }
    if let Some(n) = max_connections {
        cmd.arg("--max-connections").arg(n.to_string());
    }
    let mut child = cmd
        .env("HILT_SERVER_BOOTSTRAP_TOKEN", BOOT)
        // HILT_BENCH_SERVER_LOG: the servers' log filter (e.g. `warn,sqlx::query=debug` to
        // see every statement); warnings only by default.
        .env(
            "HILT_LOG",
            std::env::var("HILT_BENCH_SERVER_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting hilt server")?;
    let out = child.stdout.take().context("server stdout")?;
    let mut line = String::new();
    std::io::BufReader::new(out).read_line(&mut line)?;
    let pid = child.id();
    // Stopped when dropped, also when the line below is not the expected one.
    let mut server = Server {
        child: Some(child),
        url: String::new(),
        pid,
    };
    let url = line
        .split("listening on ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .with_context(|| format!("hilt server did not start: first line {line:?}"))?
        .to_string();
    server.url = url;
    Ok(server)
}

/// `tmpfs` when `dir` is on one, else `disk (<fs>)`.
fn storage_kind(dir: &Path) -> String {
    use nix::sys::statfs::{TMPFS_MAGIC, statfs};
    match statfs(dir) {
        Ok(s) if s.filesystem_type() == TMPFS_MAGIC => "tmpfs".into(),
        Ok(_) => {
            let fs = std::fs::read_to_string("/proc/mounts")
                .ok()
                .and_then(|m| mount_fs(&m, dir))
                .unwrap_or_else(|| "unknown fs".into());
            format!("disk ({fs})")
        }
        Err(e) => format!("unknown ({e})"),
    }
}

/// The file system type of the longest mount point that contains `dir`.
fn mount_fs(mounts: &str, dir: &Path) -> Option<String> {
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_, point, fs) = (f.next()?, f.next()?, f.next()?);
            dir.starts_with(point)
                .then(|| (point.len(), fs.to_string()))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, fs)| fs)
}

fn pg_version() -> String {
    hilt_testkit::postgres::pg_bin()
        .and_then(|b| {
            b.parent()
                .and_then(|v| v.file_name())
                .map(|v| v.to_string_lossy().into_owned())
        })
        .unwrap_or_default()
}

/// utime + stime of a process, seconds (`/proc/<pid>/stat` fields 14 and 15).
pub fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return f64::NAN;
    };
    // The command name may hold spaces: the fields follow its closing parenthesis.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
        return f64::NAN;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // Field 3 (state) is f[0], so field N is f[N - 3].
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    (ticks(14 - 3) + ticks(15 - 3)) as f64 / hz
}

/// A `kB` line of `/proc/<pid>/status`, 0 when unknown.
fn status_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        // Burn a little CPU so the counter is above zero.
        let mut x = 0u64;
        for i in 0..30_000_000u64 {
            x = x.wrapping_add(i * i);
        }
        assert!(x > 0);
        assert!(cpu_seconds(me) > 0.0);
        assert!(status_kib(me, "VmRSS:") > 0);
        assert!(cpu_seconds(u32::MAX).is_nan());
    }

    #[test]
    fn mount_of_a_path() {
        let m = "/dev/vda / ext4 rw 0 0\ntmpfs /dev/shm tmpfs rw 0 0\n";
        assert_eq!(
            mount_fs(m, Path::new("/dev/shm/x")).as_deref(),
            Some("tmpfs")
        );
        assert_eq!(mount_fs(m, Path::new("/tmp/x")).as_deref(), Some("ext4"));
    }
}

//! A throwaway PostgreSQL cluster (test-peers §3) on a free loopback port, for the server's
//! scenario tests and the server benchmarks. The cluster runs under a small shell that
//! stops it and removes its files once the process that started it is gone, so a test or
//! benchmark killed midway leaves nothing running.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How the cluster is set up.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Where the cluster's directory is made (default: the system temp dir): a disk or a
    /// tmpfs, which is what a benchmark compares.
    pub parent: Option<PathBuf>,
    /// PostgreSQL's `fsync`: off for tests (speed; a crash loses the throwaway cluster
    /// anyway), on (the default) for a benchmark's realistic figures.
    pub fsync: bool,
    pub max_connections: u32,
}

impl ClusterOptions {
    /// What the scenario tests use: fsync off, 300 connections.
    pub fn for_tests() -> ClusterOptions {
        ClusterOptions {
            parent: None,
            fsync: false,
            max_connections: 300,
        }
    }
}

/// The newest installed PostgreSQL's `bin` directory.
pub fn pg_bin() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|d| d.join("initdb").is_file())
        .collect();
    dirs.sort();
    dirs.pop()
}

/// Runs `argv` as the postgres user when root (initdb refuses root).
fn as_postgres(argv: &[String]) -> Command {
    let root = nix::unistd::Uid::effective().is_root();
    let mut c = if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]);
        c
    } else {
        Command::new(&argv[0])
    };
    c.args(if root { argv } else { &argv[1..] });
    c
}

/// Starts a cluster; returns its URL without a database (`postgres://postgres@127.0.0.1:PORT`,
/// trust authentication), or why it could not.
pub fn start_cluster(opts: &ClusterOptions) -> Result<String, String> {
    let bin =
        pg_bin().ok_or("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb)")?;
    let mut b = tempfile::Builder::new();
    b.prefix("hilt-pg-");
    let dir = match &opts.parent {
        Some(p) => b.tempdir_in(p),
        None => b.tempdir(),
    }
    .map_err(|e| e.to_string())?
    .keep();
    if nix::unistd::Uid::effective().is_root() {
        let ok = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Err("cannot hand the cluster directory to the postgres user".into());
        }
    }
    let data = dir.join("data");
    let s = |p: &Path| p.display().to_string();
    let out = as_postgres(&[
        s(&bin.join("initdb")),
        "-D".into(),
        s(&data),
        "-A".into(),
        "trust".into(),
        "-U".into(),
        "postgres".into(),
        "-E".into(),
        "UTF8".into(),
        "--locale=C.UTF-8".into(),
    ])
    .stdout(Stdio::null())
    .output()
    .map_err(|e| format!("initdb: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    // The watchdog: postgres in the background, stopped (and its files removed) when this
    // process has exited.
    let script = format!(
        "{pg} -D {data} -p {port} -k {dir} -c listen_addresses=127.0.0.1 -c fsync={fsync} \
         -c max_connections={max} >{dir}/server.log 2>&1 & pg=$!; \
         while [ -d /proc/{me} ]; do sleep 0.5; done; kill -INT $pg; wait $pg; rm -rf {dir}",
        pg = s(&bin.join("postgres")),
        data = s(&data),
        dir = s(&dir),
        fsync = if opts.fsync { "on" } else { "off" },
        max = opts.max_connections,
        me = std::process::id(),
    );
    as_postgres(&["/bin/sh".into(), "-c".into(), script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start postgres: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err(format!(
                "postgres did not start: {}",
                std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(format!("postgres://postgres@127.0.0.1:{port}"))
}

/// Creates database `name` on the cluster at `base` with `createdb` (retried while the
/// server is still starting up).
pub fn create_database(base: &str, name: &str) -> Result<(), String> {
    let bin = pg_bin().ok_or("PostgreSQL is not installed")?;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = Command::new(bin.join("createdb"))
            .arg("--maintenance-db")
            .arg(format!("{base}/postgres"))
            .arg(name)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("createdb: {e}"))?;
        if out.status.success() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "createdb {name} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs `sql` with `psql` on the database at `url` (`postgres://…/name`); stops at the
/// first error.
pub fn psql(url: &str, sql: &str) -> Result<(), String> {
    let bin = pg_bin().ok_or("PostgreSQL is not installed")?;
    let out = Command::new(bin.join("psql"))
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("psql: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "psql {sql:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

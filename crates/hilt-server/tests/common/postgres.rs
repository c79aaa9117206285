//! A throwaway PostgreSQL for the scenario tests (test-peers §3): one cluster per test
//! binary on a free loopback port, one fresh database per test. The cluster runs under a
//! small shell that stops it and removes its files once the test process is gone.
//!
//! `HILT_TEST_POSTGRES=postgres://USER@HOST:PORT` uses an existing server instead.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The server URL (without a database), or why there is none.
fn server() -> &'static Result<String, String> {
    static SERVER: OnceLock<Result<String, String>> = OnceLock::new();
    SERVER.get_or_init(|| match std::env::var("HILT_TEST_POSTGRES") {
        Ok(url) if !url.trim().is_empty() => Ok(url.trim().trim_end_matches('/').to_string()),
        _ => start_cluster(),
    })
}

fn pg_bin() -> Option<PathBuf> {
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

fn start_cluster() -> Result<String, String> {
    let bin =
        pg_bin().ok_or("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb)")?;
    let dir = tempfile::Builder::new()
        .prefix("hilt-pg-")
        .tempdir()
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
    let s = |p: &std::path::Path| p.display().to_string();
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
    // test process has exited.
    let script = format!(
        "{pg} -D {data} -p {port} -k {dir} -c listen_addresses=127.0.0.1 -c fsync=off \
         -c max_connections=300 >{dir}/server.log 2>&1 & pg=$!; \
         while [ -d /proc/{me} ]; do sleep 0.5; done; kill -INT $pg; wait $pg; rm -rf {dir}",
        pg = s(&bin.join("postgres")),
        data = s(&data),
        dir = s(&dir),
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

/// A new empty database; `None` (after saying why) when no PostgreSQL is available and
/// HILT_REQUIRE_PEERS is not set.
pub fn fresh_database() -> Option<String> {
    static N: AtomicUsize = AtomicUsize::new(0);
    let base = match server() {
        Ok(u) => u,
        Err(why) => {
            if std::env::var("HILT_REQUIRE_PEERS").as_deref() == Ok("1") {
                panic!("PostgreSQL is required (HILT_REQUIRE_PEERS=1): {why}");
            }
            eprintln!("SKIPPED (PostgreSQL backend): {why}");
            return None;
        }
    };
    let name = format!(
        "hilt_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::Connection;
        // Right after start the server may still refuse ("starting up").
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut c = loop {
            match sqlx::PgConnection::connect(&format!("{base}/postgres")).await {
                Ok(c) => break c,
                Err(e) if Instant::now() > deadline => panic!("cannot connect to {base}: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut c)
            .await
            .unwrap();
    });
    Some(format!("{base}/{name}"))
}

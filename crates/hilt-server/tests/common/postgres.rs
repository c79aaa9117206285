//! A throwaway PostgreSQL for the scenario tests (test-peers §3): one cluster per test
//! binary (`hilt_testkit::postgres`), one fresh database per test.
//!
//! `HILT_TEST_POSTGRES=postgres://USER@HOST:PORT` uses an existing server instead.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The server URL (without a database), or why there is none.
fn server() -> &'static Result<String, String> {
    static SERVER: OnceLock<Result<String, String>> = OnceLock::new();
    SERVER.get_or_init(|| match std::env::var("HILT_TEST_POSTGRES") {
        Ok(url) if !url.trim().is_empty() => Ok(url.trim().trim_end_matches('/').to_string()),
        _ => hilt_testkit::postgres::start_cluster(
            &hilt_testkit::postgres::ClusterOptions::for_tests(),
        ),
    })
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

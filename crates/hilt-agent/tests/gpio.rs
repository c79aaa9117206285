//! Remote GPIO sessions: the session logic directly, then the HTTP endpoints of
//! `api::gpio::routes()` served on a loopback port. Chips are simulated (`sim:<name>`), each
//! test with its own chip name and lock directory.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use hilt_agent::gpio::{BAD_KEY, GpioError, LineConfig, MAX_WAIT, Sessions, StartRequest};
use hilt_agent::{Agent, AgentSettings, Registry};
use hilt_hw::gpiochip::{SimChip, sim_chip};
use hilt_hw::locks::{LockConfig, LockError, LockSpec, acquire};
use hilt_model::bench::{Bias, Direction, Edge};

fn lock_config(dir: &Path) -> LockConfig {
    LockConfig {
        dir: dir.join("locks"),
        enabled: true,
    }
}

fn line(direction: Direction, bias: Option<Bias>, edge: Option<Edge>) -> LineConfig {
    LineConfig {
        direction,
        bias,
        edge,
    }
}

/// Output 17, input 27 (pull-down, both edges).
fn two_lines() -> BTreeMap<String, LineConfig> {
    BTreeMap::from([
        ("17".to_string(), line(Direction::Output, None, None)),
        (
            "27".to_string(),
            line(Direction::Input, Some(Bias::PullDown), Some(Edge::Both)),
        ),
    ])
}

fn request(owner: &str, chip: &str, tmp: &Path) -> StartRequest {
    StartRequest {
        owner: owner.into(),
        chip: format!("sim:{chip}"),
        lines: two_lines(),
        lock_config: Some(lock_config(tmp)),
        log_dir: Some(tmp.join("gpio-sessions")),
    }
}

fn gpio_lock(chip: &str, n: u32) -> LockSpec {
    LockSpec::new(
        format!("gpio:local:sim:{chip}:{n}"),
        format!("sim:{chip} line {n}"),
        "gpio_line",
    )
}

/// `true` when the lock of `sim:<chip>` line `n` is free (taken and released at once).
fn lock_free(tmp: &Path, chip: &str, n: u32) -> bool {
    match acquire(&lock_config(tmp), vec![gpio_lock(chip, n)], Some("probe")) {
        Ok(set) => {
            set.release();
            true
        }
        Err(LockError::Busy { .. }) => false,
        Err(e) => panic!("lock error: {e}"),
    }
}

fn drive_later(sim: SimChip, n: u32, levels: Vec<bool>, after: Duration) {
    tokio::spawn(async move {
        tokio::time::sleep(after).await;
        for l in levels {
            sim.drive(n, l);
        }
    });
}

// ---------------------------------------------------------------- session logic

#[tokio::test]
async fn start_set_get_stop_releases_lines_and_locks() {
    let tmp = tempfile::tempdir().unwrap();
    let sessions = Sessions::new(Duration::from_secs(300));
    let s = sessions
        .start(request("alice", "basic", tmp.path()))
        .await
        .unwrap();
    assert_eq!(s.id.len(), 32);
    assert!(s.id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(sessions.count(), 1);
    let sim = sim_chip("basic");
    assert!(sim.is_requested(17) && sim.is_requested(27));
    assert_eq!(sim.direction(27), Some(Direction::Input));
    assert!(
        !lock_free(tmp.path(), "basic", 17),
        "the session holds the lock"
    );
    assert!(!lock_free(tmp.path(), "basic", 27));
    assert_eq!(s.lock_metadata()["enabled"], json!(true));

    sessions.set(&s.id, "alice", 17, true).unwrap();
    assert!(sim.level(17));
    sessions.set(&s.id, "alice", 17, false).unwrap();
    assert!(!sim.level(17));
    assert!(!sessions.get(&s.id, "alice", 27).unwrap(), "pull-down");
    sim.drive(27, true);
    assert!(sessions.get(&s.id, "alice", 27).unwrap());

    sessions.stop(&s.id, "alice").unwrap();
    assert_eq!(sessions.count(), 0);
    assert!(s.is_closed());
    assert!(!sim.is_requested(17) && !sim.is_requested(27));
    assert!(lock_free(tmp.path(), "basic", 17));
    assert!(lock_free(tmp.path(), "basic", 27));
    assert!(matches!(
        sessions.get(&s.id, "alice", 27),
        Err(GpioError::NotFound(_))
    ));
    assert!(matches!(
        sessions.stop(&s.id, "alice"),
        Err(GpioError::NotFound(_))
    ));

    let log =
        std::fs::read_to_string(tmp.path().join(format!("gpio-sessions/{}.log", s.id))).unwrap();
    for needle in [
        "start chip=sim:basic lines=[17:output 27:input,bias=pull_down,edge=both] client=alice",
        "set 17=1",
        "get 27 -> 1",
        "close (stopped by the client)",
    ] {
        assert!(log.contains(needle), "{needle} missing in\n{log}");
    }
    // Every line starts with a timestamp.
    assert!(log.lines().all(|l| l.starts_with("20") && l.contains('T')));
}

#[tokio::test]
async fn wait_value_sees_a_level_driven_by_another_task() {
    let tmp = tempfile::tempdir().unwrap();
    let sessions = Sessions::new(Duration::from_secs(300));
    let s = sessions
        .start(request("c", "wait-value", tmp.path()))
        .await
        .unwrap();
    let sim = sim_chip("wait-value");
    drive_later(sim.clone(), 27, vec![true], Duration::from_millis(50));
    let t = Instant::now();
    let matched = sessions
        .wait_value(&s.id, "c", 27, true, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(matched);
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());

    // Already at the level: immediate, even with a zero timeout.
    assert!(
        sessions
            .wait_value(&s.id, "c", 27, true, Duration::ZERO)
            .await
            .unwrap()
    );
    // Never reached: false after the timeout.
    let t = Instant::now();
    assert!(
        !sessions
            .wait_value(&s.id, "c", 27, false, Duration::from_millis(120))
            .await
            .unwrap()
    );
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(120) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
}

#[tokio::test]
async fn wait_value_catches_a_pulse_shorter_than_the_poll() {
    let tmp = tempfile::tempdir().unwrap();
    let sessions = Sessions::new(Duration::from_secs(300));
    let s = sessions
        .start(request("c", "pulse", tmp.path()))
        .await
        .unwrap();
    // High and back low between two samples: the edge queue still shows it.
    drive_later(
        sim_chip("pulse"),
        27,
        vec![true, false],
        Duration::from_millis(40),
    );
    assert!(
        sessions
            .wait_value(&s.id, "c", 27, true, Duration::from_secs(3))
            .await
            .unwrap()
    );
    assert!(!sessions.get(&s.id, "c", 27).unwrap());
}

#[tokio::test]
async fn wait_edge_filters_and_ignores_edges_before_the_wait() {
    let tmp = tempfile::tempdir().unwrap();
    let sessions = Sessions::new(Duration::from_secs(300));
    let s = sessions
        .start(request("c", "edges", tmp.path()))
        .await
        .unwrap();
    let sim = sim_chip("edges");
    let short = Duration::from_millis(60);

    // A rising edge before the wait does not count.
    sim.drive(27, true);
    assert!(
        !sessions
            .wait_edge(&s.id, "c", 27, Edge::Rising, short)
            .await
            .unwrap()
    );
    // Falling edge while waiting for a rising one: no match.
    drive_later(sim.clone(), 27, vec![false], Duration::from_millis(10));
    assert!(
        !sessions
            .wait_edge(&s.id, "c", 27, Edge::Rising, Duration::from_millis(150))
            .await
            .unwrap()
    );
    drive_later(sim.clone(), 27, vec![true], Duration::from_millis(30));
    assert!(
        sessions
            .wait_edge(&s.id, "c", 27, Edge::Rising, Duration::from_secs(3))
            .await
            .unwrap()
    );
    drive_later(sim.clone(), 27, vec![false], Duration::from_millis(30));
    assert!(
        sessions
            .wait_edge(&s.id, "c", 27, Edge::Falling, Duration::from_secs(3))
            .await
            .unwrap()
    );
    drive_later(sim.clone(), 27, vec![true], Duration::from_millis(30));
    assert!(
        sessions
            .wait_edge(&s.id, "c", 27, Edge::Both, Duration::from_secs(3))
            .await
            .unwrap()
    );
    assert!(
        !sessions
            .wait_edge(&s.id, "c", 27, Edge::Both, Duration::ZERO)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn a_session_used_by_another_client_is_a_conflict() {
    let tmp = tempfile::tempdir().unwrap();
    let sessions = Sessions::new(Duration::from_secs(300));
    let s = sessions
        .start(request("alice", "owner", tmp.path()))
        .await
        .unwrap();
    let is_not_owner = |r: Result<(), GpioError>| match r {
        Err(e @ GpioError::NotOwner(_)) => {
            assert_eq!(
                e.to_string(),
                format!("GPIO session {} belongs to another client", s.id)
            );
        }
        other => panic!("expected NotOwner, got {other:?}"),
    };
    is_not_owner(sessions.set(&s.id, "bob", 17, true));
    is_not_owner(sessions.get(&s.id, "bob", 27).map(|_| ()));
    is_not_owner(
        sessions
            .wait_value(&s.id, "bob", 27, true, Duration::ZERO)
            .await
            .map(|_| ()),
    );
    is_not_owner(
        sessions
            .wait_edge(&s.id, "bob", 27, Edge::Both, Duration::ZERO)
            .await
            .map(|_| ()),
    );
    is_not_owner(sessions.stop(&s.id, "bob"));
    // Untouched: still open and usable by its owner.
    assert_eq!(sessions.count(), 1);
    sessions.set(&s.id, "alice", 17, true).unwrap();
    sessions.stop(&s.id, "alice").unwrap();
}

#[tokio::test]
async fn line_direction_violations_are_conflicts() {
    let tmp = tempfile::tempdir().unwrap();
    let sessions = Sessions::new(Duration::from_secs(300));
    let s = sessions
        .start(request("c", "direction", tmp.path()))
        .await
        .unwrap();
    let conflict = |r: Result<(), GpioError>, needle: &str| match r {
        Err(GpioError::Conflict(m)) => assert!(m.contains(needle), "{m}"),
        other => panic!("expected Conflict, got {other:?}"),
    };
    conflict(
        sessions.set(&s.id, "c", 27, true),
        "requested as an input; set needs an output line",
    );
    conflict(
        sessions.get(&s.id, "c", 17).map(|_| ()),
        "requested as an output; get needs an input line",
    );
    conflict(
        sessions
            .wait_value(&s.id, "c", 17, true, Duration::ZERO)
            .await
            .map(|_| ()),
        "wait_value needs an input line",
    );
    conflict(
        sessions
            .wait_edge(&s.id, "c", 17, Edge::Both, Duration::ZERO)
            .await
            .map(|_| ()),
        "wait_edge needs an input line",
    );
    conflict(
        sessions.get(&s.id, "c", 5).map(|_| ()),
        "GPIO line 5 is not part of session",
    );
    conflict(sessions.set(&s.id, "c", 5, true), "(its lines: 17, 27)");
}

#[tokio::test]
async fn invalid_start_requests() {
    let tmp = tempfile::tempdir().unwrap();
    let sessions = Sessions::new(Duration::from_secs(300));
    for key in ["a", "-1", "", "1.5", " 17", "+3", "99999999999"] {
        let mut req = request("c", "invalid", tmp.path());
        req.lines = BTreeMap::from([(key.to_string(), line(Direction::Input, None, None))]);
        match sessions.start(req).await {
            Err(GpioError::BadRequest(m)) => assert_eq!(m, BAD_KEY, "{key:?}"),
            other => panic!("{key:?}: expected BadRequest, got {:?}", other.err()),
        }
    }
    let mut req = request("c", "invalid", tmp.path());
    req.lines = BTreeMap::from([
        ("17".to_string(), line(Direction::Input, None, None)),
        ("017".to_string(), line(Direction::Output, None, None)),
    ]);
    assert!(
        matches!(sessions.start(req).await, Err(GpioError::BadRequest(m)) if m.contains("listed twice"))
    );
    let mut req = request("c", "invalid", tmp.path());
    req.lines.clear();
    assert!(matches!(
        sessions.start(req).await,
        Err(GpioError::Invalid(_))
    ));
    // A line the chip does not have.
    sim_chip("invalid-small").set_num_lines(8);
    let mut req = request("c", "invalid-small", tmp.path());
    req.lines = BTreeMap::from([("8".to_string(), line(Direction::Input, None, None))]);
    match sessions.start(req).await {
        Err(GpioError::Invalid(m)) => {
            assert!(m.starts_with("Failed to start GPIO session:"), "{m}");
            assert!(m.contains("line 8 does not exist"), "{m}");
        }
        other => panic!("expected Invalid, got {:?}", other.err()),
    }
    assert!(
        lock_free(tmp.path(), "invalid-small", 8),
        "locks given back"
    );
    assert_eq!(sessions.count(), 0);

    // Waits longer than the cap are refused before anything else.
    let s = sessions
        .start(request("c", "invalid", tmp.path()))
        .await
        .unwrap();
    let too_long = MAX_WAIT + Duration::from_millis(1);
    assert!(matches!(
        sessions.wait_value(&s.id, "c", 27, true, too_long).await,
        Err(GpioError::Invalid(m)) if m.contains("600000")
    ));
    assert!(matches!(
        sessions
            .wait_edge(&s.id, "c", 27, Edge::Both, too_long)
            .await,
        Err(GpioError::Invalid(_))
    ));
}

#[tokio::test]
async fn a_busy_resource_lock_refuses_the_session_and_names_the_holder() {
    let tmp = tempfile::tempdir().unwrap();
    let sessions = Sessions::new(Duration::from_secs(300));
    // A local run holds line 27.
    let held = acquire(
        &lock_config(tmp.path()),
        vec![gpio_lock("locked", 27)],
        Some("local-run-42"),
    )
    .unwrap();
    match sessions.start(request("c", "locked", tmp.path())).await {
        Err(GpioError::Conflict(m)) => {
            assert!(m.starts_with("Failed to start GPIO session:"), "{m}");
            assert!(m.contains("resource is locked"), "{m}");
            assert!(m.contains("(run local-run-42)"), "{m}");
            assert!(m.contains(&format!("pid {}", std::process::id())), "{m}");
        }
        other => panic!("expected Conflict, got {:?}", other.err()),
    }
    // Nothing was taken: no chip request, line 17's lock free.
    assert!(!sim_chip("locked").is_requested(17));
    assert!(lock_free(tmp.path(), "locked", 17));
    held.release();
    let s = sessions
        .start(request("c", "locked", tmp.path()))
        .await
        .unwrap();

    // And the other way round: a second session on the same lines is refused.
    match sessions.start(request("d", "locked", tmp.path())).await {
        Err(GpioError::Conflict(m)) => {
            assert!(m.contains(&format!("(run gpio-session-{})", s.id)), "{m}")
        }
        other => panic!("expected Conflict, got {:?}", other.err()),
    }
    // With locks disabled, the chip itself still refuses a line in use.
    let mut req = request("d", "locked", tmp.path());
    req.lock_config = Some(LockConfig {
        dir: tmp.path().join("locks"),
        enabled: false,
    });
    match sessions.start(req).await {
        Err(GpioError::Conflict(m)) => assert!(m.contains("is busy"), "{m}"),
        other => panic!("expected Conflict, got {:?}", other.err()),
    }
}

#[tokio::test]
async fn a_missing_local_chip_is_refused_naming_the_path() {
    let tmp = tempfile::tempdir().unwrap();
    let sessions = Sessions::new(Duration::from_secs(300));
    let mut req = request("c", "unused", tmp.path());
    req.chip = "/dev/gpiochip0".into();
    match sessions.start(req).await {
        Err(GpioError::Invalid(m)) => {
            assert!(m.starts_with("Failed to start GPIO session:"), "{m}");
            assert!(
                m.contains("cannot open GPIO chip /dev/gpiochip0: no such device"),
                "{m}"
            );
        }
        other => panic!("expected Invalid, got {:?}", other.err()),
    }
    // The locks taken before the chip refused are given back.
    let key = LockSpec::new("gpio:local:/dev/gpiochip0:17", "chip line", "gpio_line");
    acquire(&lock_config(tmp.path()), vec![key], None)
        .unwrap()
        .release();
    assert_eq!(sessions.count(), 0);
}

/// Files in the test's lock directory.
fn lock_files(tmp: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(tmp.join("locks"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// A request the chip refuses, whether the chip cannot be opened at all or one of the
/// lines is refused after others were accepted, leaves no lock file, no session and no
/// requested line behind: a client cannot fill the lock directory with files for chips
/// or lines that do not exist.
#[tokio::test]
async fn a_session_the_chip_refuses_leaves_no_lock_file_and_no_session() {
    let tmp = tempfile::tempdir().unwrap();
    let sessions = Sessions::new(Duration::from_secs(300));
    for chip in ["/dev/gpiochip7", "/no/such/chip"] {
        let mut req = request("c", "unused", tmp.path());
        req.chip = chip.into();
        match sessions.start(req).await {
            Err(GpioError::Invalid(m)) => assert!(m.contains(chip), "{m}"),
            other => panic!("{chip}: expected Invalid, got {:?}", other.err()),
        }
        assert_eq!(lock_files(tmp.path()), Vec::<String>::new(), "{chip}");
    }
    // Lines 3 and 5 exist, 9 does not: refused part-way through the lines.
    let sim = sim_chip("part-way");
    sim.set_num_lines(8);
    let mut req = request("c", "part-way", tmp.path());
    req.lines = ["3", "5", "9"]
        .map(|n| (n.to_string(), line(Direction::Output, None, None)))
        .into();
    match sessions.start(req).await {
        Err(GpioError::Invalid(m)) => assert!(m.contains("line 9 does not exist"), "{m}"),
        other => panic!("expected Invalid, got {:?}", other.err()),
    }
    assert_eq!(lock_files(tmp.path()), Vec::<String>::new());
    assert!(!sim.is_requested(3) && !sim.is_requested(5));
    assert_eq!(sessions.count(), 0);
    // The same lines without the missing one: a session, and lock files for its lines.
    let mut req = request("c", "part-way", tmp.path());
    req.lines = ["3", "5"]
        .map(|n| (n.to_string(), line(Direction::Output, None, None)))
        .into();
    let s = sessions.start(req).await.unwrap();
    assert_eq!(lock_files(tmp.path()).len(), 2);
    assert!(sim.is_requested(3) && sim.is_requested(5));
    sessions.stop(&s.id, "c").unwrap();
}

#[tokio::test]
async fn idle_sessions_expire_and_release_lines_and_locks() {
    let tmp = tempfile::tempdir().unwrap();
    let sessions = Arc::new(Sessions::new(Duration::from_millis(150)));
    let sweeper = {
        let s = sessions.clone();
        tokio::spawn(async move { s.run_sweeper().await })
    };
    let s = sessions
        .start(request("c", "expiry", tmp.path()))
        .await
        .unwrap();
    let sim = sim_chip("expiry");
    assert!(!lock_free(tmp.path(), "expiry", 17));
    // Use keeps it alive.
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(80)).await;
        sessions.get(&s.id, "c", 27).unwrap();
    }
    assert_eq!(sessions.count(), 1);
    // Then nothing for a while: the sweeper closes it without any request.
    let t = Instant::now();
    while sessions.count() > 0 && t.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sessions.count(), 0);
    assert!(s.is_closed());
    assert!(!sim.is_requested(17) && !sim.is_requested(27));
    assert!(lock_free(tmp.path(), "expiry", 17));
    assert!(lock_free(tmp.path(), "expiry", 27));
    match sessions.get(&s.id, "c", 27) {
        Err(GpioError::NotFound(m)) => assert!(m.contains("expired"), "{m}"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    let log =
        std::fs::read_to_string(tmp.path().join(format!("gpio-sessions/{}.log", s.id))).unwrap();
    assert!(log.contains("close (expired after 0.15 s idle)"), "{log}");
    sweeper.abort();
}

#[tokio::test]
async fn an_idle_session_is_closed_on_its_next_use_even_without_the_sweeper() {
    let tmp = tempfile::tempdir().unwrap();
    let sessions = Sessions::new(Duration::from_millis(50));
    let s = sessions
        .start(request("c", "lazy-expiry", tmp.path()))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert!(matches!(
        sessions.set(&s.id, "c", 17, true),
        Err(GpioError::NotFound(m)) if m.contains("expired")
    ));
    assert_eq!(sessions.count(), 0);
    assert!(lock_free(tmp.path(), "lazy-expiry", 17));
    // Expiry can be switched off.
    let forever = Sessions::new(Duration::ZERO);
    let s = forever
        .start(request("c", "no-expiry", tmp.path()))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert!(forever.expire_idle().is_empty());
    forever.get(&s.id, "c", 27).unwrap();
}

#[tokio::test]
async fn a_wait_longer_than_the_idle_time_keeps_the_session() {
    let tmp = tempfile::tempdir().unwrap();
    let sessions = Arc::new(Sessions::new(Duration::from_millis(100)));
    let sweeper = {
        let s = sessions.clone();
        tokio::spawn(async move { s.run_sweeper().await })
    };
    let s = sessions
        .start(request("c", "long-wait", tmp.path()))
        .await
        .unwrap();
    drive_later(
        sim_chip("long-wait"),
        27,
        vec![true],
        Duration::from_millis(400),
    );
    assert!(
        sessions
            .wait_edge(&s.id, "c", 27, Edge::Rising, Duration::from_secs(5))
            .await
            .unwrap()
    );
    // The idle clock restarts when the wait ends.
    sessions.get(&s.id, "c", 27).unwrap();
    sweeper.abort();
}

#[tokio::test]
async fn stopping_a_session_ends_its_wait() {
    let tmp = tempfile::tempdir().unwrap();
    let sessions = Arc::new(Sessions::new(Duration::from_secs(300)));
    let s = sessions
        .start(request("c", "stop-wait", tmp.path()))
        .await
        .unwrap();
    let waiter = {
        let (sessions, id) = (sessions.clone(), s.id.clone());
        tokio::spawn(async move {
            sessions
                .wait_value(&id, "c", 27, true, Duration::from_secs(10))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    sessions.stop(&s.id, "c").unwrap();
    let r = tokio::time::timeout(Duration::from_secs(2), waiter)
        .await
        .expect("the wait ends with the session")
        .unwrap();
    assert!(matches!(r, Err(GpioError::NotFound(m)) if m.contains("was closed")));
    assert!(!sim_chip("stop-wait").is_requested(27));
}

#[tokio::test]
async fn close_all_releases_everything() {
    let tmp = tempfile::tempdir().unwrap();
    let sessions = Sessions::new(Duration::from_secs(300));
    sessions
        .start(request("a", "close-all-a", tmp.path()))
        .await
        .unwrap();
    sessions
        .start(request("b", "close-all-b", tmp.path()))
        .await
        .unwrap();
    assert_eq!(sessions.count(), 2);
    sessions.close_all();
    assert_eq!(sessions.count(), 0);
    assert!(lock_free(tmp.path(), "close-all-a", 17));
    assert!(lock_free(tmp.path(), "close-all-b", 27));
}

// ---------------------------------------------------------------- HTTP

struct Server {
    base: String,
    agent: Arc<Agent>,
    _tmp: tempfile::TempDir,
}

impl Server {
    fn work_dir(&self) -> PathBuf {
        self.agent.settings.work_dir.clone()
    }
}

async fn serve() -> Server {
    let tmp = tempfile::tempdir().unwrap();
    let settings = AgentSettings {
        work_dir: tmp.path().to_path_buf(),
        config_path: None,
        token: None,
        self_test_read_inputs: false,
        self_test_read_measurements: false,
        self_test_on_start: false,
        lock_config: Some(lock_config(tmp.path())),
        overrides: Default::default(),
        restart_file: None,
        policy: Default::default(),
    };
    let agent = Arc::new(Agent::new(settings, Registry::default()));
    let app = axum::Router::new()
        .merge(hilt_agent::api::gpio::routes())
        .with_state(agent.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    Server {
        base: format!("http://{addr}"),
        agent,
        _tmp: tmp,
    }
}

/// POSTs JSON (on the blocking pool) and returns the status and the JSON body.
async fn post(base: &str, path: &str, client: Option<&str>, body: Value) -> (u16, Value) {
    let url = format!("{base}{path}");
    let client = client.map(str::to_owned);
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        let mut req = ureq::http::Request::builder()
            .method("POST")
            .uri(&url)
            .header("content-type", "application/json");
        if let Some(c) = &client {
            req = req.header("x-hilt-client", c.as_str());
        }
        let resp = agent
            .run(req.body(body.to_string().into_bytes()).unwrap())
            .unwrap();
        let status = resp.status().as_u16();
        let text = resp.into_body().read_to_string().unwrap();
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, v)
    })
    .await
    .unwrap()
}

fn start_body(chip: &str) -> Value {
    json!({"chip": format!("sim:{chip}"), "lines": {
        "17": {"direction": "output", "bias": null, "edge": null},
        "27": {"direction": "input", "bias": "pull_down", "edge": "both"}}})
}

async fn start_http(srv: &Server, chip: &str, client: Option<&str>) -> String {
    let (st, v) = post(
        &srv.base,
        "/v1/gpio/session/start",
        client,
        start_body(chip),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    v["session_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn http_session_lifecycle() {
    let srv = serve().await;
    let b = &srv.base;
    let (st, v) = post(b, "/v1/gpio/session/start", None, start_body("http-life")).await;
    assert_eq!(st, 200, "{v}");
    let id = v["session_id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 32);
    assert_eq!(v["idle_timeout_s"], json!(300));
    assert_eq!(srv.agent.gpio.count(), 1);
    let sim = sim_chip("http-life");

    let (st, v) = post(
        b,
        "/v1/gpio/set",
        None,
        json!({"session_id": id, "channel": 17, "value": true}),
    )
    .await;
    assert_eq!((st, v), (200, json!({"ok": true})));
    assert!(sim.level(17));
    // `channel` as a string and `value` as 0/1 are accepted too.
    let (st, _) = post(
        b,
        "/v1/gpio/set",
        None,
        json!({"session_id": id, "channel": "17", "value": 0}),
    )
    .await;
    assert_eq!(st, 200);
    assert!(!sim.level(17));

    sim.drive(27, true);
    let (st, v) = post(
        b,
        "/v1/gpio/get",
        None,
        json!({"session_id": id, "channel": 27}),
    )
    .await;
    assert_eq!((st, v), (200, json!({"value": true})));

    let (st, v) = post(
        b,
        "/v1/gpio/wait_value",
        None,
        json!({"session_id": id, "channel": 27, "value": true, "timeout_ms": 0}),
    )
    .await;
    assert_eq!((st, v), (200, json!({"matched": true})));

    let log = srv.work_dir().join(format!("gpio-sessions/{id}.log"));
    assert!(log.is_file());

    let (st, v) = post(b, "/v1/gpio/session/stop", None, json!({"session_id": id})).await;
    assert_eq!((st, v), (200, json!({"ok": true})));
    assert_eq!(srv.agent.gpio.count(), 0);
    assert!(!sim.is_requested(17));

    // Unknown session: 404 with both keys.
    let (st, v) = post(b, "/v1/gpio/session/stop", None, json!({"session_id": id})).await;
    assert_eq!(st, 404);
    assert!(v["error"].is_string() && v["detail"].is_string(), "{v}");
    let (st, v) = post(
        b,
        "/v1/gpio/get",
        None,
        json!({"session_id": id, "channel": 27}),
    )
    .await;
    assert_eq!(st, 404);
    assert_eq!(v["detail"], json!("GPIO session not found"));
}

#[tokio::test]
async fn http_error_statuses() {
    let srv = serve().await;
    let b = &srv.base;
    // Non-integer line key → 400 with BenchCI's text.
    let (st, v) = post(
        b,
        "/v1/gpio/session/start",
        None,
        json!({"chip": "sim:http-err", "lines": {"x17": {"direction": "output"}}}),
    )
    .await;
    assert_eq!(st, 400);
    assert_eq!(v["detail"], json!(BAD_KEY));
    assert_eq!(v["error"], json!(BAD_KEY));
    // Missing direction → 422.
    let (st, v) = post(
        b,
        "/v1/gpio/session/start",
        None,
        json!({"chip": "sim:http-err", "lines": {"17": {"bias": null}}}),
    )
    .await;
    assert_eq!(st, 422, "{v}");
    assert!(v["error"].as_str().unwrap().contains("direction"), "{v}");
    // A real chip path → 422 with the reason.
    let (st, v) = post(
        b,
        "/v1/gpio/session/start",
        None,
        json!({"chip": "/dev/gpiochip0", "lines": {"17": {"direction": "output"}}}),
    )
    .await;
    assert_eq!(st, 422);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("has no GPIO chip at that path"),
        "{v}"
    );

    let id = start_http(&srv, "http-err", None).await;
    // Wrong direction → 409.
    let (st, v) = post(
        b,
        "/v1/gpio/set",
        None,
        json!({"session_id": id, "channel": 27, "value": true}),
    )
    .await;
    assert_eq!(st, 409, "{v}");
    let (st, _) = post(
        b,
        "/v1/gpio/get",
        None,
        json!({"session_id": id, "channel": 17}),
    )
    .await;
    assert_eq!(st, 409);
    // Bad channel → 400.
    let (st, v) = post(
        b,
        "/v1/gpio/get",
        None,
        json!({"session_id": id, "channel": "x"}),
    )
    .await;
    assert_eq!((st, &v["error"]), (400, &json!(BAD_KEY)));
    // timeout_ms over the cap, negative, or an unknown edge → 422.
    for body in [
        json!({"session_id": id, "channel": 27, "value": true, "timeout_ms": 600001}),
        json!({"session_id": id, "channel": 27, "value": true, "timeout_ms": -1}),
    ] {
        let (st, v) = post(b, "/v1/gpio/wait_value", None, body).await;
        assert_eq!(st, 422, "{v}");
    }
    let (st, _) = post(
        b,
        "/v1/gpio/wait_edge",
        None,
        json!({"session_id": id, "channel": 27, "edge": "sideways", "timeout_ms": 1}),
    )
    .await;
    assert_eq!(st, 422);
    // Lines held by the session: a second session on them → 409 naming the holder.
    let (st, v) = post(b, "/v1/gpio/session/start", None, start_body("http-err")).await;
    assert_eq!(st, 409);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains(&format!("gpio-session-{id}")),
        "{v}"
    );
}

#[tokio::test]
async fn http_non_owner_gets_409() {
    let srv = serve().await;
    let b = &srv.base;
    let id = start_http(&srv, "http-owner", Some("alice")).await;
    let (st, v) = post(
        b,
        "/v1/gpio/get",
        Some("bob"),
        json!({"session_id": id, "channel": 27}),
    )
    .await;
    assert_eq!(st, 409);
    assert_eq!(
        v["error"],
        json!(format!("GPIO session {id} belongs to another client"))
    );
    // Without the header the client is its IP address, which is not "alice" either.
    let (st, _) = post(b, "/v1/gpio/session/stop", None, json!({"session_id": id})).await;
    assert_eq!(st, 409);
    let (st, _) = post(
        b,
        "/v1/gpio/get",
        Some("alice"),
        json!({"session_id": id, "channel": 27}),
    )
    .await;
    assert_eq!(st, 200);

    // A session started without the header belongs to the peer address.
    let id2 = start_http(&srv, "http-owner-ip", None).await;
    let (st, _) = post(
        b,
        "/v1/gpio/get",
        None,
        json!({"session_id": id2, "channel": 27}),
    )
    .await;
    assert_eq!(st, 200);
    let (st, _) = post(
        b,
        "/v1/gpio/get",
        Some("someone"),
        json!({"session_id": id2, "channel": 27}),
    )
    .await;
    assert_eq!(st, 409);
    // Naming the address explicitly is the same client.
    let (st, _) = post(
        b,
        "/v1/gpio/get",
        Some("127.0.0.1"),
        json!({"session_id": id2, "channel": 27}),
    )
    .await;
    assert_eq!(st, 200);
}

#[tokio::test]
async fn http_a_wait_does_not_block_other_requests() {
    let srv = serve().await;
    let id = start_http(&srv, "http-block", None).await;
    let waiter = {
        let (base, id) = (srv.base.clone(), id.clone());
        tokio::spawn(async move {
            let t = Instant::now();
            let r = post(
                &base,
                "/v1/gpio/wait_value",
                None,
                json!({"session_id": id, "channel": 27, "value": true, "timeout_ms": 2000}),
            )
            .await;
            (r, t.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..5 {
        let t = Instant::now();
        let (st, v) = post(
            &srv.base,
            "/v1/gpio/get",
            None,
            json!({"session_id": id, "channel": 27}),
        )
        .await;
        assert_eq!((st, v), (200, json!({"value": false})));
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "get took {:?} during a wait",
            t.elapsed()
        );
    }
    assert!(!waiter.is_finished(), "the wait is still running");
    let ((st, v), waited) = waiter.await.unwrap();
    assert_eq!((st, v), (200, json!({"matched": false})));
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
}

#[tokio::test]
async fn http_wait_edge_matches_a_driven_edge() {
    let srv = serve().await;
    let id = start_http(&srv, "http-edge", None).await;
    drive_later(
        sim_chip("http-edge"),
        27,
        vec![true],
        Duration::from_millis(100),
    );
    let t = Instant::now();
    let (st, v) = post(
        &srv.base,
        "/v1/gpio/wait_edge",
        None,
        json!({"session_id": id, "channel": 27, "edge": "rising", "timeout_ms": 5000}),
    )
    .await;
    assert_eq!((st, v), (200, json!({"matched": true})));
    assert!(t.elapsed() < Duration::from_secs(3));
}

#[test]
fn openapi_paths_document_the_gpio_endpoints() {
    use hilt_agent::api::gpio;
    use utoipa::OpenApi;
    #[derive(OpenApi)]
    #[openapi(paths(
        gpio::start,
        gpio::stop,
        gpio::set,
        gpio::get,
        gpio::wait_value,
        gpio::wait_edge
    ))]
    struct Doc;
    let doc = serde_json::to_value(Doc::openapi()).unwrap();
    for p in [
        "/v1/gpio/session/start",
        "/v1/gpio/session/stop",
        "/v1/gpio/set",
        "/v1/gpio/get",
        "/v1/gpio/wait_value",
        "/v1/gpio/wait_edge",
    ] {
        assert!(doc["paths"][p]["post"].is_object(), "{p} missing");
    }
}

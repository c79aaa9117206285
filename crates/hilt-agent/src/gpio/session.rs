//! One GPIO session: its requested lines, resource locks, edge history and log.

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hilt_hw::gpiochip::{ChipLines, LineRequest, Transition, open_chip};
use hilt_hw::locks::{LockConfig, LockSet, LockSpec, acquire};
use hilt_model::bench::{Bias, Direction, Edge};

use super::{GpioError, POLL};

/// Transitions remembered per input line for waits that started before them.
const EDGE_HISTORY: usize = 256;

/// A session log stops growing past this size (a client polling `get` in a loop).
const MAX_LOG_BYTES: u64 = 8 * 1024 * 1024;

/// How one line of a session is requested (the values of the `lines` object): the wire
/// type itself.
pub use hilt_api::GpioLineConfig as LineConfig;

/// What a wait waits for.
#[derive(Debug, Clone, Copy)]
pub(super) enum Want {
    /// The line is at this level now, or went to it since the wait started.
    Value(bool),
    /// A transition the filter accepts since the wait started.
    Edge(Edge),
}

pub struct Session {
    /// 32 lower-case hex digits.
    pub id: String,
    /// The client identity that started the session.
    pub owner: String,
    pub chip: String,
    pub lines: BTreeMap<u32, LineConfig>,
    pub created: Instant,
    state: Mutex<State>,
}

struct State {
    /// `None` once closed.
    hw: Option<Box<dyn ChipLines>>,
    locks: Option<LockSet>,
    last_used: Instant,
    /// Operations in progress (a wait keeps the session from expiring).
    busy: usize,
    edges: BTreeMap<u32, EdgeLog>,
    log: Option<File>,
    log_bytes: u64,
    closed: Option<String>,
}

/// The transitions of one input line, numbered so that each wait sees only later ones.
struct EdgeLog {
    last_level: bool,
    seq: u64,
    recent: VecDeque<(u64, Transition)>,
}

impl EdgeLog {
    fn push(&mut self, t: Transition) {
        self.seq += 1;
        if self.recent.len() == EDGE_HISTORY {
            self.recent.pop_front();
        }
        self.recent.push_back((self.seq, t));
    }

    fn since(&self, seq: u64) -> impl Iterator<Item = Transition> + '_ {
        self.recent
            .iter()
            .filter(move |(s, _)| *s > seq)
            .map(|(_, t)| *t)
    }
}

fn start_failed(e: impl std::fmt::Display) -> String {
    format!("Failed to start GPIO session: {e}")
}

/// The error of a session that could not start, its message saying so.
fn start_error(e: GpioError) -> GpioError {
    match e {
        GpioError::Conflict(m) => GpioError::Conflict(start_failed(m)),
        GpioError::Invalid(m) => GpioError::Invalid(start_failed(m)),
        GpioError::Hardware(m) => GpioError::Hardware(start_failed(m)),
        other => other,
    }
}

impl Session {
    /// Takes the locks, requests the lines and opens the log. Blocking (file locks, chip).
    pub(super) fn open(
        id: String,
        owner: String,
        chip: String,
        lines: BTreeMap<u32, LineConfig>,
        lock_config: Option<LockConfig>,
        log_dir: Option<PathBuf>,
    ) -> Result<Session, GpioError> {
        let config = match lock_config {
            Some(c) => c,
            None => LockConfig::from_env().map_err(|e| GpioError::Hardware(start_failed(e)))?,
        };
        let specs: Vec<LockSpec> = lines
            .keys()
            .map(|n| {
                LockSpec::new(
                    format!("gpio:local:{chip}:{n}"),
                    format!("{chip} line {n}"),
                    "gpio_line",
                )
                .with_detail("backend", "remote_gpio_session")
                .with_detail("session_id", id.clone())
                .with_detail("client", owner.clone())
                .with_detail("line", *n)
            })
            .collect();
        let wrap = |e: hilt_hw::gpiochip::ChipError| start_error(e.into());
        let handle = open_chip(&chip).map_err(wrap)?;
        // A chip that cannot be opened or lacks a line is refused before any lock file is
        // created: such a request would otherwise leave files for lines that do not exist.
        let requests: Vec<LineRequest> = lines
            .iter()
            .map(|(n, c)| LineRequest {
                line: *n,
                direction: c.direction,
                bias: c.bias,
                edge: c.edge,
            })
            .collect();
        handle.check(&requests).map_err(wrap)?;
        let locks = acquire(&config, specs, Some(&format!("gpio-session-{id}")))
            .map_err(|e| start_error(e.into()))?;
        let mut hw = handle
            .request(&requests, &format!("hilt-agent session {id} ({owner})"))
            .map_err(wrap)?;
        let mut edges = BTreeMap::new();
        for (n, c) in &lines {
            if c.direction == Direction::Input {
                let _ = hw.read_edges(*n).map_err(wrap)?;
                let level = hw.get(*n).map_err(wrap)?;
                edges.insert(
                    *n,
                    EdgeLog {
                        last_level: level,
                        seq: 0,
                        recent: VecDeque::new(),
                    },
                );
            }
        }
        let log = log_dir.and_then(|dir| {
            let path = dir.join(format!("{id}.log"));
            std::fs::create_dir_all(&dir)
                .and_then(|()| File::options().create(true).append(true).open(&path))
                .map_err(|e| tracing::warn!(path = %path.display(), error = %e, "cannot write the GPIO session log"))
                .ok()
        });
        let now = Instant::now();
        let session = Session {
            id,
            owner,
            chip,
            lines,
            created: now,
            state: Mutex::new(State {
                hw: Some(hw),
                locks: Some(locks),
                last_used: now,
                busy: 0,
                edges,
                log,
                log_bytes: 0,
                closed: None,
            }),
        };
        {
            let mut st = session.state();
            let desc: Vec<String> = session
                .lines
                .iter()
                .map(|(n, c)| {
                    let mut d = format!("{n}:{}", direction_name(c.direction));
                    if let Some(b) = c.bias {
                        d.push_str(&format!(",bias={}", bias_name(b)));
                    }
                    if let Some(e) = c.edge {
                        d.push_str(&format!(",edge={}", e.as_str()));
                    }
                    d
                })
                .collect();
            let locked = st.locks.as_ref().is_some_and(|l| l.enabled());
            let msg = format!(
                "start chip={} lines=[{}] client={} resource_locks={}",
                session.chip,
                desc.join(" "),
                session.owner,
                if locked { "held" } else { "disabled" }
            );
            st.write_log(&msg);
        }
        Ok(session)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// When the session was last used (end of the last operation).
    pub fn last_used(&self) -> Instant {
        self.state().last_used
    }

    /// `true` once stopped or expired.
    pub fn is_closed(&self) -> bool {
        self.state().closed.is_some()
    }

    /// The resource-lock metadata (`enabled`, `lock_dir`, `locks`), `Null` once closed.
    pub fn lock_metadata(&self) -> serde_json::Value {
        self.state()
            .locks
            .as_ref()
            .map(LockSet::metadata)
            .unwrap_or_default()
    }

    /// Unused for at least `idle` (zero = never) and no operation in progress.
    pub(super) fn is_idle(&self, idle: Duration) -> bool {
        if idle.is_zero() {
            return false;
        }
        let st = self.state();
        st.closed.is_none() && st.busy == 0 && st.last_used.elapsed() >= idle
    }

    /// Releases the lines, then the locks. Idempotent.
    pub(super) fn close(&self, reason: &str) {
        let mut st = self.state();
        if st.closed.is_some() {
            return;
        }
        drop(st.hw.take());
        if let Some(l) = st.locks.take() {
            l.release();
        }
        st.edges.clear();
        let age = self.created.elapsed().as_secs_f64();
        st.write_log(&format!(
            "close ({reason}) after {age:.3} s; lines and locks released"
        ));
        st.closed = Some(reason.to_owned());
        st.log = None;
    }

    /// The line must be in the session with direction `want`.
    fn check_line(&self, line: u32, want: Direction, op: &str) -> Result<(), GpioError> {
        match self.lines.get(&line) {
            None => {
                let have: Vec<String> = self.lines.keys().map(u32::to_string).collect();
                Err(GpioError::Conflict(format!(
                    "GPIO line {line} is not part of session {} (its lines: {})",
                    self.id,
                    have.join(", ")
                )))
            }
            Some(c) if c.direction != want => Err(GpioError::Conflict(format!(
                "cannot {op} GPIO line {line} of session {}: it is requested as an {}; {op} \
                 needs an {} line",
                self.id,
                direction_name(c.direction),
                direction_name(want)
            ))),
            Some(_) => Ok(()),
        }
    }

    fn closed_error(&self, st: &State) -> GpioError {
        GpioError::NotFound(format!(
            "{}: session {} was closed ({})",
            super::NOT_FOUND,
            self.id,
            st.closed.as_deref().unwrap_or("closed")
        ))
    }

    pub(super) fn set(&self, line: u32, value: bool) -> Result<(), GpioError> {
        self.check_line(line, Direction::Output, "set")?;
        let mut st = self.state();
        let Some(hw) = st.hw.as_mut() else {
            return Err(self.closed_error(&st));
        };
        let r = hw.set(line, value);
        match r {
            Ok(()) => {
                st.write_log(&format!("set {line}={}", u8::from(value)));
                Ok(())
            }
            Err(e) => {
                st.write_log(&format!("set {line}={} failed: {e}", u8::from(value)));
                Err(GpioError::Hardware(format!("GPIO set failed: {e}")))
            }
        }
    }

    pub(super) fn get(&self, line: u32) -> Result<bool, GpioError> {
        self.check_line(line, Direction::Input, "get")?;
        let mut st = self.state();
        match st.sample(line) {
            Ok(Some((level, _))) => {
                st.write_log(&format!("get {line} -> {}", u8::from(level)));
                Ok(level)
            }
            Ok(None) => Err(self.closed_error(&st)),
            Err(e) => {
                st.write_log(&format!("get {line} failed: {e}"));
                Err(GpioError::Hardware(format!("GPIO get failed: {e}")))
            }
        }
    }

    /// Samples the line, then every [`POLL`] until `want` is seen or `timeout` passes. No
    /// lock is held across an await.
    pub(super) async fn wait(
        &self,
        line: u32,
        want: Want,
        timeout: Duration,
    ) -> Result<bool, GpioError> {
        let (op, what) = match want {
            Want::Value(v) => ("wait_value", format!("value={}", u8::from(v))),
            Want::Edge(e) => ("wait_edge", format!("edge={}", e.as_str())),
        };
        self.check_line(line, Direction::Input, op)?;
        let started = Instant::now();
        let deadline = started + timeout;
        let (mut matched, seq0) = self.check_wait(line, want, None)?;
        self.state().write_log(&format!(
            "{op} {line} {what} timeout_ms={} begins",
            timeout.as_millis()
        ));
        while !matched {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            tokio::time::sleep(POLL.min(deadline - now)).await;
            matched = self.check_wait(line, want, Some(seq0))?.0;
        }
        self.state().write_log(&format!(
            "{op} {line} {what} -> matched={matched} after {} ms",
            started.elapsed().as_millis()
        ));
        Ok(matched)
    }

    /// One sample: whether `want` holds (considering transitions after `since`), and the
    /// line's current transition number.
    fn check_wait(
        &self,
        line: u32,
        want: Want,
        since: Option<u64>,
    ) -> Result<(bool, u64), GpioError> {
        let mut st = self.state();
        let (level, seq) = match st.sample(line) {
            Ok(Some(x)) => x,
            Ok(None) => return Err(self.closed_error(&st)),
            Err(e) => {
                st.write_log(&format!("wait on {line} failed: {e}"));
                return Err(GpioError::Hardware(format!("GPIO wait failed: {e}")));
            }
        };
        let mut seen = since.into_iter().flat_map(|s| st.edges[&line].since(s));
        let matched = match want {
            Want::Value(v) => level == v || seen.any(|t| t.level() == v),
            Want::Edge(e) => seen.any(|t| t.matches(e)),
        };
        Ok((matched, seq))
    }
}

impl State {
    /// Reads the line and folds new transitions into its edge log. `Ok(None)` once closed.
    fn sample(&mut self, line: u32) -> Result<Option<(bool, u64)>, hilt_hw::gpiochip::ChipError> {
        let State { hw, edges, .. } = self;
        let Some(hw) = hw.as_mut() else {
            return Ok(None);
        };
        let events = hw.read_edges(line)?;
        let level = hw.get(line)?;
        let log = edges.entry(line).or_insert_with(|| EdgeLog {
            last_level: level,
            seq: 0,
            recent: VecDeque::new(),
        });
        match events {
            Some(ts) => ts.into_iter().for_each(|t| log.push(t)),
            None if level != log.last_level => log.push(Transition::to_level(level)),
            None => {}
        }
        log.last_level = level;
        Ok(Some((level, log.seq)))
    }

    fn write_log(&mut self, msg: &str) {
        let Some(f) = self.log.as_mut() else {
            return;
        };
        if self.log_bytes >= MAX_LOG_BYTES {
            return;
        }
        let mut text = format!("{} {msg}\n", hilt_model::run::now());
        self.log_bytes += text.len() as u64;
        if self.log_bytes >= MAX_LOG_BYTES {
            text.push_str("log size limit reached; further operations are not logged\n");
        }
        let _ = f.write_all(text.as_bytes());
    }
}

/// A session in use: no expiry until dropped, then `last_used` is now.
pub(super) struct Use(Arc<Session>);

impl Use {
    pub(super) fn new(s: Arc<Session>) -> Use {
        s.state().busy += 1;
        Use(s)
    }
}

impl std::ops::Deref for Use {
    type Target = Session;
    fn deref(&self) -> &Session {
        &self.0
    }
}

impl Drop for Use {
    fn drop(&mut self) {
        let mut st = self.0.state();
        st.busy = st.busy.saturating_sub(1);
        st.last_used = Instant::now();
    }
}

fn direction_name(d: Direction) -> &'static str {
    match d {
        Direction::Input => "input",
        Direction::Output => "output",
    }
}

fn bias_name(b: Bias) -> &'static str {
    match b {
        Bias::Disabled => "disabled",
        Bias::PullUp => "pull_up",
        Bias::PullDown => "pull_down",
    }
}

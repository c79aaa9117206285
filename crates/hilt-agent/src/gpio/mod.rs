//! Remote GPIO sessions (agent-api §3.11), with what BenchCI lacks (§7 item 5):
//!
//! - **Ownership**: a session belongs to the client that started it (the `X-Hilt-Client`
//!   header, else the peer IP address); anyone else gets [`GpioError::NotOwner`] (409).
//! - **Resource locks**: a session takes the BenchCI lock key `gpio:local:<chip>:<line>` of
//!   every line, so a local `hilt run` (or BenchCI run, or an agent run) on the same lines
//!   conflicts with it, and the other way round.
//! - **Idle expiry**: a session unused for `idle` is closed by [`sweeper`] (and lazily on
//!   the next lookup); closing releases the lines and their locks. A wait in progress
//!   keeps its session alive.
//! - **Non-blocking waits**: waits poll every [`POLL`] with `tokio::time`, never holding a
//!   lock across an `.await`; `timeout_ms` is capped at [`MAX_WAIT`].
//!
//! Every operation is logged to `<work_dir>/gpio-sessions/<session_id>.log`.

mod session;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hilt_hw::gpiochip::ChipError;
use hilt_hw::locks::{LockConfig, LockError};
use hilt_model::bench::Edge;

pub use session::{LineConfig, Session};

use session::Use;

/// Longest accepted `timeout_ms` of a wait.
pub const MAX_WAIT: Duration = Duration::from_secs(600);

/// How often a wait samples its line.
pub const POLL: Duration = Duration::from_millis(2);

/// Expired session ids remembered for a clearer 404.
const EXPIRED_MEMORY: usize = 256;

/// Errors of GPIO session operations; the API maps each variant to one status.
#[derive(Debug, thiserror::Error)]
pub enum GpioError {
    /// 400: a line key or channel that is not a decimal integer, a line listed twice.
    #[error("{0}")]
    BadRequest(String),
    /// 404: no such session (never started, stopped or expired).
    #[error("{0}")]
    NotFound(String),
    /// 409: the session belongs to another client.
    #[error("GPIO session {0} belongs to another client")]
    NotOwner(String),
    /// 409: the line is not in the session, has the wrong direction, or is held by
    /// someone else (resource lock or chip request).
    #[error("{0}")]
    Conflict(String),
    /// 422: a request the agent cannot serve (no lines, timeout too long, unsupported chip).
    #[error("{0}")]
    Invalid(String),
    /// 500: the hardware or the host failed.
    #[error("{0}")]
    Hardware(String),
    /// 413: one request asks for more lines than a session may hold.
    #[error("{0}")]
    TooLarge(String),
    /// 429: the agent already holds as many sessions or lines as it allows.
    #[error("{0}")]
    TooMany(String),
}

/// Bounds on remote GPIO sessions (agent.yaml `limits:`).
#[derive(Debug, Clone, Copy)]
pub struct GpioLimits {
    pub lines_per_session: usize,
    pub sessions: usize,
    pub lines_total: usize,
}

impl GpioLimits {
    pub fn unlimited() -> GpioLimits {
        GpioLimits {
            lines_per_session: usize::MAX,
            sessions: usize::MAX,
            lines_total: usize::MAX,
        }
    }

    pub fn from(l: &hilt_model::agent::AgentLimits) -> GpioLimits {
        let n = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        GpioLimits {
            lines_per_session: n(l.max_gpio_lines_per_session),
            sessions: n(l.max_gpio_sessions),
            lines_total: n(l.max_gpio_lines_total),
        }
    }
}

/// The message of an unknown session (BenchCI's text).
pub const NOT_FOUND: &str = "GPIO session not found";

/// The message of a line key that is not a decimal integer (BenchCI's text).
pub const BAD_KEY: &str = "GPIO channel key must be an integer string.";

/// Parses a line key / channel: ASCII decimal digits only.
pub fn parse_line(key: &str) -> Result<u32, GpioError> {
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_digit()) {
        return Err(GpioError::BadRequest(BAD_KEY.into()));
    }
    key.parse()
        .map_err(|_| GpioError::BadRequest(BAD_KEY.into()))
}

/// What `session/start` asks for.
#[derive(Debug, Clone)]
pub struct StartRequest {
    /// Client identity (see the module docs).
    pub owner: String,
    /// Chip path: `/dev/gpiochipN` or `sim:<name>`.
    pub chip: String,
    /// Line key (decimal string) → configuration.
    pub lines: BTreeMap<String, LineConfig>,
    /// `None` reads the lock environment variables.
    pub lock_config: Option<LockConfig>,
    /// Where `<session_id>.log` goes; `None` = no log.
    pub log_dir: Option<PathBuf>,
}

/// All open sessions of the agent.
pub struct Sessions {
    idle: Duration,
    /// Sessions and lines being opened right now (counted against the limits).
    opening: Mutex<(usize, usize)>,
    map: Mutex<HashMap<String, Arc<Session>>>,
    expired: Mutex<VecDeque<String>>,
}

impl Sessions {
    /// `idle` = how long an unused session lives; zero disables expiry.
    pub fn new(idle: Duration) -> Sessions {
        Sessions {
            idle,
            map: Mutex::new(HashMap::new()),
            opening: Mutex::new((0, 0)),
            expired: Mutex::new(VecDeque::new()),
        }
    }

    pub fn idle_timeout(&self) -> Duration {
        self.idle
    }

    /// Open sessions.
    pub fn count(&self) -> usize {
        self.map().len()
    }

    fn map(&self) -> MutexGuard<'_, HashMap<String, Arc<Session>>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A snapshot of the open sessions (id, owner, chip, idle time).
    pub fn list(&self) -> Vec<Arc<Session>> {
        let mut v: Vec<Arc<Session>> = self.map().values().cloned().collect();
        v.sort_by_key(|s| s.created);
        v
    }

    /// Opens a session: parses the lines, takes their resource locks, requests them from
    /// the chip. Blocking work runs on the blocking pool. Returns the open session.
    pub async fn start(&self, req: StartRequest) -> Result<Arc<Session>, GpioError> {
        self.start_within(req, GpioLimits::unlimited()).await
    }

    /// [`Sessions::start`] within `limits`: a request over the per-session line limit is
    /// refused (413), and one that would take the agent over its session or total line
    /// limit too (429) — before any lock file is touched or line requested.
    pub async fn start_within(
        &self,
        req: StartRequest,
        limits: GpioLimits,
    ) -> Result<Arc<Session>, GpioError> {
        if req.lines.len() > limits.lines_per_session {
            return Err(GpioError::TooLarge(format!(
                "a GPIO session may hold at most {} lines; this request asks for {} (limits.max_gpio_lines_per_session)",
                limits.lines_per_session,
                req.lines.len()
            )));
        }
        let _reserved = self.reserve(req.lines.len(), limits)?;
        let mut lines = BTreeMap::new();
        for (key, cfg) in &req.lines {
            let n = parse_line(key)?;
            if lines.insert(n, *cfg).is_some() {
                return Err(GpioError::BadRequest(format!(
                    "GPIO line {n} is listed twice"
                )));
            }
        }
        if lines.is_empty() {
            return Err(GpioError::Invalid(
                "a GPIO session needs at least one line".into(),
            ));
        }
        if req.chip.trim().is_empty() {
            return Err(GpioError::Invalid("the GPIO chip path is empty".into()));
        }
        let id = uuid::Uuid::new_v4().simple().to_string();
        let session = tokio::task::spawn_blocking(move || {
            Session::open(id, req.owner, req.chip, lines, req.lock_config, req.log_dir)
        })
        .await
        .map_err(|e| GpioError::Hardware(format!("Failed to start GPIO session: {e}")))??;
        let session = Arc::new(session);
        self.map().insert(session.id.clone(), session.clone());
        Ok(session)
    }

    /// Counts a session of `n` lines as opening until the guard drops; refuses it when the
    /// open and opening sessions would exceed `limits`.
    fn reserve(&self, n: usize, limits: GpioLimits) -> Result<Reservation<'_>, GpioError> {
        let map = self.map();
        let mut opening = self.opening.lock().unwrap_or_else(|e| e.into_inner());
        let sessions = map.len() + opening.0;
        let lines = map.values().map(|s| s.lines.len()).sum::<usize>() + opening.1;
        if sessions >= limits.sessions {
            return Err(GpioError::TooMany(format!(
                "the agent already has {sessions} GPIO sessions open, its limit (limits.max_gpio_sessions); stop one and retry"
            )));
        }
        if lines.saturating_add(n) > limits.lines_total {
            return Err(GpioError::TooMany(format!(
                "GPIO sessions already hold {lines} lines and this one asks for {n}: over the agent's limit of {} (limits.max_gpio_lines_total); stop a session and retry",
                limits.lines_total
            )));
        }
        opening.0 += 1;
        opening.1 += n;
        Ok(Reservation { sessions: self, n })
    }

    /// Finds a session for `owner` and marks it in use until the guard drops. An idle
    /// session found here is closed first (as if the sweeper had run).
    fn lookup(&self, id: &str, owner: &str) -> Result<Use, GpioError> {
        let mut map = self.map();
        let Some(s) = map.get(id).cloned() else {
            drop(map);
            return Err(self.not_found(id));
        };
        if s.is_idle(self.idle) {
            map.remove(id);
            drop(map);
            self.close(&s, &self.expiry_reason());
            return Err(self.not_found(id));
        }
        if s.owner != owner {
            return Err(GpioError::NotOwner(id.to_owned()));
        }
        Ok(Use::new(s))
    }

    fn not_found(&self, id: &str) -> GpioError {
        let expired = self
            .expired
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|x| x == id);
        if expired {
            GpioError::NotFound(format!(
                "{NOT_FOUND}: session {id} expired after {} s without use; start a new session",
                self.idle.as_secs_f64()
            ))
        } else {
            GpioError::NotFound(NOT_FOUND.into())
        }
    }

    fn expiry_reason(&self) -> String {
        format!("expired after {} s idle", self.idle.as_secs_f64())
    }

    fn close(&self, s: &Session, reason: &str) {
        s.close(reason);
        if reason.starts_with("expired") {
            let mut e = self.expired.lock().unwrap_or_else(|e| e.into_inner());
            if e.len() == EXPIRED_MEMORY {
                e.pop_front();
            }
            e.push_back(s.id.clone());
        }
    }

    /// Closes a session: releases its lines, then its locks.
    pub fn stop(&self, id: &str, owner: &str) -> Result<(), GpioError> {
        let s = {
            let mut map = self.map();
            match map.get(id) {
                None => None,
                Some(s) if s.owner != owner && !s.is_idle(self.idle) => {
                    return Err(GpioError::NotOwner(id.to_owned()));
                }
                Some(_) => map.remove(id),
            }
        };
        let Some(s) = s else {
            return Err(self.not_found(id));
        };
        if s.is_idle(self.idle) {
            self.close(&s, &self.expiry_reason());
            return Err(self.not_found(id));
        }
        self.close(&s, "stopped by the client");
        Ok(())
    }

    /// Drives an output line to a physical level.
    pub fn set(&self, id: &str, owner: &str, line: u32, value: bool) -> Result<(), GpioError> {
        self.lookup(id, owner)?.set(line, value)
    }

    /// Reads an input line's physical level.
    pub fn get(&self, id: &str, owner: &str, line: u32) -> Result<bool, GpioError> {
        self.lookup(id, owner)?.get(line)
    }

    /// Waits until an input line is at `value` (or passed through it). `Ok(false)` on
    /// timeout.
    pub async fn wait_value(
        &self,
        id: &str,
        owner: &str,
        line: u32,
        value: bool,
        timeout: Duration,
    ) -> Result<bool, GpioError> {
        check_timeout(timeout)?;
        let u = self.lookup(id, owner)?;
        u.wait(line, session::Want::Value(value), timeout).await
    }

    /// Waits for an edge on an input line. `Ok(false)` on timeout.
    pub async fn wait_edge(
        &self,
        id: &str,
        owner: &str,
        line: u32,
        edge: Edge,
        timeout: Duration,
    ) -> Result<bool, GpioError> {
        check_timeout(timeout)?;
        let u = self.lookup(id, owner)?;
        u.wait(line, session::Want::Edge(edge), timeout).await
    }

    /// Closes every session unused for the idle time (none while a wait runs). Returns the
    /// ids closed.
    pub fn expire_idle(&self) -> Vec<String> {
        let idle: Vec<Arc<Session>> = {
            let mut map = self.map();
            let ids: Vec<String> = map
                .values()
                .filter(|s| s.is_idle(self.idle))
                .map(|s| s.id.clone())
                .collect();
            ids.iter().filter_map(|id| map.remove(id)).collect()
        };
        let reason = self.expiry_reason();
        for s in &idle {
            self.close(s, &reason);
        }
        idle.iter().map(|s| s.id.clone()).collect()
    }

    /// Closes every session (agent shutdown).
    pub fn close_all(&self) {
        let all: Vec<Arc<Session>> = self.map().drain().map(|(_, s)| s).collect();
        for s in all {
            self.close(&s, "agent shutting down");
        }
    }

    /// How often [`Sessions::run_sweeper`] looks for idle sessions.
    pub fn sweep_period(&self) -> Duration {
        (self.idle / 4).clamp(Duration::from_millis(10), Duration::from_secs(1))
    }

    /// Expires idle sessions forever (spawn it; it ends with the runtime). Returns at once
    /// when expiry is disabled.
    pub async fn run_sweeper(&self) {
        if self.idle.is_zero() {
            return;
        }
        let mut tick = tokio::time::interval(self.sweep_period());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            for id in self.expire_idle() {
                tracing::info!(
                    session_id = %id,
                    reason = %self.expiry_reason(),
                    "GPIO session closed; its lines and locks are released"
                );
            }
        }
    }
}

fn check_timeout(timeout: Duration) -> Result<(), GpioError> {
    if timeout > MAX_WAIT {
        return Err(GpioError::Invalid(format!(
            "timeout_ms must be at most {} ms",
            MAX_WAIT.as_millis()
        )));
    }
    Ok(())
}

impl From<ChipError> for GpioError {
    fn from(e: ChipError) -> GpioError {
        match e {
            ChipError::Unsupported(_) => GpioError::Invalid(e.to_string()),
            ChipError::Busy { .. } | ChipError::NotRequested { .. } => {
                GpioError::Conflict(e.to_string())
            }
            ChipError::Io { .. } => GpioError::Hardware(e.to_string()),
        }
    }
}

impl From<LockError> for GpioError {
    fn from(e: LockError) -> GpioError {
        match e {
            LockError::Busy { .. } => GpioError::Conflict(e.to_string()),
            LockError::Dir { .. } | LockError::Io { .. } => GpioError::Hardware(e.to_string()),
        }
    }
}

/// A session being opened, counted against the limits until it is in the map (or failed).
struct Reservation<'a> {
    sessions: &'a Sessions,
    n: usize,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let mut o = self
            .sessions
            .opening
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        o.0 -= 1;
        o.1 -= self.n;
    }
}

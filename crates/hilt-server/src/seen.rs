//! When an agent was last seen, without a write per call: an agent call records
//! `agents.last_seen_at` (with its machine name and version headers) only when this process
//! has not recorded it, with the same headers, within [`Seen::every`]. Each replica keeps its
//! own memory; the recorded time lags the last call by at most `every`, a small fraction of
//! the lease that judges an agent lost.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Agents remembered at most; beyond it the entries older than `every` are dropped.
const MAX_REMEMBERED: usize = 100_000;

pub struct Seen {
    every: Duration,
    /// Agent id → (when recorded, hash of what was recorded).
    recorded: Mutex<HashMap<String, (Instant, u64)>>,
}

/// What a call records besides the time: the row is rewritten when any of it changes.
pub fn fingerprint(parts: &[Option<&str>]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    parts.hash(&mut h);
    h.finish()
}

impl Seen {
    /// Records at most every twentieth of the lease, and at least every 5 s.
    pub fn new(lease: Duration) -> Seen {
        Seen {
            every: (lease / 20).min(Duration::from_secs(5)),
            recorded: Mutex::new(HashMap::new()),
        }
    }

    /// How stale a recorded last-seen time may be.
    pub fn every(&self) -> Duration {
        self.every
    }

    /// Whether this call must be recorded.
    pub fn due(&self, agent_id: &str, fingerprint: u64) -> bool {
        let recorded = self.recorded.lock().unwrap_or_else(|e| e.into_inner());
        match recorded.get(agent_id) {
            Some((at, fp)) => *fp != fingerprint || at.elapsed() >= self.every,
            None => true,
        }
    }

    /// The call was recorded (call after the write succeeded).
    pub fn recorded(&self, agent_id: &str, fingerprint: u64) {
        let mut recorded = self.recorded.lock().unwrap_or_else(|e| e.into_inner());
        if recorded.len() >= MAX_REMEMBERED && !recorded.contains_key(agent_id) {
            let every = self.every;
            recorded.retain(|_, (at, _)| at.elapsed() < every);
        }
        recorded.insert(agent_id.to_string(), (Instant::now(), fingerprint));
    }

    /// Forgets an agent (its row was removed): its next call records it again.
    pub fn forget(&self, agent_id: &str) {
        let mut recorded = self.recorded.lock().unwrap_or_else(|e| e.into_inner());
        recorded.remove(agent_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_once_per_period_and_on_every_change() {
        let seen = Seen::new(Duration::from_millis(200));
        assert_eq!(seen.every(), Duration::from_millis(10));
        let a = fingerprint(&[Some("m1"), Some("1.0")]);
        let b = fingerprint(&[Some("m1"), Some("1.1")]);
        assert!(seen.due("agent", a));
        seen.recorded("agent", a);
        assert!(!seen.due("agent", a), "recorded just now");
        assert!(seen.due("agent", b), "a changed header is recorded at once");
        assert!(seen.due("other", a), "another agent is its own entry");
        std::thread::sleep(Duration::from_millis(15));
        assert!(seen.due("agent", a), "recorded again after the period");
        seen.recorded("agent", a);
        seen.forget("agent");
        assert!(seen.due("agent", a), "a forgotten agent is recorded again");
    }

    #[test]
    fn period_is_at_most_five_seconds() {
        assert_eq!(
            Seen::new(Duration::from_secs(180)).every(),
            Duration::from_secs(5)
        );
    }
}

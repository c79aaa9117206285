//! Exponential back-off with full jitter, bounded: the wait before retry `n` is a random
//! duration in `[base·2ⁿ / 2, base·2ⁿ]`, never above `max`. Half the nominal wait is kept
//! (not zero to the nominal, "full jitter") so a flapping server is never hammered, and the
//! other half spreads a fleet of agents that lost the same server apart.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Backoff {
        Backoff {
            base,
            max: max.max(base),
            attempt: 0,
        }
    }

    /// The agent's network back-off: 250 ms doubling up to 30 s.
    pub fn network() -> Backoff {
        Backoff::new(Duration::from_millis(250), Duration::from_secs(30))
    }

    /// The nominal (un-jittered) wait of the next retry.
    pub fn nominal(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(20)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// The wait before the next retry; each call doubles the nominal wait up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let nominal = self.nominal();
        self.attempt = self.attempt.saturating_add(1);
        let half = nominal / 2;
        let spread = (nominal - half).as_nanos() as u64;
        let jitter = if spread == 0 {
            0
        } else {
            random() % (spread + 1)
        };
        half + Duration::from_nanos(jitter)
    }

    /// After a success: the next failure starts from the base again.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// Whether the failure just counted is worth a log line: the first, then every tenth.
    pub fn worth_logging(&self) -> bool {
        self.attempt == 1 || self.attempt.is_multiple_of(10)
    }
}

/// A random u64 from the standard library's per-process random hash keys (no RNG crate
/// for a jitter).
fn random() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_within_jitter_and_stays_bounded() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let mut nominal = Duration::from_millis(100);
        for _ in 0..12 {
            let d = b.next_delay();
            assert!(
                d >= nominal / 2 && d <= nominal,
                "{d:?} outside [{nominal:?}/2, {nominal:?}]"
            );
            nominal = (nominal * 2).min(Duration::from_secs(2));
        }
        // Capped: many more attempts never exceed the maximum (and never overflow).
        for _ in 0..100 {
            assert!(b.next_delay() <= Duration::from_secs(2));
        }
        assert_eq!(b.nominal(), Duration::from_secs(2));
        b.reset();
        assert_eq!(b.nominal(), Duration::from_millis(100));
        assert_eq!(b.attempts(), 0);
    }

    #[test]
    fn jitter_spreads_the_waits() {
        let waits: std::collections::HashSet<Duration> = (0..20)
            .map(|_| Backoff::new(Duration::from_secs(1), Duration::from_secs(1)).next_delay())
            .collect();
        assert!(waits.len() > 10, "jitter is not random: {waits:?}");
    }
}

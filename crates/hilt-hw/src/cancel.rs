//! Cooperative cancellation shared by every layer that waits.
//!
//! A run is cancelled by Ctrl-C, SIGTERM or (later) the agent. Waiting code never polls a
//! flag in a busy loop: it calls [`CancelToken::wait_timeout`], which wakes at once when the
//! token is cancelled.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// A clonable handle; all clones observe the same cancellation.
#[derive(Clone, Default)]
pub struct CancelToken {
    inner: Arc<(Mutex<bool>, Condvar)>,
}

impl std::fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelToken")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels the token and wakes every waiter.
    pub fn cancel(&self) {
        let (lock, cvar) = &*self.inner;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cvar.notify_all();
    }

    pub fn is_cancelled(&self) -> bool {
        *self.inner.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sleeps for `dur` unless cancelled first. Returns `true` when cancelled.
    pub fn wait_timeout(&self, dur: Duration) -> bool {
        let deadline = Instant::now() + dur;
        let (lock, cvar) = &*self.inner;
        let mut cancelled = lock.lock().unwrap_or_else(|e| e.into_inner());
        while !*cancelled {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            cancelled = cvar
                .wait_timeout(cancelled, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_returns_early_on_cancel() {
        let t = CancelToken::new();
        let t2 = t.clone();
        let h = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            t2.cancel();
        });
        let start = Instant::now();
        assert!(t.wait_timeout(Duration::from_secs(10)));
        assert!(start.elapsed() < Duration::from_secs(5));
        h.join().unwrap();
    }

    #[test]
    fn wait_times_out_without_cancel() {
        let t = CancelToken::new();
        assert!(!t.wait_timeout(Duration::from_millis(5)));
        assert!(!t.is_cancelled());
    }
}

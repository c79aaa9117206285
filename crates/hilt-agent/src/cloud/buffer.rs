//! The events of one run on their way to the server. The runner pushes; one sender thread
//! takes batches. An event gets its `seq` only when it is first put in a batch, and a batch
//! is sent again, unchanged, until the server acknowledges it: the server stores each
//! `(run, seq)` once, so a replay after a lost answer or a server restart stores nothing
//! twice, and numbers are never skipped.
//!
//! Bounded: while the server is unreachable at most `cap` events wait; beyond that the
//! oldest waiting ones are dropped (never the in-flight batch) and the next batch starts
//! with an `agent.events_dropped` event saying how many, so the loss is visible in the
//! run's log instead of silent.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hilt_api::RunEvent;
use serde_json::json;

pub const DROPPED: &str = "agent.events_dropped";

pub struct EventBuffer {
    inner: Mutex<Inner>,
    cv: Condvar,
}

struct Inner {
    pending: VecDeque<RunEvent>,
    in_flight: Vec<RunEvent>,
    next_seq: u64,
    unreported: u64,
    dropped_all: u64,
    closed: bool,
    cap: usize,
}

impl EventBuffer {
    pub fn new(cap: usize) -> EventBuffer {
        EventBuffer {
            inner: Mutex::new(Inner {
                pending: VecDeque::new(),
                in_flight: Vec::new(),
                next_seq: 1,
                unreported: 0,
                dropped_all: 0,
                closed: false,
                cap: cap.max(1),
            }),
            cv: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn push(&self, e: RunEvent) {
        let mut g = self.lock();
        if g.pending.len() >= g.cap {
            g.pending.pop_front();
            g.unreported += 1;
            g.dropped_all += 1;
        }
        g.pending.push_back(e);
        drop(g);
        self.cv.notify_all();
    }

    /// No more events will come (the run's final event was pushed).
    pub fn close(&self) {
        self.lock().closed = true;
        self.cv.notify_all();
    }

    /// The batch to send: the unacknowledged one again, else up to `max` waiting events,
    /// about `max_bytes` of JSON at most (always at least one), numbered now. Waits up to
    /// `wait` for an event; `None` when there is nothing to send.
    pub fn batch(&self, max: usize, max_bytes: usize, wait: Duration) -> Option<Vec<RunEvent>> {
        let deadline = Instant::now() + wait;
        let mut g = self.lock();
        loop {
            if !g.in_flight.is_empty() {
                return Some(g.in_flight.clone());
            }
            if !g.pending.is_empty() {
                break;
            }
            let now = Instant::now();
            if g.closed || now >= deadline {
                return None;
            }
            g = self
                .cv
                .wait_timeout(g, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        let mut batch = Vec::with_capacity(max.min(g.pending.len() + 1));
        if g.unreported > 0 {
            let n = std::mem::take(&mut g.unreported);
            batch.push(RunEvent {
                seq: 0,
                timestamp: hilt_model::run::now(),
                event_type: DROPPED.into(),
                message: Some(format!(
                    "{n} events were dropped while the server was unreachable (buffer full)"
                )),
                data: json!({ "count": n })
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            });
        }
        let mut bytes = 0;
        while batch.len() < max.max(1) {
            let Some(e) = g.pending.front() else {
                break;
            };
            let size = serde_json::to_string(e).map_or(0, |t| t.len());
            if !batch.is_empty() && bytes + size > max_bytes {
                break;
            }
            bytes += size;
            if let Some(e) = g.pending.pop_front() {
                batch.push(e);
            }
        }
        for e in &mut batch {
            e.seq = g.next_seq;
            g.next_seq += 1;
        }
        g.in_flight = batch.clone();
        Some(batch)
    }

    /// The server refused the in-flight batch itself (too large, say): keep its seqs but
    /// strip it to each event's type and `why`, so the run's numbering stays whole and the
    /// loss is visible. False when it was stripped already.
    pub fn strip_in_flight(&self, why: &str) -> bool {
        let mut g = self.lock();
        if g.in_flight
            .iter()
            .all(|e| e.data.is_empty() && e.message.as_deref() == Some(why))
        {
            return false;
        }
        for e in &mut g.in_flight {
            e.data.clear();
            e.message = Some(why.to_string());
        }
        true
    }

    /// The server stored the in-flight batch.
    pub fn ack(&self) {
        self.lock().in_flight.clear();
        self.cv.notify_all();
    }

    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Closed and everything acknowledged.
    pub fn drained(&self) -> bool {
        let g = self.lock();
        g.closed && g.pending.is_empty() && g.in_flight.is_empty()
    }

    /// Events waiting or in flight.
    pub fn len(&self) -> usize {
        let g = self.lock();
        g.pending.len() + g.in_flight.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Events dropped since the run began.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped_all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: &str) -> RunEvent {
        RunEvent {
            seq: 0,
            timestamp: String::new(),
            event_type: kind.into(),
            message: None,
            data: Default::default(),
        }
    }

    fn kinds(b: &[RunEvent]) -> Vec<(u64, String)> {
        b.iter().map(|e| (e.seq, e.event_type.clone())).collect()
    }

    #[test]
    fn a_batch_is_resent_unchanged_until_acknowledged() {
        let buf = EventBuffer::new(100);
        buf.push(ev("a"));
        buf.push(ev("b"));
        let first = buf.batch(10, usize::MAX, Duration::ZERO).unwrap();
        assert_eq!(kinds(&first), [(1, "a".into()), (2, "b".into())]);
        // Not acknowledged (a network error, a server restart): the same seqs again, even
        // with new events waiting behind it.
        buf.push(ev("c"));
        assert_eq!(
            kinds(&buf.batch(10, usize::MAX, Duration::ZERO).unwrap()),
            kinds(&first)
        );
        buf.ack();
        assert_eq!(
            kinds(&buf.batch(10, usize::MAX, Duration::ZERO).unwrap()),
            [(3, "c".into())]
        );
        buf.ack();
        assert!(
            buf.batch(10, usize::MAX, Duration::from_millis(10))
                .is_none()
        );
        assert!(!buf.drained());
        buf.close();
        assert!(buf.drained());
    }

    #[test]
    fn batches_are_bounded_and_numbers_never_skip() {
        let buf = EventBuffer::new(1000);
        for i in 0..25 {
            buf.push(ev(&format!("e{i}")));
        }
        let mut seqs = Vec::new();
        while let Some(b) = buf.batch(10, usize::MAX, Duration::ZERO) {
            assert!(b.len() <= 10);
            seqs.extend(b.iter().map(|e| e.seq));
            buf.ack();
        }
        assert_eq!(seqs, (1..=25).collect::<Vec<u64>>());
    }

    #[test]
    fn batches_stay_under_the_byte_budget_but_never_empty() {
        let buf = EventBuffer::new(100);
        let mut big = ev("big");
        big.message = Some("x".repeat(5000));
        buf.push(big.clone());
        buf.push(ev("a"));
        buf.push(ev("b"));
        // One oversized event still goes alone; small ones share a batch.
        assert_eq!(
            kinds(&buf.batch(10, 1000, Duration::ZERO).unwrap()),
            [(1, "big".into())]
        );
        buf.ack();
        assert_eq!(
            kinds(&buf.batch(10, 1000, Duration::ZERO).unwrap()),
            [(2, "a".into()), (3, "b".into())]
        );
    }

    #[test]
    fn a_refused_batch_keeps_its_seqs_stripped() {
        let buf = EventBuffer::new(100);
        let mut e = ev("step.finished");
        e.data.insert("rx".into(), json!([1, 2, 3]));
        buf.push(e);
        buf.batch(10, usize::MAX, Duration::ZERO).unwrap();
        assert!(buf.strip_in_flight("refused"));
        let again = buf.batch(10, usize::MAX, Duration::ZERO).unwrap();
        assert_eq!(kinds(&again), [(1, "step.finished".into())]);
        assert!(again[0].data.is_empty());
        assert_eq!(again[0].message.as_deref(), Some("refused"));
        assert!(!buf.strip_in_flight("refused"));
    }

    #[test]
    fn a_full_buffer_drops_the_oldest_and_says_so() {
        let buf = EventBuffer::new(3);
        buf.push(ev("a"));
        let inflight = buf.batch(1, usize::MAX, Duration::ZERO).unwrap();
        for k in ["b", "c", "d", "e", "final"] {
            buf.push(ev(k));
        }
        // The in-flight batch is never dropped.
        assert_eq!(
            kinds(&buf.batch(10, usize::MAX, Duration::ZERO).unwrap()),
            kinds(&inflight)
        );
        buf.ack();
        let next = buf.batch(10, usize::MAX, Duration::ZERO).unwrap();
        assert_eq!(
            kinds(&next),
            [
                (2, DROPPED.into()),
                (3, "d".into()),
                (4, "e".into()),
                (5, "final".into())
            ]
        );
        assert_eq!(next[0].data["count"], 2);
        assert_eq!(buf.dropped(), 2);
    }

    #[test]
    fn a_waiting_sender_wakes_on_push_and_close() {
        let buf = std::sync::Arc::new(EventBuffer::new(10));
        let b2 = buf.clone();
        let t = std::thread::spawn(move || b2.batch(10, usize::MAX, Duration::from_secs(10)));
        std::thread::sleep(Duration::from_millis(50));
        let start = Instant::now();
        buf.push(ev("x"));
        assert_eq!(kinds(&t.join().unwrap().unwrap()), [(1, "x".into())]);
        assert!(start.elapsed() < Duration::from_secs(2));
        buf.ack();
        let b3 = buf.clone();
        let t = std::thread::spawn(move || b3.batch(10, usize::MAX, Duration::from_secs(10)));
        std::thread::sleep(Duration::from_millis(50));
        buf.close();
        assert!(t.join().unwrap().is_none());
    }
}

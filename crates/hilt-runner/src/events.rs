//! The run's event stream: numbered, appended to events.jsonl, and shown to an observer
//! (the CLI's progress display, later the agent).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value};

use hilt_hw::CancelToken;

use hilt_model::run::Event;

use crate::rundir::Ledger;

/// Receives every event as it is emitted.
pub trait Observer: Send {
    fn event(&mut self, event: &Event);
}

/// An observer that ignores everything.
pub struct Quiet;

impl Observer for Quiet {
    fn event(&mut self, _: &Event) {}
}

pub struct Events<'o> {
    ledger: Arc<Mutex<Ledger>>,
    seq: u64,
    observer: &'o mut dyn Observer,
    stop: CancelToken,
    flusher: Option<std::thread::JoinHandle<()>>,
}

/// How stale events.jsonl may be for someone watching the file during a long step.
const FLUSH_EVERY: Duration = Duration::from_millis(250);

impl<'o> Events<'o> {
    pub fn new(ledger: Ledger, observer: &'o mut dyn Observer) -> Self {
        let ledger = Arc::new(Mutex::new(ledger));
        let stop = CancelToken::new();
        let flusher = {
            let (ledger, stop) = (ledger.clone(), stop.clone());
            std::thread::Builder::new()
                .name("hilt-events".into())
                .spawn(move || {
                    while !stop.wait_timeout(FLUSH_EVERY) {
                        let _ = lock(&ledger).flush_buffer();
                    }
                })
                .ok()
        };
        Events {
            ledger,
            seq: 0,
            observer,
            stop,
            flusher,
        }
    }

    /// Numbers the next event after `seq` (a resumed run appends to its events.jsonl).
    pub fn continue_after(&mut self, seq: u64) {
        self.seq = self.seq.max(seq);
    }

    pub fn emit(&mut self, event_type: &str, message: Option<String>, data: Map<String, Value>) {
        self.seq += 1;
        let e = Event {
            seq: self.seq,
            timestamp: hilt_model::run::now(),
            event_type: event_type.to_string(),
            message,
            data,
        };
        // An event that cannot be written is still shown; the results document is the record.
        let _ = lock(&self.ledger).append(&e);
        self.observer.event(&e);
    }

    /// Pushes everything written so far to the file (at phase and test boundaries).
    pub fn flush(&mut self) {
        let _ = lock(&self.ledger).flush_buffer();
    }

    /// Pushes everything to disk (once, at the end of the run).
    pub fn sync(&mut self) {
        let _ = lock(&self.ledger).flush();
    }
}

impl Drop for Events<'_> {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(t) = self.flusher.take() {
            let _ = t.join();
        }
        let _ = lock(&self.ledger).flush_buffer();
    }
}

fn lock(l: &Mutex<Ledger>) -> std::sync::MutexGuard<'_, Ledger> {
    l.lock().unwrap_or_else(|e| e.into_inner())
}

/// Builds a JSON object from `key => value` pairs, dropping nulls.
#[macro_export]
macro_rules! data {
    ($($k:literal => $v:expr),* $(,)?) => {{
        #[allow(unused_mut)]
        let mut m = serde_json::Map::new();
        $( let v: serde_json::Value = serde_json::json!($v); if !v.is_null() { m.insert($k.to_string(), v); } )*
        m
    }};
}

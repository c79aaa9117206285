//! `/metrics` in the Prometheus text format, written by hand like the agent's: counters
//! and the dispatch-latency histogram live here as atomics (no global recorder, so every
//! server in a test process has its own), gauges are counted in the store at scrape time.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::store::{Counts, state};

/// Upper bounds of the dispatch-latency buckets, seconds (queued → assigned).
const BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0, 600.0, 3600.0,
];

const STATES: [&str; 5] = [
    state::QUEUED,
    state::PREPARING,
    state::RUNNING,
    state::DONE,
    state::FAILED,
];

#[derive(Default)]
pub struct Metrics {
    events_ingested: AtomicU64,
    runs_submitted: AtomicU64,
    runs_pruned: AtomicU64,
    dispatch: Histogram,
}

#[derive(Default)]
struct Histogram {
    /// Observations at or below each bound (not cumulative; summed when rendered).
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Metrics {
    pub fn events_ingested(&self, n: usize) {
        self.events_ingested.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub fn run_submitted(&self) {
        self.runs_submitted.fetch_add(1, Ordering::Relaxed);
    }

    pub fn runs_pruned(&self, n: usize) {
        self.runs_pruned.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// A run was assigned `seconds` after it was queued.
    pub fn dispatched(&self, seconds: f64) {
        let s = seconds.max(0.0);
        let h = &self.dispatch;
        if let Some(i) = BUCKETS.iter().position(|b| s <= *b) {
            h.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        h.count.fetch_add(1, Ordering::Relaxed);
        h.sum_micros.fetch_add((s * 1e6) as u64, Ordering::Relaxed);
    }

    pub fn render(&self, c: &Counts) -> String {
        let mut out = String::with_capacity(4096);
        let by_state = |s: &str| {
            c.runs_by_state
                .iter()
                .find(|(k, _)| k == s)
                .map_or(0, |(_, n)| *n)
        };
        let mut line = |name: &str, kind: &str, help: &str, samples: &[(String, String)]| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        let one = |v: i64| vec![(String::new(), v.to_string())];
        line(
            "hilt_server_queue_depth",
            "gauge",
            "Runs queued and not yet assigned to an agent.",
            &one(by_state(state::QUEUED)),
        );
        let states: Vec<_> = STATES
            .iter()
            .map(|s| (format!("{{state=\"{s}\"}}"), by_state(s).to_string()))
            .collect();
        line(
            "hilt_server_runs",
            "gauge",
            "Runs in the store by state.",
            &states,
        );
        line(
            "hilt_server_agents_online",
            "gauge",
            "Cloud agents heard from within the lease time.",
            &one(c.agents_online),
        );
        line(
            "hilt_server_agents",
            "gauge",
            "Cloud agents known to the server.",
            &one(c.agents),
        );
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        line(
            "hilt_server_events_ingested_total",
            "counter",
            "Run events received from agents.",
            &[(String::new(), load(&self.events_ingested).to_string())],
        );
        line(
            "hilt_server_runs_submitted_total",
            "counter",
            "Runs submitted.",
            &[(String::new(), load(&self.runs_submitted).to_string())],
        );
        line(
            "hilt_server_runs_pruned_total",
            "counter",
            "Runs removed by retention, with their artifacts.",
            &[(String::new(), load(&self.runs_pruned).to_string())],
        );
        let h = &self.dispatch;
        let mut samples = Vec::with_capacity(BUCKETS.len() + 3);
        let mut cumulative = 0;
        for (b, n) in BUCKETS.iter().zip(&h.buckets) {
            cumulative += load(n);
            samples.push((format!("_bucket{{le=\"{b}\"}}"), cumulative.to_string()));
        }
        let count = load(&h.count);
        samples.push(("_bucket{le=\"+Inf\"}".into(), count.to_string()));
        samples.push((
            "_sum".into(),
            format!("{}", load(&h.sum_micros) as f64 / 1e6),
        ));
        samples.push(("_count".into(), count.to_string()));
        line(
            "hilt_server_dispatch_latency_seconds",
            "histogram",
            "Time from a run being queued to its assignment to an agent.",
            &samples,
        );
        out
    }
}

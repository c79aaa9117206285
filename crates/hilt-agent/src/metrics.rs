//! Prometheus metrics, rendered by hand (a few counters and gauges need no framework).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::record::RunState;

#[derive(Default)]
pub struct Metrics {
    pub http_requests: AtomicU64,
    pub runs_submitted: AtomicU64,
    pub runs_done: AtomicU64,
    pub runs_failed: AtomicU64,
    pub runs_cancelled: AtomicU64,
}

impl Metrics {
    pub fn finished(&self, s: RunState) {
        let c = match s {
            RunState::Done => &self.runs_done,
            RunState::Cancelled => &self.runs_cancelled,
            _ => &self.runs_failed,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub fn render(
        &self,
        queue_depth: usize,
        active: usize,
        gpio_sessions: usize,
        uptime_s: f64,
    ) -> String {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "# HELP hilt_agent_http_requests_total HTTP requests served.\n# TYPE hilt_agent_http_requests_total counter\nhilt_agent_http_requests_total {}\n\
             # HELP hilt_agent_runs_submitted_total Runs accepted.\n# TYPE hilt_agent_runs_submitted_total counter\nhilt_agent_runs_submitted_total {}\n\
             # HELP hilt_agent_runs_finished_total Runs that reached a terminal state.\n# TYPE hilt_agent_runs_finished_total counter\n\
             hilt_agent_runs_finished_total{{state=\"done\"}} {}\nhilt_agent_runs_finished_total{{state=\"failed\"}} {}\nhilt_agent_runs_finished_total{{state=\"cancelled\"}} {}\n\
             # HELP hilt_agent_queue_depth Runs waiting.\n# TYPE hilt_agent_queue_depth gauge\nhilt_agent_queue_depth {queue_depth}\n\
             # HELP hilt_agent_active_runs Runs executing.\n# TYPE hilt_agent_active_runs gauge\nhilt_agent_active_runs {active}\n\
             # HELP hilt_agent_gpio_sessions Open remote GPIO sessions.\n# TYPE hilt_agent_gpio_sessions gauge\nhilt_agent_gpio_sessions {gpio_sessions}\n\
             # HELP hilt_agent_uptime_seconds Seconds since start.\n# TYPE hilt_agent_uptime_seconds gauge\nhilt_agent_uptime_seconds {uptime_s:.3}\n",
            g(&self.http_requests),
            g(&self.runs_submitted),
            g(&self.runs_done),
            g(&self.runs_failed),
            g(&self.runs_cancelled),
        )
    }
}

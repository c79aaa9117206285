//! What a run produces: failures, results.json, events, status. Wire types shared by the
//! runner, the CLI and (later) the agent and server.

mod category;
pub mod checks;
mod event;
mod failure;
mod results;
mod status;

pub use category::{Category, Source};
pub use checks::Check;
pub use event::{Event, EventKind};
pub use failure::{FailedStep, Failure};
pub use results::{Metric, RunResults, RunStatus, Summary, TestResult};
pub use status::{Alert, Monitoring, Phase, PhaseState, RunStatusSnapshot};

/// UTC ISO-8601 with microseconds and `Z`, as every hilt and BenchCI document uses.
pub fn timestamp(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Now, formatted with [`timestamp`].
pub fn now() -> String {
    timestamp(jiff::Timestamp::now())
}

/// Seconds rounded to 3 decimals, as `duration_s` fields carry them.
pub fn round3(s: f64) -> f64 {
    (s * 1000.0).round() / 1000.0
}

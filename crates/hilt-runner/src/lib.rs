//! Executes a suite on a bench and leaves a durable run directory behind.
//!
//! Entry point: [`run::run`]. The runner owns phases, events, ledgers, failure
//! classification and the result documents; hardware is reached only through `hilt-hw`.

// Failures are rich (explanation, suggestions, evidence paths) and only built on the cold
// path; boxing every one would add noise without a measurable gain.
#![allow(clippy::result_large_err)]

pub mod classify;
pub mod events;
mod evidence;
mod exec;
mod external;
mod identity;
mod lockspecs;
mod logfile;
pub mod report;
pub mod run;
pub mod rundir;
pub mod selftest;
mod session;
mod summary;
mod tests;
pub mod uart;

pub use events::{Observer, Quiet};
pub use run::{CROSS_OPTIONS, RunError, RunOptions, RunOutcome, run};

/// The resource-lock keys a suite needs on a bench (what a run will lock), so a scheduler
/// can keep runs that share hardware apart instead of letting the second fail.
pub fn lock_keys(
    bench: &hilt_model::bench::Bench,
    suite: &hilt_model::suite::Suite,
    skip_flash: bool,
) -> Vec<String> {
    let mut keys: Vec<String> = lockspecs::collect(bench, suite, skip_flash)
        .into_iter()
        .map(|s| s.key)
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

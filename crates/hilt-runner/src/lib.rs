//! Executes a suite on a bench and leaves a durable run directory behind.
//!
//! Entry points: [`Plan::load`] then [`run_plan`], or [`run::run`] from paths. The runner owns phases, events, ledgers, failure
//! classification and the result documents; hardware is reached only through `hilt-hw`.

// Failures are rich (explanation, suggestions, evidence paths) and only built on the cold
// path; boxing every one would add noise without a measurable gain.
#![allow(clippy::result_large_err)]

pub mod classify;
pub mod events;
mod evidence;
mod exec;
mod identity;
mod logfile;
pub mod plan;
pub mod publish;
pub mod readiness;
pub mod report;
pub mod run;
pub mod rundir;
pub mod selftest;
mod session;
pub mod summary;
mod testcase;
pub mod uart;
pub mod workflow;

pub use events::{Observer, Quiet};
pub use plan::{Plan, PlanError, PlanOptions};
pub use run::{RunError, RunOptions, RunOutcome, run, run_plan};

//! The workflow of a run across attempts (issue 14): the journal of transitions, its fold,
//! resume, recover, the repair of damaged files and the backfill of older layouts.

pub mod backfill;
mod journal;
pub mod pkg;
pub mod recover;
pub mod repair;
mod resume;
mod state;

pub use journal::{JOURNAL, Journal, last_event_seq};
pub use resume::{ResumeError, Resumed, resume};
pub use state::{Attempt, Inputs, SNAPSHOT, TestProgress, WorkflowState};

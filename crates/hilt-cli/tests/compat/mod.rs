//! The differential harness: cases, running them under both tools, comparing outcomes.

pub mod case;
pub mod compare;
pub mod exec;
pub mod variants;

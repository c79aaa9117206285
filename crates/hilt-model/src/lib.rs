//! hilt's data model: bench and suite files, validation, run results, events.
//!
//! Pure data and pure functions: no I/O beyond reading the files it is asked to load, no
//! hardware, no clocks except for timestamps handed in by callers.

pub mod agent;
pub mod bench;
mod de;
mod defaults;
pub mod diag;
pub mod load;
pub mod publish;
pub mod run;
pub mod schema;
pub mod suite;
pub mod validate;
pub mod yaml;

pub use diag::Diagnostic;
pub use load::{
    LoadError, LoadOptions, Loaded, check_against, load_bench, load_suite, parse_bench, parse_suite,
};

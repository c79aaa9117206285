//! Semantic checks after typed decoding: ranges, references, combinations.
//!
//! `bench` and `suite` check one file; `cross` checks a suite against the bench it will run
//! on, before any hardware is touched.

mod bench;
mod bundles;
mod cross;
mod durations;
mod hosts;
mod publish;
mod suite;

pub use bench::bench;
pub use cross::{CrossOptions, Unsupported, cross};
pub use durations::MAX_DURATION_MS;
pub(crate) use durations::{check as check_duration, too_long, unit_of as duration_unit};
pub use suite::suite;

use crate::diag::Diags;

pub(crate) fn range(d: &mut Diags, path: &str, v: u64, lo: u64, hi: u64) {
    if v < lo || v > hi {
        d.error(path, format!("{v} is out of range; allowed {lo}..={hi}"));
    }
}

pub(crate) fn positive(d: &mut Diags, path: &str, v: u64) {
    if v == 0 {
        d.error(path, "must be greater than 0");
    }
}

/// Whitespace-separated tokens of 1–2 hex digits, e.g. `"9F 00 0a"`.
pub fn parse_hex_bytes(s: &str) -> Result<Vec<u8>, String> {
    s.split_whitespace()
        .map(|t| {
            if t.len() > 2 {
                return Err(format!(
                    "`{t}` is not a byte (use 1–2 hex digits per token)"
                ));
            }
            u8::from_str_radix(t, 16).map_err(|_| format!("`{t}` is not a hex byte"))
        })
        .collect()
}

//! Every duration in a bench or suite is bounded: a step that would wait for years (a typo,
//! or `sleep_ms: 99999999999999`) is refused at validation with its location instead of
//! holding a bench and its locks for ever.
//!
//! Durations are recognised by name (`*_ms`, `*_s`), on the typed document as it
//! serialises (`load/walk.rs`), so every step type and option is covered without listing
//! them. BenchCI 2.0.1 accepts any value; hilt accepts up to 24 hours per duration, which
//! every real bench and suite stays far below (a run as a whole is bounded by the agent's
//! `limits.max_run_time_s`).

use crate::diag::Diags;

/// The longest single duration, in milliseconds (24 h).
pub const MAX_DURATION_MS: u64 = 24 * 60 * 60 * 1000;

/// The unit of a duration named `key` (milliseconds per unit and its name), or `None` when
/// the name is not a duration's.
pub(crate) fn unit_of(key: &str) -> Option<(u64, &'static str)> {
    if key.ends_with("_ms") {
        Some((1, "ms"))
    } else if key.ends_with("_s") {
        Some((1000, "s"))
    } else {
        None
    }
}

/// Whether `n` in `unit` exceeds the limit.
pub(crate) fn too_long((per_ms, _): (u64, &'static str), n: f64) -> bool {
    n > (MAX_DURATION_MS / per_ms) as f64
}

/// Refuses the number `n` found at `path` when it exceeds the limit for its unit.
pub(crate) fn check(d: &mut Diags, path: &str, (per_ms, unit): (u64, &'static str), n: f64) {
    let max = MAX_DURATION_MS / per_ms;
    if too_long((per_ms, unit), n) {
        d.error(
            path,
            format!("{n} {unit} is longer than the limit of {max} {unit} (24 h) for one duration"),
        );
    }
}

//! Every duration in a bench or suite is bounded: a step that would wait for years (a typo,
//! or `sleep_ms: 99999999999999`) is refused at validation with its location instead of
//! holding a bench and its locks for ever.
//!
//! Durations are recognised by name (`*_ms`, `*_s`), on the typed document re-serialised,
//! so every step type and option is covered without listing them. BenchCI 2.0.1 accepts
//! any value; hilt accepts up to 24 hours per duration, which every real bench and suite
//! stays far below (a run as a whole is bounded by the agent's `limits.max_run_time_s`).

use serde_json::Value;

use crate::diag::Diags;
use crate::yaml::{push_index, push_key};

/// The longest single duration, in milliseconds (24 h).
pub const MAX_DURATION_MS: u64 = 24 * 60 * 60 * 1000;

/// Checks the durations in `canonical`, the typed value at `path` re-serialised (`path`
/// is restored on return).
pub fn durations(d: &mut Diags, canonical: &Value, path: &mut String) {
    walk(d, canonical, path);
}

fn walk(d: &mut Diags, v: &Value, path: &mut String) {
    let len = path.len();
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                push_key(path, k);
                let scale = if k.ends_with("_ms") {
                    Some((1, "ms"))
                } else if k.ends_with("_s") {
                    Some((1000, "s"))
                } else {
                    None
                };
                if let (Some((per_ms, unit)), Some(n)) = (scale, v.as_f64()) {
                    let max = MAX_DURATION_MS / per_ms;
                    if n > max as f64 {
                        d.error(
                            path,
                            format!(
                                "{n} {unit} is longer than the limit of {max} {unit} (24 h) for one duration"
                            ),
                        );
                    }
                }
                walk(d, v, path);
                path.truncate(len);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                push_index(path, i);
                walk(d, v, path);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

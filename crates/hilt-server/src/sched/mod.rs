//! The scheduler's judgement outside SQL: a bench's health per resource (`health.rs`), what
//! a suite uses (`suite.rs`), and why a queued run waits, where it stands and when it may
//! start (`queue.rs`). The claim itself is one transaction in the store.

pub mod health;
pub mod queue;
pub mod suite;

use hilt_model::run::Category;
use serde_json::json;

/// The exit code of a cancelled run (as `hilt run` interrupted).
pub const CANCELLED_EXIT: i32 = 130;
/// The exit code of a run that fails as Configuration.
pub const CONFIG_EXIT: i32 = 3;

fn failure(category: Category, message: &str) -> String {
    json!({
        "category": category.as_str(),
        "source": category.default_source().as_str(),
        "title": category.title(),
        "message": message,
    })
    .to_string()
}

/// The failure recorded on a cancelled run.
pub fn cancelled_failure(message: &str) -> String {
    failure(Category::Cancelled, message)
}

/// The failure of a run no bench of the workspace could ever take.
pub fn configuration_failure(message: &str) -> String {
    failure(Category::ConfigError, message)
}

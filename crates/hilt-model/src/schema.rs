//! JSON Schemas generated from the types, for editors (`hilt schema bench|suite`).

use crate::bench::Bench;
use crate::suite::Suite;

pub fn bench_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Bench)).unwrap_or_default()
}

pub fn suite_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Suite)).unwrap_or_default()
}

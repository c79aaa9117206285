//! `suite.yaml`: an ordered list of tests, each an ordered list of steps (see the suite-format spec).

mod bundle;
mod remote;
mod step;
mod steps_extra;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use bundle::*;
pub use remote::*;
pub use step::*;
pub use steps_extra::*;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Suite {
    #[serde(default)]
    pub version: Option<serde_json::Value>,
    pub suite: SuiteInfo,
    #[serde(default)]
    pub tests: Vec<Test>,
    /// hilt extension: git repositories the run's results are published to (a target
    /// here replaces the bench's target of the same name).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub publish: BTreeMap<String, crate::publish::PublishTarget>,
    /// hilt extension: bundles steps stage to remote hosts before they run (`ssh_exec`'s
    /// `bundle`), by name.
    #[serde(default)]
    pub bundles: std::collections::BTreeMap<String, Bundle>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SuiteInfo {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Procedure version (not the schema version).
    #[serde(default, deserialize_with = "crate::de::opt_string_or_int")]
    pub version: Option<String>,
    #[serde(default)]
    pub release_id: Option<String>,
    #[serde(default)]
    pub requirement_ids: Vec<String>,
    #[serde(default)]
    pub risk_ids: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Test {
    pub name: String,
    #[serde(default)]
    pub test_case_id: Option<String>,
    #[serde(default)]
    pub requirement_ids: Vec<String>,
    #[serde(default)]
    pub risk_ids: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub steps: Vec<Step>,
}

//! `bench.yaml`: what is wired to the devices under test (see the bench-format spec).

mod flash;
mod gpio;
mod hosts;
mod resource;
mod safety;
mod transport;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use flash::{Flash, FlashBackend, Reset, ResetMethod, tool_for};
pub use gpio::{Bias, Direction, Edge, GpioBackend, GpioLine};
pub use hosts::{AuthRef, Hop, Host, HostTransport, Retry};
pub use resource::{MEASUREMENT_TYPES, POWER_TYPES, Resource, ResourceDriver, ScpiPreset};
pub use safety::{
    ExternalPolicy, ExternalTarget, FaultGpioRule, FaultInjectionPolicy, FaultPowerRule,
    FaultUartRule, Safety,
};
pub use transport::{CanFilter, Parity, QEMU_PORT_PREFIX, Transport};

use crate::defaults;

/// A whole bench file.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Bench {
    /// Format version; only `1` is recognised.
    #[serde(default)]
    pub version: Option<serde_json::Value>,
    pub bench: BenchInfo,
    #[serde(default)]
    pub defaults: Option<BenchDefaults>,
    /// Devices under test and helpers. May be empty when the bench has `hosts`.
    #[serde(default)]
    pub nodes: BTreeMap<String, Node>,
    #[serde(default)]
    pub resources: BTreeMap<String, Resource>,
    /// hilt extension: authentication methods named by `hosts` and their hops.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub auth_refs: BTreeMap<String, AuthRef>,
    /// hilt extension: Linux machines reached over SSH (directly or through jump hosts).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub hosts: BTreeMap<String, Host>,
    /// hilt extension: git repositories the run's results are published to.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub publish: BTreeMap<String, crate::publish::PublishTarget>,
    #[serde(default)]
    pub safety: Safety,
    #[serde(default)]
    pub artifacts: Artifacts,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct BenchInfo {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct BenchDefaults {
    /// Must name a node of this bench.
    #[serde(default)]
    pub node: Option<String>,
    #[serde(default)]
    pub timeouts: Option<DefaultTimeouts>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct DefaultTimeouts {
    /// Used by expect/wait steps that omit `within_ms`.
    #[serde(default)]
    pub within_ms: Option<u64>,
}

/// A device on the bench: a DUT, a helper MCU, a gateway…
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Node {
    pub kind: String,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub flash: Option<Flash>,
    #[serde(default)]
    pub reset: Reset,
    #[serde(default)]
    pub dut: Option<DutIdentity>,
    #[serde(default)]
    pub transports: BTreeMap<String, Transport>,
    #[serde(default)]
    pub gpio: BTreeMap<String, GpioLine>,
    #[serde(default)]
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct DutIdentity {
    #[serde(default)]
    pub hardware_revision: Option<String>,
    #[serde(default)]
    pub serial_number: Option<String>,
    #[serde(default)]
    pub asset_id: Option<String>,
    #[serde(default)]
    pub fixture_slot: Option<String>,
    #[serde(default)]
    pub self_identification: Option<SelfIdentification>,
}

impl DutIdentity {
    /// The four configured identity fields, by name.
    pub fn fields(&self) -> [(&'static str, &Option<String>); 4] {
        [
            ("hardware_revision", &self.hardware_revision),
            ("serial_number", &self.serial_number),
            ("asset_id", &self.asset_id),
            ("fixture_slot", &self.fixture_slot),
        ]
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SelfIdentification {
    /// A `uart` transport of the same node.
    pub transport: String,
    #[serde(default = "default_id_query")]
    pub query: String,
    #[serde(default = "defaults::u64_::<2000>")]
    pub within_ms: u64,
    #[serde(default = "defaults::t")]
    pub required: bool,
}

fn default_id_query() -> String {
    "BENCHCI_ID?\n".to_string()
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Artifacts {
    #[serde(default = "default_root_dir")]
    pub root_dir: String,
    #[serde(default = "defaults::t")]
    pub per_node_dirs: bool,
}

impl Default for Artifacts {
    fn default() -> Self {
        Artifacts {
            root_dir: default_root_dir(),
            per_node_dirs: true,
        }
    }
}

fn default_root_dir() -> String {
    "benchci-results".to_string()
}

//! GPIO lines of a node (`nodes.<n>.gpio.<line>`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::defaults;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct GpioLine {
    #[serde(flatten)]
    pub backend: GpioBackend,
    pub direction: Direction,
    #[serde(default = "defaults::t")]
    pub active_high: bool,
    #[serde(default)]
    pub bias: Option<Bias>,
    #[serde(default)]
    pub edge: Option<Edge>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "backend", rename_all = "snake_case")]
pub enum GpioBackend {
    MockGpio {
        #[serde(default)]
        channel: u32,
        /// hilt extension: control socket of a `hilt sim dut`; the line is then wired to
        /// the simulated device instead of held in memory.
        #[serde(default)]
        sim_control: Option<String>,
    },
    LocalGpio {
        chip: String,
        line: u32,
    },
    RemoteGpio {
        host: String,
        #[serde(default = "defaults::u32_::<8090>")]
        port: u32,
        token_env: String,
        #[serde(default)]
        chip: Option<String>,
        #[serde(default)]
        line: Option<u32>,
    },
}

impl GpioBackend {
    pub fn name(&self) -> &'static str {
        match self {
            GpioBackend::MockGpio { .. } => "mock_gpio",
            GpioBackend::LocalGpio { .. } => "local_gpio",
            GpioBackend::RemoteGpio { .. } => "remote_gpio",
        }
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Input,
    Output,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Bias {
    Disabled,
    PullUp,
    PullDown,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Edge {
    Rising,
    Falling,
    Both,
}

impl Edge {
    pub fn as_str(self) -> &'static str {
        match self {
            Edge::Rising => "rising",
            Edge::Falling => "falling",
            Edge::Both => "both",
        }
    }
}

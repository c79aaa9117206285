//! Requests and replies of the remote GPIO endpoints (agent-api spec §3.11).

use std::collections::BTreeMap;

use hilt_model::bench::{Bias, Direction, Edge};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GpioSessionStarted {
    pub session_id: String,
    /// hilt extension: the session closes after this many idle seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout_s: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GpioOk {
    pub ok: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GpioValue {
    /// The physical level.
    pub value: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GpioWaitResult {
    pub matched: bool,
}

// The request types are declared under the names the agent's former private types had and
// exported under their wire names: serde's error text names the Rust type ("expected
// struct SetBody", "untagged enum Channel"), and a rejected body's error JSON carries that
// text, so it stays byte-for-byte what it was. OpenAPI uses the exported names.
pub use requests::{
    Channel as GpioChannel, GetBody as GpioGet, Level as GpioLevel, LineConfig as GpioLineConfig,
    SetBody as GpioSet, StartBody as GpioStart, StopBody as GpioStop, WaitEdgeBody as GpioWaitEdge,
    WaitValueBody as GpioWaitValue,
};

mod requests {
    use super::*;

    /// How one line of a session is requested (the values of the `lines` object).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
    #[schema(as = GpioLineConfig)]
    pub struct LineConfig {
        pub direction: Direction,
        #[serde(default)]
        pub bias: Option<Bias>,
        #[serde(default)]
        pub edge: Option<Edge>,
    }

    /// `POST /v1/gpio/session/start`.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
    #[schema(as = GpioStart)]
    pub struct StartBody {
        /// `/dev/gpiochipN`, or `sim:<name>` for a simulated chip.
        pub chip: String,
        /// Line number as a decimal string → how the line is requested.
        pub lines: BTreeMap<String, LineConfig>,
    }

    /// `POST /v1/gpio/session/stop`.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
    #[schema(as = GpioStop)]
    pub struct StopBody {
        pub session_id: String,
    }

    /// A line number as a JSON integer or a decimal string.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
    #[serde(untagged)]
    #[schema(as = GpioChannel)]
    pub enum Channel {
        Number(u64),
        Text(String),
    }

    /// A level as `true`/`false` or `1`/`0`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
    #[serde(untagged)]
    #[schema(as = GpioLevel)]
    pub enum Level {
        Bool(bool),
        Number(u64),
    }

    /// `POST /v1/gpio/set`: drive an output line to a physical level.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
    #[schema(as = GpioSet)]
    pub struct SetBody {
        pub session_id: String,
        pub channel: Channel,
        pub value: Level,
    }

    /// `POST /v1/gpio/get`: read an input line's physical level.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
    #[schema(as = GpioGet)]
    pub struct GetBody {
        pub session_id: String,
        pub channel: Channel,
    }

    /// `POST /v1/gpio/wait_value`: wait until an input line is at a level.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
    #[schema(as = GpioWaitValue)]
    pub struct WaitValueBody {
        pub session_id: String,
        pub channel: Channel,
        pub value: Level,
        pub timeout_ms: u64,
    }

    /// `POST /v1/gpio/wait_edge`: wait for an edge on an input line.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
    #[schema(as = GpioWaitEdge)]
    pub struct WaitEdgeBody {
        pub session_id: String,
        pub channel: Channel,
        pub edge: Edge,
        pub timeout_ms: u64,
    }
}

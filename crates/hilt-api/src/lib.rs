//! The agent API on the wire: every request, response and event as a typed struct with
//! serde and an OpenAPI schema. No HTTP framework and no runtime here, so the agent, the
//! CLI client and the server all compile against the same shapes.
//!
//! Field names are BenchCI's (agent-api spec); hilt's extensions are optional fields.

mod bench;
mod error;
mod gpio;
mod health;
mod run;
mod server;

pub use bench::{
    BenchCapabilities, BenchDetail, BenchHealth, BenchStatus, BenchSummary, HardwareChannel,
};
pub use error::ErrorBody;
pub use gpio::{
    GpioChannel, GpioGet, GpioLevel, GpioLineConfig, GpioOk, GpioSessionStarted, GpioSet,
    GpioStart, GpioStop, GpioValue, GpioWaitEdge, GpioWaitResult, GpioWaitValue,
};
pub use health::{BenchHealthCounts, Health};
/// A run's event: the one event type of runner, agent and clients.
pub use hilt_model::run::Event as RunEvent;
pub use run::{Accepted, EventsPage, JsonRun, MultipartRun, RunList, RunState, RunView};
pub use server::{
    Ack, Assignment, BenchIdMapping, BenchSync, BenchSyncReply, CloudBench, CompleteRun,
    CreateToken, CreateWorkspace, EventBatch, FENCING_TOKEN_HEADER, FileBytes, HealthChange,
    HealthConcern, Heartbeat, HeartbeatReply, Lease, NextAssignment, OpenApiDocument, QueueInfo,
    ResultsUpload, ServerAgent, ServerAgentList, ServerBench, ServerBenchList, ServerHealth,
    ServerMultipartRun, ServerRun, ServerRunList, StoredArtifacts, SubmitRun, TokenCreated,
    TokenKind, TokenRevoked, Workspace,
};

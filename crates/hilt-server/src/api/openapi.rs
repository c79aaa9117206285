//! `GET /openapi.json`: every route of [`super::router`] with the `hilt-api` types it reads
//! and answers. The operations are declared here, one item per route, rather than on the
//! handlers, so the whole surface reads in one place; `tests/openapi.rs` fails when the
//! router serves a route this document does not list (or the other way round) and when a
//! body has no schema.

#![allow(dead_code)]

use hilt_api::{
    Ack, BenchSync, BenchSyncReply, CompleteRun, CreateToken, CreateWorkspace, ErrorBody,
    EventBatch, EventsPage, FileBytes, Heartbeat, HeartbeatReply, NextAssignment, OpenApiDocument,
    ResultsUpload, ServerAgentList, ServerBench, ServerBenchList, ServerHealth, ServerMultipartRun,
    ServerRun, ServerRunList, SubmitRun, TokenCreated, TokenRevoked, Workspace,
};
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "hilt server",
        description = "Workspaces, tokens, runs by bench id or by tags, and the cloud-agent backend (BenchCI agent-api §6). \
User routes take a user token, `/v1/agents/*` an agent token (`Authorization: Bearer …`)."
    ),
    paths(
        health,
        metrics,
        openapi,
        create_workspace,
        create_token,
        revoke_token,
        benches,
        bench,
        agents,
        submit,
        submit_json,
        list_runs,
        get_run,
        run_events,
        cancel_run,
        run_artifacts,
        agent_heartbeat,
        agent_sync,
        agent_next,
        agent_events,
        agent_artifacts,
        agent_complete,
        agent_firmware,
    ),
    components(schemas(hilt_api::RunEvent, hilt_api::RunState, ErrorBody))
)]
pub struct ApiDoc;

pub async fn serve() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}

#[utoipa::path(get, path = "/health", responses((status = 200, body = ServerHealth)))]
fn health() {}

#[utoipa::path(get, path = "/metrics",
    description = "Prometheus text format. Needs an admin user token unless the server runs with --metrics-public.",
    responses((status = 200, description = "Prometheus text", content_type = "text/plain", body = String),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
fn metrics() {}

#[utoipa::path(get, path = "/openapi.json", responses((status = 200, body = OpenApiDocument)))]
fn openapi() {}

#[utoipa::path(post, path = "/v1/workspaces", request_body = CreateWorkspace,
    responses((status = 201, body = Workspace), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
fn create_workspace() {}

#[utoipa::path(post, path = "/v1/tokens", request_body = CreateToken,
    responses((status = 201, body = TokenCreated), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
fn create_token() {}

#[utoipa::path(post, path = "/v1/tokens/{token_id}/revoke", params(("token_id" = String, Path)),
    responses((status = 200, body = TokenRevoked), (status = 404, body = ErrorBody)))]
fn revoke_token() {}

#[utoipa::path(get, path = "/v1/benches", responses((status = 200, body = ServerBenchList), (status = 401, body = ErrorBody)))]
fn benches() {}

#[utoipa::path(get, path = "/v1/benches/{bench_id}", params(("bench_id" = String, Path)),
    responses((status = 200, body = ServerBench), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
fn bench() {}

#[utoipa::path(get, path = "/v1/agents", responses((status = 200, body = ServerAgentList), (status = 401, body = ErrorBody)))]
fn agents() {}

#[utoipa::path(post, path = "/v1/runs",
    request_body(content(
        (SubmitRun = "application/json"),
        (ServerMultipartRun = "multipart/form-data"),
    )),
    responses((status = 201, body = ServerRun), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
fn submit() {}

#[utoipa::path(post, path = "/v1/runs/json", request_body = SubmitRun,
    responses((status = 201, body = ServerRun), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
fn submit_json() {}

#[utoipa::path(get, path = "/v1/runs", params(("limit" = Option<u32>, Query, description = "1-1000, default 50")),
    responses((status = 200, body = ServerRunList)))]
fn list_runs() {}

#[utoipa::path(get, path = "/v1/runs/{run_id}", params(("run_id" = String, Path)),
    responses((status = 200, body = ServerRun), (status = 404, body = ErrorBody)))]
fn get_run() {}

#[utoipa::path(get, path = "/v1/runs/{run_id}/events", params(("run_id" = String, Path)),
    responses((status = 200, body = EventsPage), (status = 404, body = ErrorBody)))]
fn run_events() {}

#[utoipa::path(post, path = "/v1/runs/{run_id}/cancel", params(("run_id" = String, Path)),
    responses((status = 200, description = "A queued run, cancelled", body = ServerRun),
        (status = 202, description = "A running run: its agent is told to stop", body = ServerRun),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
fn cancel_run() {}

#[utoipa::path(get, path = "/v1/runs/{run_id}/artifacts.zip", params(("run_id" = String, Path)),
    responses((status = 200, description = "The results archive the agent uploaded", content_type = "application/zip", body = FileBytes),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
fn run_artifacts() {}

#[utoipa::path(post, path = "/v1/agents/heartbeat", request_body = Heartbeat,
    responses((status = 200, body = HeartbeatReply), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody)))]
fn agent_heartbeat() {}

#[utoipa::path(post, path = "/v1/agents/benches/sync", request_body = BenchSync,
    responses((status = 200, body = BenchSyncReply), (status = 422, body = ErrorBody)))]
fn agent_sync() {}

#[utoipa::path(get, path = "/v1/agents/assignments/next",
    description = "Long-poll: answers when a run is assigned to this agent, else `{\"assignment\": null}` after the server's wait.",
    responses((status = 200, body = NextAssignment)))]
fn agent_next() {}

#[utoipa::path(post, path = "/v1/agents/runs/{run_id}/events", params(("run_id" = String, Path)), request_body = EventBatch,
    responses((status = 200, body = Ack), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
fn agent_events() {}

#[utoipa::path(post, path = "/v1/agents/runs/{run_id}/artifacts", params(("run_id" = String, Path)),
    request_body(content = ResultsUpload, content_type = "multipart/form-data"),
    responses((status = 200, body = Ack), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 503, body = ErrorBody)))]
fn agent_artifacts() {}

#[utoipa::path(post, path = "/v1/agents/runs/{run_id}/complete", params(("run_id" = String, Path)), request_body = CompleteRun,
    responses((status = 200, body = Ack), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
fn agent_complete() {}

#[utoipa::path(get, path = "/v1/agents/runs/{run_id}/firmware/{name}",
    description = "The assignment's `firmware_url`: no token header, the `key` in the URL is valid while the agent holds the run's lease.",
    params(("run_id" = String, Path), ("name" = String, Path), ("key" = String, Query)),
    responses((status = 200, description = "The firmware image", content_type = "application/octet-stream", body = FileBytes),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
fn agent_firmware() {}

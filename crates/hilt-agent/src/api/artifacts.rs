//! `GET /v1/runs/{id}/artifacts.zip`: the results directory as a zip, streamed while it is
//! written (memory stays bounded whatever the size; `hilt_runner::rundir::zip`).

use std::io::Write;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use crate::state::Agent;

const CHUNK: usize = 256 * 1024;

#[utoipa::path(get, path = "/v1/runs/{run_id}/artifacts.zip", params(("run_id" = String, Path)),
    responses((status = 200, description = "application/zip"), (status = 404, body = hilt_api::ErrorBody), (status = 409, body = hilt_api::ErrorBody)))]
pub async fn zip(
    State(agent): State<Arc<Agent>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let status = agent
        .runs()
        .map
        .get(id.as_str())
        .map(|e| e.sum.status)
        .ok_or_else(|| ApiError::NotFound("run not found".into()))?;
    let dir = agent.settings.run_dir(&id).join("results");
    if !status.is_terminal() {
        return Err(ApiError::Conflict(format!(
            "run not finished: current status is '{}'",
            status.as_str()
        )));
    }
    if !dir.is_dir() {
        return Err(ApiError::NotFound("run has no results directory".into()));
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::task::spawn_blocking(move || {
        let sink = ChannelWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(CHUNK),
        };
        if let Err(e) = hilt_runner::rundir::zip::write_zip(&dir, &[], sink) {
            let _ = tx.blocking_send(Err(e));
        }
    });
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"hilt_{id}_artifacts.zip\""),
            ),
        ],
        body,
    )
        .into_response())
}

struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))
    }
}

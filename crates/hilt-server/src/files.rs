//! Files of a run in the data dir: `runs/<run_id>/firmware/<name>` (submitted with the run)
//! and `runs/<run_id>/artifacts.zip` (uploaded by the agent, streamed with a size cap).

use std::path::{Path, PathBuf};

use axum::extract::multipart::Field;
use base64::Engine;
use hilt_agent::api::error::ApiError;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

pub fn run_dir(data_dir: &Path, run_id: &str) -> PathBuf {
    data_dir.join("runs").join(run_id)
}

pub fn firmware_path(data_dir: &Path, run_id: &str, name: &str) -> PathBuf {
    run_dir(data_dir, run_id).join("firmware").join(name)
}

pub fn artifacts_path(data_dir: &Path, run_id: &str) -> PathBuf {
    run_dir(data_dir, run_id).join("artifacts.zip")
}

fn internal(what: &str, e: std::io::Error) -> ApiError {
    tracing::error!("{what}: {e}");
    ApiError::Internal(format!("{what}: {e}"))
}

pub async fn save_firmware(path: &Path, bytes: &[u8]) -> Result<(), ApiError> {
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| internal("cannot store the firmware", e))?;
    }
    tokio::fs::write(path, bytes)
        .await
        .map_err(|e| internal("cannot store the firmware", e))
}

pub async fn firmware_base64(path: &Path) -> Result<String, ApiError> {
    let bytes = tokio::fs::read(path)
        .await
        .map_err(|e| internal("cannot read the run's firmware", e))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// Streams a multipart part to `dest` (through a temporary sibling, renamed at the end),
/// hashing it; more than `cap` bytes → 413 and nothing is kept. Returns (size, sha256).
pub async fn receive(
    mut field: Field<'_>,
    dest: &Path,
    cap: u64,
) -> Result<(i64, String), ApiError> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| internal("cannot store the upload", e))?;
    let part = dir.join(format!(".upload-{}", crate::ids::new_id()));
    let mut file = tokio::fs::File::create(&part)
        .await
        .map_err(|e| internal("cannot store the upload", e))?;
    let mut hash = Sha256::new();
    let mut size: u64 = 0;
    let outcome = async {
        loop {
            let chunk = match field.chunk().await {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(e) => {
                    return Err(ApiError::BadRequest(format!(
                        "cannot read the upload: {}",
                        e.body_text()
                    )));
                }
            };
            size += chunk.len() as u64;
            if size > cap {
                return Err(ApiError::TooLarge(format!(
                    "the upload exceeds the limit of {cap} bytes"
                )));
            }
            hash.update(&chunk);
            file.write_all(&chunk)
                .await
                .map_err(|e| internal("cannot store the upload", e))?;
        }
        file.sync_all()
            .await
            .map_err(|e| internal("cannot store the upload", e))?;
        tokio::fs::rename(&part, dest)
            .await
            .map_err(|e| internal("cannot store the upload", e))
    }
    .await;
    if let Err(e) = outcome {
        let _ = tokio::fs::remove_file(&part).await;
        return Err(e);
    }
    Ok((size as i64, hex::encode(hash.finalize())))
}

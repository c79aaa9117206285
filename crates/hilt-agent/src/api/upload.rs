//! Submissions: multipart uploads streamed to disk with size limits (never buffered whole),
//! and the JSON form for registered benches.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use axum::extract::Multipart;

use super::error::ApiError;
use crate::state::Agent;

/// Longest stored file name, bytes (the file system's NAME_MAX).
pub const MAX_NAME_BYTES: usize = 255;

/// A safe base name for a stored upload: no separators, no `..`, no NUL, no control
/// characters, not empty, at most [`MAX_NAME_BYTES`] bytes.
pub fn safe_name(name: &str) -> Result<String, ApiError> {
    if name.len() > MAX_NAME_BYTES {
        return Err(ApiError::BadRequest(format!(
            "file name is {} bytes long; the limit is {MAX_NAME_BYTES} bytes",
            name.len()
        )));
    }
    let bad = name.is_empty()
        || name.contains('/')
        || name.contains('\\')
        || name.chars().any(char::is_control)
        || name == "."
        || name == ".."
        || name.starts_with('.');
    if bad {
        return Err(ApiError::BadRequest(format!(
            "file name {name:?} is not allowed: use a plain file name without directories, `..` or NUL"
        )));
    }
    Ok(name.to_string())
}

pub fn check_suffix(name: &str, allowed: &[&str], what: &str) -> Result<(), ApiError> {
    let lower = name.to_ascii_lowercase();
    if allowed.iter().any(|s| lower.ends_with(s)) {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!(
            "{what} file name must end with {}: got {name:?}",
            allowed.join(" or ")
        )))
    }
}

pub fn limits(agent: &Agent) -> (u64, u64) {
    let reg = agent.registry();
    let l = reg
        .config
        .as_ref()
        .map(|c| c.limits.clone())
        .unwrap_or_default();
    (l.max_yaml_bytes, l.max_artifact_bytes)
}

/// Fields of a `POST /v1/runs` multipart body, with files already on disk in `dir`.
#[derive(Default)]
pub struct UploadedRun {
    pub bench: bool,
    pub suite: bool,
    pub artifact: Option<String>,
    pub skip_flash: bool,
    pub verbose: bool,
}

fn parse_bool(field: &str, v: &str) -> Result<bool, ApiError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" | "" => Ok(false),
        other => Err(ApiError::BadRequest(format!(
            "{field} must be true or false, got {other:?}"
        ))),
    }
}

/// Streams each part into `dir`, enforcing per-part limits as bytes arrive.
pub async fn receive(
    agent: &Arc<Agent>,
    mut mp: Multipart,
    dir: &Path,
) -> Result<UploadedRun, ApiError> {
    let (max_yaml, max_art) = limits(agent);
    let mut out = UploadedRun::default();
    loop {
        let field = match mp.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(multipart_error(e)),
        };
        let name = field.name().unwrap_or("").to_string();
        match name.as_str() {
            "bench_yaml" | "suite_yaml" => {
                let file = field.file_name().unwrap_or("").to_string();
                safe_name(&file)?;
                check_suffix(&file, &[".yaml", ".yml"], &name)?;
                let target = if name == "bench_yaml" {
                    "bench.yaml"
                } else {
                    "suite.yaml"
                };
                stream_to(field, &dir.join(target), max_yaml, &name).await?;
                if name == "bench_yaml" {
                    out.bench = true
                } else {
                    out.suite = true
                }
            }
            "artifact" => {
                let file = safe_name(field.file_name().unwrap_or(""))?;
                check_suffix(&file, &[".elf", ".hex", ".bin"], "artifact")?;
                stream_to(field, &dir.join(&file), max_art, "artifact").await?;
                out.artifact = Some(file);
            }
            "skip_flash" | "verbose" => {
                let text = field.text().await.map_err(multipart_error)?;
                let v = parse_bool(&name, &text)?;
                if name == "skip_flash" {
                    out.skip_flash = v
                } else {
                    out.verbose = v
                }
            }
            // Unknown parts are drained and ignored, as BenchCI does.
            _ => {
                let mut f = field;
                while let Some(_chunk) = f.chunk().await.map_err(multipart_error)? {}
            }
        }
    }
    Ok(out)
}

async fn stream_to(
    mut field: axum::extract::multipart::Field<'_>,
    path: &Path,
    max: u64,
    what: &str,
) -> Result<(), ApiError> {
    let mut f = std::fs::File::create(path).map_err(|e| store_error(what, e))?;
    let mut total = 0u64;
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        total += chunk.len() as u64;
        if total > max {
            drop(f);
            let _ = std::fs::remove_file(path);
            return Err(ApiError::TooLarge(format!(
                "{what} is larger than the limit of {max} bytes"
            )));
        }
        f.write_all(&chunk)
            .map_err(|e| ApiError::Internal(format!("cannot store upload: {e}")))?;
    }
    Ok(())
}

/// A name the file system refuses is the client's problem (400), anything else ours.
pub fn store_error(what: &str, e: std::io::Error) -> ApiError {
    match e.kind() {
        std::io::ErrorKind::InvalidFilename | std::io::ErrorKind::InvalidInput => {
            ApiError::BadRequest(format!("{what}: file name not accepted: {e}"))
        }
        _ => ApiError::Internal(format!("cannot store upload: {e}")),
    }
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        // The whole-body limit can trip before the part's own limit when the parser reads
        // ahead; name the limits either way.
        ApiError::TooLarge(
            "request body is too large: an artifact or a bench/suite is over the agent's \
             limits (limits.max_artifact_bytes, limits.max_yaml_bytes)"
                .into(),
        )
    } else {
        ApiError::BadRequest(format!("malformed multipart body: {}", e.body_text()))
    }
}

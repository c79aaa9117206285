//! The artifact store: firmware submitted with a run and the results archive its agent
//! uploaded, as objects `runs/<run_id>/firmware/<name>` and `runs/<run_id>/artifacts.zip`.
//!
//! One interface over `object_store`: a local directory (`fs.rs`, the default: the data
//! dir) or S3-compatible object storage (`s3.rs`, `--artifacts s3://bucket/prefix`).
//! Uploads are streamed into a multipart upload (parts of [`PART_SIZE`], at most
//! [`PARTS_IN_FLIGHT`] in flight, so memory is bounded whatever the size) with a running
//! size cap and SHA-256; downloads stream from the store. A store that fails during a
//! request answers 503 with what failed; every store call has a deadline.

mod fs;
mod s3;

use std::path::Path as FsPath;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::multipart::Field;
use futures_util::StreamExt;
use hilt_agent::api::error::ApiError;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use sha2::{Digest, Sha256};

use crate::ServerSettings;

/// Size of one part of a multipart upload (S3 needs at least 5 MiB but for the last).
pub const PART_SIZE: usize = 5 * 1024 * 1024;
/// Parts uploaded concurrently; reading the request waits beyond this.
pub const PARTS_IN_FLIGHT: usize = 2;
/// Longest wait for the start-up check of the store.
const CHECK_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum ArtifactsError {
    #[error(
        "unsupported --artifacts URL {0:?}: use a directory (PATH or file:///PATH) or s3://BUCKET[/PREFIX]"
    )]
    UnsupportedUrl(String),
    #[error("cannot use the artifact store {url}: {detail}")]
    Unusable { url: String, detail: String },
}

/// The store every handler shares (`App::artifacts`).
pub struct Artifacts {
    store: Arc<dyn ObjectStore>,
    /// What the operator gave (shown in errors and the log), without credentials.
    url: String,
}

pub fn firmware_key(run_id: &str, name: &str) -> Path {
    Path::from_iter(["runs", run_id, "firmware", name])
}

pub fn results_key(run_id: &str) -> Path {
    Path::from_iter(["runs", run_id, "artifacts.zip"])
}

fn run_prefix(run_id: &str) -> Path {
    Path::from_iter(["runs", run_id])
}

/// A store failure in a request: 503 with what failed (details in the server log).
fn unavailable(what: &str, url: &str, e: impl std::fmt::Display) -> ApiError {
    tracing::error!("artifact store {url}: {what}: {e}");
    ApiError::Unavailable(format!(
        "the artifact store is unavailable ({what}): {}; try again later",
        short(&e.to_string())
    ))
}

/// The first line of an error, at most 300 characters (S3 errors carry whole XML bodies).
fn short(s: &str) -> String {
    let line = s.lines().next().unwrap_or_default();
    line.chars().take(300).collect()
}

impl Artifacts {
    /// Opens the store named by `settings.artifacts` (`None`: the data dir) and checks that it answers:
    /// a bucket that does not exist, wrong credentials or an unreachable endpoint are an
    /// error here, before the server listens.
    pub async fn open(settings: &ServerSettings) -> Result<Artifacts, ArtifactsError> {
        let url = settings.artifacts.as_deref().map(str::trim);
        let data_dir = &settings.data_dir;
        let (store, shown) = match url.filter(|u| !u.is_empty()) {
            None => (fs::open(data_dir)?, data_dir.display().to_string()),
            Some(u) if u.starts_with("s3://") => {
                (s3::open(u, &settings.s3_options)?, u.to_string())
            }
            Some(u) if u.starts_with("file://") => {
                let dir = u.trim_start_matches("file://");
                (fs::open(FsPath::new(dir))?, dir.to_string())
            }
            Some(u) if !u.contains("://") => (fs::open(FsPath::new(u))?, u.to_string()),
            Some(u) => return Err(ArtifactsError::UnsupportedUrl(u.to_string())),
        };
        let a = Artifacts { store, url: shown };
        a.check().await?;
        Ok(a)
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Lists one object under `runs/`: proves the bucket exists and the credentials work.
    async fn check(&self) -> Result<(), ArtifactsError> {
        let prefix = Path::from("runs");
        let mut list = self.store.list(Some(&prefix));
        let first = tokio::time::timeout(CHECK_TIMEOUT, list.next()).await;
        let detail = match first {
            Err(_) => format!("no answer within {} s", CHECK_TIMEOUT.as_secs()),
            Ok(Some(Err(e))) => short(&e.to_string()),
            Ok(None | Some(Ok(_))) => return Ok(()),
        };
        Err(ArtifactsError::Unusable {
            url: self.url.clone(),
            detail,
        })
    }

    /// Streams a multipart part into the object `key`, hashing it; more than `cap` bytes →
    /// 413 and nothing is kept. Returns (size, sha256 hex).
    pub async fn receive(
        &self,
        mut field: Field<'_>,
        key: &Path,
        cap: u64,
    ) -> Result<(i64, String), ApiError> {
        let upload = self
            .store
            .put_multipart(key)
            .await
            .map_err(|e| unavailable("starting the upload", &self.url, e))?;
        let mut w = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        let mut hash = Sha256::new();
        let mut size: u64 = 0;
        let outcome = async {
            loop {
                let chunk = match field.chunk().await {
                    Ok(Some(c)) => c,
                    Ok(None) => return Ok(()),
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
                w.wait_for_capacity(PARTS_IN_FLIGHT)
                    .await
                    .map_err(|e| unavailable("uploading", &self.url, e))?;
                w.put(chunk);
            }
        }
        .await;
        match outcome {
            Ok(()) => {
                w.finish()
                    .await
                    .map_err(|e| unavailable("finishing the upload", &self.url, e))?;
                Ok((size as i64, hex::encode(hash.finalize())))
            }
            Err(e) => {
                if let Err(abort) = w.abort().await {
                    tracing::warn!("artifact store {}: abort of {key}: {abort}", self.url);
                }
                Err(e)
            }
        }
    }

    /// Stores a small object whole (firmware of a JSON submission, already in memory).
    /// Returns (size, sha256 hex).
    pub async fn put(&self, key: &Path, bytes: Vec<u8>) -> Result<(i64, String), ApiError> {
        let sha = hex::encode(Sha256::digest(&bytes));
        let size = bytes.len() as i64;
        self.store
            .put(key, PutPayload::from(bytes))
            .await
            .map_err(|e| unavailable("storing the firmware", &self.url, e))?;
        Ok((size, sha))
    }

    /// The object as a streamed body with its size; 404 when it is missing.
    pub async fn get(&self, key: &Path) -> Result<(u64, Body), ApiError> {
        let got = match self.store.get(key).await {
            Ok(g) => g,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(ApiError::NotFound(format!(
                    "{key} is missing from the artifact store"
                )));
            }
            Err(e) => return Err(unavailable("reading", &self.url, e)),
        };
        let size = got.meta.size;
        let url = self.url.clone();
        let stream = got.into_stream().map(move |r| {
            r.map_err(|e| {
                tracing::error!("artifact store {url}: reading stopped: {e}");
                std::io::Error::other(e)
            })
        });
        Ok((size, Body::from_stream(stream)))
    }

    /// Deletes every object of a run; returns how many there were.
    pub async fn delete_run(&self, run_id: &str) -> Result<usize, object_store::Error> {
        let prefix = run_prefix(run_id);
        let keys: Vec<_> = self
            .store
            .list(Some(&prefix))
            .map(|m| m.map(|m| m.location))
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_, _>>()?;
        let n = keys.len();
        for k in keys {
            match self.store.delete(&k).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }

    /// The object's size, or `None` when it is missing (tests and retention).
    pub async fn exists(&self, key: &Path) -> Result<bool, object_store::Error> {
        match self.store.head(key).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

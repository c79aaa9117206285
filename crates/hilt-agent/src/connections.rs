//! The accept loop: slow or idle clients cannot hold the agent.
//!
//! `axum::serve` waits forever for a request's headers and accepts connections until the
//! process runs out of file descriptors, so a few thousand clients that never finish their
//! headers stop `/health` for everyone. Here every connection must send complete headers
//! within `header_read_timeout_ms` (an idle keep-alive connection too), request bodies that
//! stall for `body_read_timeout_s` are cut off (408, see [`body_timeout`]), and at most
//! `max_connections` are open at once — capped below the open-file limit, which the agent
//! raises to its hard limit at start. A connection over the cap gets an immediate 503 and
//! is closed, never queued.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use futures_util::StreamExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::api::error::ApiError;

/// File descriptors kept free for runs, logs, locks and GPIO sessions.
const FD_RESERVE: u64 = 512;

#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
}

impl ConnLimits {
    /// The configured limits, with the connection cap lowered to fit the open-file limit
    /// (raised to its hard maximum first).
    pub fn from(l: &hilt_model::agent::AgentLimits) -> ConnLimits {
        let nofile = raise_nofile_limit();
        let fit = nofile.map_or(u64::MAX, |n| n.saturating_sub(FD_RESERVE).max(16));
        let max = l.max_connections.clamp(1, fit);
        if max < l.max_connections {
            eprintln!(
                "agent: at most {max} connections (limits.max_connections is {}, the open-file limit {})",
                l.max_connections,
                nofile.unwrap_or(0)
            );
        }
        ConnLimits {
            header_read_timeout: Duration::from_millis(l.header_read_timeout_ms.max(1)),
            max_connections: max as usize,
        }
    }
}

/// Raises the soft RLIMIT_NOFILE to the hard limit; returns the soft limit in force.
fn raise_nofile_limit() -> Option<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return Some(hard);
    }
    Some(soft)
}

fn over_capacity() -> Vec<u8> {
    let body = r#"{"error":"too many open connections, retry later","detail":"too many open connections, retry later"}"#;
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets open connections finish
/// their current request (they are not waited for here: the caller bounds that).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let refusal = over_capacity();
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning; the connections
                    // that hold descriptors time out and free them.
                    eprintln!("agent: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            // Best effort, never blocking: a client that reads gets a JSON 503.
            let _ = stream.try_write(&refusal);
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |mut req: hyper::Request<_>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                let mut app = app.clone();
                tower_service::Service::call(&mut app, req)
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            let mut conn = std::pin::pin!(conn);
            let stopping = tokio::select! {
                _ = conn.as_mut() => false,
                r = stop.wait_for(|s| *s) => r.is_ok(),
            };
            if stopping {
                conn.as_mut().graceful_shutdown();
                let _ = conn.await;
            }
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(stop_rx);
    // Until every connection finished its current request (the caller bounds this).
    stop_tx.closed().await;
    Ok(())
}

/// Middleware: a request body that sends no data for `limit` is cut off and answered 408
/// (handlers see a body error; a multipart upload's partial file goes with its run
/// directory). Requests without a body pass untouched.
pub async fn body_timeout(
    axum::extract::State(limit): axum::extract::State<Duration>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let has_body = req
        .headers()
        .contains_key(axum::http::header::TRANSFER_ENCODING)
        || req
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0");
    if !has_body {
        return next.run(req).await;
    }
    let stalled = Arc::new(AtomicBool::new(false));
    let (parts, body) = req.into_parts();
    let flag = stalled.clone();
    let stream = futures_util::stream::unfold(Some(body.into_data_stream()), move |state| {
        let flag = flag.clone();
        async move {
            let mut s = state?;
            match tokio::time::timeout(limit, s.next()).await {
                Ok(Some(item)) => Some((item.map_err(std::io::Error::other), Some(s))),
                Ok(None) => None,
                Err(_) => {
                    flag.store(true, Ordering::SeqCst);
                    Some((
                        Err(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "request body stalled",
                        )),
                        None,
                    ))
                }
            }
        }
    });
    let req = axum::extract::Request::from_parts(parts, axum::body::Body::from_stream(stream));
    let resp = next.run(req).await;
    if stalled.load(Ordering::SeqCst) {
        return ApiError::Timeout(format!(
            "request body stalled: no data for {} s (limits.body_read_timeout_s); the upload was discarded",
            limit.as_secs_f64()
        ))
        .into_response();
    }
    resp
}

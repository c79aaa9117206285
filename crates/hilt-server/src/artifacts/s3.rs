//! S3-compatible object storage: `--artifacts s3://BUCKET[/PREFIX]`. Endpoint, region and
//! credentials come from the standard environment variables (`AWS_ENDPOINT_URL`,
//! `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, …);
//! plain `http://` is allowed for a loopback endpoint, elsewhere only with
//! `AWS_ALLOW_HTTP=true`. Requests are path-style when an endpoint is given (MinIO, Ceph,
//! Garage, moto). Every request has a deadline and few retries, so a store that stops
//! answering fails the request (503) instead of hanging it.

use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::prefix::PrefixStore;
use object_store::{BackoffConfig, ClientConfigKey, ObjectStore, RetryConfig};

use super::ArtifactsError;

/// `options` override the environment (object_store config keys).
pub fn open(
    url: &str,
    options: &[(String, String)],
) -> Result<Arc<dyn ObjectStore>, ArtifactsError> {
    let unusable = |detail: String| ArtifactsError::Unusable {
        url: url.to_string(),
        detail,
    };
    let rest = url.trim_start_matches("s3://");
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(unusable(
            "the URL names no bucket: use s3://BUCKET[/PREFIX]".into(),
        ));
    }
    // TLS through rustls with ring (see the workspace Cargo.toml); installing it twice is
    // harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut b = AmazonS3Builder::from_env();
    for (k, v) in options {
        let key = k
            .parse::<AmazonS3ConfigKey>()
            .map_err(|e| unusable(format!("unknown S3 setting {k:?}: {e}")))?;
        b = b.with_config(key, v);
    }
    let mut b = b.with_bucket_name(bucket);
    // Deadlines through config keys: `with_client_options` would replace what the
    // environment set (AWS_ALLOW_HTTP among them).
    b = b
        .with_config(
            AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout),
            "5s",
        )
        .with_config(AmazonS3ConfigKey::Client(ClientConfigKey::Timeout), "60s");
    if let Some(ep) = b.get_config_value(&AmazonS3ConfigKey::Endpoint)
        && is_loopback_http(&ep)
    {
        b = b.with_allow_http(true);
    }
    if b.get_config_value(&AmazonS3ConfigKey::Region).is_none() {
        b = b.with_region("us-east-1");
    }
    b = b.with_retry(RetryConfig {
        backoff: BackoffConfig::default(),
        max_retries: 2,
        retry_timeout: Duration::from_secs(15),
    });
    let s3 = b
        .build()
        .map_err(|e| unusable(super::short(&e.to_string())))?;
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() {
        Ok(Arc::new(s3))
    } else {
        Ok(Arc::new(PrefixStore::new(s3, prefix)))
    }
}

/// `http://127.0.0.1:…`, `http://localhost:…` or `http://[::1]:…`.
fn is_loopback_http(endpoint: &str) -> bool {
    let Some(rest) = endpoint.strip_prefix("http://") else {
        return false;
    };
    let host = rest.split('/').next().unwrap_or_default();
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_loopback_endpoints_get_plain_http() {
        for ok in [
            "http://127.0.0.1:9000",
            "http://localhost:9000/",
            "http://[::1]:9000",
            "http://127.0.0.2",
        ] {
            assert!(super::is_loopback_http(ok), "{ok}");
        }
        for no in [
            "https://127.0.0.1:9000",
            "http://10.0.0.1:9000",
            "http://s3.example.com",
            "http://localhost.example.com",
        ] {
            assert!(!super::is_loopback_http(no), "{no}");
        }
    }
}

//! HTTP and HTTPS for drivers (relay boards, meters): one deadline per request, an answer
//! read with a size cap, and a non-2xx status turned into an error that quotes the answer.
//! TLS (roots, certificate errors) is `tls.rs`.

use std::collections::BTreeMap;
use std::time::Duration;

/// Largest answer body read.
pub const MAX_BODY: u64 = 64 * 1024;

/// What follows `http://` or `https://` in `url` (`None` for any other scheme).
pub fn after_scheme(url: &str) -> Option<&str> {
    url.strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
}

/// A client whose every request must finish within `timeout_ms` (at least 1 ms); statuses
/// are answers, not errors ([`request`] judges them).
pub fn agent(timeout_ms: u64) -> ureq::Agent {
    crate::tls::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_millis(timeout_ms.max(1))))
        .build()
        .into()
}

/// Sends `method url` with `headers` and no body; the answer's body on a 2xx status.
/// `Err` says what failed (the caller names the method and URL).
pub fn request(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    headers: &BTreeMap<String, String>,
) -> Result<String, String> {
    crate::tls::check_url(url)?;
    let mut b = ureq::http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        b = b.header(k, v);
    }
    let req = b.body(()).map_err(|e| e.to_string())?;
    let mut resp = agent.run(req).map_err(|e| crate::tls::describe(&e, url))?;
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .with_config()
        .limit(MAX_BODY)
        .read_to_string()
        .map_err(|e| e.to_string())?;
    if !(200..300).contains(&status) {
        let text = body.trim();
        let text = &text[..text.floor_char_boundary(200)];
        return Err(format!("HTTP {status} {text}"));
    }
    Ok(body)
}

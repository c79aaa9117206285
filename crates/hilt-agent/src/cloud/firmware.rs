//! The firmware of an assignment, on disk in the run directory: decoded from
//! `artifact_base64`, or fetched from `firmware_url` (streamed, at most 200 MiB), and
//! checked against `firmware_sha256` when the server gives one (agent-api §6). A failure
//! is the run's: `FLASH_FAILED: …`, as BenchCI words it.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use hilt_api::Assignment;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// Largest firmware image fetched or decoded.
pub const MAX_FIRMWARE: u64 = 200 * 1024 * 1024;

/// An event to report on the way (`artifact.*`).
pub type Note<'a> = &'a mut dyn FnMut(&str, Map<String, Value>);

/// The firmware file for the runner, `None` when the assignment has none.
pub fn materialise(a: &Assignment, dir: &Path, note: Note<'_>) -> Result<Option<PathBuf>, String> {
    let name = safe_name(a.artifact_filename.as_deref().unwrap_or("firmware.bin"));
    let dest = dir.join(&name);
    let (sha, source) = if let Some(b64) = &a.artifact_base64 {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|e| {
                format!("FLASH_FAILED: the assignment's firmware is not valid base64: {e}")
            })?;
        if bytes.len() as u64 > MAX_FIRMWARE {
            return Err(format!(
                "FLASH_FAILED: the assignment's firmware is larger than {MAX_FIRMWARE} bytes"
            ));
        }
        std::fs::write(&dest, &bytes)
            .map_err(|e| format!("FLASH_FAILED: cannot write {}: {e}", dest.display()))?;
        (hex::encode(Sha256::digest(&bytes)), "brokered")
    } else if let Some(url) = &a.firmware_url {
        note(
            "artifact.external_fetch_started",
            json!({"firmware_url_redacted": a.firmware_url_redacted.clone().unwrap_or_else(|| redact(url))})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        );
        let (size, sha) = fetch(url, &dest)?;
        note(
            "artifact.external_fetch_finished",
            json!({"source": "external_url", "firmware_size_bytes": size})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        );
        (sha, "external_url")
    } else {
        return Ok(None);
    };
    if let Some(want) = &a.firmware_sha256 {
        let want = want.trim().to_ascii_lowercase();
        if want != sha {
            return Err(format!(
                "FLASH_FAILED: firmware sha256 mismatch: expected {want}, got {sha}"
            ));
        }
        note(
            "artifact.hash_verified",
            json!({"firmware_sha256": sha, "source": source})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        );
    }
    Ok(Some(dest))
}

/// Streams `url` into `dest` with a running size cap; returns (size, sha256).
fn fetch(url: &str, dest: &Path) -> Result<(u64, String), String> {
    hilt_hw::tls::check_url(url).map_err(|m| format!("FLASH_FAILED: {m}"))?;
    let http = hilt_hw::tls::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(15)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .build()
        .new_agent();
    let fail = |m: String| {
        format!(
            "FLASH_FAILED: cannot fetch the firmware from {}: {m}",
            redact(url)
        )
    };
    let mut resp = http
        .get(url)
        .call()
        .map_err(|e| fail(hilt_hw::tls::describe(&e, url)))?;
    let status = resp.status().as_u16();
    if !(200..300).contains(&status) {
        return Err(fail(format!("HTTP {status}")));
    }
    let mut body = resp
        .body_mut()
        .with_config()
        .limit(MAX_FIRMWARE + 1)
        .reader();
    let mut out = std::fs::File::create(dest).map_err(|e| fail(e.to_string()))?;
    let mut hash = Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = body.read(&mut buf).map_err(|e| fail(e.to_string()))?;
        if n == 0 {
            break;
        }
        size += n as u64;
        if size > MAX_FIRMWARE {
            return Err(fail(format!("larger than {MAX_FIRMWARE} bytes")));
        }
        hash.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(|e| fail(e.to_string()))?;
    }
    out.sync_all().map_err(|e| fail(e.to_string()))?;
    Ok((size, hex::encode(hash.finalize())))
}

/// The URL without its query (signed URLs carry credentials there) and user info.
pub fn redact(url: &str) -> String {
    let no_query = url.split(['?', '#']).next().unwrap_or_default();
    match no_query.split_once("://") {
        Some((scheme, rest)) => {
            let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
            format!("{scheme}://{rest}")
        }
        None => no_query.to_string(),
    }
}

/// A file name for the firmware inside the run directory: its last path component, with
/// anything unusual replaced.
fn safe_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let clean: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.is_empty() || clean.chars().all(|c| c == '.') {
        "firmware.bin".into()
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_urls_are_made_safe() {
        assert_eq!(safe_name("../../etc/passwd"), "passwd");
        assert_eq!(safe_name(".."), "firmware.bin");
        assert_eq!(safe_name("fw v1.elf"), "fw_v1.elf");
        assert_eq!(
            redact("http://user:pw@host:8/fw.bin?sig=secret"),
            "http://host:8/fw.bin"
        );
    }
}

//! DUT self-identification over UART (bench-format §2.4): before the first test the runner
//! sends the query and reads one `BENCHCI_ID: {json}` line, then compares it with the bench.

use std::time::Duration;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use hilt_hw::CancelToken;
use hilt_model::bench::{Bench, DutIdentity};
use hilt_model::run::{Category, EventKind, Failure, now};

use crate::data;
use crate::events::Events;
use crate::session::Session;

const PREFIX: &str = "BENCHCI_ID:";

/// The `duts[]` entries, and a failure when a required identification failed.
pub fn identify(
    bench: &Bench,
    nodes: &std::collections::BTreeSet<String>,
    session: &mut Session,
    ev: &mut Events,
    cancel: &CancelToken,
) -> (Vec<Value>, Option<Failure>) {
    let mut duts = Vec::new();
    let mut failure = None;
    for name in nodes {
        let Some(dut) = bench.nodes.get(name).and_then(|n| n.dut.as_ref()) else {
            continue;
        };
        let configured = configured(dut);
        let Some(si) = &dut.self_identification else {
            if !configured.is_empty() {
                let mut e = Map::new();
                e.insert("node".into(), name.clone().into());
                for (k, v) in dut.fields() {
                    e.insert(k.into(), json!(v));
                }
                e.insert("identity_source".into(), "configured".into());
                e.insert("verification_status".into(), "configured_only".into());
                duts.push(Value::Object(e));
            }
            continue;
        };
        ev.emit(
            EventKind::DUT_ID_STARTED,
            None,
            data!("node_name" => name, "transport_name" => si.transport),
        );
        let queried_at = now();
        let observed = query(
            session,
            name,
            &si.transport,
            &si.query,
            si.within_ms,
            cancel,
        );
        let (entry, problem) = match observed {
            Ok((obs, sha)) => compare(
                name,
                dut,
                &configured,
                obs,
                &si.transport,
                si.required,
                &queried_at,
                &sha,
            ),
            Err(err) => {
                let status = if si.required {
                    "query_failed_required"
                } else {
                    "query_failed_optional"
                };
                let mut e = Map::new();
                e.insert("node".into(), name.clone().into());
                for (k, v) in dut.fields() {
                    e.insert(k.into(), json!(v));
                }
                // As BenchCI: nothing was observed, so the entry holds the bench's identity.
                e.insert("identity_source".into(), "configured".into());
                e.insert("verification_status".into(), status.into());
                e.insert(
                    "self_identification".into(),
                    json!({"transport": si.transport, "queried_at": queried_at, "configured": configured,
                           "observed": {}, "response_sha256": null, "verification_status": "query_failed",
                           "required": si.required, "error": err}),
                );
                let f = si.required.then(|| {
                    Failure::new(
                        Category::DutIdentityQueryFailed,
                        format!(
                            "DUT identity query on {name}.{} failed: {err}",
                            si.transport
                        ),
                    )
                });
                (Value::Object(e), f)
            }
        };
        // Like a step failure, an identity failure says where it happened and which log
        // holds the exchange.
        let problem = problem.map(|mut f| {
            f.failed_step.step_type = Some("dut_self_identification".into());
            f.failed_step.node_name = Some(name.clone());
            f.failed_step.transport_name = Some(si.transport.clone());
            match session.uarts.get(&(name.clone(), si.transport.clone())) {
                Some(u) => f.with_artifact("transport_log", u.log_path()),
                None => f,
            }
        });
        let status = entry["verification_status"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let kind = if problem.is_some() || status.starts_with("query_failed") {
            EventKind::DUT_ID_WARNING
        } else {
            EventKind::DUT_ID_FINISHED
        };
        ev.emit(kind, None, data!("node_name" => name, "transport_name" => si.transport, "verification_status" => status, "required" => si.required));
        duts.push(entry);
        if failure.is_none() {
            failure = problem;
        }
    }
    (duts, failure)
}

fn configured(dut: &DutIdentity) -> Map<String, Value> {
    dut.fields()
        .into_iter()
        .filter_map(|(k, v)| {
            v.as_ref()
                .map(|v| (k.to_string(), Value::String(v.clone())))
        })
        .collect()
}

fn query(
    session: &mut Session,
    node: &str,
    transport: &str,
    q: &str,
    within_ms: u64,
    cancel: &CancelToken,
) -> Result<(Map<String, Value>, String), String> {
    let uart = session
        .uarts
        .get_mut(&(node.to_string(), transport.to_string()))
        .ok_or_else(|| format!("transport {node}.{transport} is not open"))?;
    let within = Duration::from_millis(within_ms);
    // `send` marks the stream, so the answer is searched from the moment of sending.
    uart.send(q.as_bytes())
        .map_err(|e| format!("send failed: {e}"))?;
    let line = uart
        .read_line_with_prefix(PREFIX, within, cancel)
        .ok_or_else(|| format!("no `{PREFIX}` line within {within_ms} ms"))?;
    if line.len() > 4096 {
        return Err("identity response longer than 4096 bytes".into());
    }
    let sha = hex::encode(Sha256::digest(line.as_bytes()));
    let body = line[line.find(PREFIX).unwrap_or(0) + PREFIX.len()..].trim();
    let obj: Map<String, Value> = serde_json::from_str(body)
        .map_err(|e| format!("identity response is not a JSON object: {e}"))?;
    if obj.get("schema_version").and_then(Value::as_str) != Some("1") {
        return Err("identity response lacks \"schema_version\": \"1\"".into());
    }
    let mut fields = Map::new();
    for k in [
        "hardware_revision",
        "serial_number",
        "asset_id",
        "fixture_slot",
    ] {
        match obj.get(k) {
            Some(Value::String(s)) if s.len() <= 512 => {
                fields.insert(k.into(), Value::String(s.clone()));
            }
            Some(Value::Null) | None => {}
            Some(_) => {
                return Err(format!(
                    "identity field `{k}` must be a string of at most 512 characters"
                ));
            }
        }
    }
    Ok((fields, sha))
}

#[allow(clippy::too_many_arguments)]
fn compare(
    name: &str,
    dut: &DutIdentity,
    configured: &Map<String, Value>,
    observed: Map<String, Value>,
    transport: &str,
    required: bool,
    queried_at: &str,
    sha: &str,
) -> (Value, Option<Failure>) {
    let mut verified = Vec::new();
    let mut missing = Vec::new();
    let mut mismatched = Vec::new();
    for (k, want) in configured {
        match observed.get(k) {
            Some(got) if got == want => verified.push(k.clone()),
            Some(got) => mismatched.push(format!("{k}: bench says {want}, device says {got}")),
            None => missing.push(k.clone()),
        }
    }
    let status = if !mismatched.is_empty() {
        "mismatch"
    } else if configured.is_empty() {
        "observed"
    } else if missing.is_empty() {
        "verified"
    } else {
        "partially_verified"
    };
    // As BenchCI: a verified entry holds the identity fields known from either side
    // (observed wins); a mismatch keeps the bench's identity (every field, null when
    // unset) and says what went wrong inside `self_identification`.
    let mut e = Map::new();
    e.insert("node".into(), name.into());
    if mismatched.is_empty() {
        for (k, v) in dut.fields() {
            if let Some(v) = observed
                .get(k)
                .cloned()
                .or_else(|| v.as_ref().map(|v| json!(v)))
            {
                e.insert(k.into(), v);
            }
        }
        e.insert("identity_source".into(), "uart_self_identification".into());
        e.insert("verification_status".into(), status.into());
        e.insert(
            "self_identification".into(),
            json!({"transport": transport, "queried_at": queried_at, "configured": configured, "observed": observed,
                   "verified_fields": verified, "missing_configured_fields": missing, "response_sha256": sha}),
        );
    } else {
        for (k, v) in dut.fields() {
            e.insert(k.into(), json!(v));
        }
        e.insert("identity_source".into(), "configured".into());
        e.insert("verification_status".into(), status.into());
        let fields: Vec<&str> = mismatched
            .iter()
            .map(|m| m.split(':').next().unwrap_or(""))
            .collect();
        e.insert(
            "self_identification".into(),
            json!({"transport": transport, "queried_at": queried_at, "configured": configured, "observed": observed,
                   "response_sha256": sha, "verification_status": status, "required": required,
                   "error": format!("identity fields differ from the bench: {}", fields.join(", "))}),
        );
    }
    let failure = (!mismatched.is_empty()).then(|| {
        Failure::new(
            Category::DutIdentityMismatch,
            format!(
                "device on {name} is not the one the bench describes: {}",
                mismatched.join("; ")
            ),
        )
    });
    (Value::Object(e), failure)
}

//! Registered benches from agent.yaml, with their summaries and health. Rebuilt on SIGHUP.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use hilt_api::{BenchCapabilities, BenchDetail, BenchStatus, BenchSummary};

use hilt_hw::ResourceKind;
use hilt_model::LoadOptions;
use hilt_model::agent::{AgentConfig, RegisteredBench};
use hilt_model::bench::Bench;
use hilt_runner::selftest::{SelfTestOptions, compact, self_test, unknown_health};

use crate::settings::AgentSettings;

pub struct BenchEntry {
    pub reg: RegisteredBench,
    pub path: PathBuf,
    pub bench: Bench,
    pub health: Value,
    pub report: Value,
}

#[derive(Default)]
pub struct Registry {
    pub config: Option<AgentConfig>,
    pub config_path: Option<PathBuf>,
    pub benches: BTreeMap<String, BenchEntry>,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{0}")]
    Config(String),
    #[error("bench `{id}` ({path}): {message}")]
    Bench {
        id: String,
        path: String,
        message: String,
    },
}

impl Registry {
    /// Loads agent.yaml and every registered bench file; any error refuses the whole file.
    pub fn load(settings: &AgentSettings) -> Result<Registry, RegistryError> {
        let Some(path) = &settings.config_path else {
            return Ok(Registry::default());
        };
        let loaded = hilt_model::agent::load_agent_config(path, LoadOptions::default())
            .map_err(|e| RegistryError::Config(e.to_string()))?;
        let cfg = loaded.value;
        let mut benches = BTreeMap::new();
        for reg in &cfg.benches {
            let bpath = cfg.bench_path(path, reg);
            let bench = hilt_model::load_bench(&bpath, LoadOptions::default()).map_err(|e| {
                RegistryError::Bench {
                    id: reg.id.clone(),
                    path: bpath.display().to_string(),
                    message: e.to_string(),
                }
            })?;
            benches.insert(
                reg.id.clone(),
                BenchEntry {
                    reg: reg.clone(),
                    path: std::path::absolute(&bpath).unwrap_or(bpath),
                    bench: bench.value,
                    health: unknown_health("self-test has not run yet"),
                    report: Value::Null,
                },
            );
        }
        Ok(Registry {
            config: Some(cfg),
            config_path: Some(path.clone()),
            benches,
        })
    }

    pub fn agent_id(&self) -> String {
        self.config
            .as_ref()
            .map(|c| c.agent.id.clone())
            .unwrap_or_else(|| "standalone-agent".into())
    }

    pub fn agent_name(&self) -> String {
        self.config
            .as_ref()
            .map(AgentConfig::name)
            .unwrap_or_else(|| "hilt agent".into())
    }

    pub fn registered_mode(&self) -> bool {
        self.config.is_some()
    }
}

/// Runs the non-destructive self-test of one bench file; returns (compact health, report).
pub fn health_check(settings: &AgentSettings, bench_id: &str, bench_file: &Path) -> (Value, Value) {
    let log_dir = settings.health_dir(bench_id);
    let opts = SelfTestOptions {
        open_hardware: true,
        read_inputs: settings.self_test_read_inputs,
        read_measurements: settings.self_test_read_measurements,
        log_dir: log_dir.clone(),
    };
    let report = self_test(bench_file, &opts);
    let _ = std::fs::create_dir_all(&log_dir);
    let _ =
        hilt_runner::rundir::write_json_atomic(&log_dir.join("self-test-summary.json"), &report);
    let health = compact(
        &report,
        Some(&log_dir.display().to_string()),
        Some(bench_id),
        json!({"open_hardware": true, "read_inputs": opts.read_inputs, "read_measurements": opts.read_measurements}),
    );
    (health, report)
}

/// The bench summary of `GET /v1/benches` (agent-api spec §3.2).
pub fn summary(agent_id: &str, e: &BenchEntry, current_run: Option<&str>) -> BenchSummary {
    let b = &e.bench;
    let mut transports: Vec<String> = b
        .nodes
        .values()
        .flat_map(|n| n.transports.values().map(|t| t.backend().to_string()))
        .collect();
    transports.sort();
    transports.dedup();
    let mut flash: Vec<String> = b
        .nodes
        .values()
        .filter_map(|n| n.flash.as_ref().map(|f| f.backend.name().to_string()))
        .collect();
    flash.sort();
    flash.dedup();
    let (mut power, mut meas) = (Vec::new(), Vec::new());
    for r in b.resources.values() {
        let t = r.driver.type_name();
        if r.kind == "measurement" || r.driver.is_measurement() {
            meas.push(t.to_string());
        } else if r.kind == "power_controller" || is_power_driver(t) {
            power.push(t.to_string());
        }
    }
    for v in [&mut power, &mut meas] {
        v.sort();
        v.dedup();
    }
    let profile_known = e.reg.hardware_profile.as_deref() == Some("generic");
    let text = |k: &str| e.health[k].as_str().map(str::to_string);
    BenchSummary {
        bench_id: e.reg.id.clone(),
        agent_id: agent_id.to_string(),
        name: b.bench.name.clone(),
        description: b.bench.description.clone(),
        tags: tags(e),
        status: if current_run.is_some() {
            BenchStatus::Busy
        } else {
            BenchStatus::Idle
        },
        current_run_id: current_run.map(str::to_string),
        capabilities: BenchCapabilities {
            has_gpio: b.nodes.values().any(|n| !n.gpio.is_empty()),
            has_power: !power.is_empty(),
            has_measurements: !meas.is_empty(),
            transports,
            flash_backends: flash,
            power_backends: power,
            measurement_backends: meas,
            node_count: b.nodes.len(),
            i2c_buses: Vec::new(),
            spi_devices: Vec::new(),
            hardware_profile: e.reg.hardware_profile.clone(),
            hardware_revision: e.reg.hardware_revision.clone(),
            hardware_profile_known: Some(profile_known),
            hardware_channels: profile_known.then(Vec::new),
        },
        health: e.health.clone(),
        health_status: text("status"),
        health_checked_at: text("checked_at"),
        health_summary: text("summary"),
    }
}

/// `GET /v1/benches/{bench_id}`: the summary, the bench file and the sorted node names.
pub fn detail(agent_id: &str, e: &BenchEntry, current_run: Option<&str>) -> BenchDetail {
    BenchDetail {
        summary: summary(agent_id, e, current_run),
        bench_file: e.path.display().to_string(),
        node_names: e.bench.nodes.keys().cloned().collect(),
    }
}

/// A power driver of this build's registry (supported means registered).
fn is_power_driver(tag: &str) -> bool {
    hilt_hw::drivers::resource_driver(tag).is_some_and(|d| d.kind() == ResourceKind::Power)
}

fn tags(e: &BenchEntry) -> Vec<String> {
    let mut t: Vec<String> = e
        .reg
        .tags
        .iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if t.is_empty() {
        for n in e.bench.nodes.values() {
            for tag in &n.tags {
                if !t.contains(tag) {
                    t.push(tag.clone());
                }
            }
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_backends_come_from_the_driver_registry() {
        // `relay_controller` is not a power kind, so only the driver registry can say
        // that `http_relay` switches power; a measurement driver never counts.
        let yaml = "bench: {name: b}\nnodes: {dut: {kind: mcu, gpio: {x: {backend: mock_gpio, channel: 0, direction: output}}}}\nresources:\n  \
            relay: {kind: relay_controller, driver: {type: http_relay, outlets: {a: \"1\"}, \
            on_url: \"http://r/{channel}/on\", off_url: \"http://r/{channel}/off\"}}\n  \
            meter: {kind: instrument, driver: {type: mock_measurement, value: 1.0}}\n";
        let bench = hilt_model::parse_bench(yaml, "bench.yaml", LoadOptions::default())
            .unwrap()
            .value;
        let entry = BenchEntry {
            reg: RegisteredBench {
                id: "b".into(),
                bench_file: "bench.yaml".into(),
                tags: Vec::new(),
                hardware_profile: None,
                hardware_revision: None,
            },
            path: PathBuf::from("bench.yaml"),
            bench,
            health: Value::Null,
            report: Value::Null,
        };
        let caps = &summary("a", &entry, None).capabilities;
        assert_eq!(caps.power_backends, ["http_relay"], "{caps:?}");
        assert_eq!(caps.measurement_backends, ["mock_measurement"]);
        assert!(caps.has_power);
    }

    /// The `json!` builders the bench endpoints used before the typed bodies, kept to
    /// prove the typed bodies serialise to the same bytes (keys in the same order).
    fn old_summary(agent_id: &str, e: &BenchEntry, current_run: Option<&str>) -> Value {
        let b = &e.bench;
        let mut transports: Vec<&str> = b
            .nodes
            .values()
            .flat_map(|n| n.transports.values().map(|t| t.backend()))
            .collect();
        transports.sort();
        transports.dedup();
        let mut flash: Vec<&str> = b
            .nodes
            .values()
            .filter_map(|n| n.flash.as_ref().map(|f| f.backend.name()))
            .collect();
        flash.sort();
        flash.dedup();
        let (mut power, mut meas) = (Vec::new(), Vec::new());
        for r in b.resources.values() {
            let t = r.driver.type_name();
            if r.kind == "measurement" || r.driver.is_measurement() {
                meas.push(t);
            } else if r.kind == "power_controller" || is_power_driver(t) {
                power.push(t);
            }
        }
        for v in [&mut power, &mut meas] {
            v.sort();
            v.dedup();
        }
        let profile_known = e.reg.hardware_profile.as_deref() == Some("generic");
        json!({
            "bench_id": e.reg.id,
            "agent_id": agent_id,
            "name": b.bench.name,
            "description": b.bench.description,
            "tags": tags(e),
            "status": if current_run.is_some() { "busy" } else { "idle" },
            "current_run_id": current_run,
            "capabilities": {
                "transports": transports, "has_gpio": b.nodes.values().any(|n| !n.gpio.is_empty()),
                "has_power": !power.is_empty(), "has_measurements": !meas.is_empty(),
                "flash_backends": flash, "power_backends": power, "measurement_backends": meas,
                "node_count": b.nodes.len(), "i2c_buses": [], "spi_devices": [],
                "hardware_profile": e.reg.hardware_profile, "hardware_revision": e.reg.hardware_revision,
                "hardware_profile_known": profile_known,
                "hardware_channels": if profile_known { json!([]) } else { Value::Null },
            },
            "health": e.health,
            "health_status": e.health["status"],
            "health_checked_at": e.health["checked_at"],
            "health_summary": e.health["summary"],
        })
    }

    const FULL: &str = "bench: {name: rig, description: two nodes}\n\
        nodes:\n  \
          dut:\n    kind: mcu\n    tags: [stm32, can]\n    \
            flash: {backend: openocd, interface_cfg: interface/stlink.cfg, target_cfg: target/stm32l4x.cfg}\n    \
            transports: {console: {backend: uart, port: /dev/null, baud: 115200}}\n    \
            gpio: {reset: {backend: mock_gpio, channel: 0, direction: output}}\n  \
          aux:\n    kind: mcu\n    tags: [can, extra]\n    \
            transports: {log: {backend: uart, port: /dev/null, baud: 9600}}\n\
        resources:\n  \
          mains: {kind: power_controller, driver: {type: mock_power, outlets: {dut: true}}}\n  \
          shunt: {kind: measurement, driver: {type: mock_measurement, value: 0.012}}\n";

    fn entry(yaml: &str, tags: &[&str], profile: Option<&str>, health: Value) -> BenchEntry {
        let bench = hilt_model::parse_bench(yaml, "bench.yaml", LoadOptions::default())
            .unwrap()
            .value;
        BenchEntry {
            reg: RegisteredBench {
                id: "rig-1".into(),
                bench_file: "bench.yaml".into(),
                tags: tags.iter().map(|t| t.to_string()).collect(),
                hardware_profile: profile.map(str::to_string),
                hardware_revision: profile.map(|_| "rev-a".to_string()),
            },
            path: PathBuf::from("/benches/bench.yaml"),
            bench,
            report: json!({"health_status": "healthy", "checks": []}),
            health,
        }
    }

    #[test]
    fn typed_bench_bodies_are_byte_identical_to_the_old_json() {
        let healthy = json!({"schema_version": "benchci.diagnostics.v1", "status": "healthy",
            "checked_at": "2026-01-01T00:00:00.000000Z", "summary": "Bench infrastructure looks healthy.",
            "counts": {"passed": 3}, "failing_checks": [], "warning_checks": [], "bench_id": "rig-1"});
        let minimal = "bench: {name: bare}\nnodes: {dut: {kind: mcu, transports: {c: {backend: uart, port: /dev/null, baud: 9600}}}}\n";
        let entries = [
            entry(FULL, &[], Some("generic"), healthy.clone()),
            entry(FULL, &[" lab ", "", "can"], Some("custom"), healthy),
            entry(FULL, &[], None, unknown_health("self-test has not run yet")),
            entry(minimal, &[], None, Value::Null),
        ];
        for e in &entries {
            for run in [None, Some("3f9c2a7b1d04")] {
                let old = old_summary("lab-pi-07", e, run);
                let new = summary("lab-pi-07", e, run);
                assert_eq!(
                    serde_json::to_string(&new).unwrap(),
                    serde_json::to_string(&old).unwrap()
                );
                assert_eq!(
                    serde_json::from_value::<BenchSummary>(old.clone()).unwrap(),
                    new
                );

                // GET /v1/benches/{id}: the summary plus two keys at the end.
                let mut old_detail = old;
                old_detail["bench_file"] = e.path.display().to_string().into();
                old_detail["node_names"] = json!(e.bench.nodes.keys().collect::<Vec<_>>());
                let new_detail = detail("lab-pi-07", e, run);
                assert_eq!(
                    serde_json::to_string(&new_detail).unwrap(),
                    serde_json::to_string(&old_detail).unwrap()
                );
                assert_eq!(
                    serde_json::from_value::<BenchDetail>(old_detail).unwrap(),
                    new_detail
                );
            }
            // GET …/health (with and without the report) and POST …/health/refresh.
            for include_report in [false, true] {
                let mut old = json!({"bench_id": e.reg.id, "health": e.health});
                if include_report {
                    old["report"] = e.report.clone();
                }
                let new = hilt_api::BenchHealth {
                    bench_id: e.reg.id.clone(),
                    health: e.health.clone(),
                    report: include_report.then(|| e.report.clone()),
                };
                assert_eq!(
                    serde_json::to_string(&new).unwrap(),
                    serde_json::to_string(&old).unwrap()
                );
            }
        }
        // A report that is still null is served as `"report": null`, not left out.
        let null_report = hilt_api::BenchHealth {
            bench_id: "b".into(),
            health: Value::Null,
            report: Some(Value::Null),
        };
        assert_eq!(
            serde_json::to_string(&null_report).unwrap(),
            r#"{"bench_id":"b","health":null,"report":null}"#
        );
    }
}

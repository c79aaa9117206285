//! Registered benches from agent.yaml, with their summaries and health. Rebuilt on SIGHUP.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

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
pub fn summary(agent_id: &str, e: &BenchEntry, current_run: Option<&str>) -> Value {
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
        let caps = &summary("a", &entry, None)["capabilities"];
        assert_eq!(caps["power_backends"], json!(["http_relay"]), "{caps}");
        assert_eq!(caps["measurement_backends"], json!(["mock_measurement"]));
        assert_eq!(caps["has_power"], true);
    }
}

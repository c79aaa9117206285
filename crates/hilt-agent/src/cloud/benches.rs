//! The benches a cloud agent serves: one bench file (`--bench`, BenchCI's form) or every
//! bench of an agent.yaml (`--config`), each self-tested at start with the local agent's
//! health check, and reported to the server as the §6 cloud bench summary.

use std::path::PathBuf;

use hilt_api::CloudBench;
use hilt_model::LoadOptions;
use hilt_model::agent::RegisteredBench;
use serde_json::Value;

use crate::registry::{self, BenchEntry, Registry};
use crate::settings::AgentSettings;

/// Where the benches come from.
#[derive(Debug, Clone)]
pub enum BenchSource {
    /// `--bench FILE` with its optional identity.
    Single {
        bench: PathBuf,
        bench_id: Option<String>,
        tags: Vec<String>,
        hardware_profile: Option<String>,
        hardware_revision: Option<String>,
    },
    /// `--config agent.yaml`: every registered bench (`--tag`s are added to each).
    Config { path: PathBuf, tags: Vec<String> },
}

/// The benches, loaded and validated (any error refuses them all, as `agent serve` does).
/// Returns the agent.yaml agent name, if any, beside them.
pub fn load(
    src: &BenchSource,
    settings: &AgentSettings,
) -> Result<(Vec<BenchEntry>, Option<String>), String> {
    match src {
        BenchSource::Single {
            bench,
            bench_id,
            tags,
            hardware_profile,
            hardware_revision,
        } => {
            let loaded = hilt_model::load_bench(bench, LoadOptions::default())
                .map_err(|e| format!("bench {}: {e}", bench.display()))?;
            let b = loaded.value;
            let id = match bench_id {
                Some(id) if !id.trim().is_empty() => id.trim().to_string(),
                Some(_) => return Err("--bench-id must not be empty".into()),
                None => slug(&b.bench.name),
            };
            let reg = RegisteredBench {
                id,
                bench_file: bench.display().to_string(),
                tags: tags.clone(),
                hardware_profile: hardware_profile.clone(),
                hardware_revision: hardware_revision.clone(),
            };
            Ok((
                vec![BenchEntry {
                    reg,
                    path: std::path::absolute(bench).unwrap_or_else(|_| bench.clone()),
                    bench: b,
                    health: hilt_runner::selftest::unknown_health("self-test has not run yet"),
                    report: Value::Null,
                }],
                None,
            ))
        }
        BenchSource::Config { path, tags } => {
            let mut s = settings.clone();
            s.config_path = Some(path.clone());
            let reg = Registry::load(&s).map_err(|e| format!("{}: {e}", path.display()))?;
            if reg.benches.is_empty() {
                return Err(format!(
                    "{}: no benches registered: a cloud agent needs at least one",
                    path.display()
                ));
            }
            let name = reg.agent_name();
            let mut out: Vec<BenchEntry> = reg.benches.into_values().collect();
            for e in &mut out {
                for t in tags {
                    if !e.reg.tags.contains(t) {
                        e.reg.tags.push(t.clone());
                    }
                }
            }
            Ok((out, Some(name)))
        }
    }
}

/// The non-destructive start-up self-test of each bench (the local agent's), in parallel:
/// a bench whose hardware is unreachable reports `failing` and the server schedules
/// nothing on it.
pub fn self_test(benches: &mut [BenchEntry], settings: &AgentSettings) {
    std::thread::scope(|s| {
        for e in benches.iter_mut() {
            s.spawn(move || {
                let (health, report) = registry::health_check(settings, &e.reg.id, &e.path);
                tracing::info!(
                    "bench {}: self-test {}",
                    e.reg.id,
                    health["status"].as_str().unwrap_or("unknown")
                );
                e.health = health;
                e.report = report;
            });
        }
    });
}

/// The cloud bench summary (agent-api §6): the §3.2 summary without `agent_id`, plus
/// `node_names`.
pub fn cloud_summary(e: &BenchEntry, current_run: Option<&str>) -> CloudBench {
    let detail = registry::detail("", e, current_run);
    let mut v = serde_json::to_value(&detail.summary).unwrap_or_default();
    if let Some(m) = v.as_object_mut() {
        m.remove("agent_id");
        m.insert("node_names".into(), detail.node_names.into());
    }
    serde_json::from_value(v).unwrap_or_else(|_| CloudBench {
        bench_id: e.reg.id.clone(),
        name: Some(e.bench.bench.name.clone()),
        tags: e.reg.tags.clone(),
        status: Some(
            if current_run.is_some() {
                "busy"
            } else {
                "idle"
            }
            .into(),
        ),
        current_run_id: current_run.map(str::to_string),
        health_status: e.health["status"].as_str().map(str::to_string),
        rest: Default::default(),
    })
}

/// BenchCI's default bench id: the bench name lower-cased, non-alphanumerics → `-`.
pub fn slug(name: &str) -> String {
    let s: String = name
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let s = s.trim_matches('-').to_string();
    if s.is_empty() { "bench".into() } else { s }
}

#[cfg(test)]
mod tests {
    #[test]
    fn bench_ids_default_to_a_slug_of_the_name() {
        assert_eq!(super::slug("Cloud Sim Bench #2"), "cloud-sim-bench--2");
        assert_eq!(super::slug("  "), "bench");
    }
}

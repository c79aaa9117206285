//! Older run directories (BenchCI's layout, or hilt's before the workflow journal) gain
//! the files this version writes, on first touch by `hilt runs status|resume|recover`,
//! made from what is there: a status.json monitoring block (or a whole status.json from
//! results.json), the command and event ledgers (empty: nothing was recorded), the
//! workflow journal (the tests results.json holds, and the inputs its evidence names),
//! run_manifest.json, host_inventory_snapshot.json (from inputs/bench.yaml),
//! recovery_summary.md and artifact_manifest.json (hashed last). Files that exist are
//! never rewritten; each file made is listed in run_manifest.json's `backfilled`.

use std::path::Path;

use serde_json::{Map, Value, json};

use hilt_model::bench::Bench;
use hilt_model::run::{Phase, now};

use super::journal::JOURNAL;
use crate::rundir::{write_atomic, write_json_atomic};

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Backfilled {
    pub file: String,
    /// What it was made from.
    pub from: String,
}

/// The hosts and auth references of a bench without secrets (a password is only ever the
/// name of its environment variable in a bench).
pub fn host_inventory(bench: &Bench, source: &str) -> Value {
    json!({
        "schema_version": "hilt.host_inventory.v1",
        "generated_at": now(),
        "source": source,
        "auth_refs": bench.auth_refs,
        "hosts": bench.hosts,
    })
}

fn read_json(p: &Path) -> Option<Value> {
    serde_json::from_slice(&std::fs::read(p).ok()?).ok()
}

/// Restores what an older layout lacks; returns what was made. A directory with a
/// workflow journal is of this layout (its run writes the rest at its end, or a resume
/// does): it is left alone, so a live run is never written to from outside.
pub fn backfill(dir: &Path) -> Vec<Backfilled> {
    let mut done = Vec::new();
    if dir.join(JOURNAL).exists() {
        return done;
    }
    let results = read_json(&dir.join("results.json"));
    let mut add = |file: &str, from: &str| {
        done.push(Backfilled {
            file: file.into(),
            from: from.into(),
        })
    };
    if let Some(from) = status(dir, results.as_ref()) {
        add("status.json", &from);
    }
    for f in ["events.jsonl", "command_ledger.jsonl"] {
        let p = dir.join(f);
        if !p.exists() && std::fs::write(&p, b"").is_ok() {
            add(f, "nothing: this layout recorded none (empty ledger)");
        }
    }
    if !dir.join(JOURNAL).exists()
        && let Some(r) = &results
        && journal(dir, r).is_ok()
    {
        add(
            JOURNAL,
            "results.json (its tests and the inputs its evidence names)",
        );
    }
    let snapshot = dir.join("host_inventory_snapshot.json");
    if !snapshot.exists() {
        let bench = hilt_model::load::load_bench(
            &dir.join("inputs/bench.yaml"),
            hilt_model::load::LoadOptions::default(),
        );
        let (doc, from) = match &bench {
            Ok(b) => (
                host_inventory(&b.value, "inputs/bench.yaml"),
                "inputs/bench.yaml",
            ),
            Err(_) => (
                json!({"schema_version": "hilt.host_inventory.v1", "generated_at": now(),
                       "source": null, "auth_refs": {}, "hosts": {}}),
                "nothing: inputs/bench.yaml is missing or unreadable (no hosts)",
            ),
        };
        if write_json_atomic(&snapshot, &doc).is_ok() {
            add("host_inventory_snapshot.json", from);
        }
    }
    if !dir.join("recovery_summary.md").exists() {
        let text = super::recover::summary_markdown(dir, results.as_ref(), &[], &[]);
        if write_atomic(&dir.join("recovery_summary.md"), text.as_bytes(), false).is_ok() {
            add(
                "recovery_summary.md",
                "results.json, status.json and the workflow journal",
            );
        }
    }
    let manifest_missing = !dir.join("run_manifest.json").exists();
    if manifest_missing {
        add("run_manifest.json", "the files of the run directory");
    }
    if !dir.join("artifact_manifest.json").exists() {
        add(
            "artifact_manifest.json",
            "sha256 of every file of the run directory",
        );
    }
    if !done.is_empty() || manifest_missing {
        let status = results
            .as_ref()
            .and_then(|r| r["status"].as_str())
            .unwrap_or("unknown")
            .to_string();
        let mut m = read_json(&dir.join("run_manifest.json")).unwrap_or_else(|| {
            crate::summary::run_manifest(&status, dir, &run_id(dir, results.as_ref()))
        });
        let mut list = m["backfilled"].as_array().cloned().unwrap_or_default();
        for b in &done {
            list.push(json!({"file": b.file, "from": b.from, "at": now()}));
        }
        m["backfilled"] = Value::Array(list);
        let _ = write_json_atomic(&dir.join("run_manifest.json"), &m);
    }
    if done.iter().any(|b| b.file == "artifact_manifest.json") {
        let entries =
            crate::rundir::file_entries(dir, &["manifest.json", "artifact_manifest.json"])
                .unwrap_or_default();
        let _ = write_json_atomic(
            &dir.join("artifact_manifest.json"),
            &json!({"schema_version": "hilt.artifact_manifest.v1", "generated_at": now(),
                    "root_dir": dir.display().to_string(), "artifact_count": entries.len(), "artifacts": entries}),
        );
    }
    done
}

/// Makes status.json when it is missing (a damaged one set aside by the repair), in any
/// layout, from results.json when there is one.
pub fn missing_status(dir: &Path) -> Option<Backfilled> {
    if dir.join("status.json").exists() {
        return None;
    }
    let results = read_json(&dir.join("results.json"));
    status(dir, results.as_ref()).map(|from| Backfilled {
        file: "status.json".into(),
        from,
    })
}

fn run_id(dir: &Path, results: Option<&Value>) -> String {
    results
        .and_then(|r| r["run_id"].as_str())
        .map(str::to_string)
        .unwrap_or_else(|| {
            dir.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
}

/// Fills a status.json that lacks fields (at least the monitoring block), or makes one
/// from results.json. Returns what it was made from, when it changed anything.
fn status(dir: &Path, results: Option<&Value>) -> Option<String> {
    let path = dir.join("status.json");
    let existing = read_json(&path).filter(Value::is_object);
    let had = existing.is_some();
    let mut s = existing.unwrap_or_else(|| json!({}));
    let o = s.as_object_mut()?;
    let before = o.clone();
    let finished = results
        .and_then(|r| r["status"].as_str())
        .map(str::to_string);
    let state = o
        .get("state")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or(finished.clone())
        .unwrap_or_else(|| "running".into());
    let updated = o
        .get("updated_at")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| {
            results
                .and_then(|r| r["finished_at"].as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(now);
    let summary = results.map(|r| r["summary"].clone()).unwrap_or(Value::Null);
    let mut put = |k: &str, v: Value| {
        o.entry(k.to_string()).or_insert(v);
    };
    put("schema_version", json!("hilt.run_status.v1"));
    put("run_id", json!(run_id(dir, results)));
    put("results_dir", json!(dir.display().to_string()));
    put("state", json!(state));
    put(
        "current_phase",
        json!(if finished.is_some() {
            "finalize"
        } else {
            "discover"
        }),
    );
    put("current_test", Value::Null);
    put("current_step", Value::Null);
    put("tests_total", json!(summary["total"].as_u64().unwrap_or(0)));
    put(
        "tests_passed",
        json!(summary["passed"].as_u64().unwrap_or(0)),
    );
    put(
        "tests_failed",
        json!(summary["failed"].as_u64().unwrap_or(0)),
    );
    put("updated_at", json!(updated));
    let phase_state = if finished.is_some() {
        "done"
    } else {
        "pending"
    };
    put(
        "phases",
        Value::Array(
            Phase::ALL
                .iter()
                .map(|p| {
                    json!({"phase": p.as_str(), "state": phase_state, "started_at": null,
                           "finished_at": null, "heartbeat_at": null, "detail": null})
                })
                .collect(),
        ),
    );
    put(
        "monitoring",
        json!({"state": if state == "running" { "stalled" } else { "idle" }, "pid": 0,
               "last_heartbeat_at": updated, "stall_after_s": crate::rundir::STALL_AFTER_S,
               "heartbeat_interval_s": 0}),
    );
    put("alerts", json!([]));
    put(
        "exit_code",
        match finished.as_deref() {
            Some("passed") => json!(0),
            Some("failed") => json!(1),
            Some("cancelled") => json!(130),
            _ => Value::Null,
        },
    );
    if had && *o == before {
        return None;
    }
    write_json_atomic(&path, &s).ok()?;
    Some(if had {
        let added: Vec<&str> = s
            .as_object()?
            .keys()
            .filter(|k| !before.contains_key(*k))
            .map(String::as_str)
            .collect();
        format!("its own fields; added {}", added.join(", "))
    } else if results.is_some() {
        "results.json".into()
    } else {
        "nothing: no results.json (the run never finished)".into()
    })
}

/// A journal for a run directory without one: the inputs its results' evidence names and
/// one `test` line per test results.json holds, so a resume keeps them.
fn journal(dir: &Path, r: &Value) -> std::io::Result<()> {
    let ev = &r["evidence"];
    let bench = ev["bench"]["config_path"].as_str().unwrap_or("");
    let suite = ev["suite"]["path"].as_str().unwrap_or("");
    let inputs = json!({
        "bench": bench, "suite": suite,
        "bench_sha256": ev["bench"]["config_sha256"], "suite_sha256": ev["suite"]["sha256"],
        "artifact": r["artifact"], "skip_flash": r["skip_flash"].as_bool().unwrap_or(false),
        "verbose": r["verbose"].as_bool().unwrap_or(false), "run_id": r["run_id"],
    });
    let mut j = super::Journal::open(dir, 1);
    let mut f = Map::new();
    f.insert("kind".into(), "run".into());
    f.insert("pid".into(), 0.into());
    f.insert("inputs".into(), inputs);
    f.insert("backfilled".into(), true.into());
    j.record("run", f);
    for (i, t) in r["tests"].as_array().into_iter().flatten().enumerate() {
        let mut f = Map::new();
        f.insert("test".into(), (i + 1).into());
        f.insert("name".into(), t["name"].clone());
        f.insert("result".into(), t.clone());
        f.insert("backfilled".into(), true.into());
        j.record("test", f);
    }
    if let Some(s) = r["status"].as_str() {
        let mut f = Map::new();
        f.insert("status".into(), s.into());
        f.insert("backfilled".into(), true.into());
        j.record("end", f);
    }
    Ok(())
}

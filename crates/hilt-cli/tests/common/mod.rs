//! Shared fixtures: a simulated DUT on a real pty, bench/suite files, the real binary.

#![allow(dead_code)]

pub mod cloud;
pub mod hw;
pub mod server;
pub mod sshd;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use hilt_sim::{DutConfig, SimDut, SimDutHandle};
use serde_json::Value;

pub struct Bench {
    pub dir: tempfile::TempDir,
    pub dut: SimDutHandle,
    pub bench: PathBuf,
}

impl Bench {
    /// A sim DUT wired like the demo bench, booted and ready.
    pub fn start() -> Bench {
        let dir = tempfile::tempdir().unwrap();
        let port = dir.path().join("dut.tty");
        let control = dir.path().join("dut.sock");
        let dut = SimDut::start(DutConfig {
            link: Some(port.clone()),
            control: Some(control.clone()),
            ..DutConfig::default()
        })
        .unwrap();
        dut.wait_ready(std::time::Duration::from_secs(5));
        let bench = dir.path().join("bench.yaml");
        let text = include_str!("../../src/demo/bench.yaml")
            .replace("{{PORT}}", &port.display().to_string())
            .replace("{{CONTROL}}", &control.display().to_string());
        std::fs::write(&bench, text).unwrap();
        std::fs::create_dir_all(dir.path().join("locks")).unwrap();
        Bench { dir, dut, bench }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a suite whose tests are the given YAML list items.
    pub fn suite(&self, name: &str, tests_yaml: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(
            &p,
            format!("version: 1\nsuite:\n  name: {name}\ntests:\n{tests_yaml}"),
        )
        .unwrap();
        p
    }

    /// `hilt run` with this bench, a private lock dir and results under the temp dir.
    pub fn run(&self, suite: &Path) -> Command {
        self.run_in(suite, "results")
    }

    /// `hilt run` with results under `<tmp>/<results>`.
    pub fn run_in(&self, suite: &Path, results: &str) -> Command {
        let mut c = hilt();
        c.env("HILT_LOCK_DIR", self.path("locks"))
            .arg("run")
            .arg("--bench")
            .arg(&self.bench)
            .arg("--suite")
            .arg(suite)
            .arg("--results-dir")
            .arg(self.path(results));
        c
    }
}

impl Bench {
    /// The same `hilt run`, as a std Command for spawning in the background.
    pub fn spawn_run(&self, suite: &Path, results: &str) -> std::process::Child {
        std::process::Command::new(assert_cmd::cargo::cargo_bin("hilt"))
            .env_remove("BENCHCI_LOCK_DIR")
            .env("HILT_LOCK_DIR", self.path("locks"))
            .env("NO_COLOR", "1")
            .arg("run")
            .arg("--bench")
            .arg(&self.bench)
            .arg("--suite")
            .arg(suite)
            .arg("--results-dir")
            .arg(self.path(results))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }
}

pub fn hilt() -> Command {
    let mut c = Command::cargo_bin("hilt").unwrap();
    c.env_remove("HILT_LOCK_DIR")
        .env_remove("BENCHCI_LOCK_DIR")
        .env("NO_COLOR", "1");
    c.timeout(std::time::Duration::from_secs(60));
    c
}

/// The newest run directory under `root`.
pub fn last_run(root: &Path) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.created()).ok());
    dirs.pop().expect("a run directory")
}

pub fn json(path: &Path) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

/// Every file a complete run directory must hold.
pub fn assert_complete(run: &Path) {
    for f in [
        "results.json",
        "evidence.json",
        "metadata.json",
        "evidence.html",
        "manifest.json",
        "artifact_manifest.json",
        "run_manifest.json",
        "status.json",
        "events.jsonl",
        "command_ledger.jsonl",
        "recovery_summary.md",
    ] {
        assert!(run.join(f).is_file(), "{f} missing in {}", run.display());
    }
    let status = json(&run.join("status.json"));
    assert_ne!(status["state"], "running", "status.json still says running");
    assert_eq!(status["monitoring"]["state"], "idle");
    let mut last = 0;
    for line in std::fs::read_to_string(run.join("events.jsonl"))
        .unwrap()
        .lines()
    {
        let e: Value = serde_json::from_str(line).unwrap();
        let seq = e["seq"].as_u64().unwrap();
        assert!(seq > last, "event seq not increasing");
        last = seq;
    }
    let manifest = json(&run.join("manifest.json"));
    for a in manifest["artifacts"].as_array().unwrap() {
        let p = run.join(a["path"].as_str().unwrap());
        assert_eq!(
            std::fs::metadata(&p).unwrap().len(),
            a["size_bytes"].as_u64().unwrap(),
            "{} changed after the manifest",
            p.display()
        );
    }
}

//! Helpers of the hardware driver tests: a one-test suite, `hilt run` on a temp dir with
//! its results read back, `hilt validate` refusing a file, and a `hilt sim …` child.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Stdio};

use serde_json::Value;

use super::{assert_complete, hilt, json, last_run};

/// `<dir>/suite.yaml` with the given tests, each a name and its steps (YAML flow maps).
pub fn write_suite_tests(dir: &Path, suite: &str, tests: &[(&str, &[&str])]) -> PathBuf {
    let mut text = format!("version: 1\nsuite: {{name: {suite}}}\ntests:\n");
    for (name, steps) in tests {
        text.push_str(&format!("  - name: {name}\n    steps:\n"));
        for s in *steps {
            text.push_str(&format!("      - {s}\n"));
        }
    }
    let p = dir.join("suite.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

/// `<dir>/suite.yaml` with one test of the given steps.
pub fn write_suite_steps(dir: &Path, suite: &str, test: &str, steps: &[&str]) -> PathBuf {
    write_suite_tests(dir, suite, &[(test, steps)])
}

/// `hilt run` with locks in `<dir>/locks` and results under `<dir>/results`: the exit code
/// and the run directory.
pub fn run_dir(dir: &Path, bench: &Path, suite: &Path) -> (i32, PathBuf) {
    let out = hilt()
        .env("HILT_LOCK_DIR", dir.join("locks"))
        .args(["run", "--bench"])
        .arg(bench)
        .arg("--suite")
        .arg(suite)
        .arg("--results-dir")
        .arg(dir.join("results"))
        .output()
        .unwrap();
    let code = out.status.code().unwrap_or(-1);
    (code, last_run(&dir.join("results")))
}

/// The same, checked complete: the exit code, the run directory and its results.json.
pub fn run_results(dir: &Path, bench: &Path, suite: &Path) -> (i32, PathBuf, Value) {
    let (code, run) = run_dir(dir, bench, suite);
    assert_complete(&run);
    let r = json(&run.join("results.json"));
    (code, run, r)
}

/// The metric `name` of the first test in results.json.
pub fn metric<'a>(r: &'a Value, name: &str) -> &'a Value {
    r["tests"][0]["measurements"]
        .as_array()
        .unwrap_or_else(|| panic!("no measurements: {r:#}"))
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no metric {name}: {r:#}"))
}

/// `hilt validate` of files it must refuse (exit code 3): its stderr, which locates the
/// errors.
pub fn validate_error(bench: &Path, suite: &Path) -> String {
    let out = hilt()
        .args(["validate", "--bench"])
        .arg(bench)
        .arg("--suite")
        .arg(suite)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(3), "{err}");
    err
}

/// `hilt sim …` as a separate process, with its stdin control channel; the first line it
/// prints is its address. Stopped with SIGTERM on drop.
pub struct SimProcess {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    pub address: String,
}

impl SimProcess {
    /// `hilt sim ARGS…`, whose address must start with `scheme` (`""`: any address).
    pub fn start(args: &[&str], scheme: &str) -> SimProcess {
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin!("hilt"))
            .arg("sim")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert!(
            !line.trim().is_empty() && line.starts_with(scheme),
            "hilt sim {args:?} printed {line:?}"
        );
        SimProcess {
            child,
            stdin,
            stdout,
            address: line.trim().to_string(),
        }
    }

    /// One control command on its stdin; its one-line answer.
    pub fn control(&mut self, cmd: &str) -> String {
        writeln!(self.stdin, "{cmd}").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        line.trim().to_string()
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}

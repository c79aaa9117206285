//! The `hilt` side of the loopback sshd labs (`hilt_testkit::sshd`): runs and `hilt runs`
//! commands with a lab's environment, and its benches, for the resume/recover tests.

#![allow(dead_code, unused_imports)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub use hilt_testkit::sshd::{Lab, USER, peers};

use super::{hilt, last_run};

const PASSWORD: &str = "pw-never-in-files-7f3a";

/// What the tests do with a lab through the `hilt` binary.
pub trait LabHilt {
    /// `hilt run` of a suite made of `suite_steps`; returns its output and the run directory.
    fn run(&self, suite_steps: &str) -> (std::process::Output, PathBuf);
    /// `hilt run` of a whole suite file in the background (to be killed mid-run).
    fn spawn(&self, suite: &Path) -> Child;
    /// `hilt runs <what> DIR` with this lab's environment.
    fn runs(&self, what: &str, dir: &Path) -> std::process::Output;
}

impl LabHilt for Lab {
    fn run(&self, suite_steps: &str) -> (std::process::Output, PathBuf) {
        let suite = self.write(
            "suite.yaml",
            &format!("version: 1\nsuite: {{name: remote}}\ntests:\n{suite_steps}"),
        );
        let out = hilt()
            .env("HILT_LOCK_DIR", self.path("locks"))
            .env("LAB_PASSWORD", PASSWORD)
            .arg("run")
            .arg("--bench")
            .arg(self.path("bench.yaml"))
            .arg("--suite")
            .arg(suite)
            .arg("--results-dir")
            .arg(self.path("results"))
            .output()
            .unwrap();
        let run = last_run(&self.path("results"));
        (out, run)
    }

    fn spawn(&self, suite: &Path) -> Child {
        Command::new(assert_cmd::cargo::cargo_bin("hilt"))
            .env_remove("BENCHCI_LOCK_DIR")
            .env("HILT_LOCK_DIR", self.path("locks"))
            .env("LAB_PASSWORD", PASSWORD)
            .env("NO_COLOR", "1")
            .arg("run")
            .arg("--bench")
            .arg(self.path("bench.yaml"))
            .arg("--suite")
            .arg(suite)
            .arg("--results-dir")
            .arg(self.path("results"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    fn runs(&self, what: &str, dir: &Path) -> std::process::Output {
        hilt()
            .env("HILT_LOCK_DIR", self.path("locks"))
            .env("LAB_PASSWORD", PASSWORD)
            .args(["runs", what])
            .arg(dir)
            .output()
            .unwrap()
    }
}

/// bench.yaml with one host `box` reached directly with `auth`.
pub fn direct_bench(lab: &Lab, port: u16, auth: &str) {
    lab.write(
        "bench.yaml",
        &format!(
            "version: 1\nbench: {{name: hosts only}}\n{}hosts:\n  box:\n    hostname: 127.0.0.1\n    port: {port}\n    username: {USER}\n    auth_ref: {auth}\n    known_hosts: known_hosts\n",
            Lab::AUTH
        ),
    );
}

/// bench.yaml with host `gateway` behind two jump hops.
pub fn chain_bench(lab: &Lab, j1: u16, j2: u16, target: u16) {
    lab.chain_bench(j1, j2, target, "");
}

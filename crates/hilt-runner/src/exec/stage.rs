//! The stage phase's bundles (hilt extension, issue 14): for every `(host, bundle)` a
//! step needs, probe the host's platform (`uname -sm` through the host's connection), pick
//! the first candidate whose platform matches (aliases normalised) and whose file exists,
//! verify its SHA-256 here, copy it (verified on both ends, in transfer_ledger.jsonl) and
//! only then let tests run. Each decision and its basis goes to the workflow journal (and
//! from there to run_manifest.json's `staging`). A stage a previous attempt verified is
//! reused when the remote copy still has its checksum.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value, json};

use hilt_hw::ssh::{RemoteCommand, RemoteProgram};
use hilt_model::run::{Category, Failure, now};
use hilt_model::suite::{Bundle, Step, Suite, parse_platform};

use super::external::paths::slug;
use super::{Exec, StepError};
use crate::data;
use crate::events::Events;

/// What `uname -sm` and a look for package managers found on a host.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    pub os: String,
    pub arch: String,
    pub uname: String,
    pub package_manager: Option<String>,
}

/// Every `(host, bundle)` the suite's steps need, in first-use order.
pub fn needed(suite: &Suite) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for t in &suite.tests {
        for s in &t.steps {
            if let Step::SshExec(e) = s
                && let Some(b) = &e.bundle
                && !out.iter().any(|(h, x)| h == &e.host && x == b)
            {
                out.push((e.host.clone(), b.clone()));
            }
        }
    }
    out
}

const PROBE_SCRIPT: &str = "uname -sm; for m in apt-get dnf yum apk pacman zypper brew; do \
    if command -v \"$m\" >/dev/null 2>&1; then echo \"package_manager=$m\"; break; fi; done";

impl Exec<'_> {
    /// Stages every bundle the suite needs. A failure stops the run before any test.
    pub fn stage_bundles(&mut self, suite: &Suite, ev: &mut Events) -> Result<(), StepError> {
        for (host, name) in needed(suite) {
            if self.cancel.is_cancelled() {
                return Err(StepError::Cancelled);
            }
            let Some(bundle) = suite.bundles.get(&name) else {
                continue; // validation refuses unknown bundles
            };
            self.stage_one(&host, &name, bundle, ev)?;
        }
        Ok(())
    }

    fn stage_one(
        &mut self,
        host: &str,
        name: &str,
        bundle: &Bundle,
        ev: &mut Events,
    ) -> Result<(), StepError> {
        ev.emit(
            "stage.started",
            None,
            data!("host" => host, "bundle" => name, "dest" => bundle.dest),
        );
        let earlier = self
            .resume
            .as_ref()
            .and_then(|r| r.stages.get(&format!("{host}/{name}")).cloned())
            .filter(|v| v["state"] == "done" && v["verified"] == true);
        if let Some(prev) = earlier {
            let want = prev["remote_sha256"].as_str().unwrap_or("").to_string();
            let now_sha = self.remote_sha256(host, name, &bundle.dest)?;
            if now_sha.as_deref() == Some(want.as_str()) {
                let mut d = prev.as_object().cloned().unwrap_or_default();
                d.insert("decision".into(), "reused".into());
                d.insert(
                    "basis".into(),
                    format!(
                        "staged and verified by attempt {}; the remote copy still has sha256 {want}",
                        prev["attempt"]
                    )
                    .into(),
                );
                return self.stage_done(host, name, d, ev);
            }
        }
        let probe = self.probe(host, name)?;
        let host_platform = format!("{}/{}", probe.os, probe.arch);
        let mut skipped = Vec::new();
        let mut chosen: Option<(usize, PathBuf)> = None;
        for (i, c) in bundle.candidates.iter().enumerate() {
            let (os, arch) = parse_platform(&c.platform);
            let platform_ok = arch.as_ref().is_none_or(|a| *a == probe.arch)
                && os.as_ref().is_none_or(|o| *o == probe.os);
            if !platform_ok {
                skipped.push(json!({"candidate": i, "platform": c.platform,
                    "reason": format!("platform {} does not match the host's {host_platform}", c.platform)}));
                continue;
            }
            let path = Exec::resolve(&self.opts.suite_dir, &c.path);
            if !path.is_file() {
                skipped.push(json!({"candidate": i, "platform": c.platform,
                    "reason": format!("file {} is missing", path.display())}));
                continue;
            }
            chosen = Some((i, path));
            break;
        }
        let mut d = Map::new();
        for (k, v) in [
            ("host_platform", json!(host_platform)),
            ("uname", json!(probe.uname)),
            ("skipped", json!(skipped)),
            ("remote_path", json!(bundle.dest)),
        ] {
            d.insert(k.into(), v);
        }
        let Some((i, path)) = chosen else {
            return self.stage_fallback(host, name, bundle, d, ev);
        };
        let c = &bundle.candidates[i];
        let (sha, size) = crate::rundir::manifest::hash_file(&path).map_err(|e| {
            StepError::Run(Failure::new(
                Category::ArtifactError,
                format!("cannot read bundle file {}: {e}", path.display()),
            ))
        })?;
        d.insert(
            "candidate".into(),
            json!({"index": i, "platform": c.platform, "path": path.display().to_string(), "sha256": c.sha256}),
        );
        if !sha.eq_ignore_ascii_case(&c.sha256) {
            let basis = format!(
                "candidate {i} ({}) matches the host's {host_platform}, but its file has sha256 {sha}, not the declared {}",
                c.platform, c.sha256
            );
            self.stage_failed(host, name, d, "refused", basis);
            return Err(StepError::Run(
                Failure::new(
                    Category::BundleChecksumMismatch,
                    format!(
                        "bundle `{name}` for host `{host}`: {} has sha256 {sha}, but the suite declares {}; it was not staged",
                        path.display(),
                        c.sha256
                    ),
                )
                .with_detail("bundle", name.to_string())
                .with_detail("host", host.to_string())
                .with_detail("file", path.display().to_string())
                .with_detail("expected_sha256", c.sha256.clone())
                .with_detail("actual_sha256", sha),
            ));
        }
        self.remote_mkdir(host, name, &bundle.dest)?;
        let t = self
            .transfer("upload", host, &path, &bundle.dest, 300_000, Some(name))
            .map_err(into_run)?;
        let remote_sha = t.get("remote_sha256").and_then(Value::as_str).unwrap_or("");
        let verified = remote_sha.eq_ignore_ascii_case(&c.sha256);
        d.insert("decision".into(), "prebuilt".into());
        d.insert(
            "basis".into(),
            format!(
                "the host reports {} ({host_platform}); candidate {i} ({}) is the first that matches{} and its sha256 was verified here and on the host",
                probe.uname,
                c.platform,
                if skipped.is_empty() { "" } else { " and exists" }
            )
            .into(),
        );
        d.insert("sha256".into(), json!(sha));
        d.insert("remote_sha256".into(), json!(remote_sha));
        d.insert("size_bytes".into(), json!(size));
        d.insert("verified".into(), json!(verified));
        self.stage_done(host, name, d, ev)
    }

    /// No candidate fits: run the bundle's fallback on the host, or refuse.
    fn stage_fallback(
        &mut self,
        host: &str,
        name: &str,
        bundle: &Bundle,
        mut d: Map<String, Value>,
        ev: &mut Events,
    ) -> Result<(), StepError> {
        let reasons: Vec<String> = d["skipped"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s["reason"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let why = if reasons.is_empty() {
            "the bundle lists no candidates".to_string()
        } else {
            format!("no candidate fits: {}", reasons.join("; "))
        };
        let Some(f) = &bundle.fallback else {
            let basis = format!("{why}; the bundle has no fallback");
            self.stage_failed(host, name, d, "refused", basis);
            return Err(StepError::Run(
                Failure::new(
                    Category::BundleUnavailable,
                    format!("bundle `{name}` cannot be staged to host `{host}`: {why}"),
                )
                .with_detail("bundle", name.to_string())
                .with_detail("host", host.to_string()),
            ));
        };
        self.remote_mkdir(host, name, &bundle.dest)?;
        let env = vec![("HILT_BUNDLE_DEST".to_string(), bundle.dest.clone())];
        let (code, _) = self.remote_script(
            host,
            &format!("fallback-{name}"),
            &f.script,
            env,
            f.timeout_ms,
        )?;
        if code != 0 {
            let basis = format!("{why}; the fallback script exited with {code}");
            self.stage_failed(host, name, d, "fallback", basis);
            return Err(StepError::Run(
                Failure::new(
                    Category::BundleUnavailable,
                    format!(
                        "bundle `{name}`: the fallback on host `{host}` exited with {code} ({why})"
                    ),
                )
                .with_detail("bundle", name.to_string())
                .with_detail("host", host.to_string()),
            ));
        }
        let remote = self.remote_sha256(host, name, &bundle.dest)?;
        d.insert("decision".into(), "fallback".into());
        d.insert(
            "basis".into(),
            format!("{why}; the bundle's fallback script ran on the host").into(),
        );
        d.insert("verified".into(), json!(remote.is_some()));
        d.insert("remote_sha256".into(), json!(remote));
        self.stage_done(host, name, d, ev)
    }

    /// Journals a stage that failed: its decision and basis, not verified.
    fn stage_failed(
        &mut self,
        host: &str,
        name: &str,
        mut d: Map<String, Value>,
        decision: &str,
        basis: String,
    ) {
        d.insert("decision".into(), decision.into());
        d.insert("basis".into(), basis.into());
        d.insert("state".into(), "failed".into());
        d.insert("verified".into(), false.into());
        self.journal.record("stage", stage_fields(host, name, d));
    }

    fn stage_done(
        &mut self,
        host: &str,
        name: &str,
        mut d: Map<String, Value>,
        ev: &mut Events,
    ) -> Result<(), StepError> {
        d.insert("state".into(), "done".into());
        ev.emit(
            "stage.finished",
            d["basis"].as_str().map(str::to_string),
            data!("host" => host, "bundle" => name, "decision" => d["decision"], "verified" => d["verified"]),
        );
        self.journal.record("stage", stage_fields(host, name, d));
        Ok(())
    }

    /// `uname -sm` and the package manager, once per host per attempt.
    fn probe(&mut self, host: &str, bundle: &str) -> Result<Probe, StepError> {
        if let Some(p) = self.probes.get(host) {
            return Ok(p.clone());
        }
        let (code, out) = self.remote_script(
            host,
            &format!("probe-{bundle}"),
            PROBE_SCRIPT,
            Vec::new(),
            30_000,
        )?;
        let mut lines = out.lines();
        let uname = lines.next().unwrap_or("").trim().to_string();
        let mut words = uname.split_whitespace();
        let (os, arch) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        if code != 0 || arch.is_empty() {
            return Err(StepError::Run(
                Failure::new(
                    Category::RemoteCommandFailed,
                    format!("cannot tell the platform of host `{host}`: `uname -sm` answered {uname:?} (exit {code})"),
                )
                .with_detail("host", host.to_string()),
            ));
        }
        let probe = Probe {
            os: os.to_ascii_lowercase(),
            arch: hilt_model::suite::normalize_arch(arch),
            uname: uname.clone(),
            package_manager: lines
                .find_map(|l| l.strip_prefix("package_manager="))
                .map(str::to_string),
        };
        let mut f = Map::new();
        f.insert("host".into(), host.into());
        f.insert(
            "platform".into(),
            format!("{}/{}", probe.os, probe.arch).into(),
        );
        f.insert("uname".into(), uname.into());
        f.insert("package_manager".into(), json!(probe.package_manager));
        self.journal.record("host", f);
        self.probes.insert(host.to_string(), probe.clone());
        Ok(probe)
    }

    fn remote_mkdir(&mut self, host: &str, name: &str, dest: &str) -> Result<(), StepError> {
        let dir = Path::new(dest)
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "/".into());
        let script = format!("mkdir -p -- {}", hilt_hw::ssh::shell_quote(&dir));
        let (code, _) =
            self.remote_script(host, &format!("mkdir-{name}"), &script, Vec::new(), 30_000)?;
        if code != 0 {
            return Err(StepError::Run(
                Failure::new(
                    Category::RemoteTransferFailed,
                    format!("cannot create {dir} on host `{host}` (exit {code})"),
                )
                .with_detail("host", host.to_string()),
            ));
        }
        Ok(())
    }

    /// The SHA-256 of a remote file, `None` when it does not exist.
    fn remote_sha256(
        &mut self,
        host: &str,
        name: &str,
        path: &str,
    ) -> Result<Option<String>, StepError> {
        let script = format!(
            "[ -f {p} ] && sha256sum -- {p} | cut -d' ' -f1",
            p = hilt_hw::ssh::shell_quote(path)
        );
        let (code, out) =
            self.remote_script(host, &format!("check-{name}"), &script, Vec::new(), 60_000)?;
        let sha = out.trim();
        Ok((code == 0 && sha.len() == 64).then(|| sha.to_ascii_lowercase()))
    }

    /// Runs a stage script on `host`: output under logs/hosts/<host>/stage-<what>.*, one
    /// command-ledger line. Returns the exit code and stdout (first 64 KiB).
    fn remote_script(
        &mut self,
        host: &str,
        what: &str,
        script: &str,
        env: Vec<(String, String)>,
        timeout_ms: u64,
    ) -> Result<(i32, String), StepError> {
        let rel = format!(
            "logs/hosts/{}/stage-{}-a{}",
            slug(host),
            slug(what),
            self.journal.attempt
        );
        let base = self.dir.join(&rel);
        if let Some(d) = base.parent() {
            let _ = std::fs::create_dir_all(d);
        }
        let cmd = RemoteCommand {
            what: RemoteProgram::Script(script.to_string()),
            cwd: None,
            env: env.clone(),
            timeout: Duration::from_millis(timeout_ms),
            stdout: PathBuf::from(format!("{}.stdout", base.display())),
            stderr: PathBuf::from(format!("{}.stderr", base.display())),
            max_output_bytes: 64 * 1024,
        };
        let cancel = self.cancel.clone();
        let started_at = now();
        let h = self.host(host).map_err(into_run)?;
        let chain = h.chain().describe();
        let result = h.exec(&cmd, &cancel);
        let mut entry = json!({"type": "stage", "host": host, "chain": chain, "script": script,
            "env_names": env.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(), "attempt": self.journal.attempt,
            "started_at": started_at, "finished_at": now(),
            "stdout_file": format!("{rel}.stdout"), "stderr_file": format!("{rel}.stderr")});
        let out = match result {
            Ok(o) => o,
            Err(e) => {
                entry["error"] = json!(e.message);
                let _ = self.commands.append(&entry);
                let _ = self.commands.flush_buffer();
                return Err(into_run(super::remote::ssh_failure(host, &chain, &e)));
            }
        };
        entry["exit_code"] = json!(out.exit_code);
        entry["timed_out"] = json!(out.timed_out);
        let _ = self.commands.append(&entry);
        let _ = self.commands.flush_buffer();
        if out.cancelled {
            return Err(StepError::Cancelled);
        }
        if out.timed_out {
            return Err(StepError::Run(
                Failure::new(
                    Category::StepTimeout,
                    format!(
                        "staging command on host `{host}` did not finish within {timeout_ms} ms"
                    ),
                )
                .with_detail("host", host.to_string()),
            ));
        }
        let text = std::fs::read(&cmd.stdout).unwrap_or_default();
        Ok((
            out.exit_code.unwrap_or(-1),
            String::from_utf8_lossy(&text).into_owned(),
        ))
    }
}

/// A test failure during staging stops the run: nothing may execute without its bundle.
fn into_run(e: StepError) -> StepError {
    match e {
        StepError::Test(f) => StepError::Run(f),
        other => other,
    }
}

fn stage_fields(host: &str, name: &str, mut d: Map<String, Value>) -> Map<String, Value> {
    d.insert("host".into(), host.into());
    d.insert("bundle".into(), name.into());
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needed_lists_each_host_bundle_pair_once() {
        let suite: Suite = serde_json::from_value(json!({
            "suite": {"name": "s"},
            "bundles": {"t": {"dest": "/tmp/t", "candidates": []}},
            "tests": [{"name": "a", "steps": [
                {"ssh_exec": {"host": "h", "argv": ["x"], "bundle": "t"}},
                {"ssh_exec": {"host": "h", "argv": ["y"], "bundle": "t"}},
                {"ssh_exec": {"host": "g", "argv": ["y"], "bundle": "t"}},
                {"ssh_exec": {"host": "g", "argv": ["y"]}}
            ]}]
        }))
        .unwrap();
        assert_eq!(
            needed(&suite),
            [("h".to_string(), "t".to_string()), ("g".into(), "t".into())]
        );
    }
}

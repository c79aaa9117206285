//! reset and flash: external tools under the command ledger, or a GPIO reset pulse.

use std::path::PathBuf;
use std::time::Duration;

use hilt_hw::flash::{FlashError, ToolCommand, flash_command, reset_command};
use hilt_hw::process::{self, CommandSpec, ProcessError};
use hilt_model::bench::ResetMethod;
use hilt_model::run::{Category, EventKind, Failure};
use hilt_model::suite::FlashStep;

use super::{Exec, StepError, StepResult};
use crate::data;
use crate::events::Events;

const TOOL_TIMEOUT: Duration = Duration::from_secs(300);
/// BenchCI waits this long after a hardware reset and after flashing.
const AFTER_RESET: Duration = Duration::from_millis(600);
const AFTER_FLASH: Duration = Duration::from_secs(1);

impl Exec<'_> {
    pub(super) fn reset(&mut self, node: &str, ev: &mut Events) -> StepResult {
        let n = &self.bench.nodes[node];
        let method = n.reset.method;
        if method == ResetMethod::None {
            ev.emit(
                EventKind::RESET_SKIPPED,
                None,
                data!("node_name" => node, "reset_method" => "none"),
            );
            return Ok(data!("node_name" => node, "reset_method" => "none", "skipped" => true));
        }
        ev.emit(
            EventKind::RESET_STARTED,
            None,
            data!("node_name" => node, "reset_method" => method.as_str()),
        );
        if method == ResetMethod::Gpio {
            let line = n.reset.line.clone().unwrap_or_default();
            let pulse = Duration::from_millis(n.reset.pulse_ms.unwrap_or(10));
            self.gpio_write(node, &line, true)?;
            self.sleep(pulse)?;
            self.gpio_write(node, &line, false)?;
        } else {
            let script = self.node_log(node, "reset.jlink");
            let cmd = reset_command(method, n.flash.as_ref(), &script)
                .map_err(|e| StepError::Run(flash_config_failure(e)))?;
            if let Some(cmd) = cmd {
                self.run_tool(node, &cmd, Category::FlashFailed, "reset")?;
            }
            self.sleep(AFTER_RESET)?;
        }
        ev.emit(
            EventKind::RESET_FINISHED,
            None,
            data!("node_name" => node, "reset_method" => method.as_str()),
        );
        Ok(data!("node_name" => node, "reset_method" => method.as_str()))
    }

    pub(super) fn flash(&mut self, f: &FlashStep, ev: &mut Events) -> StepResult {
        let node = f.node.as_str();
        let Some(flash) = self.bench.nodes[node].flash.clone() else {
            return Err(StepError::Run(Failure::new(
                Category::ConfigError,
                format!("node `{node}` has no flash block"),
            )));
        };
        let artifact: Option<PathBuf> = f
            .artifact
            .as_ref()
            .map(|a| Exec::resolve(&self.opts.suite_dir, a))
            .or_else(|| self.opts.artifact.clone())
            .or_else(|| {
                flash
                    .artifact
                    .as_ref()
                    .map(|a| Exec::resolve(&self.opts.bench_dir, a))
            });
        let Some(artifact) = artifact else {
            return Err(StepError::Run(Failure::new(
                Category::ArtifactError,
                format!("no firmware artifact for node `{node}`: artifact required"),
            )));
        };
        if !artifact.is_file() {
            return Err(StepError::Run(Failure::new(
                Category::ArtifactError,
                format!("artifact not found: {}", artifact.display()),
            )));
        }
        let log = self.node_log(node, "flash.log");
        let d = data!("node_name" => node, "flash_backend" => flash.backend.name(), "artifact" => artifact.display().to_string(), "flash_log_path" => log.display().to_string());
        ev.emit(EventKind::FLASH_STARTED, None, d.clone());
        let script = self.node_log(node, "flash.jlink");
        let cmd = flash_command(&flash, &artifact, &script)
            .map_err(|e| StepError::Run(flash_config_failure(e)))?;
        let started = std::time::Instant::now();
        // esptool programs through the serial adapter the console uses: the console lets go
        // of the port for the tool (a reader would swallow its replies, and the port is
        // opened exclusively), and listens again from the boot that follows.
        let released = match &flash.backend {
            hilt_model::bench::FlashBackend::Esptool { port, .. } => {
                self.session.release_port(node, port, self.bench, ev)
            }
            _ => Vec::new(),
        };
        let tool = self.run_tool(node, &cmd, Category::FlashFailed, "flash");
        if !released.is_empty() {
            self.session
                .reopen_uarts(node, released, self.bench, &self.dir, ev)
                .map_err(StepError::Run)?;
        }
        if let Err(e) = tool {
            if let StepError::Run(f) | StepError::Test(f) = &e {
                let mut d = d.clone();
                d.insert(
                    "failure".into(),
                    serde_json::to_value(f).unwrap_or_default(),
                );
                ev.emit(EventKind::FLASH_FAILED, Some(f.summary()), d);
            }
            return Err(e);
        }
        let mut d = d;
        d.insert(
            "duration_s".into(),
            hilt_model::run::round3(started.elapsed().as_secs_f64()).into(),
        );
        ev.emit(EventKind::FLASH_FINISHED, None, d.clone());
        self.sleep(AFTER_FLASH)?;
        Ok(d)
    }

    /// Runs a flash/reset tool with output appended to the node's flash.log, recorded in the
    /// command ledger. A non-zero exit is a run error of `category`.
    pub fn run_tool(
        &mut self,
        node: &str,
        cmd: &ToolCommand,
        category: Category,
        what: &str,
    ) -> Result<(), StepError> {
        let log = self.node_log(node, "flash.log");
        if let Some(dir) = log.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if let Some((path, body)) = &cmd.script {
            std::fs::write(path, body).map_err(|e| {
                StepError::Run(Failure::new(
                    Category::UnknownError,
                    format!("cannot write {path}: {e}"),
                ))
            })?;
        }
        let mut spec = CommandSpec::new(cmd.argv.clone(), &log);
        spec.timeout = TOOL_TIMEOUT;
        let program = cmd.argv.first().cloned().unwrap_or_default();
        let outcome = match process::run(&spec, &self.cancel) {
            Ok(o) => o,
            Err(ProcessError::NotFound { .. }) => {
                let _ = self.commands.append(&serde_json::json!({"argv": cmd.argv, "error": "not found", "started_at": hilt_model::run::now()}));
                return Err(StepError::Run(
                    Failure::new(
                        Category::FlashToolUnavailable,
                        format!("{what} tool `{program}` was not found on PATH"),
                    )
                    .with_artifact("flash_log", log.display().to_string()),
                ));
            }
            Err(e) => {
                return Err(StepError::Run(Failure::new(
                    Category::FlashToolUnavailable,
                    format!("cannot start {what} tool `{program}`: {e}"),
                )));
            }
        };
        let _ = self.commands.append(&outcome.ledger_entry());
        let _ = self.commands.flush();
        if outcome.cancelled {
            return Err(StepError::Cancelled);
        }
        if !outcome.success() {
            let why = if outcome.timed_out {
                format!("timed out after {} s", TOOL_TIMEOUT.as_secs())
            } else {
                format!("exited with code {}", outcome.exit_code)
            };
            return Err(StepError::Run(
                Failure::new(
                    category,
                    format!("hardware tool command failed: {what} with `{program}` {why}"),
                )
                .with_artifact("flash_log", log.display().to_string())
                .with_detail("argv", cmd.argv.clone())
                .with_detail("exit_code", outcome.exit_code),
            ));
        }
        Ok(())
    }
}

fn flash_config_failure(e: FlashError) -> Failure {
    let cat = match e {
        FlashError::Suffix(_) | FlashError::NeedsAddress(_) | FlashError::EsptoolNeedsBin(_) => {
            Category::ArtifactError
        }
        FlashError::EsptoolReset | FlashError::NoFlashBlock(_) => Category::ConfigError,
    };
    Failure::new(cat, e.to_string())
}

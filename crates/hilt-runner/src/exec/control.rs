//! reset and flash: external tools under the command ledger, or a GPIO reset pulse.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hilt_hw::flash::{FlashError, ToolCommand, flash_command, reset_command};
use hilt_hw::process::{self, CommandSpec, ProcessError};
use hilt_model::bench::{FlashBackend, ResetMethod};
use hilt_model::run::{Category, EventKind, Failure};
use hilt_model::suite::FlashStep;

use serde_json::{Map, Value};

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
        if method == ResetMethod::Qemu {
            // The board resets at once; its banner tells the suite when it is up.
            self.board_reset(node)?;
        } else if method == ResetMethod::Gpio {
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
        if let FlashBackend::Qemu { board } = &flash.backend {
            return self.board_flash(node, board, &artifact, d, ev);
        }
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

    /// Flashes an emulated board: restart it with the image, its SHA-256 in flash.log.
    fn board_flash(
        &mut self,
        node: &str,
        board: &str,
        artifact: &Path,
        mut d: Map<String, Value>,
        ev: &mut Events,
    ) -> StepResult {
        let log = self.node_log(node, "flash.log");
        let started = std::time::Instant::now();
        let started_at = hilt_model::run::now();
        let result = match self.session.board(board) {
            Some(b) => b.flash(artifact),
            None => {
                return Err(StepError::Run(Failure::new(
                    Category::ConfigError,
                    format!("flash board `{board}` of node `{node}` is not an open emulated board"),
                )));
            }
        };
        let mut text = format!(
            "{} qemu flash {} (board {board})\n",
            hilt_model::run::now(),
            artifact.display()
        );
        match &result {
            Ok(f) => {
                text.push_str(&format!(
                    "sha256 {}\nargv {}\nboard restarted\n",
                    f.sha256,
                    f.argv.join(" ")
                ));
                let _ = self.commands.append(&serde_json::json!({"argv": f.argv, "backend": "qemu", "artifact": artifact.display().to_string(), "sha256": f.sha256, "started_at": started_at, "exit_code": 0}));
            }
            Err(e) => {
                text.push_str(&format!("failed: {e}\n"));
                let _ = self.commands.append(&serde_json::json!({"backend": "qemu", "artifact": artifact.display().to_string(), "error": e.to_string(), "started_at": started_at}));
            }
        }
        let _ = self.commands.flush();
        append_log(&log, &text);
        match result {
            Ok(f) => {
                d.insert("sha256".into(), f.sha256.into());
                d.insert(
                    "duration_s".into(),
                    hilt_model::run::round3(started.elapsed().as_secs_f64()).into(),
                );
                ev.emit(EventKind::FLASH_FINISHED, None, d.clone());
                Ok(d)
            }
            Err(e) => {
                let f = Failure::new(
                    Category::FlashFailed,
                    format!("flashing emulated board `{board}` failed: {e}"),
                )
                .with_artifact("flash_log", log.display().to_string());
                d.insert(
                    "failure".into(),
                    serde_json::to_value(&f).unwrap_or_default(),
                );
                ev.emit(EventKind::FLASH_FAILED, Some(f.summary()), d);
                Err(StepError::Run(f))
            }
        }
    }

    /// Resets an emulated board (the node's flash `board`) through its monitor.
    fn board_reset(&mut self, node: &str) -> Result<(), StepError> {
        let board = match self.bench.nodes[node].flash.as_ref().map(|f| &f.backend) {
            Some(FlashBackend::Qemu { board }) => board.clone(),
            _ => {
                return Err(StepError::Run(Failure::new(
                    Category::ConfigError,
                    format!(
                        "reset method `qemu` of node `{node}` needs `flash: {{backend: qemu, board: …}}`"
                    ),
                )));
            }
        };
        let log = self.node_log(node, "flash.log");
        let result = match self.session.board(&board) {
            Some(b) => b.reset(),
            None => {
                return Err(StepError::Run(Failure::new(
                    Category::ConfigError,
                    format!("board `{board}` of node `{node}` is not an open emulated board"),
                )));
            }
        };
        let outcome = match &result {
            Ok(()) => "ok".to_string(),
            Err(e) => format!("failed: {e}"),
        };
        append_log(
            &log,
            &format!(
                "{} qemu reset (QMP system_reset) board {board}: {outcome}\n",
                hilt_model::run::now()
            ),
        );
        result.map_err(|e| {
            StepError::Run(
                Failure::new(
                    Category::FlashFailed,
                    format!("resetting emulated board `{board}` failed: {e}"),
                )
                .with_artifact("flash_log", log.display().to_string()),
            )
        })
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

fn append_log(path: &Path, text: &str) {
    use std::io::Write as _;
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Ok(mut f) = std::fs::File::options()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = f.write_all(text.as_bytes());
    }
}

fn flash_config_failure(e: FlashError) -> Failure {
    let cat = match e {
        FlashError::Suffix(_) | FlashError::NeedsAddress(_) | FlashError::EsptoolNeedsBin(_) => {
            Category::ArtifactError
        }
        FlashError::EsptoolReset | FlashError::NoFlashBlock(_) | FlashError::Emulated => {
            Category::ConfigError
        }
    };
    Failure::new(cat, e.to_string())
}

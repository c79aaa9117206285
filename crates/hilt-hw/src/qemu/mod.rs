//! An emulated Cortex-M board (QEMU) as a bench device: a power switch whose outlet is the
//! emulator, plus [`Board`] for its UART, flash and reset. The `qemu` driver
//! (`drivers/qemu.rs`) checks parameters and opens one.
//!
//! - UART: a pty that stays the same for the whole run ([`relay`]); open it as a port.
//! - flash: copy the image, restart the emulator with it (`-kernel`), report its SHA-256.
//! - reset: QMP `system_reset`. power off/on: stop/start the emulator.

mod emulator;
mod qmp;
mod relay;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::board::{Board, Flashed};
use crate::power::PowerSwitch;
use crate::{HwError, ResourceKind};

use emulator::{Emulator, Launch};
use relay::Relay;

/// The install line printed wherever the emulator is missing.
pub const INSTALL_QEMU: &str = "sudo apt-get install -y --no-install-recommends qemu-system-arm";

const KIND: ResourceKind = ResourceKind::Power;

/// How a board is configured (from the `qemu` resource's parameters).
#[derive(Debug, Clone)]
pub struct BoardConfig {
    pub name: String,
    pub binary: PathBuf,
    pub machine: String,
    pub firmware: Option<PathBuf>,
    pub outlet: String,
    pub extra_args: Vec<String>,
    pub start_timeout: Duration,
    pub settle_ms: (u64, u64),
}

/// Fields drop in order: the emulator is stopped before the relay and the directory go.
pub struct QemuBoard {
    running: Option<Emulator>,
    relay: Relay,
    dir: tempfile::TempDir,
    cfg: BoardConfig,
    log: PathBuf,
    /// The image the board boots: the last flashed one, else the configured firmware.
    image: Option<PathBuf>,
}

impl QemuBoard {
    /// Creates the board's pty and socket directory; the emulator is not started.
    pub fn open(cfg: BoardConfig) -> Result<QemuBoard, HwError> {
        let fail = |e: std::io::Error| HwError::open(KIND, "emulated board", &cfg.name, e);
        let dir = emulator::socket_dir().map_err(fail)?;
        let relay = Relay::start(&cfg.name).map_err(fail)?;
        let log = dir.path().join("emulator.log");
        Ok(QemuBoard {
            image: cfg.firmware.clone(),
            cfg,
            dir,
            log,
            running: None,
            relay,
        })
    }

    fn start(&mut self) -> Result<&Emulator, HwError> {
        self.stop();
        let Some(image) = self.image.clone() else {
            return Err(HwError::unsupported(
                KIND,
                format!(
                    "board `{}` has no firmware: flash it first or set `firmware`",
                    self.cfg.name
                ),
            ));
        };
        let launch = Launch {
            binary: &self.cfg.binary,
            machine: &self.cfg.machine,
            image: &image,
            extra_args: &self.cfg.extra_args,
            dir: self.dir.path(),
            log: &self.log,
            timeout: self.cfg.start_timeout,
        };
        let emulator = Emulator::start(&launch, &mut self.relay).map_err(|e| {
            HwError::io(
                KIND,
                "emulator start",
                format!("{e} (emulator log: {})", self.log.display()),
            )
        })?;
        Ok(self.running.insert(emulator))
    }

    fn stop(&mut self) {
        if self.running.take().is_some() {
            self.relay.disconnect();
        }
    }

    fn check_outlet(&self, outlet: &str) -> Result<(), HwError> {
        if outlet == self.cfg.outlet {
            Ok(())
        } else {
            Err(HwError::unsupported(
                KIND,
                format!(
                    "no outlet `{outlet}` (board `{}` has `{}`)",
                    self.cfg.name, self.cfg.outlet
                ),
            ))
        }
    }
}

impl Board for QemuBoard {
    fn uart_path(&self) -> &Path {
        self.relay.path()
    }

    fn set_log(&mut self, path: PathBuf) {
        self.log = path;
    }

    fn boot(&mut self) -> Result<bool, HwError> {
        if self.image.is_none() {
            return Ok(false);
        }
        self.start().map(|_| true)
    }

    fn flash(&mut self, image: &Path) -> Result<Flashed, HwError> {
        self.stop();
        let (stored, sha256) = emulator::store_image(self.dir.path(), image).map_err(|e| {
            HwError::io(
                KIND,
                "flash",
                format!("cannot read {}: {e}", image.display()),
            )
        })?;
        self.image = Some(stored);
        let argv = self.start()?.argv.clone();
        Ok(Flashed { sha256, argv })
    }

    fn reset(&mut self) -> Result<(), HwError> {
        let name = self.cfg.name.clone();
        let Some(e) = &mut self.running else {
            return Err(HwError::unsupported(
                KIND,
                format!("board `{name}` is powered off: nothing to reset"),
            ));
        };
        e.reset()
            .map_err(|err| HwError::io(KIND, "emulator reset (QMP system_reset)", err))
    }
}

impl PowerSwitch for QemuBoard {
    fn set(&mut self, outlet: &str, on: bool) -> Result<(), HwError> {
        self.check_outlet(outlet)?;
        if on {
            if self.running.as_mut().is_some_and(Emulator::alive) {
                return Ok(());
            }
            self.start().map(|_| ())
        } else {
            self.stop();
            Ok(())
        }
    }

    fn get(&mut self, outlet: &str) -> Result<Option<bool>, HwError> {
        self.check_outlet(outlet)?;
        Ok(Some(self.running.as_mut().is_some_and(Emulator::alive)))
    }

    fn settle_ms(&self) -> (u64, u64) {
        self.cfg.settle_ms
    }

    fn board(&mut self) -> Option<&mut dyn Board> {
        Some(self)
    }
}

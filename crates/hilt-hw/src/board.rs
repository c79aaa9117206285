//! An emulated board behind a power switch: the operations a run needs beyond power
//! (its UART's path, flash, reset). The `qemu` driver provides one; the runner reaches it
//! through [`crate::power::PowerSwitch::board`] and never names the driver.

use std::path::{Path, PathBuf};

use crate::HwError;

/// What a flash did, for the node's flash.log and the command ledger.
#[derive(Debug, Clone)]
pub struct Flashed {
    /// SHA-256 of the image the board now runs (hex).
    pub sha256: String,
    /// The emulator's command line.
    pub argv: Vec<String>,
}

pub trait Board: Send {
    /// The pseudo-terminal the board's UART appears on; stable across restarts.
    fn uart_path(&self) -> &Path;
    /// Where the emulator's own output goes from now on (set once the run directory
    /// exists).
    fn set_log(&mut self, path: PathBuf);
    /// Boots the firmware the board is configured with, if any (run start). Returns
    /// whether it started.
    fn boot(&mut self) -> Result<bool, HwError>;
    /// Replaces the firmware and restarts the board with it (a flash is a restart).
    fn flash(&mut self, image: &Path) -> Result<Flashed, HwError>;
    /// A system reset of the running board.
    fn reset(&mut self) -> Result<(), HwError>;
}

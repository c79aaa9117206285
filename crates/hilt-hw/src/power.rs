//! Power switching (relays, controllable supplies). Drivers live in `drivers/`.

use crate::HwError;

pub trait PowerSwitch: Send {
    fn set(&mut self, outlet: &str, on: bool) -> Result<(), HwError>;
    /// The outlet state from readback, or the last state set; `None` when unknown.
    fn get(&mut self, outlet: &str) -> Result<Option<bool>, HwError>;
    /// Settle times in ms after switching (on, off).
    fn settle_ms(&self) -> (u64, u64);
    /// The emulated board this switch powers, when it is one (`qemu`).
    fn board(&mut self) -> Option<&mut dyn crate::board::Board> {
        None
    }
}

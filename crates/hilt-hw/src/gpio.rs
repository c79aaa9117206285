//! The GPIO lines of one node, by name, over the one line-number abstraction
//! ([`ChipLines`]) that every GPIO driver provides — the runner's lines and the agent's
//! remote GPIO sessions alike. Drivers speak physical levels; the runner applies
//! `active_high`.

use std::collections::BTreeMap;
use std::time::Duration;

use hilt_model::bench::Edge;

use crate::gpiochip::{ChipError, ChipLines};
use crate::{HwError, ResourceKind};

/// A node's opened lines: names mapped to line numbers of one chip. Lines that map to the
/// same number are one wire (a level set through one is read through the other).
pub struct NodeLines {
    chip: String,
    lines: Box<dyn ChipLines>,
    offsets: BTreeMap<String, u32>,
}

impl NodeLines {
    pub fn new(
        chip: impl Into<String>,
        lines: Box<dyn ChipLines>,
        offsets: BTreeMap<String, u32>,
    ) -> NodeLines {
        NodeLines {
            chip: chip.into(),
            lines,
            offsets,
        }
    }

    fn offset(&self, name: &str) -> Result<u32, HwError> {
        self.offsets.get(name).copied().ok_or_else(|| {
            HwError::unsupported(
                ResourceKind::Gpio,
                format!("no GPIO line `{name}` on {}", self.chip),
            )
        })
    }

    /// Drives an output line to a physical level.
    pub fn set(&mut self, name: &str, level: bool) -> Result<(), HwError> {
        let n = self.offset(name)?;
        self.lines.set(n, level).map_err(chip_error)
    }

    /// Reads a line's physical level.
    pub fn get(&mut self, name: &str) -> Result<bool, HwError> {
        let n = self.offset(name)?;
        self.lines.get(n).map_err(chip_error)
    }

    /// Waits for a physical edge where the backend can ([`ChipLines::wait_edge`]);
    /// `Ok(None)` when it cannot and the caller samples [`NodeLines::get`].
    pub fn wait_edge(
        &mut self,
        name: &str,
        edge: Edge,
        timeout: Duration,
    ) -> Result<Option<bool>, HwError> {
        let n = self.offset(name)?;
        self.lines.wait_edge(n, edge, timeout).map_err(chip_error)
    }
}

/// A chip error as a GPIO hardware error.
pub fn chip_error(e: ChipError) -> HwError {
    match e {
        ChipError::Unsupported(reason) => HwError::unsupported(ResourceKind::Gpio, reason),
        e @ (ChipError::Busy { .. } | ChipError::NotRequested { .. } | ChipError::Io { .. }) => {
            HwError::io(ResourceKind::Gpio, "GPIO", e)
        }
    }
}

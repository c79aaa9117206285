//! GPIO lines of one node. Drivers speak physical levels; the runner applies `active_high`.

use std::collections::BTreeMap;

use hilt_model::bench::{Bias, Direction, GpioBackend, GpioLine};

use crate::HwError;
use crate::sim_link::SimLink;

/// The GPIO lines of one node, opened together.
pub trait GpioLines: Send {
    /// Drives an output line to a physical level.
    fn set(&mut self, line: &str, level: bool) -> Result<(), HwError>;
    /// Reads a line's physical level.
    fn get(&mut self, line: &str) -> Result<bool, HwError>;
}

/// Opens the node's lines. With `drive_outputs`, outputs start at their logical-inactive
/// level (unlike BenchCI, which requests physical 0 and so asserts `active_high: false`
/// outputs at start-up); without it (self-test) no line is driven at all.
pub fn open(
    node: &str,
    lines: &BTreeMap<String, GpioLine>,
    drive_outputs: bool,
) -> Result<Box<dyn GpioLines>, HwError> {
    let mut mock = MockGpio::default();
    for (name, line) in lines {
        match &line.backend {
            GpioBackend::MockGpio {
                channel,
                sim_control,
            } => {
                let link = match sim_control {
                    Some(path) => Some(SimLink::connect(path).map_err(|e| HwError::Open {
                        what: "simulated GPIO line",
                        path: format!("{node}.{name} via {path}"),
                        reason: e.to_string(),
                    })?),
                    None => None,
                };
                // Lines that share a channel are one wire: an output on it decides
                // its starting level, otherwise a pull-up does.
                let wire = mock.wires.entry(*channel).or_insert(false);
                match line.direction {
                    Direction::Output => *wire = !line.active_high,
                    Direction::Input => {
                        if line.bias == Some(Bias::PullUp) && !channel_has_output(lines, *channel) {
                            *wire = true;
                        }
                    }
                }
                mock.lines.insert(
                    name.clone(),
                    MockLine {
                        channel: *channel,
                        link,
                    },
                );
            }
            other => {
                return Err(HwError::Open {
                    what: "GPIO line",
                    path: format!("{node}.{name}"),
                    reason: format!("backend `{}` is not supported by this build", other.name()),
                });
            }
        }
    }
    for (name, line) in lines {
        if drive_outputs && line.direction == Direction::Output {
            let level = mock.wires[&mock.lines[name].channel];
            mock.set(name, level)?;
        }
    }
    Ok(Box::new(mock))
}

fn channel_has_output(lines: &BTreeMap<String, GpioLine>, channel: u32) -> bool {
    lines.values().any(|l| {
        l.direction == Direction::Output
            && matches!(&l.backend, GpioBackend::MockGpio { channel: c, .. } if *c == channel)
    })
}

/// `mock_gpio`: levels held in memory, or wired to a simulated DUT over its control socket.
/// A node's lines that share a `channel` are one wire (as in BenchCI): a level set through
/// one is read through the others.
#[derive(Default)]
pub struct MockGpio {
    lines: BTreeMap<String, MockLine>,
    /// Physical level of each channel of this node.
    wires: BTreeMap<u32, bool>,
}

struct MockLine {
    channel: u32,
    link: Option<SimLink>,
}

impl MockGpio {
    fn line(&self, name: &str) -> Result<&MockLine, HwError> {
        self.lines
            .get(name)
            .ok_or_else(|| HwError::Unsupported(format!("no GPIO line `{name}`")))
    }
}

impl GpioLines for MockGpio {
    fn set(&mut self, line: &str, level: bool) -> Result<(), HwError> {
        let l = self.line(line)?;
        if let Some(link) = &l.link {
            link.gpio_set(l.channel, level)
                .map_err(|e| HwError::io("simulated GPIO", e))?;
        }
        let channel = l.channel;
        self.wires.insert(channel, level);
        Ok(())
    }

    fn get(&mut self, line: &str) -> Result<bool, HwError> {
        let l = self.line(line)?;
        let channel = l.channel;
        if let Some(link) = &l.link {
            let level = link
                .gpio_get(channel)
                .map_err(|e| HwError::io("simulated GPIO", e))?;
            self.wires.insert(channel, level);
        }
        Ok(self.wires.get(&channel).copied().unwrap_or(false))
    }
}

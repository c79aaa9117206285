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
                let initial = match line.direction {
                    Direction::Output => !line.active_high,
                    Direction::Input => line.bias == Some(Bias::PullUp),
                };
                mock.lines.insert(
                    name.clone(),
                    MockLine {
                        channel: *channel,
                        level: initial,
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
            let level = mock.lines[name].level;
            mock.set(name, level)?;
        }
    }
    Ok(Box::new(mock))
}

/// `mock_gpio`: levels held in memory, or wired to a simulated DUT over its control socket.
#[derive(Default)]
pub struct MockGpio {
    lines: BTreeMap<String, MockLine>,
}

struct MockLine {
    channel: u32,
    level: bool,
    link: Option<SimLink>,
}

impl MockGpio {
    fn line(&mut self, name: &str) -> Result<&mut MockLine, HwError> {
        self.lines
            .get_mut(name)
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
        l.level = level;
        Ok(())
    }

    fn get(&mut self, line: &str) -> Result<bool, HwError> {
        let l = self.line(line)?;
        if let Some(link) = &l.link {
            l.level = link
                .gpio_get(l.channel)
                .map_err(|e| HwError::io("simulated GPIO", e))?;
        }
        Ok(l.level)
    }
}

//! `mock_gpio`: levels held in memory, or wired to a simulated DUT over its control socket
//! (`sim_control`). Lines are addressed by `channel`; lines of a node that share a channel
//! are one wire, as in BenchCI.

use std::collections::BTreeMap;
use std::sync::Arc;

use hilt_model::bench::{Bias, Direction, GpioBackend, GpioLine};

use super::{GpioDriver, Problem};
use crate::gpio::NodeLines;
use crate::gpiochip::{ChipError, ChipLines, Transition};
use crate::locks::LockSpec;
use crate::sim_link::SimLink;
use crate::{HwError, ResourceKind};

pub struct MockGpio;

fn channel_of(line: &GpioLine) -> Option<(u32, Option<&str>)> {
    match &line.backend {
        GpioBackend::MockGpio {
            channel,
            sim_control,
        } => Some((*channel, sim_control.as_deref())),
        GpioBackend::LocalGpio { .. } | GpioBackend::RemoteGpio { .. } => None,
    }
}

impl GpioDriver for MockGpio {
    fn tag(&self) -> &'static str {
        "mock_gpio"
    }

    fn check(&self, line: &GpioLine) -> Vec<Problem> {
        match channel_of(line) {
            Some((_, Some(path))) if path.trim().is_empty() => {
                vec![Problem::new("sim_control", "must name a control socket")]
            }
            _ => Vec::new(),
        }
    }

    fn lock_spec(&self, node: &str, name: &str, line: &GpioLine) -> LockSpec {
        let channel = channel_of(line).map(|(c, _)| c).unwrap_or_default();
        LockSpec::new(
            format!("gpio:mock:{node}:{channel}"),
            format!("mock GPIO {node} channel {channel}"),
            "gpio_line",
        )
        .with_detail("node", node.to_string())
        .with_detail("line", name.to_string())
        .with_detail("backend", "mock_gpio")
        .with_detail("channel", channel.to_string())
    }

    fn open(
        &self,
        node: &str,
        lines: &BTreeMap<String, GpioLine>,
        drive_outputs: bool,
    ) -> Result<NodeLines, HwError> {
        let mut links: BTreeMap<String, Arc<SimLink>> = BTreeMap::new();
        let mut wires = Wires::default();
        let mut offsets = BTreeMap::new();
        // Inputs first, so an output sharing a channel decides the wire's level.
        let mut ordered: Vec<(&String, &GpioLine)> = lines.iter().collect();
        ordered.sort_by_key(|(_, l)| l.direction == Direction::Output);
        for (name, line) in ordered {
            let Some((channel, sim_control)) = channel_of(line) else {
                return Err(HwError::open(
                    ResourceKind::Gpio,
                    "GPIO line",
                    format!("{node}.{name}"),
                    format!("backend `{}` is not mock_gpio", line.backend.name()),
                ));
            };
            let link = match sim_control {
                Some(path) => Some(match links.get(path) {
                    Some(l) => l.clone(),
                    None => {
                        let l = Arc::new(SimLink::connect(path).map_err(|e| {
                            HwError::open(
                                ResourceKind::Gpio,
                                "simulated GPIO line",
                                format!("{node}.{name} via {path}"),
                                e,
                            )
                        })?);
                        links.insert(path.to_string(), l.clone());
                        l
                    }
                }),
                None => None,
            };
            let level = match line.direction {
                Direction::Output => !line.active_high,
                Direction::Input => line.bias == Some(Bias::PullUp),
            };
            // Lines that share a channel are one wire: an output on it decides its
            // starting level, otherwise a pull-up does.
            let wire = wires.0.entry(channel).or_insert(Wire {
                level: false,
                link: None,
            });
            wire.link = wire.link.take().or(link);
            match line.direction {
                Direction::Output => wire.level = level,
                Direction::Input => wire.level |= level,
            }
            offsets.insert(name.clone(), channel);
        }
        if drive_outputs {
            for (name, line) in lines {
                if line.direction == Direction::Output {
                    let channel = offsets[name];
                    let level = wires.0[&channel].level;
                    wires.set(channel, level).map_err(crate::gpio::chip_error)?;
                }
            }
        }
        Ok(NodeLines::new(
            format!("mock:{node}"),
            Box::new(wires),
            offsets,
        ))
    }
}

/// The wires of one node, by channel.
#[derive(Default)]
struct Wires(BTreeMap<u32, Wire>);

struct Wire {
    level: bool,
    link: Option<Arc<SimLink>>,
}

impl Wires {
    fn wire(&mut self, channel: u32) -> Result<&mut Wire, ChipError> {
        self.0.get_mut(&channel).ok_or(ChipError::NotRequested {
            chip: "mock".into(),
            line: channel,
        })
    }
}

impl ChipLines for Wires {
    fn set(&mut self, channel: u32, level: bool) -> Result<(), ChipError> {
        let w = self.wire(channel)?;
        if let Some(link) = &w.link {
            link.gpio_set(channel, level).map_err(|e| ChipError::Io {
                chip: "simulated GPIO".into(),
                reason: e.to_string(),
            })?;
        }
        w.level = level;
        Ok(())
    }

    fn get(&mut self, channel: u32) -> Result<bool, ChipError> {
        let w = self.wire(channel)?;
        if let Some(link) = &w.link {
            w.level = link.gpio_get(channel).map_err(|e| ChipError::Io {
                chip: "simulated GPIO".into(),
                reason: e.to_string(),
            })?;
        }
        Ok(w.level)
    }

    fn read_edges(&mut self, channel: u32) -> Result<Option<Vec<Transition>>, ChipError> {
        self.wire(channel).map(|_| None)
    }
}

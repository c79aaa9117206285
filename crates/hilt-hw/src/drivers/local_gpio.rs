//! `local_gpio`: lines of a GPIO chip on this host, by line number (`chip`, `line`).
//!
//! The chip opens through [`open_chip`]: `/dev/gpiochipN` is the Linux GPIO character
//! device, `sim:<name>` an in-memory chip of this process. A node uses one chip and names
//! each line number once (bench-format §2.3, checked when the lines open). Outputs are set
//! to their logical-inactive level right after the request; the self-test requests only
//! the input lines, so it drives nothing.

use std::collections::BTreeMap;

use hilt_model::bench::{Direction, GpioBackend, GpioLine};

use super::{GpioDriver, Problem};
use crate::gpio::NodeLines;
use crate::gpiochip::{ChipError, ChipLines, LineRequest, Transition, open_chip};
use crate::locks::LockSpec;
use crate::{HwError, ResourceKind};

pub struct LocalGpio;

/// Consumer name shown to other users of the chip.
pub(crate) const CONSUMER: &str = "hilt";

fn chip_line(line: &GpioLine) -> Option<(&str, u32)> {
    match &line.backend {
        GpioBackend::LocalGpio { chip, line } => Some((chip.as_str(), *line)),
        GpioBackend::MockGpio { .. } | GpioBackend::RemoteGpio { .. } => None,
    }
}

/// The lock spec of a line of `chip` (`gpio:local:<chip>:<line>`).
pub(crate) fn local_lock(chip: &str, n: u32) -> LockSpec {
    LockSpec::new(
        format!("gpio:local:{chip}:{n}"),
        format!("{chip} line {n}"),
        "gpio_line",
    )
}

/// One request per named line; the same number twice is an error naming both lines.
pub(crate) fn line_requests<'a>(
    node: &str,
    lines: impl Iterator<Item = (&'a String, u32, &'a GpioLine)>,
) -> Result<(Vec<LineRequest>, BTreeMap<String, u32>), String> {
    let mut offsets: BTreeMap<String, u32> = BTreeMap::new();
    let mut requests = Vec::new();
    for (name, n, line) in lines {
        if let Some((other, _)) = offsets.iter().find(|(_, o)| **o == n) {
            return Err(format!(
                "lines `{other}` and `{name}` of node `{node}` both use line number {n}; \
                 each line number may appear once per node"
            ));
        }
        offsets.insert(name.clone(), n);
        requests.push(LineRequest {
            line: n,
            direction: line.direction,
            bias: line.bias,
            edge: line.edge,
        });
    }
    Ok((requests, offsets))
}

/// The physical level that is logically inactive on an output.
pub(crate) fn inactive_level(line: &GpioLine) -> bool {
    !line.active_high
}

impl GpioDriver for LocalGpio {
    fn tag(&self) -> &'static str {
        "local_gpio"
    }

    fn check(&self, line: &GpioLine) -> Vec<Problem> {
        match chip_line(line) {
            Some((chip, _)) if chip.trim().is_empty() => {
                vec![Problem::new(
                    "chip",
                    "must name a GPIO chip (`/dev/gpiochip0`)",
                )]
            }
            _ => Vec::new(),
        }
    }

    fn lock_spec(&self, node: &str, name: &str, line: &GpioLine) -> LockSpec {
        let (chip, n) = chip_line(line).unwrap_or(("", 0));
        local_lock(chip, n)
            .with_detail("node", node.to_string())
            .with_detail("line", name.to_string())
            .with_detail("backend", "local_gpio")
            .with_detail("chip", chip.to_string())
            .with_detail("offset", n.to_string())
    }

    fn open(
        &self,
        node: &str,
        lines: &BTreeMap<String, GpioLine>,
        drive_outputs: bool,
    ) -> Result<NodeLines, HwError> {
        let fail =
            |reason: String| HwError::open(ResourceKind::Gpio, "GPIO lines of node", node, reason);
        let mut chips: Vec<&str> = Vec::new();
        let mut numbered = Vec::new();
        for (name, line) in lines {
            let Some((chip, n)) = chip_line(line) else {
                return Err(fail(format!(
                    "line `{name}` uses backend `{}`; a node uses one backend",
                    line.backend.name()
                )));
            };
            if !chips.contains(&chip) {
                chips.push(chip);
            }
            // The self-test drives nothing: it requests only the inputs.
            if drive_outputs || line.direction == Direction::Input {
                numbered.push((name, n, line));
            }
        }
        let chip_path = match chips.as_slice() {
            [one] => *one,
            [] => return Err(fail("the node has no GPIO lines".into())),
            _ => {
                return Err(fail(format!(
                    "the node's local_gpio lines use several chips ({}); a node uses one chip",
                    chips.join(", ")
                )));
            }
        };
        let (requests, offsets) = line_requests(node, numbered.into_iter()).map_err(fail)?;
        let chip = open_chip(chip_path).map_err(|e| fail(e.to_string()))?;
        chip.check(&requests).map_err(|e| fail(e.to_string()))?;
        if requests.is_empty() {
            // A self-test of a node with only outputs: the chip is there, nothing to take.
            return Ok(NodeLines::new(chip_path, Box::new(NoLines), offsets));
        }
        let mut handle = chip
            .request(&requests, CONSUMER)
            .map_err(|e| fail(e.to_string()))?;
        for (name, line) in lines {
            if line.direction == Direction::Output
                && let Some(n) = offsets.get(name)
            {
                handle
                    .set(*n, inactive_level(line))
                    .map_err(|e| fail(e.to_string()))?;
            }
        }
        Ok(NodeLines::new(chip_path, handle, offsets))
    }
}

/// The lines of a node that requested none (a self-test of outputs only).
pub(crate) struct NoLines;

impl ChipLines for NoLines {
    fn set(&mut self, line: u32, _level: bool) -> Result<(), ChipError> {
        Err(ChipError::NotRequested {
            chip: "(none)".into(),
            line,
        })
    }

    fn get(&mut self, line: u32) -> Result<bool, ChipError> {
        self.set(line, false).map(|_| false)
    }

    fn read_edges(&mut self, line: u32) -> Result<Option<Vec<Transition>>, ChipError> {
        self.set(line, false).map(|_| None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpiochip::sim_chip;
    use hilt_model::bench::Bias;

    fn line(chip: &str, n: u32, direction: Direction, active_high: bool) -> GpioLine {
        GpioLine {
            backend: GpioBackend::LocalGpio {
                chip: chip.into(),
                line: n,
            },
            direction,
            active_high,
            bias: None,
            edge: None,
        }
    }

    #[test]
    fn opens_sim_lines_at_their_inactive_level() {
        let lines = BTreeMap::from([
            (
                "led".to_string(),
                line("sim:lg-open", 4, Direction::Output, true),
            ),
            (
                "nreset".to_string(),
                line("sim:lg-open", 5, Direction::Output, false),
            ),
            ("button".to_string(), {
                let mut l = line("sim:lg-open", 6, Direction::Input, true);
                l.bias = Some(Bias::PullUp);
                l
            }),
        ]);
        let sim = sim_chip("lg-open");
        let mut opened = LocalGpio.open("n", &lines, true).unwrap();
        assert!(!sim.level(4), "active-high output starts low");
        assert!(
            sim.level(5),
            "active-low output starts high (logically inactive)"
        );
        assert_eq!(sim.consumer(4).as_deref(), Some(CONSUMER));
        assert!(opened.get("button").unwrap(), "pull-up");
        sim.drive(6, false);
        assert!(!opened.get("button").unwrap());
        opened.set("led", true).unwrap();
        assert!(sim.level(4));
        drop(opened);
        assert!(!sim.is_requested(4));
    }

    #[test]
    fn self_test_requests_only_inputs() {
        let lines = BTreeMap::from([
            (
                "led".to_string(),
                line("sim:lg-self", 4, Direction::Output, false),
            ),
            (
                "button".to_string(),
                line("sim:lg-self", 6, Direction::Input, true),
            ),
        ]);
        let sim = sim_chip("lg-self");
        let mut opened = LocalGpio.open("n", &lines, false).unwrap();
        assert!(!sim.is_requested(4) && sim.is_requested(6));
        assert!(!opened.get("button").unwrap());
    }

    #[test]
    fn self_test_of_outputs_only_checks_the_chip() {
        let lines = BTreeMap::from([(
            "led".to_string(),
            line("sim:lg-outs", 4, Direction::Output, true),
        )]);
        LocalGpio.open("n", &lines, false).unwrap();
        assert!(!sim_chip("lg-outs").is_requested(4));
        let missing = BTreeMap::from([(
            "led".to_string(),
            line("/dev/hilt-no-gpiochip", 4, Direction::Output, true),
        )]);
        let e = LocalGpio
            .open("n", &missing, false)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("no such device"), "{e}");
    }

    #[test]
    fn node_restrictions() {
        let two_chips = BTreeMap::from([
            (
                "a".to_string(),
                line("sim:lg-a", 1, Direction::Output, true),
            ),
            (
                "b".to_string(),
                line("sim:lg-b", 2, Direction::Output, true),
            ),
        ]);
        let e = LocalGpio
            .open("n", &two_chips, true)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("several chips (sim:lg-a, sim:lg-b)"), "{e}");
        let dup = BTreeMap::from([
            (
                "a".to_string(),
                line("sim:lg-dup", 1, Direction::Output, true),
            ),
            (
                "b".to_string(),
                line("sim:lg-dup", 1, Direction::Input, true),
            ),
        ]);
        let e = LocalGpio.open("n", &dup, true).err().unwrap().to_string();
        assert!(
            e.contains("lines `a` and `b` of node `n` both use line number 1"),
            "{e}"
        );
        assert!(!sim_chip("lg-dup").is_requested(1));
        sim_chip("lg-small").set_num_lines(4);
        let missing = BTreeMap::from([(
            "a".to_string(),
            line("sim:lg-small", 9, Direction::Input, true),
        )]);
        let e = LocalGpio
            .open("n", &missing, true)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("line 9 does not exist"), "{e}");
        assert!(e.starts_with("cannot open GPIO lines of node n"), "{e}");
    }

    #[test]
    fn lock_key_follows_the_locks_spec() {
        let spec = LocalGpio.lock_spec(
            "n",
            "led",
            &line("/dev/gpiochip0", 17, Direction::Output, true),
        );
        assert_eq!(spec.key, "gpio:local:/dev/gpiochip0:17");
        assert_eq!(spec.display_name, "/dev/gpiochip0 line 17");
        assert_eq!(spec.category, "gpio_line");
        assert_eq!(
            LocalGpio.check(&line(" ", 1, Direction::Input, true))[0].field,
            "chip"
        );
    }
}

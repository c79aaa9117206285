//! GPIO chips addressed by line number, as the agent's remote GPIO sessions use them.
//!
//! [`open_chip`] picks the backend from the chip path:
//!
//! - `sim:<name>`: an in-memory chip from a process-wide registry ([`sim_chip`]). Tests and
//!   demos drive its input lines and read its output lines through a [`SimChip`] handle.
//! - `sim:loopback<rest>`: a simulated chip whose output line `2k` is wired to input line
//!   `2k+1`: setting the output drives the input to the same level [`LOOPBACK_DELAY`]
//!   later. A test hook for processes (an agent) whose chip no test can drive directly.
//! - anything else (`/dev/gpiochip0`, …): the Linux GPIO character device ([`LocalChip`],
//!   uAPI v2 through the `gpiocdev` crate). Its logic sits on a small internal trait of
//!   character-device calls, unit-tested with a fake (this project's kernels have no GPIO
//!   chip and no gpio-sim).
//!
//! Levels are **physical**; the client applies `active_high`.
//!
//! ```
//! use hilt_hw::gpiochip::{LineRequest, open_chip, sim_chip};
//! use hilt_model::bench::Direction;
//!
//! let chip = open_chip("sim:doc-example").unwrap();
//! let mut lines = chip
//!     .request(&[LineRequest::new(3, Direction::Input), LineRequest::new(4, Direction::Output)], "doc")
//!     .unwrap();
//! sim_chip("doc-example").drive(3, true);
//! assert!(lines.get(3).unwrap());
//! lines.set(4, true).unwrap();
//! assert!(sim_chip("doc-example").level(4));
//! drop(lines); // releases both lines
//! assert!(!sim_chip("doc-example").is_requested(3));
//! ```

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use hilt_model::bench::{Bias, Direction, Edge};

mod cdev;
mod local;

pub use local::LocalChip;

/// Prefix of simulated chip paths.
pub const SIM_PREFIX: &str = "sim:";

/// Lines of a simulated chip unless [`SimChip::set_num_lines`] says otherwise.
pub const SIM_DEFAULT_LINES: u32 = 64;

/// Name prefix (after `sim:`) of simulated chips that wire output `2k` to input `2k+1`.
pub const SIM_LOOPBACK_PREFIX: &str = "loopback";

/// How long a loopback chip's input takes to follow its output.
pub const LOOPBACK_DELAY: std::time::Duration = std::time::Duration::from_millis(50);

/// Edge events a simulated line queues before the oldest are dropped.
const SIM_EVENT_QUEUE: usize = 1024;

/// One line to request and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineRequest {
    pub line: u32,
    pub direction: Direction,
    pub bias: Option<Bias>,
    /// Edges to detect on an input line (`None`: the backend may still report edges).
    pub edge: Option<Edge>,
}

impl LineRequest {
    pub fn new(line: u32, direction: Direction) -> LineRequest {
        LineRequest {
            line,
            direction,
            bias: None,
            edge: None,
        }
    }
}

/// A level change seen on an input line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Rising,
    Falling,
}

impl Transition {
    /// The transition that ends at `level`.
    pub fn to_level(level: bool) -> Transition {
        if level {
            Transition::Rising
        } else {
            Transition::Falling
        }
    }

    /// The level after the transition.
    pub fn level(self) -> bool {
        self == Transition::Rising
    }

    /// `true` when an edge filter accepts this transition.
    pub fn matches(self, edge: Edge) -> bool {
        matches!(
            (edge, self),
            (Edge::Both, _)
                | (Edge::Rising, Transition::Rising)
                | (Edge::Falling, Transition::Falling)
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ChipError {
    /// The backend or the request is not supported (bad path, no such line, no chardev).
    #[error("{0}")]
    Unsupported(String),
    /// Another consumer holds the line.
    #[error("line {line} of GPIO chip {chip} is busy: requested by {holder}")]
    Busy {
        chip: String,
        line: u32,
        holder: String,
    },
    /// The line is not part of this request.
    #[error("line {line} of GPIO chip {chip} is not requested")]
    NotRequested { chip: String, line: u32 },
    /// The hardware failed while in use.
    #[error("GPIO chip {chip}: {reason}")]
    Io { chip: String, reason: String },
}

/// A GPIO chip. Requesting lines is the only way to use them; the returned handle owns the
/// lines until it is dropped.
pub trait GpioChip: Send + Sync {
    /// The chip path as given to [`open_chip`].
    fn path(&self) -> &str;

    /// Checks, without requesting or touching any line, that the chip can be used and has
    /// every line of `lines`, each named once. Callers check before they take the lines'
    /// resource locks, so a request that can never succeed leaves no lock file behind.
    fn check(&self, lines: &[LineRequest]) -> Result<(), ChipError>;

    /// Requests every line at once (all or nothing). Outputs start at physical level 0.
    /// `consumer` names the requester (shown to other users of the chip).
    fn request(
        &self,
        lines: &[LineRequest],
        consumer: &str,
    ) -> Result<Box<dyn ChipLines>, ChipError>;
}

/// Requested lines. Dropping the handle releases them.
pub trait ChipLines: Send {
    /// Drives an output line to a physical level.
    fn set(&mut self, line: u32, level: bool) -> Result<(), ChipError>;

    /// Reads a line's physical level.
    fn get(&mut self, line: u32) -> Result<bool, ChipError>;

    /// Drains the transitions of an input line queued since the previous call, oldest
    /// first. `Ok(None)` when the backend queues no events for the line; callers then
    /// detect edges by sampling [`ChipLines::get`].
    fn read_edges(&mut self, line: u32) -> Result<Option<Vec<Transition>>, ChipError>;

    /// Waits up to `timeout` for a transition of an input line that `edge` accepts,
    /// counting only transitions after the call starts: `Ok(Some(matched))`. `Ok(None)`
    /// when the backend queues no events for the line; callers then sample
    /// [`ChipLines::get`]. By default this drains [`ChipLines::read_edges`] every
    /// millisecond (a pulse shorter than a sample is still seen); a backend behind a
    /// network (remote_gpio) waits where the line is instead.
    fn wait_edge(
        &mut self,
        line: u32,
        edge: Edge,
        timeout: std::time::Duration,
    ) -> Result<Option<bool>, ChipError> {
        // Transitions before the wait do not count.
        if self.read_edges(line)?.is_none() {
            return Ok(None);
        }
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let seen = self.read_edges(line)?.unwrap_or_default();
            if seen.iter().any(|t| t.matches(edge)) {
                return Ok(Some(true));
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return Ok(Some(false));
            }
            std::thread::sleep((deadline - now).min(std::time::Duration::from_millis(1)));
        }
    }
}

/// Opens a chip by path: `sim:<name>` is a simulated chip, anything else the local GPIO
/// character device backend.
pub fn open_chip(path: &str) -> Result<Box<dyn GpioChip>, ChipError> {
    if let Some(name) = path.strip_prefix(SIM_PREFIX) {
        if name.is_empty() {
            return Err(ChipError::Unsupported(
                "a simulated GPIO chip needs a name: `sim:<name>`".into(),
            ));
        }
        return Ok(Box::new(sim_chip(name)));
    }
    if path.trim().is_empty() {
        return Err(ChipError::Unsupported("the GPIO chip path is empty".into()));
    }
    Ok(Box::new(LocalChip::new(path)))
}

/// Returns the simulated chip `name` (without the `sim:` prefix), creating it on first use.
/// Every handle to one name shares the same lines for the life of the process.
pub fn sim_chip(name: &str) -> SimChip {
    static CHIPS: OnceLock<Mutex<HashMap<String, SimChip>>> = OnceLock::new();
    let mut chips = CHIPS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    chips
        .entry(name.to_owned())
        .or_insert_with(|| SimChip {
            path: format!("{SIM_PREFIX}{name}"),
            state: Arc::new(Mutex::new(SimState {
                num_lines: SIM_DEFAULT_LINES,
                lines: BTreeMap::new(),
                next_request: 1,
            })),
        })
        .clone()
}

/// A simulated chip: a handle for requesting lines ([`GpioChip`]) and for playing the
/// outside world (driving inputs, reading outputs).
#[derive(Clone)]
pub struct SimChip {
    path: String,
    state: Arc<Mutex<SimState>>,
}

struct SimState {
    num_lines: u32,
    lines: BTreeMap<u32, SimLine>,
    next_request: u64,
}

#[derive(Default)]
struct SimLine {
    /// What the outside world drives onto the line (`None`: floating, the bias decides).
    external: Option<bool>,
    /// The current physical level.
    level: bool,
    owner: Option<SimOwner>,
    events: VecDeque<Transition>,
}

struct SimOwner {
    request: u64,
    consumer: String,
    direction: Direction,
    bias: Option<Bias>,
}

impl SimLine {
    /// The level an input settles at: driven, else pulled, else 0.
    fn input_level(&self, bias: Option<Bias>) -> bool {
        self.external.unwrap_or(bias == Some(Bias::PullUp))
    }

    /// An input line moves to `level`; a change is queued as an edge event.
    fn settle(&mut self, level: bool) {
        if level != self.level {
            self.level = level;
            if self.events.len() == SIM_EVENT_QUEUE {
                self.events.pop_front();
            }
            self.events.push_back(Transition::to_level(level));
        }
    }
}

impl SimChip {
    fn state(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `true` for a `sim:loopback…` chip (output `2k` drives input `2k+1`).
    pub fn is_loopback(&self) -> bool {
        self.path[SIM_PREFIX.len()..].starts_with(SIM_LOOPBACK_PREFIX)
    }

    /// Lines the chip has (0..n); requests beyond fail like a real chip.
    pub fn set_num_lines(&self, n: u32) {
        self.state().num_lines = n;
    }

    /// The outside world drives `line` to `level`. On a requested input line the level
    /// changes at once and the transition is queued for edge detection.
    pub fn drive(&self, line: u32, level: bool) {
        let mut st = self.state();
        let l = st.lines.entry(line).or_default();
        l.external = Some(level);
        let input_bias = match &l.owner {
            Some(o) if o.direction == Direction::Input => Some(o.bias),
            _ => None,
        };
        if let Some(bias) = input_bias {
            let new = l.input_level(bias);
            l.settle(new);
        } else if l.owner.is_none() {
            l.level = level;
        }
    }

    /// The outside world stops driving `line` (it floats; the bias decides).
    pub fn release_drive(&self, line: u32) {
        let mut st = self.state();
        let l = st.lines.entry(line).or_default();
        l.external = None;
        if let Some(o) = &l.owner
            && o.direction == Direction::Input
        {
            let bias = o.bias;
            let new = l.input_level(bias);
            l.settle(new);
        }
    }

    /// The current physical level of `line` (what an output drives, what an input reads).
    pub fn level(&self, line: u32) -> bool {
        self.state().lines.get(&line).is_some_and(|l| l.level)
    }

    /// Every line exists on the chip and is named once.
    fn check_lines(&self, st: &SimState, lines: &[LineRequest]) -> Result<(), ChipError> {
        let mut seen = std::collections::BTreeSet::new();
        for r in lines {
            if r.line >= st.num_lines {
                return Err(ChipError::Unsupported(format!(
                    "GPIO chip {} has {} lines (0..{}); line {} does not exist",
                    self.path,
                    st.num_lines,
                    st.num_lines.saturating_sub(1),
                    r.line
                )));
            }
            if !seen.insert(r.line) {
                return Err(ChipError::Unsupported(format!(
                    "line {} is requested twice",
                    r.line
                )));
            }
        }
        Ok(())
    }

    /// `true` while some request holds `line`.
    pub fn is_requested(&self, line: u32) -> bool {
        self.state()
            .lines
            .get(&line)
            .is_some_and(|l| l.owner.is_some())
    }

    /// The consumer name of the request holding `line`.
    pub fn consumer(&self, line: u32) -> Option<String> {
        self.state()
            .lines
            .get(&line)
            .and_then(|l| l.owner.as_ref().map(|o| o.consumer.clone()))
    }

    /// The direction `line` is requested with.
    pub fn direction(&self, line: u32) -> Option<Direction> {
        self.state()
            .lines
            .get(&line)
            .and_then(|l| l.owner.as_ref().map(|o| o.direction))
    }
}

impl GpioChip for SimChip {
    fn path(&self) -> &str {
        &self.path
    }

    fn check(&self, lines: &[LineRequest]) -> Result<(), ChipError> {
        self.check_lines(&self.state(), lines)
    }

    fn request(
        &self,
        lines: &[LineRequest],
        consumer: &str,
    ) -> Result<Box<dyn ChipLines>, ChipError> {
        let mut st = self.state();
        self.check_lines(&st, lines)?;
        for r in lines {
            if let Some(o) = st.lines.get(&r.line).and_then(|l| l.owner.as_ref()) {
                return Err(ChipError::Busy {
                    chip: self.path.clone(),
                    line: r.line,
                    holder: o.consumer.clone(),
                });
            }
        }
        let request = st.next_request;
        st.next_request += 1;
        for r in lines {
            let l = st.lines.entry(r.line).or_default();
            l.level = match r.direction {
                Direction::Output => false,
                Direction::Input => l.input_level(r.bias),
            };
            l.events.clear();
            l.owner = Some(SimOwner {
                request,
                consumer: consumer.to_owned(),
                direction: r.direction,
                bias: r.bias,
            });
        }
        Ok(Box::new(SimLines {
            chip: self.clone(),
            request,
            lines: lines.iter().map(|r| (r.line, r.direction)).collect(),
        }))
    }
}

struct SimLines {
    chip: SimChip,
    request: u64,
    lines: BTreeMap<u32, Direction>,
}

impl SimLines {
    fn check(&self, line: u32, want: Direction) -> Result<(), ChipError> {
        match self.lines.get(&line) {
            None => Err(ChipError::NotRequested {
                chip: self.chip.path.clone(),
                line,
            }),
            Some(d) if *d != want => Err(ChipError::Unsupported(format!(
                "line {line} of GPIO chip {} is requested as {}",
                self.chip.path,
                match d {
                    Direction::Input => "an input",
                    Direction::Output => "an output",
                }
            ))),
            Some(_) => Ok(()),
        }
    }
}

impl ChipLines for SimLines {
    fn set(&mut self, line: u32, level: bool) -> Result<(), ChipError> {
        self.check(line, Direction::Output)?;
        {
            let mut st = self.chip.state();
            if let Some(l) = st.lines.get_mut(&line) {
                l.level = level;
            }
        }
        if line.is_multiple_of(2) && self.chip.is_loopback() {
            let chip = self.chip.clone();
            std::thread::spawn(move || {
                std::thread::sleep(LOOPBACK_DELAY);
                chip.drive(line + 1, level);
            });
        }
        Ok(())
    }

    fn get(&mut self, line: u32) -> Result<bool, ChipError> {
        if !self.lines.contains_key(&line) {
            return Err(ChipError::NotRequested {
                chip: self.chip.path.clone(),
                line,
            });
        }
        Ok(self.chip.level(line))
    }

    fn read_edges(&mut self, line: u32) -> Result<Option<Vec<Transition>>, ChipError> {
        self.check(line, Direction::Input)?;
        let mut st = self.chip.state();
        Ok(Some(
            st.lines
                .get_mut(&line)
                .map(|l| l.events.drain(..).collect())
                .unwrap_or_default(),
        ))
    }
}

impl Drop for SimLines {
    fn drop(&mut self) {
        let mut st = self.chip.state();
        for line in self.lines.keys() {
            if let Some(l) = st.lines.get_mut(line)
                && l.owner.as_ref().is_some_and(|o| o.request == self.request)
            {
                l.owner = None;
                l.events.clear();
                // A released line floats back to what the outside world drives.
                l.level = l.external.unwrap_or(false);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(line: u32, direction: Direction, bias: Option<Bias>) -> LineRequest {
        LineRequest {
            line,
            direction,
            bias,
            edge: None,
        }
    }

    #[test]
    fn request_set_get_release() {
        let chip = open_chip("sim:unit-basic").unwrap();
        assert_eq!(chip.path(), "sim:unit-basic");
        let sim = sim_chip("unit-basic");
        let mut lines = chip
            .request(
                &[
                    req(1, Direction::Output, None),
                    req(2, Direction::Input, Some(Bias::PullUp)),
                    req(3, Direction::Input, Some(Bias::PullDown)),
                ],
                "t",
            )
            .unwrap();
        assert!(!sim.level(1), "outputs start low");
        assert!(lines.get(2).unwrap(), "pull-up reads high");
        assert!(!lines.get(3).unwrap());
        lines.set(1, true).unwrap();
        assert!(sim.level(1));
        assert!(lines.set(2, true).is_err(), "inputs cannot be set");
        assert!(matches!(
            lines.get(9),
            Err(ChipError::NotRequested { line: 9, .. })
        ));
        assert_eq!(sim.consumer(1).as_deref(), Some("t"));
        assert_eq!(sim.direction(2), Some(Direction::Input));
        drop(lines);
        assert!(!sim.is_requested(1) && !sim.is_requested(2));
    }

    #[test]
    fn busy_and_out_of_range_and_duplicates() {
        let chip = open_chip("sim:unit-busy").unwrap();
        sim_chip("unit-busy").set_num_lines(8);
        let held = chip
            .request(&[req(5, Direction::Output, None)], "first")
            .unwrap();
        match chip.request(&[req(5, Direction::Input, None)], "second") {
            Err(ChipError::Busy {
                line: 5, holder, ..
            }) => assert_eq!(holder, "first"),
            other => panic!("expected busy, got {:?}", other.err()),
        }
        assert!(matches!(
            chip.request(&[req(8, Direction::Input, None)], "x"),
            Err(ChipError::Unsupported(_))
        ));
        assert!(matches!(
            chip.request(
                &[
                    req(2, Direction::Input, None),
                    req(2, Direction::Input, None)
                ],
                "x"
            ),
            Err(ChipError::Unsupported(_))
        ));
        // A failed request takes nothing.
        assert!(!sim_chip("unit-busy").is_requested(2));
        drop(held);
        chip.request(&[req(5, Direction::Input, None)], "second")
            .unwrap();
    }

    #[test]
    fn edges_are_queued_on_inputs() {
        let chip = open_chip("sim:unit-edges").unwrap();
        let sim = sim_chip("unit-edges");
        let mut lines = chip
            .request(&[req(4, Direction::Input, None)], "t")
            .unwrap();
        assert_eq!(lines.read_edges(4).unwrap(), Some(vec![]));
        sim.drive(4, true);
        sim.drive(4, true);
        sim.drive(4, false);
        assert_eq!(
            lines.read_edges(4).unwrap(),
            Some(vec![Transition::Rising, Transition::Falling])
        );
        assert_eq!(lines.read_edges(4).unwrap(), Some(vec![]));
        sim.drive(4, true);
        sim.release_drive(4);
        assert_eq!(
            lines.read_edges(4).unwrap(),
            Some(vec![Transition::Rising, Transition::Falling])
        );
    }

    #[test]
    fn waits_see_a_pulse_and_ignore_earlier_edges() {
        let chip = open_chip("sim:unit-wait").unwrap();
        let sim = sim_chip("unit-wait");
        let mut lines = chip
            .request(&[req(2, Direction::Input, None)], "t")
            .unwrap();
        sim.drive(2, true); // before the wait: not counted
        let short = std::time::Duration::from_millis(30);
        assert_eq!(
            lines.wait_edge(2, Edge::Rising, short).unwrap(),
            Some(false)
        );
        let pulse = sim.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            pulse.drive(2, false);
            pulse.drive(2, true); // a pulse far shorter than a sample
        });
        let long = std::time::Duration::from_secs(5);
        assert_eq!(lines.wait_edge(2, Edge::Falling, long).unwrap(), Some(true));
        t.join().unwrap();
    }

    #[test]
    fn bad_chip_paths() {
        assert!(open_chip("sim:").is_err());
        assert!(open_chip(" ").is_err());
    }

    #[test]
    fn a_loopback_chip_wires_even_outputs_to_the_next_input() {
        let chip = open_chip("sim:loopback-unit").unwrap();
        let mut lines = chip
            .request(
                &[
                    req(2, Direction::Output, None),
                    req(3, Direction::Input, None),
                ],
                "t",
            )
            .unwrap();
        lines.set(2, true).unwrap();
        assert!(
            !lines.get(3).unwrap(),
            "the input follows only after the delay"
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !lines.get(3).unwrap() {
            assert!(std::time::Instant::now() < deadline, "input never followed");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(lines.read_edges(3).unwrap(), Some(vec![Transition::Rising]));
        assert!(!sim_chip("unit-basic").is_loopback());
    }

    #[test]
    fn transition_filters() {
        assert!(Transition::Rising.matches(Edge::Both));
        assert!(Transition::Rising.matches(Edge::Rising));
        assert!(!Transition::Rising.matches(Edge::Falling));
        assert!(Transition::Falling.matches(Edge::Falling));
        assert_eq!(Transition::to_level(true), Transition::Rising);
        assert!(!Transition::Falling.level());
    }
}

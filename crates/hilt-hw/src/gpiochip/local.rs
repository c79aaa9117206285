//! The local GPIO character device as a [`GpioChip`]: line checks, busy lines, direction
//! rules, edge queues and error messages. The kernel calls sit behind [`Cdev`] (the real
//! one is [`super::cdev::Gpiocdev`]) so this logic is unit-tested with a fake: the kernels
//! hilt is built and tested on have no `/dev/gpiochip*` and no gpio-sim module.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use hilt_model::bench::Direction;

use super::{ChipError, ChipLines, GpioChip, LineRequest, Transition};

/// Edge events queued per line before the oldest are dropped.
const EVENT_QUEUE: usize = 1024;

/// What a character-device call can fail with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CdevError {
    /// The path is missing.
    NoChip,
    /// A line is held by another request (EBUSY).
    Busy,
    /// Anything else, as the kernel or the crate said it.
    Other(String),
}

/// An edge event as the kernel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CdevEvent {
    pub line: u32,
    pub transition: Transition,
    /// Kernel timestamp (CLOCK_MONOTONIC), nanoseconds.
    pub timestamp_ns: u64,
}

/// The character-device calls the backend makes.
pub(crate) trait Cdev: Send + Sync {
    /// The number of lines of the chip at `path`.
    fn num_lines(&self, path: &str) -> Result<u32, CdevError>;
    /// The consumer holding `line`, when it is in use.
    fn holder(&self, path: &str, line: u32) -> Result<Option<String>, CdevError>;
    /// Requests every line at once; outputs start at physical 0.
    fn request(
        &self,
        path: &str,
        lines: &[LineRequest],
        consumer: &str,
    ) -> Result<Box<dyn CdevRequest>, CdevError>;
}

/// One kernel line request; dropping it releases the lines.
pub(crate) trait CdevRequest: Send {
    fn set(&mut self, line: u32, level: bool) -> Result<(), CdevError>;
    fn get(&mut self, line: u32) -> Result<bool, CdevError>;
    /// The next queued edge event without blocking.
    fn next_event(&mut self) -> Result<Option<CdevEvent>, CdevError>;
}

/// A chip of the Linux GPIO character device (`/dev/gpiochipN`).
pub struct LocalChip {
    path: String,
    cdev: Arc<dyn Cdev>,
}

impl LocalChip {
    /// The chip at `path` through the kernel.
    pub fn new(path: &str) -> LocalChip {
        LocalChip::with_cdev(path, Arc::new(super::cdev::Gpiocdev))
    }

    pub(crate) fn with_cdev(path: &str, cdev: Arc<dyn Cdev>) -> LocalChip {
        LocalChip {
            path: path.to_owned(),
            cdev,
        }
    }

    fn error(&self, e: CdevError) -> ChipError {
        match e {
            CdevError::NoChip => ChipError::Unsupported(format!(
                "cannot open GPIO chip {}: no such device; this kernel or device has no GPIO \
                 chip at that path (see `ls /dev/gpiochip*`)",
                self.path
            )),
            CdevError::Busy => ChipError::Busy {
                chip: self.path.clone(),
                line: 0,
                holder: "another process".into(),
            },
            CdevError::Other(reason) => ChipError::Io {
                chip: self.path.clone(),
                reason,
            },
        }
    }
}

impl GpioChip for LocalChip {
    fn path(&self) -> &str {
        &self.path
    }

    fn check(&self, lines: &[LineRequest]) -> Result<(), ChipError> {
        let n = self.cdev.num_lines(&self.path).map_err(|e| self.error(e))?;
        let mut seen = std::collections::BTreeSet::new();
        for r in lines {
            if r.line >= n {
                return Err(ChipError::Unsupported(format!(
                    "GPIO chip {} has {n} lines (0..{}); line {} does not exist",
                    self.path,
                    n.saturating_sub(1),
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

    fn request(
        &self,
        lines: &[LineRequest],
        consumer: &str,
    ) -> Result<Box<dyn ChipLines>, ChipError> {
        self.check(lines)?;
        for r in lines {
            if let Some(holder) = self
                .cdev
                .holder(&self.path, r.line)
                .map_err(|e| self.error(e))?
            {
                return Err(ChipError::Busy {
                    chip: self.path.clone(),
                    line: r.line,
                    holder: if holder.is_empty() {
                        "an unnamed consumer".into()
                    } else {
                        holder
                    },
                });
            }
        }
        let request = self
            .cdev
            .request(&self.path, lines, consumer)
            .map_err(|e| match (e, lines) {
                // Taken between the holder check and the request.
                (CdevError::Busy, [first, ..]) => ChipError::Busy {
                    chip: self.path.clone(),
                    line: first.line,
                    holder: "another process".into(),
                },
                (e, _) => self.error(e),
            })?;
        Ok(Box::new(LocalLines {
            path: self.path.clone(),
            request,
            lines: lines
                .iter()
                .map(|r| {
                    let queue =
                        (r.direction == Direction::Input && r.edge.is_some()).then(VecDeque::new);
                    (r.line, (r.direction, queue))
                })
                .collect(),
        }))
    }
}

/// Requested lines: direction and, for inputs with edge detection, the queued events.
struct LocalLines {
    path: String,
    request: Box<dyn CdevRequest>,
    lines: BTreeMap<u32, (Direction, Option<VecDeque<CdevEvent>>)>,
}

impl LocalLines {
    fn io(&self, e: CdevError) -> ChipError {
        ChipError::Io {
            chip: self.path.clone(),
            reason: match e {
                CdevError::NoChip => "the chip is gone".into(),
                CdevError::Busy => "the line is busy".into(),
                CdevError::Other(r) => r,
            },
        }
    }

    fn direction(&self, line: u32) -> Result<Direction, ChipError> {
        self.lines
            .get(&line)
            .map(|(d, _)| *d)
            .ok_or_else(|| ChipError::NotRequested {
                chip: self.path.clone(),
                line,
            })
    }

    /// Moves every pending kernel event into its line's queue.
    fn drain_kernel(&mut self) -> Result<(), ChipError> {
        while let Some(ev) = self.request.next_event().map_err(|e| self.io(e))? {
            if let Some((_, Some(q))) = self.lines.get_mut(&ev.line) {
                if q.len() == EVENT_QUEUE {
                    q.pop_front();
                }
                q.push_back(ev);
            }
        }
        Ok(())
    }
}

impl ChipLines for LocalLines {
    fn set(&mut self, line: u32, level: bool) -> Result<(), ChipError> {
        if self.direction(line)? != Direction::Output {
            return Err(ChipError::Unsupported(format!(
                "line {line} of GPIO chip {} is requested as an input",
                self.path
            )));
        }
        self.request.set(line, level).map_err(|e| self.io(e))
    }

    fn get(&mut self, line: u32) -> Result<bool, ChipError> {
        self.direction(line)?;
        self.request.get(line).map_err(|e| self.io(e))
    }

    fn read_edges(&mut self, line: u32) -> Result<Option<Vec<Transition>>, ChipError> {
        if self.direction(line)? != Direction::Input {
            return Err(ChipError::Unsupported(format!(
                "line {line} of GPIO chip {} is requested as an output",
                self.path
            )));
        }
        self.drain_kernel()?;
        Ok(match self.lines.get_mut(&line) {
            Some((_, Some(q))) => {
                let mut events: Vec<CdevEvent> = q.drain(..).collect();
                // Kernel order is per request; the timestamps decide.
                events.sort_by_key(|e| e.timestamp_ns);
                Some(events.into_iter().map(|e| e.transition).collect())
            }
            // No edge detection requested: the caller samples `get`.
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use hilt_model::bench::{Bias, Edge};

    use super::*;

    /// A chip in memory that answers like the kernel: line count, holders, EBUSY, events.
    #[derive(Default)]
    struct Fake {
        num_lines: u32,
        holders: BTreeMap<u32, String>,
        busy_on_request: bool,
        state: Arc<Mutex<FakeState>>,
    }

    #[derive(Default)]
    struct FakeState {
        levels: BTreeMap<u32, bool>,
        events: VecDeque<CdevEvent>,
        requested: Vec<(Vec<LineRequest>, String)>,
        released: usize,
    }

    struct FakeRequest(Arc<Mutex<FakeState>>);

    impl Cdev for Fake {
        fn num_lines(&self, path: &str) -> Result<u32, CdevError> {
            if path == "/dev/gpiochip9" {
                return Err(CdevError::NoChip);
            }
            Ok(self.num_lines)
        }
        fn holder(&self, _path: &str, line: u32) -> Result<Option<String>, CdevError> {
            Ok(self.holders.get(&line).cloned())
        }
        fn request(
            &self,
            _path: &str,
            lines: &[LineRequest],
            consumer: &str,
        ) -> Result<Box<dyn CdevRequest>, CdevError> {
            if self.busy_on_request {
                return Err(CdevError::Busy);
            }
            let mut st = self.state.lock().unwrap();
            st.requested.push((lines.to_vec(), consumer.to_string()));
            for r in lines {
                if r.direction == Direction::Output {
                    st.levels.insert(r.line, false);
                }
            }
            Ok(Box::new(FakeRequest(self.state.clone())))
        }
    }

    impl CdevRequest for FakeRequest {
        fn set(&mut self, line: u32, level: bool) -> Result<(), CdevError> {
            self.0.lock().unwrap().levels.insert(line, level);
            Ok(())
        }
        fn get(&mut self, line: u32) -> Result<bool, CdevError> {
            let st = self.0.lock().unwrap();
            st.levels
                .get(&line)
                .copied()
                .ok_or_else(|| CdevError::Other("Input/output error (os error 5)".into()))
        }
        fn next_event(&mut self) -> Result<Option<CdevEvent>, CdevError> {
            Ok(self.0.lock().unwrap().events.pop_front())
        }
    }

    impl Drop for FakeRequest {
        fn drop(&mut self) {
            self.0.lock().unwrap().released += 1;
        }
    }

    fn fake() -> Fake {
        Fake {
            num_lines: 32,
            ..Fake::default()
        }
    }

    fn chip(f: Fake) -> (LocalChip, Arc<Mutex<FakeState>>) {
        let st = f.state.clone();
        (LocalChip::with_cdev("/dev/gpiochip0", Arc::new(f)), st)
    }

    fn input(line: u32, edge: Option<Edge>) -> LineRequest {
        LineRequest {
            line,
            direction: Direction::Input,
            bias: Some(Bias::PullDown),
            edge,
        }
    }

    #[test]
    fn requests_set_get_and_release() {
        let (chip, st) = chip(fake());
        let mut lines = chip
            .request(
                &[LineRequest::new(17, Direction::Output), input(27, None)],
                "hilt",
            )
            .unwrap();
        {
            let s = st.lock().unwrap();
            assert_eq!(s.requested.len(), 1);
            assert_eq!(s.requested[0].1, "hilt");
            assert_eq!(s.requested[0].0[1].bias, Some(Bias::PullDown));
        }
        lines.set(17, true).unwrap();
        assert!(st.lock().unwrap().levels[&17]);
        assert!(lines.get(17).unwrap());
        st.lock().unwrap().levels.insert(27, true);
        assert!(lines.get(27).unwrap());
        // Physical levels only: active_high is the caller's.
        st.lock().unwrap().levels.insert(27, false);
        assert!(!lines.get(27).unwrap());
        assert!(matches!(
            lines.set(27, true),
            Err(ChipError::Unsupported(_))
        ));
        assert!(matches!(
            lines.get(5),
            Err(ChipError::NotRequested { line: 5, .. })
        ));
        drop(lines);
        assert_eq!(st.lock().unwrap().released, 1);
    }

    #[test]
    fn a_missing_chip_names_the_path_and_says_there_is_no_gpio() {
        let c = LocalChip::with_cdev("/dev/gpiochip9", Arc::new(fake()));
        let e = c
            .request(&[input(1, None)], "hilt")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("cannot open GPIO chip /dev/gpiochip9"), "{e}");
        assert!(e.contains("has no GPIO chip at that path"), "{e}");
        assert!(c.check(&[input(1, None)]).is_err());
    }

    #[test]
    fn the_real_backend_reports_a_missing_chip_the_same_way() {
        let path = "/dev/hilt-no-such-gpiochip";
        let e = LocalChip::new(path)
            .request(&[input(1, None)], "hilt")
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains(&format!("cannot open GPIO chip {path}: no such device")),
            "{e}"
        );
    }

    #[test]
    fn missing_lines_duplicates_and_busy_lines() {
        let (c, st) = chip(fake());
        let e = c
            .request(&[input(32, None)], "hilt")
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("has 32 lines (0..31); line 32 does not exist"),
            "{e}"
        );
        assert!(
            c.request(&[input(3, None), input(3, None)], "hilt")
                .is_err()
        );
        let mut f = fake();
        f.holders.insert(4, "gpio-keys".into());
        let (c, _) = chip(f);
        match c.request(&[input(3, None), input(4, None)], "hilt") {
            Err(ChipError::Busy { line, holder, .. }) => {
                assert_eq!((line, holder.as_str()), (4, "gpio-keys"));
            }
            other => panic!("expected busy, got {:?}", other.err()),
        }
        let mut f = fake();
        f.busy_on_request = true;
        let (c, _) = chip(f);
        assert!(matches!(
            c.request(&[input(6, None)], "hilt"),
            Err(ChipError::Busy { line: 6, .. })
        ));
        assert!(st.lock().unwrap().requested.is_empty(), "nothing requested");
    }

    #[test]
    fn edges_are_queued_per_line_in_timestamp_order() {
        let (c, st) = chip(fake());
        let mut lines = c
            .request(
                &[
                    input(1, Some(Edge::Both)),
                    input(2, Some(Edge::Rising)),
                    input(3, None),
                    LineRequest::new(4, Direction::Output),
                ],
                "hilt",
            )
            .unwrap();
        let ev = |line, rising: bool, t| CdevEvent {
            line,
            transition: Transition::to_level(rising),
            timestamp_ns: t,
        };
        st.lock().unwrap().events.extend([
            ev(1, true, 100),
            ev(2, true, 110),
            ev(1, false, 90),
            ev(1, true, 130),
        ]);
        assert_eq!(
            lines.read_edges(1).unwrap(),
            Some(vec![
                Transition::Falling,
                Transition::Rising,
                Transition::Rising
            ])
        );
        // Line 2's event was kept for line 2 while line 1 was read.
        assert_eq!(lines.read_edges(2).unwrap(), Some(vec![Transition::Rising]));
        assert_eq!(lines.read_edges(1).unwrap(), Some(vec![]));
        assert_eq!(
            lines.read_edges(3).unwrap(),
            None,
            "no edge detection: sample"
        );
        assert!(lines.read_edges(4).is_err(), "outputs have no edges");
    }
}

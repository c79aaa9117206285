//! `fuzz_can` against a CAN transport seen through [`CanPort`]: send a frame, read frames.
//! The session's CAN links (`slcan`, SocketCAN: [`CanRes`]) are ports, every frame in the
//! transport log like `send_can`'s; the case logic (send, then wait for an
//! `expect_response` frame) is unit-tested against an in-process bus.

use std::time::{Duration, Instant};

use hilt_hw::CancelToken;
use hilt_hw::can::Frame;
use hilt_model::suite::CanFrameRule;
use hilt_model::validate::parse_hex_bytes;

use crate::session::CanRes;

/// One classic or FD frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanFrame {
    pub id: u32,
    pub extended: bool,
    pub fd: bool,
    pub bitrate_switch: bool,
    pub error_state_indicator: bool,
    pub data: Vec<u8>,
}

/// What the fuzzer needs of a CAN transport.
pub trait CanPort: Send {
    fn send(&mut self, frame: &CanFrame) -> Result<(), String>;
    /// The next received frame within `within` (`None` when none came), waking on cancel.
    fn recv(&mut self, within: Duration, cancel: &CancelToken) -> Result<Option<CanFrame>, String>;
}

impl CanPort for CanRes {
    fn send(&mut self, frame: &CanFrame) -> Result<(), String> {
        let f = Frame {
            id: frame.id,
            extended: frame.extended,
            fd: frame.fd,
            brs: frame.bitrate_switch,
            esi: frame.error_state_indicator,
            data: frame.data.clone(),
            ..Frame::default()
        };
        let r = self.link.send(&f, &CancelToken::new());
        match &r {
            Ok(()) => self.log.line(&format!("FUZZ_SEND {f}")),
            Err(e) => self.log.line(&format!("SEND_FAILED {e}")),
        }
        r.map_err(|e| e.to_string())
    }

    fn recv(&mut self, within: Duration, cancel: &CancelToken) -> Result<Option<CanFrame>, String> {
        match self.link.recv(Instant::now() + within, cancel) {
            Ok(Some(f)) => {
                self.log.line(&format!("RECV {f}"));
                Ok(Some(CanFrame {
                    id: f.id,
                    extended: f.extended,
                    fd: f.fd,
                    bitrate_switch: f.brs,
                    error_state_indicator: f.esi,
                    data: f.data,
                }))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Whether `f` satisfies an `expect_can`-style rule: id under the mask, flags, data under
/// its mask, exact length unless `allow_extra_data`.
pub fn matches(rule: &CanFrameRule, f: &CanFrame) -> bool {
    let id_mask = rule
        .id_mask
        .unwrap_or(if rule.extended { 0x1FFF_FFFF } else { 0x7FF });
    let want = parse_hex_bytes(&rule.data).unwrap_or_default();
    let mask = match &rule.data_mask {
        Some(m) => parse_hex_bytes(m).unwrap_or_default(),
        None => vec![0xFF; want.len()],
    };
    (f.id & id_mask) == (rule.id & id_mask)
        && f.extended == rule.extended
        && f.fd == rule.fd
        && rule.bitrate_switch.is_none_or(|b| b == f.bitrate_switch)
        && rule
            .error_state_indicator
            .is_none_or(|b| b == f.error_state_indicator)
        && (f.data.len() == want.len() || (rule.allow_extra_data && f.data.len() > want.len()))
        && want
            .iter()
            .zip(&mask)
            .zip(&f.data)
            .all(|((w, m), g)| (w & m) == (g & m))
}

/// How one CAN case ended.
#[derive(Debug, PartialEq, Eq)]
pub enum CanOutcome {
    Passed {
        response: Option<CanFrame>,
    },
    /// No frame matching `expect_response` within the time; the frames seen instead.
    NoResponse {
        seen: Vec<CanFrame>,
    },
    Transport(String),
    Cancelled,
}

/// Sends `frame`; with a rule, waits up to `within` for a matching frame.
pub fn run_case(
    port: &mut dyn CanPort,
    frame: &CanFrame,
    rule: Option<&CanFrameRule>,
    within: Duration,
    cancel: &CancelToken,
) -> CanOutcome {
    if let Err(e) = port.send(frame) {
        return CanOutcome::Transport(e);
    }
    let Some(rule) = rule else {
        return CanOutcome::Passed { response: None };
    };
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    loop {
        if cancel.is_cancelled() {
            return CanOutcome::Cancelled;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return CanOutcome::NoResponse { seen };
        }
        match port.recv(left, cancel) {
            Ok(Some(f)) if matches(rule, &f) => return CanOutcome::Passed { response: Some(f) },
            Ok(Some(f)) => {
                if seen.len() < 8 {
                    seen.push(f);
                }
            }
            Ok(None) => {}
            Err(e) => return CanOutcome::Transport(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// A bus with one node that answers every frame with id+1 and the data inverted,
    /// except frames whose first byte is 0xEE (its bug: it goes quiet).
    struct Bus {
        rx: VecDeque<CanFrame>,
        broken: bool,
    }

    impl CanPort for Bus {
        fn send(&mut self, f: &CanFrame) -> Result<(), String> {
            if self.broken {
                return Err("bus-off".into());
            }
            self.rx.push_back(CanFrame {
                id: 0x7A0,
                data: vec![0],
                ..f.clone()
            });
            if f.data.first() != Some(&0xEE) {
                self.rx.push_back(CanFrame {
                    id: f.id + 1,
                    data: f.data.iter().map(|b| !b).collect(),
                    ..f.clone()
                });
            }
            Ok(())
        }

        fn recv(&mut self, _: Duration, _: &CancelToken) -> Result<Option<CanFrame>, String> {
            Ok(self.rx.pop_front())
        }
    }

    fn frame(id: u32, data: &[u8]) -> CanFrame {
        CanFrame {
            id,
            extended: false,
            fd: false,
            bitrate_switch: false,
            error_state_indicator: false,
            data: data.to_vec(),
        }
    }

    fn rule(v: serde_json::Value) -> CanFrameRule {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn response_oracle_finds_the_answer_or_reports_what_came() {
        let c = CancelToken::new();
        let r = rule(
            serde_json::json!({"id": 0x101, "id_mask": 0x700, "data": "F0", "data_mask": "F0", "allow_extra_data": true}),
        );
        let mut bus = Bus {
            rx: VecDeque::new(),
            broken: false,
        };
        let ok = run_case(
            &mut bus,
            &frame(0x100, &[0x0F, 1]),
            Some(&r),
            Duration::from_millis(20),
            &c,
        );
        assert_eq!(
            ok,
            CanOutcome::Passed {
                response: Some(frame(0x101, &[0xF0, 0xFE]))
            }
        );
        let miss = run_case(
            &mut bus,
            &frame(0x100, &[0xEE]),
            Some(&r),
            Duration::from_millis(20),
            &c,
        );
        assert_eq!(
            miss,
            CanOutcome::NoResponse {
                seen: vec![frame(0x7A0, &[0])]
            }
        );
        bus.broken = true;
        let t = run_case(&mut bus, &frame(1, &[]), None, Duration::ZERO, &c);
        assert_eq!(t, CanOutcome::Transport("bus-off".into()));
    }

    #[test]
    fn rule_flags_and_lengths() {
        let exact = rule(serde_json::json!({"id": 0x10, "data": "01 02"}));
        assert!(matches(&exact, &frame(0x10, &[1, 2])));
        assert!(!matches(&exact, &frame(0x10, &[1, 2, 3])));
        assert!(!matches(&exact, &frame(0x11, &[1, 2])));
        let fd = rule(serde_json::json!({"id": 0x10, "fd": true, "bitrate_switch": true}));
        let mut f = frame(0x10, &[]);
        assert!(!matches(&fd, &f));
        f.fd = true;
        assert!(!matches(&fd, &f));
        f.bitrate_switch = true;
        assert!(matches(&fd, &f));
    }
}

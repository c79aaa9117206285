//! send_can and expect_can, on any CAN transport (`can` SocketCAN interface or `slcan`
//! adapter) through [`hilt_hw::can::CanLink`].
//!
//! `expect_can` sees the frames received since the step before it began (each step start
//! marks every CAN link, [`hilt_hw::can::CanLink::mark`]): the answer to a request sent by
//! the previous step — `send_can`, or a `send_uart` that makes the device talk — is never
//! lost between the two steps, and older traffic is never taken for it. Every frame sent and received goes to the transport log
//! (`SEND`/`RECV`, BenchCI's line format), with what the link noticed (unreadable lines,
//! refusals). Failures:
//! - no matching frame, but other frames arrived: `CAN_EXPECTATION_FAILED`, source
//!   firmware, with the rule, the count and the last frame seen (the test fails);
//! - nothing at all arrived: `CAN_EXPECTATION_FAILED`, source bench infrastructure (the
//!   device is not on the bus, as for a silent UART), or `CAN_FAILED` when the adapter
//!   reports the bus in an error state;
//! - the adapter or socket failing, refusing a frame, or a bus error on send: `CAN_FAILED`,
//!   bench infrastructure, and the run stops ([`crate::classify::can_failure`]).

use std::time::Instant;

use hilt_hw::can::{CanError, Frame, hex_bytes};
use hilt_model::run::{Category, Failure, Source, checks};
use hilt_model::suite::{CanFrameRule, ExpectCan, SendCan};
use hilt_model::validate::parse_hex_bytes;

use super::{Exec, StepError, StepResult};
use crate::classify::can_failure;
use crate::data;
use crate::plan::Resolved;
use crate::session::CanRes;

fn py(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

/// A frame rule, resolved: what `expect_can` matches received frames against.
struct Rule {
    id: u32,
    id_mask: Option<u32>,
    extended: bool,
    fd: bool,
    data: Vec<u8>,
    data_mask: Option<Vec<u8>>,
    allow_extra_data: bool,
    brs: Option<bool>,
    esi: Option<bool>,
}

impl Rule {
    fn of(r: &CanFrameRule) -> Result<Rule, String> {
        Ok(Rule {
            id: r.id,
            id_mask: r.id_mask,
            extended: r.extended,
            fd: r.fd,
            data: parse_hex_bytes(&r.data)?,
            data_mask: r.data_mask.as_deref().map(parse_hex_bytes).transpose()?,
            allow_extra_data: r.allow_extra_data,
            brs: r.bitrate_switch,
            esi: r.error_state_indicator,
        })
    }

    fn matches(&self, f: &Frame) -> bool {
        let id_ok = match self.id_mask {
            None => f.id == self.id,
            Some(m) => f.id & m == self.id & m,
        };
        let data_ok = {
            let actual = if self.allow_extra_data {
                f.data.get(..self.data.len())
            } else if f.data.len() == self.data.len() {
                Some(&f.data[..])
            } else {
                None
            };
            match (actual, &self.data_mask) {
                (None, _) => false,
                (Some(a), None) => a == self.data.as_slice(),
                (Some(a), Some(m)) => a
                    .iter()
                    .zip(&self.data)
                    .zip(m)
                    .all(|((a, e), m)| a & m == e & m),
            }
        };
        !f.remote
            && id_ok
            && f.extended == self.extended
            && f.fd == self.fd
            && self.brs.is_none_or(|b| b == f.brs)
            && self.esi.is_none_or(|e| e == f.esi)
            && data_ok
    }

    /// BenchCI's rendering of the rule.
    fn describe(&self) -> String {
        let mut s = format!("id=0x{:X}", self.id);
        if let Some(m) = self.id_mask {
            s.push_str(&format!(" id_mask=0x{m:X}"));
        }
        s.push_str(&format!(
            " extended={} fd={}",
            py(self.extended),
            py(self.fd)
        ));
        s.push_str(&match self.brs {
            Some(b) => format!(" brs={}", py(b)),
            None => " brs=any".into(),
        });
        s.push_str(&match self.esi {
            Some(b) => format!(" esi={}", py(b)),
            None => " esi=any".into(),
        });
        s.push_str(&format!(" data={}", hex_bytes(&self.data)));
        if let Some(m) = &self.data_mask {
            s.push_str(&format!(" data_mask={}", hex_bytes(m)));
        }
        s.push_str(&format!(" allow_extra_data={}", py(self.allow_extra_data)));
        s
    }
}

fn log_notes(c: &mut CanRes) {
    for n in c.link.take_notes() {
        c.log.line(&n);
    }
}

impl Exec<'_> {
    fn can(&mut self, node: &str, transport: &str) -> Result<&mut CanRes, StepError> {
        self.session
            .can
            .get_mut(&(node.to_string(), transport.to_string()))
            .ok_or_else(|| {
                StepError::Run(Failure::new(
                    Category::ConfigError,
                    format!("CAN transport {node}.{transport} is not open"),
                ))
            })
    }

    pub(super) fn send_can(&mut self, s: &SendCan) -> StepResult {
        let cancel = self.cancel.clone();
        let f = &s.frame;
        let frame = Frame {
            id: f.id,
            extended: f.extended,
            fd: f.fd,
            brs: f.bitrate_switch,
            esi: f.error_state_indicator,
            data: parse_hex_bytes(&f.data)
                .map_err(|e| StepError::Run(Failure::new(Category::ConfigError, e)))?,
            ..Frame::default()
        };
        let what = format!("send_can id=0x{:X} on {}.{}", f.id, s.node, s.transport);
        let c = self.can(&s.node, &s.transport)?;
        let fail = |c: &mut CanRes, e: &CanError| {
            log_notes(c);
            c.log.line(&format!("SEND_FAILED {e}"));
            c.log.flush();
            match can_failure(e, &what) {
                Some(x) => StepError::Run(
                    x.with_artifact("transport_log", c.log_path.clone())
                        .with_detail("node", s.node.clone())
                        .with_detail("transport", s.transport.clone())
                        .with_detail("frame", frame.to_string()),
                ),
                None => StepError::Cancelled,
            }
        };
        if let Err(e) = c.link.send(&frame, &cancel) {
            return Err(fail(c, &e));
        }
        log_notes(c);
        c.log.line(&format!(
            "SEND id=0x{:X} extended={} fd={} brs={} esi={} dlc={} data={}",
            frame.id,
            py(frame.extended),
            py(frame.fd),
            py(frame.brs),
            py(frame.esi),
            frame.data.len(),
            frame.data_hex()
        ));
        Ok(data!(
            "node_name" => s.node,
            "transport_name" => s.transport,
            "frame_id" => f.id,
            "extended" => f.extended,
            "fd" => f.fd,
            "data" => frame.data_hex()
        ))
    }

    pub(super) fn expect_can(&mut self, s: &ExpectCan, r: &Resolved) -> StepResult {
        let cancel = self.cancel.clone();
        let within = r.within;
        let rule = Rule::of(&s.frame)
            .map_err(|e| StepError::Run(Failure::new(Category::ConfigError, e)))?;
        let rule_text = rule.describe();
        let what = format!("expect_can on {}.{}", s.node, s.transport);
        let c = self.can(&s.node, &s.transport)?;
        let fail_io = |c: &mut CanRes, e: &CanError| {
            log_notes(c);
            c.log.line(&format!("EXPECT_FAILED {e}"));
            c.log.flush();
            match can_failure(e, &what) {
                Some(x) => StepError::Run(
                    x.with_artifact("transport_log", c.log_path.clone())
                        .with_detail("node", s.node.clone())
                        .with_detail("transport", s.transport.clone())
                        .with_detail("match_rule", rule_text.clone()),
                ),
                None => StepError::Cancelled,
            }
        };
        let deadline = Instant::now() + within;
        let mut received = 0u64;
        let mut last_seen: Option<Frame> = None;
        loop {
            match c.link.recv(deadline, &cancel) {
                Ok(Some(f)) => {
                    received += 1;
                    c.log.line(&format!("RECV {f}"));
                    if rule.matches(&f) {
                        log_notes(c);
                        c.log.line(&format!(
                            "EXPECT_OK {rule_text} within_ms={} received_count={received}",
                            within.as_millis()
                        ));
                        return Ok(data!(
                            "node_name" => s.node,
                            "transport_name" => s.transport,
                            "frame" => f.to_string(),
                            "received_count" => received
                        ));
                    }
                    last_seen = Some(f);
                }
                Ok(None) => break,
                Err(e) => return Err(fail_io(c, &e)),
            }
        }
        log_notes(c);
        c.log.line(&format!(
            "EXPECT_TIMEOUT {rule_text} within_ms={} received_count={received}",
            within.as_millis()
        ));
        c.log.flush();
        let mut message = format!(
            "CAN expectation timed out on {}.{}: {rule_text}; received_count={received}",
            s.node, s.transport
        );
        if let Some(f) = &last_seen {
            message.push_str(&format!("; last seen: {f}"));
        }
        let log_path = c.log_path.clone();
        let base = |category: Category, message: String| {
            Failure::new(category, message)
                .with_artifact("transport_log", log_path.clone())
                .with_detail("node", s.node.clone())
                .with_detail("transport", s.transport.clone())
                .with_detail("match_rule", rule_text.clone())
                .with_detail("within_ms", within.as_millis() as u64)
                .with_detail("received_count", received)
        };
        let mut f = base(Category::CanExpectationFailed, message.clone());
        if let Some(seen) = &last_seen {
            f = f
                .with_detail("last_seen", seen.to_string())
                .with_explanation("Frames arrived on the bus, but none matched the rule within the time limit: most likely the firmware sent a different id, length or payload than the test expects.")
                .with_suggestions([checks::CAN_FRAME_RULE]);
            return Err(StepError::Test(f));
        }
        // Silence: the bus itself may be in an error state.
        match c.link.bus_state(&cancel) {
            Ok(Some(state)) => {
                f = base(
                    Category::CanFailed,
                    format!("{message}; the bus reports {state}"),
                )
                .with_source(Source::BenchInfrastructure)
                    .with_detail("bus_state", state)
                    .with_explanation("Nothing was received and the CAN adapter reports the bus in an error state: check the bit rate of every node, the termination and the wiring.")
                    .with_suggestions([checks::CAN_INTERFACE, checks::CAN_TERMINATION]);
                Err(StepError::Run(f))
            }
            Ok(None) => {
                f = f
                    .with_source(Source::BenchInfrastructure)
                    .with_explanation("Nothing at all was received on this CAN transport during the step, so the device is probably not powered, not on the bus, or at another bit rate.")
                    .with_suggestions([checks::CAN_NODE_ON_BUS, checks::CAN_INTERFACE]);
                Err(StepError::Test(f))
            }
            Err(CanError::Cancelled) => Err(StepError::Cancelled),
            Err(e) => Err(fail_io(c, &e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(id: u32, data: &str) -> CanFrameRule {
        CanFrameRule {
            id,
            extended: false,
            fd: false,
            data: data.into(),
            id_mask: None,
            data_mask: None,
            allow_extra_data: false,
            bitrate_switch: None,
            error_state_indicator: None,
        }
    }

    #[test]
    fn rules_match_like_the_spec() {
        let f = Frame::classic(0x7E8, false, &[0x62, 0xF1, 0x90]);
        assert!(Rule::of(&rule(0x7E8, "62 F1 90")).unwrap().matches(&f));
        assert!(!Rule::of(&rule(0x7E8, "62 F1")).unwrap().matches(&f));
        let mut r = rule(0x7E8, "62 F1");
        r.allow_extra_data = true;
        assert!(Rule::of(&r).unwrap().matches(&f));
        let mut r = rule(0x700, "60 00 90");
        r.id_mask = Some(0x700);
        r.data_mask = Some("F0 00 FF".into());
        assert!(Rule::of(&r).unwrap().matches(&f));
        let mut r = rule(0x7E8, "62 F1 90");
        r.extended = true;
        assert!(!Rule::of(&r).unwrap().matches(&f));
        let mut r = rule(0x7E8, "62 F1 90");
        r.fd = true;
        r.bitrate_switch = Some(true);
        let mut fd = f.clone();
        fd.fd = true;
        assert!(!Rule::of(&r).unwrap().matches(&fd));
        fd.brs = true;
        assert!(Rule::of(&r).unwrap().matches(&fd));
        assert_eq!(
            Rule::of(&rule(0x7E8, "62")).unwrap().describe(),
            "id=0x7E8 extended=False fd=False brs=any esi=any data=62 allow_extra_data=False"
        );
    }
}

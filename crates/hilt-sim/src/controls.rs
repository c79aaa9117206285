//! The wires around the DUT, operated in-process ([`Controls`]) or over the control
//! socket ([`Controls::request`] implements the line protocol documented in
//! `hilt_hw::sim_link`).

use std::sync::Arc;

use hilt_hw::sim_link::{channel_is_bench_output, channel_name};

use crate::error::SimError;
use crate::fault::Fault;
use crate::shared::Shared;
use crate::state::DutState;

/// Power switch, GPIO wiring and fault injection of one running sim DUT. Cheap to clone;
/// all clones operate the same DUT.
#[derive(Debug, Clone)]
pub struct Controls {
    shared: Arc<Shared>,
}

const HELP: &str = "requests: ping | power on | power off | power? | gpio set <ch> <0|1> | \
                    gpio get <ch> | fault hang|silent|noise <p>|clear | state? \
                    (channels: 0=RESET 1=READY 2=LED 3=BUTTON)";

impl Controls {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Controls { shared }
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    /// Switches the power outlet; on boots the DUT with cause `power-on`.
    pub fn power_set(&self, on: bool) {
        self.shared.update(|fw, now| fw.set_power(now, on));
    }

    pub fn power_get(&self) -> bool {
        self.shared.lock().power()
    }

    /// Drives a bench output channel (RESET or BUTTON).
    pub fn gpio_set(&self, channel: u32, value: bool) -> Result<(), SimError> {
        check_channel(channel)?;
        if !channel_is_bench_output(channel) {
            return Err(SimError::Rejected(format!(
                "channel {channel} ({}) is a DUT output; it can only be read",
                channel_name(channel).unwrap_or("?")
            )));
        }
        self.shared.update(|fw, now| match channel {
            hilt_hw::sim_link::CHANNEL_RESET => fw.set_reset(now, value),
            _ => fw.set_button(now, value),
        });
        Ok(())
    }

    /// Reads any channel.
    pub fn gpio_get(&self, channel: u32) -> Result<bool, SimError> {
        check_channel(channel)?;
        let value = self.shared.update(|fw, now| {
            fw.advance(now);
            fw.gpio(channel)
        });
        Ok(value.unwrap_or(false))
    }

    /// Injects a fault: `hang`, `silent`, `noise <p>` or `clear`.
    pub fn fault(&self, spec: &str) -> Result<(), SimError> {
        let fault = Fault::parse(spec).map_err(SimError::Rejected)?;
        self.shared.update(|fw, now| fw.fault(now, fault));
        Ok(())
    }

    pub fn state(&self) -> DutState {
        self.shared.update(|fw, now| {
            fw.advance(now);
            fw.state()
        })
    }

    /// Answers one control-protocol request line with one reply line (no newline).
    /// Never panics; bad input gives `error: <reason>`.
    pub fn request(&self, line: &str) -> String {
        let words: Vec<&str> = line.split_whitespace().collect();
        let result: Result<String, SimError> = match words.as_slice() {
            [] => Err(SimError::Rejected("empty request; try 'help'".into())),
            ["ping"] => Ok("pong".into()),
            ["help"] => Ok(HELP.into()),
            ["power", "on"] => {
                self.power_set(true);
                Ok("ok".into())
            }
            ["power", "off"] => {
                self.power_set(false);
                Ok("ok".into())
            }
            ["power?"] | ["power", "?"] => Ok(on_off(self.power_get()).into()),
            ["gpio", "set", ch, value] => parse_channel(ch).and_then(|ch| {
                let value = parse_level(value)?;
                self.gpio_set(ch, value).map(|()| "ok".into())
            }),
            ["gpio", "get", ch] => parse_channel(ch)
                .and_then(|ch| self.gpio_get(ch))
                .map(|v| u8::from(v).to_string()),
            ["fault", ..] => {
                let spec = line.trim_start().strip_prefix("fault").unwrap_or("");
                self.fault(spec).map(|()| "ok".into())
            }
            ["state?"] | ["state"] => Ok(self.state().to_json()),
            ["power", ..] => Err(SimError::Rejected("usage: power on|off|?".into())),
            ["gpio", ..] => Err(SimError::Rejected(
                "usage: gpio set <channel> <0|1> | gpio get <channel>".into(),
            )),
            _ => Err(SimError::Rejected(format!(
                "unknown request '{}'; try 'help'",
                printable(line.trim())
            ))),
        };
        match result {
            Ok(reply) => reply,
            Err(e) => format!("error: {}", printable(&e.to_string())),
        }
    }
}

fn on_off(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}

fn check_channel(channel: u32) -> Result<(), SimError> {
    match channel_name(channel) {
        Some(_) => Ok(()),
        None => Err(SimError::Rejected(format!(
            "no gpio channel {channel}; channels are 0=RESET 1=READY 2=LED 3=BUTTON"
        ))),
    }
}

fn parse_channel(text: &str) -> Result<u32, SimError> {
    text.parse().map_err(|_| {
        SimError::Rejected(format!(
            "invalid gpio channel '{}'; channels are 0=RESET 1=READY 2=LED 3=BUTTON",
            printable(text)
        ))
    })
}

fn parse_level(text: &str) -> Result<bool, SimError> {
    match text {
        "1" | "on" | "true" | "high" => Ok(true),
        "0" | "off" | "false" | "low" => Ok(false),
        _ => Err(SimError::Rejected(format!(
            "invalid gpio level '{}'; use 0 or 1",
            printable(text)
        ))),
    }
}

/// Keeps replies on one line whatever the client sent.
fn printable(text: &str) -> String {
    let mut s: String = text
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if s.len() > 200 {
        let mut cut = 200;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DutConfig;
    use crate::firmware::Firmware;
    use std::time::{Duration, Instant};

    /// Controls over a firmware whose clock is 1 s past boot.
    fn controls() -> Controls {
        let fw = Firmware::new(&DutConfig::default());
        let epoch = Instant::now() - Duration::from_secs(1);
        Controls::new(Arc::new(Shared::new(fw, epoch).unwrap()))
    }

    #[test]
    fn protocol_requests() {
        let c = controls();
        assert_eq!(c.request("ping"), "pong");
        assert!(c.request("help").starts_with("requests:"));
        assert_eq!(c.request("power?"), "on");
        assert_eq!(c.request("gpio get 1"), "1");
        assert_eq!(c.request("power off"), "ok");
        assert_eq!(c.request("power?"), "off");
        assert_eq!(c.request("gpio get 1"), "0");
        assert_eq!(c.request("power on"), "ok");
        assert_eq!(c.request("gpio set 3 1"), "ok");
        assert_eq!(c.request("gpio get 3"), "1");
        assert_eq!(c.request("gpio set 0 1"), "ok");
        assert_eq!(c.request("gpio get 0"), "1");
        assert_eq!(c.request("fault noise 0.3"), "ok");
        assert_eq!(c.request("fault silent"), "ok");
        let state: serde_json::Value = serde_json::from_str(&c.request("state?")).unwrap();
        assert_eq!(state["powered"], true);
        assert_eq!(state["reset_held"], true);
        assert_eq!(state["silent"], true);
        assert_eq!(state["noise"], 0.3);
        assert_eq!(c.request("fault clear"), "ok");
        assert_eq!(c.state().noise, 0.0);
    }

    #[test]
    fn bad_requests_are_errors_on_one_line() {
        let c = controls();
        for bad in [
            "",
            "   ",
            "power",
            "power maybe",
            "gpio",
            "gpio set 1 1",
            "gpio set 2 0",
            "gpio set 9 1",
            "gpio set x 1",
            "gpio set 0 7",
            "gpio get -1",
            "gpio get 99999999999",
            "fault",
            "fault melt",
            "fault noise 3",
            "launch \u{1b}[2J",
            &"z".repeat(5000),
        ] {
            let reply = c.request(bad);
            assert!(reply.starts_with("error: "), "{bad:?} -> {reply}");
            assert!(!reply.contains(['\n', '\r']), "{reply}");
            assert!(reply.len() < 400, "{}", reply.len());
        }
        assert!(c.request("gpio set 1 1").contains("READY"));
        assert!(c.request("bogus").contains("unknown request 'bogus'"));
    }
}

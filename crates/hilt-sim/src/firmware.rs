//! The simulated firmware as a pure state machine: bytes and wire events in, time-stamped
//! output bytes out. No I/O and no clock of its own: every call takes `now`, the time
//! since the simulation started, so tests drive it with a virtual clock.
//!
//! Life cycle: unpowered or held in reset → `Off` (silent, input ignored). Power-on, reset
//! release, `reboot` or a watchdog reset → `Booting` for `boot_ms` → banner, READY high →
//! `Running` (commands, see `Firmware::execute` in `commands.rs`). `hang` keeps it `Running` but deaf;
//! `crash` prints a HardFault and the watchdog reboots it after `watchdog_ms`.

use std::time::Duration;

use hilt_hw::sim_link::{CHANNEL_BUTTON, CHANNEL_LED, CHANNEL_READY, CHANNEL_RESET};

use crate::config::DutConfig;
use crate::fault::Fault;
use crate::output::OutputQueue;
use crate::state::{DutState, ResetCause};

pub const FIRMWARE_VERSION: &str = "1.4.2";
/// Longest command line; longer lines are answered with an error.
pub const MAX_LINE: usize = 1024;
pub const REGISTER_COUNT: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Phase {
    Off,
    Booting {
        done_at: Duration,
        cause: ResetCause,
    },
    Running {
        since: Duration,
    },
    Crashed {
        reset_at: Duration,
    },
}

#[derive(Debug)]
pub struct Firmware {
    boot: Duration,
    watchdog: Duration,
    base_noise: f64,
    pub(crate) id_json: String,
    powered: bool,
    reset_held: bool,
    /// Power came on while reset was held: the next boot reports `power-on`.
    power_on_pending: bool,
    pub(crate) phase: Phase,
    pub(crate) hung: bool,
    pub(crate) led: bool,
    pub(crate) button: bool,
    pub(crate) regs: [u16; REGISTER_COUNT],
    boots: u64,
    last_cause: Option<ResetCause>,
    line: Vec<u8>,
    line_too_long: bool,
    crash_on_line_over: Option<usize>,
    pub(crate) out: OutputQueue,
}

impl Firmware {
    /// The firmware at time zero; when `config.powered` it starts booting at once.
    pub fn new(config: &DutConfig) -> Self {
        let mut fw = Firmware {
            boot: Duration::from_millis(config.boot_ms),
            watchdog: Duration::from_millis(config.watchdog_ms),
            base_noise: config.noise,
            id_json: config.identity.to_json(),
            powered: false,
            reset_held: false,
            power_on_pending: false,
            phase: Phase::Off,
            hung: false,
            led: false,
            button: false,
            regs: [0; REGISTER_COUNT],
            boots: 0,
            last_cause: None,
            line: Vec::new(),
            line_too_long: false,
            crash_on_line_over: config.crash_on_line_over,
            out: OutputQueue::new(
                config.latency_ms,
                config.jitter_ms,
                config.noise,
                config.seed,
            ),
        };
        if config.powered {
            fw.set_power(Duration::ZERO, true);
        }
        fw
    }

    /// Runs timers (boot completion, watchdog) up to `now`.
    pub fn advance(&mut self, now: Duration) {
        loop {
            match self.phase {
                Phase::Booting { done_at, cause } if done_at <= now => {
                    self.finish_boot(done_at, cause)
                }
                Phase::Crashed { reset_at } if reset_at <= now => {
                    self.start_boot(reset_at, ResetCause::Watchdog)
                }
                _ => break,
            }
        }
    }

    /// Bytes received on the DUT's UART at `now`.
    pub fn feed(&mut self, now: Duration, input: &[u8]) {
        self.advance(now);
        let mut rest = input;
        while self.listening() && !rest.is_empty() {
            match rest.iter().position(|&b| b == b'\n') {
                Some(pos) => {
                    self.push_bytes(&rest[..pos]);
                    rest = &rest[pos + 1..];
                    self.end_of_line(now);
                }
                None => {
                    self.push_bytes(rest);
                    rest = &[];
                }
            }
        }
    }

    fn push_bytes(&mut self, bytes: &[u8]) {
        if self.line.len() + bytes.len() > MAX_LINE {
            self.line_too_long = true;
        } else {
            self.line.extend_from_slice(bytes);
        }
    }

    fn end_of_line(&mut self, now: Duration) {
        let mut line = std::mem::take(&mut self.line);
        let too_long = std::mem::take(&mut self.line_too_long);
        let length = if too_long { MAX_LINE + 1 } else { line.len() };
        if self.crash_on_line_over.is_some_and(|max| length > max) {
            // The planted bug: the line overflowed the parser's buffer.
            let due = self.out.reply_due(now);
            self.out
                .line(due, "HardFault at 0x08002F1C (line parser stack overflow)");
            self.crash(now);
            return;
        }
        if too_long {
            let due = self.out.reply_due(now);
            self.out
                .line(due, &format!("error: line too long (max {MAX_LINE} bytes)"));
        } else {
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let text = String::from_utf8_lossy(&line);
            self.execute(now, &text);
        }
        line.clear();
        if self.line.is_empty() {
            self.line = line; // keep the allocation
        }
    }

    /// Whether received bytes reach the command interpreter.
    fn listening(&self) -> bool {
        matches!(self.phase, Phase::Running { .. }) && !self.hung
    }

    pub(crate) fn start_boot(&mut self, at: Duration, cause: ResetCause) {
        self.phase = Phase::Booting {
            done_at: at + self.boot,
            cause,
        };
        self.enter_reset();
    }

    pub(crate) fn crash(&mut self, at: Duration) {
        self.phase = Phase::Crashed {
            reset_at: at + self.watchdog,
        };
        self.line.clear();
    }

    fn enter_reset(&mut self) {
        self.hung = false;
        self.led = false;
        self.line.clear();
        self.line_too_long = false;
    }

    fn finish_boot(&mut self, at: Duration, cause: ResetCause) {
        self.regs = [0; REGISTER_COUNT];
        self.boots += 1;
        self.last_cause = Some(cause);
        self.phase = Phase::Running { since: at };
        let cause_line = format!("reset cause: {}", cause.as_str());
        let banner = format!("HILT-SIM DUT v{FIRMWARE_VERSION}");
        self.out.lines(at, [banner.as_str(), &cause_line, "ready"]);
    }

    /// Cuts the DUT off (power lost or reset asserted): unsent output is lost.
    fn go_dead(&mut self) {
        self.phase = Phase::Off;
        self.enter_reset();
        self.out.discard();
    }

    pub fn set_power(&mut self, now: Duration, on: bool) {
        self.advance(now);
        if on == self.powered {
            return;
        }
        self.powered = on;
        if !on {
            self.power_on_pending = false;
            self.go_dead();
        } else if self.reset_held {
            self.power_on_pending = true;
        } else {
            self.start_boot(now, ResetCause::PowerOn);
        }
    }

    pub fn power(&self) -> bool {
        self.powered
    }

    /// Drives the RESET line; `true` holds the DUT in reset.
    pub fn set_reset(&mut self, now: Duration, held: bool) {
        self.advance(now);
        if held == self.reset_held {
            return;
        }
        self.reset_held = held;
        if !self.powered {
            return;
        }
        if held {
            self.go_dead();
        } else {
            let cause = if std::mem::take(&mut self.power_on_pending) {
                ResetCause::PowerOn
            } else {
                ResetCause::ResetPin
            };
            self.start_boot(now, cause);
        }
    }

    pub fn set_button(&mut self, now: Duration, pressed: bool) {
        self.advance(now);
        self.button = pressed;
    }

    /// READY: powered, out of reset and booted (a hung firmware keeps it high).
    pub fn ready(&self) -> bool {
        self.powered && !self.reset_held && matches!(self.phase, Phase::Running { .. })
    }

    /// Level of a wiring channel, `None` for unknown channels.
    pub fn gpio(&self, channel: u32) -> Option<bool> {
        match channel {
            CHANNEL_RESET => Some(self.reset_held),
            CHANNEL_READY => Some(self.ready()),
            CHANNEL_LED => Some(self.led),
            CHANNEL_BUTTON => Some(self.button),
            _ => None,
        }
    }

    pub fn fault(&mut self, now: Duration, fault: Fault) {
        self.advance(now);
        match fault {
            Fault::Hang => {
                if matches!(self.phase, Phase::Running { .. }) {
                    self.hung = true;
                    self.line.clear();
                }
            }
            Fault::Silent => self.out.silent = true,
            Fault::Noise(p) => self.out.noise = p,
            Fault::Clear => {
                self.hung = false;
                self.out.silent = false;
                self.out.noise = self.base_noise;
            }
        }
    }

    /// Moves output due at `now` into `out` (running timers first).
    pub fn take_output(&mut self, now: Duration, out: &mut Vec<u8>) {
        self.advance(now);
        self.out.take_due(now, out);
    }

    /// The next instant at which something happens without new input.
    pub fn next_deadline(&self) -> Option<Duration> {
        let timer = match self.phase {
            Phase::Booting { done_at, .. } => Some(done_at),
            Phase::Crashed { reset_at } => Some(reset_at),
            _ => None,
        };
        match (timer, self.out.next_due()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn uptime(&self, now: Duration) -> Option<Duration> {
        match self.phase {
            Phase::Running { since } => Some(now.saturating_sub(since)),
            _ => None,
        }
    }

    pub fn state(&self) -> DutState {
        DutState {
            powered: self.powered,
            reset_held: self.reset_held,
            booted: matches!(self.phase, Phase::Running { .. }) && self.powered,
            hung: self.hung,
            led: self.led,
            ready: self.ready(),
            button: self.button,
            boots: self.boots,
            silent: self.out.silent,
            noise: self.out.noise,
            last_reset_cause: self.last_cause,
        }
    }
}

#[cfg(test)]
#[path = "firmware_tests.rs"]
mod tests;

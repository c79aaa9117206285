//! What the firmware reports about itself: reset causes and state snapshots.

/// Why the firmware (re)booted, as printed in the banner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetCause {
    PowerOn,
    ResetPin,
    Soft,
    Watchdog,
}

impl ResetCause {
    pub fn as_str(self) -> &'static str {
        match self {
            ResetCause::PowerOn => "power-on",
            ResetCause::ResetPin => "reset-pin",
            ResetCause::Soft => "soft",
            ResetCause::Watchdog => "watchdog",
        }
    }
}

/// A snapshot for `state?` and tests.
#[derive(Debug, Clone, PartialEq)]
pub struct DutState {
    pub powered: bool,
    pub reset_held: bool,
    pub booted: bool,
    pub hung: bool,
    pub led: bool,
    pub ready: bool,
    pub button: bool,
    pub boots: u64,
    pub silent: bool,
    pub noise: f64,
    pub last_reset_cause: Option<ResetCause>,
}

impl DutState {
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "powered": self.powered,
            "booted": self.booted,
            "hung": self.hung,
            "led": self.led,
            "ready": self.ready,
            "boots": self.boots,
            "reset_held": self.reset_held,
            "button": self.button,
            "silent": self.silent,
            "noise": self.noise,
            "last_reset_cause": self.last_reset_cause.map(ResetCause::as_str),
        })
        .to_string()
    }
}

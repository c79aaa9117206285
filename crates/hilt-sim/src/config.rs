//! Configuration of a simulated DUT: where it appears and how hardware-like it behaves.

use std::path::PathBuf;

use crate::error::SimError;

/// What the DUT reports in its `BENCHCI_ID?` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub hardware_revision: String,
    pub serial_number: String,
    pub asset_id: Option<String>,
    pub fixture_slot: Option<String>,
}

impl Default for Identity {
    fn default() -> Self {
        Identity {
            hardware_revision: "sim-a".to_string(),
            serial_number: "SIM-0001".to_string(),
            asset_id: None,
            fixture_slot: None,
        }
    }
}

impl Identity {
    /// The identity as one-line JSON, null fields omitted, in BenchCI's field order.
    pub fn to_json(&self) -> String {
        let mut map = serde_json::Map::new();
        map.insert("schema_version".into(), "1".into());
        map.insert(
            "hardware_revision".into(),
            self.hardware_revision.clone().into(),
        );
        map.insert("serial_number".into(), self.serial_number.clone().into());
        if let Some(asset) = &self.asset_id {
            map.insert("asset_id".into(), asset.clone().into());
        }
        if let Some(slot) = &self.fixture_slot {
            map.insert("fixture_slot".into(), slot.clone().into());
        }
        serde_json::Value::Object(map).to_string()
    }
}

/// Everything [`crate::SimDut::start`] needs. Build with struct-update syntax:
/// `DutConfig { latency_ms: 5, ..DutConfig::default() }`.
#[derive(Debug, Clone, PartialEq)]
pub struct DutConfig {
    /// A stable symlink to the pty slave (an existing symlink there is replaced; a regular
    /// file is never replaced). Removed when the sim stops.
    pub link: Option<PathBuf>,
    /// Path of the control socket (power, GPIO, faults). A stale socket is replaced.
    pub control: Option<PathBuf>,
    /// Time from power-on / reset release / reboot until the banner and READY.
    pub boot_ms: u64,
    /// Delay before each reply.
    pub latency_ms: u64,
    /// Uniform extra delay `0..=jitter_ms` per reply.
    pub jitter_ms: u64,
    /// Probability (0..=1) that an output line gets one garbage byte inserted.
    pub noise: f64,
    /// Whether the power outlet is on at start.
    pub powered: bool,
    /// Delay from `crash` to the watchdog reset.
    pub watchdog_ms: u64,
    /// PRNG seed for jitter and noise; the same seed and inputs give the same output.
    pub seed: u64,
    pub identity: Identity,
    /// A planted bug for fuzzing: a command line longer than this many bytes overflows the
    /// parser's stack, the firmware prints a HardFault and the watchdog reboots it.
    pub crash_on_line_over: Option<usize>,
}

impl Default for DutConfig {
    fn default() -> Self {
        DutConfig {
            link: None,
            control: None,
            boot_ms: 30,
            latency_ms: 0,
            jitter_ms: 0,
            noise: 0.0,
            powered: true,
            watchdog_ms: 50,
            seed: 1,
            identity: Identity::default(),
            crash_on_line_over: None,
        }
    }
}

/// Upper bound for every millisecond setting (one hour); larger values are mistakes.
const MAX_MS: u64 = 3_600_000;

impl DutConfig {
    /// Checks ranges; [`crate::SimDut::start`] calls this.
    pub fn validate(&self) -> Result<(), SimError> {
        if !self.noise.is_finite() || !(0.0..=1.0).contains(&self.noise) {
            return Err(SimError::Config(format!(
                "noise must be a probability between 0 and 1, got {}",
                self.noise
            )));
        }
        for (name, value) in [
            ("boot_ms", self.boot_ms),
            ("latency_ms", self.latency_ms),
            ("jitter_ms", self.jitter_ms),
            ("watchdog_ms", self.watchdog_ms),
        ] {
            if value > MAX_MS {
                return Err(SimError::Config(format!(
                    "{name} must be at most {MAX_MS} ms, got {value}"
                )));
            }
        }
        let id = &self.identity;
        let fields = [
            Some(&id.hardware_revision),
            Some(&id.serial_number),
            id.asset_id.as_ref(),
            id.fixture_slot.as_ref(),
        ];
        if fields
            .into_iter()
            .flatten()
            .any(|f| f.contains(['\r', '\n']))
        {
            return Err(SimError::Config(
                "identity fields must not contain line breaks".to_string(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_json_omits_nulls() {
        let id = Identity::default();
        assert_eq!(
            id.to_json(),
            r#"{"schema_version":"1","hardware_revision":"sim-a","serial_number":"SIM-0001"}"#
        );
        let id = Identity {
            asset_id: Some("A-7".into()),
            fixture_slot: Some("slot-2".into()),
            ..Identity::default()
        };
        assert!(
            id.to_json()
                .ends_with(r#""asset_id":"A-7","fixture_slot":"slot-2"}"#)
        );
    }

    #[test]
    fn validate_rejects_bad_values() {
        assert!(DutConfig::default().validate().is_ok());
        let bad = DutConfig {
            noise: 1.5,
            ..DutConfig::default()
        };
        assert!(bad.validate().unwrap_err().to_string().contains("noise"));
        let bad = DutConfig {
            noise: f64::NAN,
            ..DutConfig::default()
        };
        assert!(bad.validate().is_err());
        let bad = DutConfig {
            latency_ms: MAX_MS + 1,
            ..DutConfig::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("latency_ms")
        );
    }
}

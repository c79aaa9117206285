//! Turning errors into failures, and outcomes into exit codes.

use hilt_hw::HwError;
use hilt_model::run::{Category, Failure, RunStatus, Source};

/// Exit codes of `hilt run`, one per outcome class. 0, 1, 2 and 130 are BenchCI's.
pub mod exit {
    pub const PASSED: i32 = 0;
    pub const TESTS_FAILED: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const CONFIG_ERROR: i32 = 3;
    pub const BENCH_ERROR: i32 = 4;
    pub const RUN_ERROR: i32 = 5;
    pub const INTERNAL: i32 = 70;
    pub const INTERRUPTED: i32 = 130;
}

/// The exit code for a finished run.
pub fn exit_code(status: RunStatus, failure: Option<&Failure>) -> i32 {
    match status {
        RunStatus::Passed => exit::PASSED,
        RunStatus::Failed => exit::TESTS_FAILED,
        RunStatus::Cancelled => exit::INTERRUPTED,
        RunStatus::Error => match failure.map(|f| f.source) {
            Some(Source::Configuration) => exit::CONFIG_ERROR,
            Some(Source::BenchInfrastructure) | Some(Source::AgentCloud) => exit::BENCH_ERROR,
            Some(Source::Firmware) | Some(Source::TestLogic) | Some(Source::Unknown) | None => {
                exit::RUN_ERROR
            }
        },
    }
}

/// A hardware error met while serving a step of `family` (uart, gpio, power, measurement).
pub fn hw_failure(err: &HwError, family: &str) -> Failure {
    let category = match (err, family) {
        (HwError::Cancelled, _) => Category::Cancelled,
        (HwError::Open { .. }, "uart") => Category::TransportOpenFailed,
        (HwError::Open { .. }, "gpio") => Category::GpioLineUnreachable,
        (HwError::Open { .. }, "power") => Category::PowerResourceUnavailable,
        (HwError::Open { .. }, "measurement") => Category::MeasurementResourceUnavailable,
        (HwError::Open { .. }, _) => Category::TransportOpenFailed,
        (HwError::Unsupported(_), "power") => Category::PowerReadbackUnavailable,
        (HwError::Io { .. } | HwError::Unsupported(_), "uart") => Category::UartFailed,
        (HwError::Io { .. } | HwError::Unsupported(_), "gpio") => Category::GpioLineUnreachable,
        (HwError::Io { .. }, "power") => Category::PowerControlFailed,
        (HwError::Io { .. } | HwError::Unsupported(_), "measurement") => {
            Category::MeasurementFailed
        }
        (HwError::Io { .. } | HwError::Unsupported(_), _) => Category::UnknownError,
    };
    Failure::new(category, err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_has_its_own_code() {
        let cfg = Failure::new(Category::ConfigError, "x");
        let bench = Failure::new(Category::ResourceLocked, "x");
        let fw = Failure::new(Category::MeasurementAssertionFailed, "x");
        assert_eq!(exit_code(RunStatus::Passed, None), 0);
        assert_eq!(exit_code(RunStatus::Failed, Some(&fw)), 1);
        assert_eq!(exit_code(RunStatus::Error, Some(&cfg)), 3);
        assert_eq!(exit_code(RunStatus::Error, Some(&bench)), 4);
        assert_eq!(exit_code(RunStatus::Error, Some(&fw)), 5);
        assert_eq!(exit_code(RunStatus::Cancelled, None), 130);
    }
}

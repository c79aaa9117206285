//! The fault-injection step family: `fault_inject_power_glitch`, `fault_inject_gpio_glitch`,
//! `fault_inject_uart_noise` (suite spec §5 "Controlled fault injection"). The bench's safety
//! policy was checked before the run (validate/cross.rs); here the fault is applied, the
//! target is always restored — power back on, the line back to `restore_value` — even when
//! the run is cancelled during the fault, and then the UART recovery oracle re-sends `send`
//! every `retry_interval_ms` until `expect_contains` arrives. Each step leaves a record
//! (run-results §6.2) in the test's `fault_injections`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use hilt_model::run::{Category, Failure, Source, now};
use hilt_model::suite::{FaultGpioGlitch, FaultPowerGlitch, FaultUartNoise, Recovery};
use hilt_model::validate::parse_hex_bytes;

use super::{Exec, StepError, StepResult};
use crate::data;
use crate::uart::{ExpectMiss, Matcher};

/// Attempts at restoring a target before the step reports `FAULT_RESTORE_FAILED`.
const RESTORE_ATTEMPTS: u32 = 3;
/// Pause between restore attempts (not cut short by cancel: the restore must happen).
const RESTORE_PAUSE: Duration = Duration::from_millis(50);
/// Shortest pause between recovery probes, whatever `retry_interval_ms` says.
const MIN_RETRY: Duration = Duration::from_millis(10);

/// What the recovery oracle saw.
struct Oracle {
    recovered: bool,
    time_ms: u64,
    attempts: u64,
    watchdog: bool,
    tail: String,
    log: String,
}

/// The parts of a fault record known before recovery.
struct Injected {
    kind: &'static str,
    target: Value,
    parameters: Value,
    injected_at: String,
    restored_at: String,
    artifacts: Value,
    /// "the power glitch", for messages.
    what: String,
}

fn record(i: &Injected, status: &str, recovery: Value) -> Value {
    json!({
        "schema_version": "benchci.fault_injection.v1",
        "type": i.kind,
        "status": status,
        "target": i.target,
        "parameters": i.parameters,
        "injected_at": i.injected_at,
        "restored_at": i.restored_at,
        "recovery": recovery,
        "artifacts": i.artifacts,
    })
}

fn message_of(e: StepError) -> Result<String, StepError> {
    match e {
        StepError::Test(f) | StepError::Run(f) => Ok(f.message),
        StepError::Cancelled => Err(StepError::Cancelled),
    }
}

impl Exec<'_> {
    pub(super) fn fault_power_glitch(&mut self, f: &FaultPowerGlitch) -> StepResult {
        let log_path = self.power_log_path(&f.resource);
        let mut inj = Injected {
            kind: "power_glitch",
            target: json!({"resource": f.resource, "outlet": f.outlet}),
            parameters: json!({"off_ms": f.off_ms}),
            injected_at: now(),
            restored_at: String::new(),
            artifacts: json!({"transport_log": self.uart_log(&f.recovery), "power_log": log_path}),
            what: format!("the power glitch on {}.{}", f.resource, f.outlet),
        };
        let Some(p) = self.session.power.get_mut(&f.resource) else {
            return Err(
                self.injection_failed(&inj, format!("power resource `{}` is not open", f.resource))
            );
        };
        p.log
            .line(&format!("GLITCH {} off for {} ms", f.outlet, f.off_ms));
        if let Err(e) = p.switch.set(&f.outlet, false) {
            p.log.line(&format!("GLITCH failed: {e}"));
            return Err(
                self.injection_failed(&inj, format!("switching {} off failed: {e}", f.outlet))
            );
        }
        let cancelled = self.cancel.wait_timeout(Duration::from_millis(f.off_ms));
        let mut restored = Err(String::new());
        for attempt in 0..RESTORE_ATTEMPTS {
            if attempt > 0 {
                std::thread::sleep(RESTORE_PAUSE);
            }
            restored = p.switch.set(&f.outlet, true).map_err(|e| e.to_string());
            if restored.is_ok() {
                break;
            }
        }
        inj.restored_at = now();
        match &restored {
            Ok(()) => p.log.line(&format!("GLITCH {} restored on", f.outlet)),
            Err(e) => p
                .log
                .line(&format!("GLITCH restore of {} failed: {e}", f.outlet)),
        }
        p.log.flush();
        if let Err(e) = restored {
            return Err(self.restore_failed(
                &inj,
                format!(
                    "switching {} back on failed {RESTORE_ATTEMPTS} times: {e}",
                    f.outlet
                ),
            ));
        }
        if cancelled {
            return Err(StepError::Cancelled);
        }
        self.recover(inj, &f.recovery)
    }

    pub(super) fn fault_gpio_glitch(&mut self, f: &FaultGpioGlitch) -> StepResult {
        let mut inj = Injected {
            kind: "gpio_glitch",
            target: json!({"node": f.node, "line": f.line}),
            parameters: json!({"pulse_value": f.pulse_value, "restore_value": f.restore_value, "duration_ms": f.duration_ms}),
            injected_at: now(),
            restored_at: String::new(),
            artifacts: json!({"transport_log": self.uart_log(&f.recovery), "gpio_log": self.gpio_log_path(&f.node)}),
            what: format!("the GPIO glitch on {}.{}", f.node, f.line),
        };
        if let Err(e) = self.gpio_write(&f.node, &f.line, f.pulse_value) {
            let m = message_of(e)?;
            return Err(self.injection_failed(&inj, m));
        }
        let cancelled = self
            .cancel
            .wait_timeout(Duration::from_millis(f.duration_ms));
        let mut restored = Ok(());
        for attempt in 0..RESTORE_ATTEMPTS {
            if attempt > 0 {
                std::thread::sleep(RESTORE_PAUSE);
            }
            restored = self.gpio_write(&f.node, &f.line, f.restore_value);
            if restored.is_ok() {
                break;
            }
        }
        inj.restored_at = now();
        if let Err(e) = restored {
            let m = message_of(e)?;
            return Err(self.restore_failed(&inj, m));
        }
        if cancelled {
            return Err(StepError::Cancelled);
        }
        self.recover(inj, &f.recovery)
    }

    pub(super) fn fault_uart_noise(&mut self, f: &FaultUartNoise) -> StepResult {
        let bytes = parse_hex_bytes(&f.data).map_err(|e| {
            StepError::Run(Failure::new(
                Category::ConfigError,
                format!("`data` is not hex bytes: {e}"),
            ))
        })?;
        let key = (f.node.clone(), f.transport.clone());
        let payload_hex = bytes
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(" ");
        let mut inj = Injected {
            kind: "uart_noise",
            target: json!({"node": f.node, "transport": f.transport}),
            parameters: json!({"payload_hex": payload_hex, "payload_bytes": bytes.len(), "repeat": f.repeat,
                               "total_bytes": bytes.len() as u64 * f.repeat, "inter_write_delay_ms": f.inter_write_delay_ms}),
            injected_at: now(),
            restored_at: String::new(),
            artifacts: Value::Null,
            what: format!("the UART noise on {}.{}", f.node, f.transport),
        };
        let Some(u) = self.session.uarts.get_mut(&key) else {
            return Err(self.injection_failed(
                &inj,
                format!("transport {}.{} is not open", f.node, f.transport),
            ));
        };
        inj.artifacts = json!({"transport_log": u.log_path()});
        u.note(&format!("FAULT noise {payload_hex} x{}", f.repeat));
        for i in 0..f.repeat {
            if let Err(e) = u.send(&bytes) {
                return Err(self.injection_failed(&inj, format!("UART write failed: {e}")));
            }
            if f.inter_write_delay_ms > 0
                && i + 1 < f.repeat
                && self
                    .cancel
                    .wait_timeout(Duration::from_millis(f.inter_write_delay_ms))
            {
                return Err(StepError::Cancelled);
            }
        }
        // Noise has nothing to undo.
        inj.restored_at = now();
        self.recover(inj, &f.recovery)
    }

    /// The recovery transport's log, named in the record.
    fn uart_log(&self, r: &Recovery) -> Option<String> {
        self.session
            .uarts
            .get(&(r.node.clone(), r.transport.clone()))
            .map(|u| u.log_path())
    }

    fn injection_failed(&mut self, inj: &Injected, why: String) -> StepError {
        self.test_faults
            .push(record(inj, "injection_failed", Value::Null));
        StepError::Test(
            Failure::new(
                Category::FaultInjectionFailed,
                format!("{} could not be applied: {why}", inj.what),
            )
            .with_detail(
                "fault_injection",
                record(inj, "injection_failed", Value::Null),
            ),
        )
    }

    fn restore_failed(&mut self, inj: &Injected, why: String) -> StepError {
        self.test_faults
            .push(record(inj, "restore_failed", Value::Null));
        StepError::Test(
            Failure::new(
                Category::FaultRestoreFailed,
                format!("{} was applied but the target could not be restored: {why}", inj.what),
            )
            .with_explanation("The fault was injected but the bench could not put the target back; the device may still be unpowered or held. Check the target by hand before the next run.")
            .with_detail("fault_injection", record(inj, "restore_failed", Value::Null)),
        )
    }

    /// Runs the recovery oracle and records the outcome of the whole injection.
    fn recover(&mut self, inj: Injected, r: &Recovery) -> StepResult {
        let o = self.oracle(r)?;
        let recovery = json!({"type": "uart", "recovered": o.recovered, "recovery_time_ms": o.recovered.then_some(o.time_ms),
                              "attempts": o.attempts, "watchdog_observed": o.watchdog, "expected": r.expect_contains, "within_ms": r.within_ms});
        let status = if o.recovered {
            "recovered"
        } else {
            "recovery_failed"
        };
        let rec = record(&inj, status, recovery);
        self.test_faults.push(rec.clone());
        if o.recovered {
            return Ok(
                data!("type" => inj.kind, "status" => status, "recovery_time_ms" => o.time_ms,
                            "attempts" => o.attempts, "watchdog_observed" => o.watchdog),
            );
        }
        let mut failure = Failure::new(
                Category::FaultRecoveryFailed,
                format!(
                    "the device did not recover from {}: no {:?} on {}.{} within {} ms ({} attempts of {:?}). Recent transport tail: '{}'",
                    inj.what, r.expect_contains, r.node, r.transport, r.within_ms, o.attempts, r.send, o.tail
                ),
            )
            .with_source(Source::Firmware)
            .with_artifact("transport_log", o.log)
            .with_detail("fault_injection", rec);
        // Where the failure was seen: the oracle's transport (BenchCI names it too).
        failure.failed_step.node_name = Some(r.node.clone());
        failure.failed_step.transport_name = Some(r.transport.clone());
        Err(StepError::Test(failure))
    }

    fn oracle(&mut self, r: &Recovery) -> Result<Oracle, StepError> {
        let cancel = self.cancel.clone();
        let key = (r.node.clone(), r.transport.clone());
        let Some(u) = self.session.uarts.get_mut(&key) else {
            return Err(StepError::Run(Failure::new(
                Category::ConfigError,
                format!(
                    "recovery transport {}.{} is not open (is it a uart transport?)",
                    r.node, r.transport
                ),
            )));
        };
        let uart_failed = |u: &crate::uart::Uart, e: String| {
            StepError::Run(
                Failure::new(
                    Category::UartFailed,
                    format!(
                        "UART on {}.{} failed during recovery: {e}",
                        r.node, r.transport
                    ),
                )
                .with_artifact("transport_log", u.log_path()),
            )
        };
        let start = u.end_offset();
        let t0 = Instant::now();
        let deadline = t0 + Duration::from_millis(r.within_ms);
        let retry = Duration::from_millis(r.retry_interval_ms).max(MIN_RETRY);
        let want = Matcher::Contains(r.expect_contains.as_bytes().to_vec());
        let mut attempts = 0;
        let mut recovered = false;
        while !recovered {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            if let Err(e) = u.send(r.send.as_bytes()) {
                return Err(uart_failed(u, e));
            }
            attempts += 1;
            match u.expect_from(&want, start, retry.min(left), &cancel) {
                Ok(_) => recovered = true,
                Err(ExpectMiss::Timeout { .. }) => {}
                Err(ExpectMiss::Io(e)) => return Err(uart_failed(u, e)),
                Err(ExpectMiss::Cancelled) => return Err(StepError::Cancelled),
            }
        }
        let watchdog = r.watchdog_contains.as_ref().is_some_and(|w| {
            u.expect_from(
                &Matcher::Contains(w.as_bytes().to_vec()),
                start,
                Duration::ZERO,
                &cancel,
            )
            .is_ok()
        });
        Ok(Oracle {
            recovered,
            time_ms: t0.elapsed().as_millis() as u64,
            attempts,
            watchdog,
            tail: u.tail_from(start),
            log: u.log_path(),
        })
    }
}

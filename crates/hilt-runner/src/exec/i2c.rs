//! The I2C step family: `i2c_scan`, `i2c_write_register`, `i2c_read_register` and
//! `i2c_expect`. Every transfer and its answer go to the transport log; failures are
//! classified by [`classify::i2c_failure`](crate::classify::i2c_failure).
//!
//! `i2c_expect` reads again every [`POLL`] until the bytes match or its `within_ms` (else
//! the bench default) is over; a device that does not acknowledge meanwhile (an EEPROM
//! finishing a write) is read again too. BenchCI reads once and ignores `within_ms`.

use std::time::{Duration, Instant};

use hilt_hw::i2c::{self, I2cError};
use hilt_model::run::{Category, Failure};
use hilt_model::suite::{ByteOrBytes, I2cRead, Step};
use serde_json::Value;

use super::{Exec, StepError, StepResult};
use crate::classify::{BusOutcome, i2c_failure};
use crate::data;
use crate::session::I2cRes;

/// Time between reads of a polling `i2c_expect`.
const POLL: Duration = Duration::from_millis(10);

fn hex_list(bytes: &[u8]) -> String {
    let items: Vec<String> = bytes.iter().map(|b| format!("0x{b:02x}")).collect();
    items.join(", ")
}

impl Exec<'_> {
    fn i2c_bus(&mut self, node: &str, transport: &str) -> Result<&mut I2cRes, StepError> {
        self.session
            .i2c
            .get_mut(&(node.to_string(), transport.to_string()))
            .ok_or_else(|| {
                StepError::Run(Failure::new(
                    Category::TransportOpenFailed,
                    format!("I2C transport {node}.{transport} is not open"),
                ))
            })
    }

    pub(super) fn i2c(&mut self, step: &Step, within: Duration) -> StepResult {
        match step {
            Step::I2cScan(s) => {
                let b = self.i2c_bus(&s.node, &s.transport)?;
                let what = format!(
                    "I2C scan 0x{:02x}..0x{:02x} on {}.{}",
                    s.start_address, s.end_address, s.node, s.transport
                );
                let found = match i2c::scan(b.bus.as_mut(), s.start_address, s.end_address) {
                    Ok(f) => f,
                    Err(e) => return Err(fail(b, &s.node, &s.transport, &what, &e)),
                };
                b.log.line(&format!(
                    "SCAN 0x{:02x}..0x{:02x} found=[{}]",
                    s.start_address,
                    s.end_address,
                    hex_list(&found)
                ));
                let missing: Vec<u32> = s
                    .expect_addresses
                    .iter()
                    .flatten()
                    .copied()
                    .filter(|a| !found.iter().any(|f| u32::from(*f) == *a))
                    .collect();
                let mut out =
                    data!("node_name" => s.node, "transport_name" => s.transport, "found" => found);
                if !missing.is_empty() {
                    let list: Vec<String> = missing.iter().map(|a| format!("0x{a:02x}")).collect();
                    b.log.line(&format!("MISSING {}", list.join(", ")));
                    b.log.flush();
                    return Err(StepError::Test(
                        Failure::new(
                            Category::I2cExpectationFailed,
                            format!(
                                "I2C scan missing expected address(es): {} on {}.{}",
                                list.join(", "),
                                s.node,
                                s.transport
                            ),
                        )
                        .with_artifact("transport_log", b.log_path.clone())
                        .with_detail("node", s.node.clone())
                        .with_detail("transport", s.transport.clone())
                        .with_detail(
                            "found",
                            Value::from(found.iter().map(|a| u32::from(*a)).collect::<Vec<_>>()),
                        )
                        .with_detail("missing", Value::from(missing)),
                    ));
                }
                out.insert("missing".into(), Value::Array(Vec::new()));
                Ok(out)
            }
            Step::I2cWriteRegister(w) => {
                let values: Vec<u32> = match &w.value {
                    ByteOrBytes::One(v) => vec![*v],
                    ByteOrBytes::Many(v) => v.clone(),
                };
                let b = self.i2c_bus(&w.node, &w.transport)?;
                let what = format!(
                    "I2C write register 0x{:02x} of 0x{:02x} on {}.{}",
                    w.register, w.address, w.node, w.transport
                );
                let started = Instant::now();
                if let Err(e) = i2c::write_register(b.bus.as_mut(), w.address, w.register, &values)
                {
                    return Err(fail(b, &w.node, &w.transport, &what, &e));
                }
                b.log.line(&format!(
                    "WRITE address=0x{:02X} register=0x{:02X} data={:?} in {:.1} ms",
                    w.address,
                    w.register,
                    values,
                    started.elapsed().as_secs_f64() * 1000.0
                ));
                Ok(
                    data!("node_name" => w.node, "transport_name" => w.transport,
                    "address" => w.address, "register" => w.register, "values" => values),
                )
            }
            Step::I2cReadRegister(r) => self.i2c_read(r, None),
            Step::I2cExpect(r) => self.i2c_read(r, Some(within)),
            other => Err(StepError::Run(Failure::new(
                Category::UnknownError,
                format!("`{}` is not an I2C step", other.type_name()),
            ))),
        }
    }

    /// A register read, compared with `expect` when given; `poll` keeps reading until it
    /// matches or the time is over.
    fn i2c_read(&mut self, r: &I2cRead, poll: Option<Duration>) -> StepResult {
        let cancel = self.cancel.clone();
        let b = self.i2c_bus(&r.node, &r.transport)?;
        let what = format!(
            "I2C read register 0x{:02x} of 0x{:02x} on {}.{}",
            r.register, r.address, r.node, r.transport
        );
        let deadline = poll.map(|d| Instant::now() + d);
        let mut reads = 0u32;
        loop {
            reads += 1;
            let started = Instant::now();
            let got = i2c::read_register(b.bus.as_mut(), r.address, r.register, r.length);
            let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
            let again = deadline.is_some_and(|d| Instant::now() + POLL < d);
            let values = match got {
                Ok(v) => v,
                Err(e @ I2cError::Nack { .. }) if again => {
                    b.log.line(&format!(
                        "READ address=0x{:02X} register=0x{:02X} {e}; again",
                        r.address, r.register
                    ));
                    if cancel.wait_timeout(POLL) {
                        return Err(StepError::Cancelled);
                    }
                    continue;
                }
                Err(e) => return Err(fail(b, &r.node, &r.transport, &what, &e)),
            };
            b.log.line(&format!(
                "READ address=0x{:02X} register=0x{:02X} len={} data={} in {elapsed_ms:.1} ms",
                r.address,
                r.register,
                r.length,
                hilt_hw::spi::hex(&values)
            ));
            let got: Vec<u32> = values.iter().map(|b| u32::from(*b)).collect();
            let mut out = data!("node_name" => r.node, "transport_name" => r.transport,
                "address" => r.address, "register" => r.register, "values" => got.clone());
            let Some(want) = &r.expect else {
                return Ok(out);
            };
            if *want == got {
                if poll.is_some() {
                    out.insert("reads".into(), Value::from(reads));
                }
                return Ok(out);
            }
            if again {
                if cancel.wait_timeout(POLL) {
                    return Err(StepError::Cancelled);
                }
                continue;
            }
            b.log
                .line(&format!("MISMATCH expected={want:?} got={got:?}"));
            b.log.flush();
            let after = if reads > 1 {
                format!(" after {reads} reads")
            } else {
                String::new()
            };
            return Err(StepError::Test(
                Failure::new(
                    Category::I2cExpectationFailed,
                    format!(
                        "I2C register mismatch: expected {want:?}, got {got:?} ({what}{after})"
                    ),
                )
                .with_artifact("transport_log", b.log_path.clone())
                .with_detail("node", r.node.clone())
                .with_detail("transport", r.transport.clone())
                .with_detail("address", r.address)
                .with_detail("register", r.register)
                .with_detail("expected", Value::from(want.clone()))
                .with_detail("received", Value::from(got)),
            ));
        }
    }
}

/// Logs a failed transfer and classifies it.
fn fail(b: &mut I2cRes, node: &str, transport: &str, what: &str, e: &I2cError) -> StepError {
    b.log.line(&format!("ERROR {what}: {e}"));
    b.log.flush();
    let detail = |f: Failure| {
        f.with_artifact("transport_log", b.log_path.clone())
            .with_detail("node", node.to_string())
            .with_detail("transport", transport.to_string())
    };
    match i2c_failure(e, what) {
        BusOutcome::Test(f) => StepError::Test(detail(f)),
        BusOutcome::Run(f) => StepError::Run(detail(f)),
    }
}

//! The Modbus step family: read holding/input registers, coils and discrete inputs with an
//! exact expectation, and write single or multiple registers and coils. Every request and
//! reply is written to the transport log; failures are classified by
//! [`classify::modbus_failure`](crate::classify::modbus_failure).

use hilt_hw::modbus::{Request, Response};
use hilt_model::run::{Category, Failure};
use hilt_model::suite::Step;
use serde_json::Value;

use super::{Exec, StepError, StepResult};
use crate::classify::{ModbusOutcome, modbus_failure};
use crate::data;

/// What a read step expects back.
enum Expect<'a> {
    Registers(&'a [i64]),
    Bits(&'a [bool]),
    Nothing,
}

/// One Modbus step, taken apart.
struct Call<'a> {
    node: &'a str,
    transport: &'a str,
    slave: Option<u32>,
    request: Request,
    expect: Expect<'a>,
}

/// Validation keeps addresses, counts and values in range; clamp anyway so a value that
/// slipped through can never wrap silently.
fn u16_of(v: impl TryInto<u16>) -> u16 {
    v.try_into().unwrap_or(u16::MAX)
}

fn call(step: &Step) -> Option<Call<'_>> {
    let read = |node, transport, slave, request, expect| {
        Some(Call {
            node,
            transport,
            slave,
            request,
            expect,
        })
    };
    match step {
        Step::ModbusReadHoldingRegisters(m) => read(
            &m.node,
            &m.transport,
            m.slave,
            Request::ReadHoldingRegisters {
                address: u16_of(m.address),
                count: u16_of(m.count),
            },
            Expect::Registers(&m.expect),
        ),
        Step::ModbusReadInputRegisters(m) => read(
            &m.node,
            &m.transport,
            m.slave,
            Request::ReadInputRegisters {
                address: u16_of(m.address),
                count: u16_of(m.count),
            },
            Expect::Registers(&m.expect),
        ),
        Step::ModbusReadCoils(m) => read(
            &m.node,
            &m.transport,
            m.slave,
            Request::ReadCoils {
                address: u16_of(m.address),
                count: u16_of(m.count),
            },
            Expect::Bits(&m.expect),
        ),
        Step::ModbusReadDiscreteInputs(m) => read(
            &m.node,
            &m.transport,
            m.slave,
            Request::ReadDiscreteInputs {
                address: u16_of(m.address),
                count: u16_of(m.count),
            },
            Expect::Bits(&m.expect),
        ),
        Step::ModbusWriteSingleRegister(m) => read(
            &m.node,
            &m.transport,
            m.slave,
            Request::WriteSingleRegister {
                address: u16_of(m.address),
                value: u16_of(m.value),
            },
            Expect::Nothing,
        ),
        Step::ModbusWriteSingleCoil(m) => read(
            &m.node,
            &m.transport,
            m.slave,
            Request::WriteSingleCoil {
                address: u16_of(m.address),
                value: m.value,
            },
            Expect::Nothing,
        ),
        Step::ModbusWriteMultipleRegisters(m) => read(
            &m.node,
            &m.transport,
            m.slave,
            Request::WriteMultipleRegisters {
                address: u16_of(m.address),
                values: m.values.iter().map(|v| u16_of(*v)).collect(),
            },
            Expect::Nothing,
        ),
        Step::ModbusWriteMultipleCoils(m) => read(
            &m.node,
            &m.transport,
            m.slave,
            Request::WriteMultipleCoils {
                address: u16_of(m.address),
                values: m.values.clone(),
            },
            Expect::Nothing,
        ),
        _ => None,
    }
}

/// `slave 1 address 10 count 2` / `slave 1 address 10 value 215`, for logs and messages.
fn describe(slave: u8, r: &Request) -> String {
    match r {
        Request::ReadCoils { address, count }
        | Request::ReadDiscreteInputs { address, count }
        | Request::ReadHoldingRegisters { address, count }
        | Request::ReadInputRegisters { address, count } => {
            format!("slave {slave} address {address} count {count}")
        }
        Request::WriteSingleCoil { address, value } => {
            format!("slave {slave} address {address} value {value}")
        }
        Request::WriteSingleRegister { address, value } => {
            format!("slave {slave} address {address} value {value}")
        }
        Request::WriteMultipleCoils { address, values } => {
            format!("slave {slave} address {address} values {values:?}")
        }
        Request::WriteMultipleRegisters { address, values } => {
            format!("slave {slave} address {address} values {values:?}")
        }
    }
}

impl Exec<'_> {
    pub(super) fn modbus(&mut self, step: &Step) -> StepResult {
        let Some(c) = call(step) else {
            return Err(StepError::Run(Failure::new(
                Category::UnknownError,
                format!("`{}` is not a Modbus step", step.type_name()),
            )));
        };
        let key = (c.node.to_string(), c.transport.to_string());
        let cancel = self.cancel.clone();
        let m = self.session.modbus.get_mut(&key).ok_or_else(|| {
            StepError::Run(Failure::new(
                Category::TransportOpenFailed,
                format!("Modbus transport {}.{} is not open", c.node, c.transport),
            ))
        })?;
        let slave = u8::try_from(c.slave.unwrap_or(m.default_slave)).unwrap_or(0);
        let what = format!(
            "{} ({}) on {}.{}",
            c.request.name(),
            describe(slave, &c.request),
            c.node,
            c.transport
        );
        m.log.line(&format!(
            "{} {}",
            c.request.name().to_uppercase().replace(' ', "_"),
            describe(slave, &c.request)
        ));
        let started = std::time::Instant::now();
        let reply = m.link.call(slave, &c.request, &cancel);
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        let log_path = m.log_path.clone();
        let detail = |f: Failure| {
            f.with_artifact("transport_log", log_path.clone())
                .with_detail("node", c.node.to_string())
                .with_detail("transport", c.transport.to_string())
                .with_detail("slave", slave)
                .with_detail("function", c.request.function())
        };
        let response = match reply {
            Ok(r) => r,
            Err(e) => {
                m.log.line(&format!("ERROR {e} after {elapsed_ms:.1} ms"));
                m.log.flush();
                return Err(match modbus_failure(&e, &what) {
                    ModbusOutcome::Test(f) => StepError::Test(detail(f)),
                    ModbusOutcome::Run(f) => StepError::Run(detail(f)),
                    ModbusOutcome::Cancelled => StepError::Cancelled,
                });
            }
        };
        let base = data!("node_name" => c.node, "transport_name" => c.transport, "slave" => slave);
        let mut out = base;
        let mismatch = match (&c.expect, &response) {
            (Expect::Registers(want), Response::Registers(got)) => {
                m.log
                    .line(&format!("OK values={got:?} in {elapsed_ms:.1} ms"));
                out.insert("values".into(), Value::from(got.clone()));
                let same =
                    want.len() == got.len() && want.iter().zip(got).all(|(w, g)| *w == *g as i64);
                (!same).then(|| (format!("{want:?}"), format!("{got:?}")))
            }
            (Expect::Bits(want), Response::Bits(got)) => {
                m.log
                    .line(&format!("OK values={got:?} in {elapsed_ms:.1} ms"));
                out.insert("values".into(), Value::from(got.clone()));
                (*want != got.as_slice()).then(|| (format!("{want:?}"), format!("{got:?}")))
            }
            (Expect::Nothing, Response::Written) => {
                m.log.line(&format!("OK written in {elapsed_ms:.1} ms"));
                None
            }
            // The frame decoder answers each request with its own kind of response.
            (_, other) => {
                m.log.line(&format!("ERROR unexpected response {other:?}"));
                Some(("a reply of the request's kind".into(), format!("{other:?}")))
            }
        };
        if let Some((want, got)) = mismatch {
            m.log.line(&format!("MISMATCH expected={want} got={got}"));
            m.log.flush();
            return Err(StepError::Test(detail(
                Failure::new(
                    Category::ModbusExpectationFailed,
                    format!("{what}: expected {want}, got {got}"),
                )
                .with_detail("expected", want)
                .with_detail("received", got),
            )));
        }
        Ok(out)
    }
}

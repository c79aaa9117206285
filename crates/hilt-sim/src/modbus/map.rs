//! The register map of the simulated slave, and the slave itself as a pure function of
//! its state: a request PDU in, an answer PDU out (or silence for a slave that is not on
//! the bus).
//!
//! Map file (YAML or JSON; addresses are protocol addresses, 0-based):
//!
//! ```yaml
//! slaves:
//!   1:
//!     holding_registers: {0: [1234, 5678], 10: 0}   # address: value, or a run of values
//!     input_registers: {0: [42, 42, 42]}
//!     coils: {0: [true, false, true]}
//!     discrete_inputs: {0: true}
//! ```
//!
//! Addresses not in the map answer exception 2 (illegal data address); input registers
//! and discrete inputs are read-only; slave ids not in the map never answer.

use std::collections::BTreeMap;

use hilt_hw::modbus::frame::{self, Request, Response};
use serde_json::Value;

/// The four tables of one slave.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlaveTables {
    pub holding_registers: BTreeMap<u16, u16>,
    pub input_registers: BTreeMap<u16, u16>,
    pub coils: BTreeMap<u16, bool>,
    pub discrete_inputs: BTreeMap<u16, bool>,
}

/// Every slave on the simulated bus, by id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegisterMap {
    pub slaves: BTreeMap<u8, SlaveTables>,
}

/// A map-file problem: where (`slaves.1.coils.3`, with the file's line and column when
/// known) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapError {
    pub at: String,
    pub message: String,
}

impl std::fmt::Display for MapError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

const TABLES: [&str; 4] = [
    "holding_registers",
    "input_registers",
    "coils",
    "discrete_inputs",
];

impl RegisterMap {
    /// Parses a map file's text (YAML; JSON is YAML too). `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<RegisterMap, MapError> {
        let doc = hilt_model::yaml::parse(text).map_err(|e| MapError {
            at: format!("{file}:{}:{}", e.pos.line, e.pos.col),
            message: e.message,
        })?;
        let at = |path: &str| {
            let p = doc.pos(path, false);
            format!("{file}:{}:{}: {path}", p.line, p.col)
        };
        let err = |path: &str, message: String| MapError {
            at: at(path),
            message,
        };
        let root = doc.to_value();
        let Some(slaves) = root.get("slaves").and_then(Value::as_object) else {
            return Err(err(
                "slaves",
                "needs a `slaves` mapping (slave id → tables)".into(),
            ));
        };
        if let Some(k) = root
            .as_object()
            .and_then(|o| o.keys().find(|k| *k != "slaves"))
        {
            return Err(err(k, format!("unknown key `{k}` (expected `slaves`)")));
        }
        let mut map = RegisterMap::default();
        for (id, tables) in slaves {
            let sp = format!("slaves.{id}");
            let sid: u8 = match id.parse::<u8>() {
                Ok(n) if (1..=247).contains(&n) => n,
                _ => return Err(err(&sp, format!("slave id `{id}` is not 1..=247"))),
            };
            let Some(tables) = tables.as_object() else {
                return Err(err(&sp, "must be a mapping of tables".into()));
            };
            let mut t = SlaveTables::default();
            for (name, entries) in tables {
                let tp = format!("{sp}.{name}");
                if !TABLES.contains(&name.as_str()) {
                    return Err(err(
                        &tp,
                        format!(
                            "unknown table `{name}` (expected one of {})",
                            TABLES.join(", ")
                        ),
                    ));
                }
                let Some(entries) = entries.as_object() else {
                    return Err(err(&tp, "must map addresses to values".into()));
                };
                for (addr, v) in entries {
                    let ep = format!("{tp}.{addr}");
                    let Ok(start) = addr.parse::<u16>() else {
                        return Err(err(&ep, format!("address `{addr}` is not 0..=65535")));
                    };
                    let (values, run): (Vec<&Value>, bool) = match v {
                        Value::Array(a) => (a.iter().collect(), true),
                        one => (vec![one], false),
                    };
                    for (i, v) in values.into_iter().enumerate() {
                        // A value in a run is located at its own element.
                        let ep = if run {
                            format!("{ep}[{i}]")
                        } else {
                            ep.clone()
                        };
                        let Some(a) = (start as usize).checked_add(i).filter(|a| *a <= 0xFFFF)
                        else {
                            return Err(err(&ep, "the run of values passes address 65535".into()));
                        };
                        let a = a as u16;
                        let bits = name == "coils" || name == "discrete_inputs";
                        if bits {
                            let Some(b) = v.as_bool() else {
                                return Err(err(&ep, format!("{v} is not true or false")));
                            };
                            let table = if name == "coils" {
                                &mut t.coils
                            } else {
                                &mut t.discrete_inputs
                            };
                            table.insert(a, b);
                        } else {
                            let Some(r) = v.as_u64().filter(|r| *r <= 0xFFFF) else {
                                return Err(err(
                                    &ep,
                                    format!("{v} is not a 16-bit register value (0..=65535)"),
                                ));
                            };
                            let table = if name == "holding_registers" {
                                &mut t.holding_registers
                            } else {
                                &mut t.input_registers
                            };
                            table.insert(a, r as u16);
                        }
                    }
                }
            }
            map.slaves.insert(sid, t);
        }
        Ok(map)
    }

    /// Answers one request PDU for `slave`: `None` when no such slave is on the bus (a
    /// real RTU bus stays silent), else the answer PDU (data or an exception).
    pub fn handle(&mut self, slave: u8, pdu: &[u8]) -> Option<Vec<u8>> {
        let tables = self.slaves.get_mut(&slave)?;
        let function = pdu.first().copied().unwrap_or(0);
        let req = match Request::decode(pdu) {
            Ok(r) => r,
            Err(code) => return Some(frame::exception_pdu(function, code)),
        };
        Some(match tables.apply(&req) {
            Ok(resp) => req.encode_response(&resp),
            Err(code) => frame::exception_pdu(req.function(), code),
        })
    }
}

fn read<T: Copy>(t: &BTreeMap<u16, T>, address: u16, count: u16) -> Result<Vec<T>, u8> {
    (0..count)
        .map(|i| {
            address
                .checked_add(i)
                .and_then(|a| t.get(&a).copied())
                .ok_or(2)
        })
        .collect()
}

fn write<T: Copy>(t: &mut BTreeMap<u16, T>, address: u16, values: &[T]) -> Result<(), u8> {
    // All or nothing: check every address first.
    for i in 0..values.len() {
        let ok = u16::try_from(i)
            .ok()
            .and_then(|i| address.checked_add(i))
            .is_some_and(|a| t.contains_key(&a));
        if !ok {
            return Err(2);
        }
    }
    for (i, v) in values.iter().enumerate() {
        t.insert(address + i as u16, *v);
    }
    Ok(())
}

impl SlaveTables {
    /// Applies a decoded request; `Err` is the exception code.
    pub fn apply(&mut self, req: &Request) -> Result<Response, u8> {
        match req {
            Request::ReadCoils { address, count } => {
                read(&self.coils, *address, *count).map(Response::Bits)
            }
            Request::ReadDiscreteInputs { address, count } => {
                read(&self.discrete_inputs, *address, *count).map(Response::Bits)
            }
            Request::ReadHoldingRegisters { address, count } => {
                read(&self.holding_registers, *address, *count).map(Response::Registers)
            }
            Request::ReadInputRegisters { address, count } => {
                read(&self.input_registers, *address, *count).map(Response::Registers)
            }
            Request::WriteSingleCoil { address, value } => {
                write(&mut self.coils, *address, &[*value]).map(|_| Response::Written)
            }
            Request::WriteSingleRegister { address, value } => {
                write(&mut self.holding_registers, *address, &[*value]).map(|_| Response::Written)
            }
            Request::WriteMultipleCoils { address, values } => {
                write(&mut self.coils, *address, values).map(|_| Response::Written)
            }
            Request::WriteMultipleRegisters { address, values } => {
                write(&mut self.holding_registers, *address, values).map(|_| Response::Written)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAP: &str = "slaves:\n  1:\n    holding_registers: {0: [1234, 5678], 10: 0}\n    coils: {0: [true, false]}\n    discrete_inputs: {0: true}\n";

    #[test]
    fn a_map_file_loads_and_answers() {
        let mut m = RegisterMap::parse(MAP, "map.yaml").unwrap();
        let t = &m.slaves[&1];
        assert_eq!(t.holding_registers[&1], 5678);
        assert!(!t.coils[&1]);
        let req = Request::ReadHoldingRegisters {
            address: 0,
            count: 2,
        };
        let answer = m.handle(1, &req.encode()).unwrap();
        assert_eq!(
            req.decode_response(&answer),
            Ok(Ok(Response::Registers(vec![1234, 5678])))
        );
        // Address 2 is not mapped: exception 2.
        let req = Request::ReadHoldingRegisters {
            address: 1,
            count: 2,
        };
        assert_eq!(m.handle(1, &req.encode()), Some(vec![0x83, 2]));
        // Input-only tables refuse writes; unknown slaves are silent.
        assert_eq!(m.handle(9, &req.encode()), None);
        let w = Request::WriteSingleRegister {
            address: 10,
            value: 215,
        };
        assert_eq!(m.handle(1, &w.encode()), Some(w.encode()));
        assert_eq!(m.slaves[&1].holding_registers[&10], 215);
        assert_eq!(m.handle(1, &[0x2B, 0x0E]), Some(vec![0xAB, 1]));
    }

    #[test]
    fn map_errors_name_the_place() {
        let e = RegisterMap::parse(
            "slaves:\n  1:\n    holding_registers: {0: 70000}\n",
            "m.yaml",
        )
        .unwrap_err();
        assert_eq!(e.at, "m.yaml:3:28: slaves.1.holding_registers.0");
        assert!(e.message.contains("70000"), "{e}");
        let e = RegisterMap::parse("slaves:\n  300: {}\n", "m.yaml").unwrap_err();
        assert!(e.to_string().contains("slave id `300`"), "{e}");
        let e = RegisterMap::parse("slaves:\n  1: {holding: {}}\n", "m.yaml").unwrap_err();
        assert!(e.to_string().contains("unknown table `holding`"), "{e}");
        assert!(RegisterMap::parse("[1, 2", "m.yaml").is_err());
    }
}

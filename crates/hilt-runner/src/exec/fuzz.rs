//! The fuzz step family: `fuzz_uart`, `fuzz_modbus`, `fuzz_can` (suite spec §5 "Fuzzing").
//!
//! A campaign draws `iterations` cases from a seeded generator (`fuzz/generate.rs`; the seed
//! is the step's or a fresh one, always recorded), sends each and applies the step's
//! oracles. Every case is a line of `logs/fuzz/<test>-step<N>-<protocol>.jsonl`; the
//! campaign record (run-results §6.1) goes to the test's `fuzz` list and results.json.
//! A campaign with failures fails its test (`FUZZ_ORACLE_FAILED`, or
//! `FUZZ_TRANSPORT_FAILED` when the first failure was a transport error) and saves the first
//! failing case as `…-failure.json`; a step with `replay: <that file>` sends exactly that
//! case again under its own oracles.

mod can;
mod generate;

pub use can::{CanFrame, CanPort};

use std::io::Write as _;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use hilt_hw::modbus::{ModbusError, Request};
use hilt_model::run::{Category, Failure, now, round3};
use hilt_model::suite::{FuzzCan, FuzzCommon, FuzzModbus, FuzzUart, Step};

use super::external::paths::slug;
use super::{Exec, StepError, StepResult};
use crate::data;
use crate::uart::{ExpectMiss, Matcher};
use generate::{ModbusCase, ModbusOp, case_seed};

/// `schema_version` of a saved failing case.
pub const FAILURE_SCHEMA: &str = "hilt.fuzz_failure.v1";
/// Largest replay artifact read back.
const MAX_ARTIFACT_BYTES: u64 = 1 << 20;
/// Longest `payload_preview`, in characters.
const PREVIEW_CHARS: usize = 80;

/// What a failing case did wrong (`failure_kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Oracle,
    Heartbeat,
    ResponseOracle,
    Transport,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Oracle => "oracle",
            Kind::Heartbeat => "heartbeat",
            Kind::ResponseOracle => "response_oracle",
            Kind::Transport => "transport",
        }
    }
}

enum Outcome {
    Passed,
    /// A Modbus exception reply, counted but not a failure.
    Exception(String),
    Failed {
        kind: Kind,
        reason: String,
        context: Map<String, Value>,
    },
    Cancelled,
}

/// One executed case: its protocol fields (`payload_hex`, `operation`…) and how it ended.
struct Case {
    fields: Map<String, Value>,
    outcome: Outcome,
}

impl Case {
    fn failed(fields: Map<String, Value>, kind: Kind, reason: String) -> Case {
        Case::failed_with(fields, kind, reason, Map::new())
    }

    fn failed_with(
        fields: Map<String, Value>,
        kind: Kind,
        reason: String,
        context: Map<String, Value>,
    ) -> Case {
        Case {
            fields,
            outcome: Outcome::Failed {
                kind,
                reason,
                context,
            },
        }
    }
}

/// A campaign replaying one saved case.
struct Replay {
    path: String,
    case_seed: u64,
}

struct Campaign<'a> {
    step: &'a Step,
    protocol: &'static str,
    common: &'a FuzzCommon,
    replay: Option<Replay>,
    /// The transport's own log, named in the failure.
    transport_log: Option<String>,
}

fn config_error(message: String) -> StepError {
    StepError::Run(Failure::new(Category::ConfigError, message))
}

fn io_error(what: &str, path: &std::path::Path, e: std::io::Error) -> StepError {
    StepError::Run(Failure::new(
        Category::UnknownError,
        format!("cannot write {what} {}: {e}", path.display()),
    ))
}

/// Reads a `replay:` artifact: its failing case must be of `protocol`.
fn load_replay(
    exec: &Exec,
    c: &FuzzCommon,
    protocol: &str,
) -> Result<Option<(Replay, Value)>, StepError> {
    let Some(rel) = &c.replay else {
        return Ok(None);
    };
    let path = Exec::resolve(&exec.opts.suite_dir, rel);
    let bad = |why: String| config_error(format!("replay artifact {}: {why}", path.display()));
    let meta = std::fs::metadata(&path).map_err(|e| bad(e.to_string()))?;
    if meta.len() > MAX_ARTIFACT_BYTES {
        return Err(bad(format!(
            "{} bytes; a failure artifact is at most {MAX_ARTIFACT_BYTES}",
            meta.len()
        )));
    }
    let text = std::fs::read_to_string(&path).map_err(|e| bad(e.to_string()))?;
    let doc: Value = serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
    if doc["schema_version"] != FAILURE_SCHEMA {
        return Err(bad(format!(
            "not a fuzz failure artifact (schema_version must be `{FAILURE_SCHEMA}`)"
        )));
    }
    if doc["protocol"] != protocol {
        return Err(bad(format!(
            "it holds a `{}` case; this step fuzzes `{protocol}`",
            doc["protocol"].as_str().unwrap_or("?")
        )));
    }
    let case = doc["case"].clone();
    let case_seed = case["seed"]
        .as_u64()
        .ok_or_else(|| bad("its case has no `seed`".into()))?;
    Ok(Some((
        Replay {
            path: path.display().to_string(),
            case_seed,
        },
        case,
    )))
}

fn hex_field(case: &Value, field: &str) -> Result<Vec<u8>, String> {
    let s = case[field]
        .as_str()
        .ok_or_else(|| format!("its case has no `{field}`"))?;
    let compact: String = s.split_whitespace().collect();
    hex::decode(compact).map_err(|e| format!("`{field}` is not hex: {e}"))
}

/// `4F 41 0A`: BenchCI's hex form of a payload.
fn spaced_hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(&format!("{b:02X}"));
    }
    s
}

/// Printable text of a payload for logs: escaped, capped.
fn preview(payload: &[u8]) -> String {
    let text: String = String::from_utf8_lossy(payload).escape_debug().collect();
    match text.char_indices().nth(PREVIEW_CHARS) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text,
    }
}

fn run_campaign(
    exec: &mut Exec,
    c: Campaign<'_>,
    mut run: impl FnMut(&mut Exec, u64) -> Case,
) -> StepResult {
    let seed = c.common.seed.unwrap_or_else(generate::fresh_seed);
    let step_type = c.step.type_name();
    let dir = exec.logs_dir().join("fuzz");
    let stem = format!(
        "{}-step{}-{}",
        slug(&exec.current_test),
        exec.current_step,
        c.protocol
    );
    let log_path = dir.join(format!("{stem}.jsonl"));
    std::fs::create_dir_all(&dir).map_err(|e| io_error("the fuzz log directory", &dir, e))?;
    let file =
        std::fs::File::create(&log_path).map_err(|e| io_error("the fuzz log", &log_path, e))?;
    let mut log = std::io::BufWriter::new(file);
    let started_at = now();
    let started = Instant::now();
    let max_duration = Duration::from_millis(c.common.max_duration_ms);
    let iterations = if c.replay.is_some() {
        1
    } else {
        c.common.iterations
    };
    let (mut executed, mut failures, mut exceptions) = (0u64, 0u64, 0u64);
    let mut first_failure: Option<(Kind, Value)> = None;
    let mut cancelled = false;
    for index in 0..iterations {
        if exec.cancel.is_cancelled() {
            cancelled = true;
            break;
        }
        if started.elapsed() >= max_duration {
            break;
        }
        let cs = match &c.replay {
            Some(r) => r.case_seed,
            None => case_seed(seed, index),
        };
        let case = run(exec, cs);
        // BenchCI's key order; case_index counts from 1.
        let mut rec = Map::new();
        rec.insert("case_index".into(), (index + 1).into());
        rec.insert("seed".into(), cs.into());
        rec.insert("protocol".into(), c.protocol.into());
        rec.extend(case.fields);
        let status = match &case.outcome {
            Outcome::Passed => "passed",
            Outcome::Exception(_) => "protocol_exception",
            Outcome::Failed { .. } | Outcome::Cancelled => "failed",
        };
        rec.insert("status".into(), status.into());
        rec.insert("timestamp".into(), now().into());
        match case.outcome {
            Outcome::Passed => {}
            Outcome::Exception(e) => {
                exceptions += 1;
                rec.insert("exception".into(), e.into());
            }
            Outcome::Failed {
                kind,
                reason,
                context,
            } => {
                failures += 1;
                rec.insert("failure_kind".into(), kind.as_str().into());
                rec.insert("failure_reason".into(), reason.into());
                rec.extend(context);
            }
            Outcome::Cancelled => {
                cancelled = true;
                break;
            }
        }
        executed += 1;
        let rec = Value::Object(rec);
        serde_json::to_writer(&mut log, &rec)
            .map_err(std::io::Error::from)
            .and_then(|_| log.write_all(b"\n"))
            .map_err(|e| io_error("the fuzz log", &log_path, e))?;
        if rec["status"] == "failed" && first_failure.is_none() {
            let kind = match rec["failure_kind"].as_str() {
                Some("transport") => Kind::Transport,
                Some("heartbeat") => Kind::Heartbeat,
                Some("response_oracle") => Kind::ResponseOracle,
                _ => Kind::Oracle,
            };
            first_failure = Some((kind, rec.clone()));
        }
        if failures > 0 && c.common.stop_on_failure {
            break;
        }
        if c.common.inter_case_delay_ms > 0
            && index + 1 < iterations
            && exec
                .cancel
                .wait_timeout(Duration::from_millis(c.common.inter_case_delay_ms))
        {
            cancelled = true;
            break;
        }
    }
    log.flush()
        .map_err(|e| io_error("the fuzz log", &log_path, e))?;
    let log_str = log_path.display().to_string();
    let mut record = json!({
        "schema_version": "benchci.fuzz_campaign.v1",
        "protocol": c.protocol,
        "test_name": exec.current_test,
        "test_index": exec.current_test_index,
        "step_index": exec.current_step,
        "seed": seed,
        "configured_iterations": c.common.iterations,
        "max_duration_ms": c.common.max_duration_ms,
        "stop_on_failure": c.common.stop_on_failure,
        "started_at": started_at,
        "finished_at": now(),
        "duration_s": round3(started.elapsed().as_secs_f64()),
        "cases_executed": executed,
        "failures": failures,
        "protocol_exceptions": exceptions,
        "status": if failures > 0 { "failed" } else { "passed" },
        "first_failure": first_failure.as_ref().map(|f| f.1.clone()),
        "log_path": log_str,
    });
    if let Some(r) = &c.replay {
        record["replay"] = r.path.clone().into();
    }
    let Some((kind, first)) = first_failure else {
        exec.test_fuzz.push(record);
        if cancelled {
            return Err(StepError::Cancelled);
        }
        return Ok(
            data!("protocol" => c.protocol, "seed" => seed, "cases_executed" => executed,
                  "failures" => 0, "protocol_exceptions" => exceptions, "log_path" => log_str),
        );
    };
    let artifact = dir.join(format!("{stem}-failure.json"));
    let mut step_json = serde_json::to_value(c.step).unwrap_or(Value::Null);
    if let Some(fields) = step_json[step_type].as_object_mut() {
        // The artifact names the seed even when the suite did not.
        fields.insert("seed".into(), seed.into());
        fields.remove("replay");
    }
    let doc = json!({
        "schema_version": FAILURE_SCHEMA,
        "protocol": c.protocol,
        "seed": seed,
        "test_name": exec.current_test,
        "step_index": exec.current_step,
        "step": step_json,
        "case": first,
        "log_path": log_str,
    });
    let text = serde_json::to_vec_pretty(&doc).unwrap_or_default();
    std::fs::write(&artifact, text).map_err(|e| io_error("the fuzz failure", &artifact, e))?;
    let artifact_str = artifact.display().to_string();
    record["failure_artifact"] = artifact_str.clone().into();
    exec.test_fuzz.push(record);
    if cancelled {
        return Err(StepError::Cancelled);
    }
    let category = match kind {
        Kind::Transport => Category::FuzzTransportFailed,
        Kind::Oracle | Kind::Heartbeat | Kind::ResponseOracle => Category::FuzzOracleFailed,
    };
    let message = format!(
        "{step_type} found {failures} failing case(s) in {executed} (seed {seed}); first: case {} ({}): {}. Saved as {artifact_str}; replay it with `replay:` on the step",
        first["case_index"],
        first["failure_kind"].as_str().unwrap_or(""),
        first["failure_reason"].as_str().unwrap_or(""),
    );
    let mut failure = Failure::new(category, message);
    if let Some(t) = c.transport_log {
        failure = failure.with_artifact("transport_log", t);
    }
    Err(StepError::Test(
        failure
            .with_artifact("fuzz_log", log_str.clone())
            .with_artifact("fuzz_failure", artifact_str)
            .with_detail("protocol", c.protocol)
            .with_detail("seed", seed)
            .with_detail("case_index", first["case_index"].clone())
            .with_detail("failure_kind", first["failure_kind"].clone())
            .with_detail("cases_executed", executed)
            .with_detail("configured_iterations", c.common.iterations)
            .with_detail("log_path", log_str)
            .with_detail("failures", failures)
            .with_detail("first_failure", first),
    ))
}

/// A compiled `contains`/`regex` rule and its description.
fn rule(
    contains: &Option<String>,
    regex: &Option<String>,
    field: &str,
) -> Result<Option<(Matcher, String)>, StepError> {
    if let Some(c) = contains {
        return Ok(Some((
            Matcher::Contains(c.as_bytes().to_vec()),
            format!("contains {c:?}"),
        )));
    }
    match regex {
        Some(r) => regex::bytes::Regex::new(r)
            .map(|re| Some((Matcher::Regex(re), format!("regex {r:?}"))))
            .map_err(|e| config_error(format!("`{field}` is not a valid regex: {e}"))),
        None => Ok(None),
    }
}

impl Exec<'_> {
    pub(super) fn fuzz_uart(&mut self, step: &Step, f: &FuzzUart) -> StepResult {
        let key = (f.node.clone(), f.transport.clone());
        if !self.session.uarts.contains_key(&key) {
            return Err(config_error(format!(
                "transport {}.{} is not open (is it a uart transport?)",
                f.node, f.transport
            )));
        }
        let fail = match rule(&f.fail_contains, &None, "fail_contains")? {
            Some(r) => Some(r),
            None => rule(&None, &f.fail_regex, "fail_regex")?,
        };
        let heartbeat = match &f.heartbeat_command {
            Some(cmd) => rule(
                &f.heartbeat_expect_contains,
                &f.heartbeat_expect_regex,
                "heartbeat_expect_regex",
            )?
            .map(|(m, r)| (cmd.clone(), m, r)),
            None => None,
        };
        let (replay, payload) = match load_replay(self, &f.common, "uart")? {
            Some((r, case)) => {
                let p = hex_field(&case, "payload_hex")
                    .map_err(|e| config_error(format!("replay artifact {}: {e}", r.path)))?;
                (Some(r), Some(p))
            }
            None => (None, None),
        };
        let c = Campaign {
            step,
            protocol: "uart",
            common: &f.common,
            replay,
            transport_log: self.session.uarts.get(&key).map(|u| u.log_path()),
        };
        run_campaign(self, c, |exec, seed| {
            let payload = payload
                .clone()
                .unwrap_or_else(|| generate::uart_case(f, seed));
            exec.uart_case(&key, f, &payload, fail.as_ref(), heartbeat.as_ref())
        })
    }

    fn uart_case(
        &mut self,
        key: &(String, String),
        f: &FuzzUart,
        payload: &[u8],
        fail: Option<&(Matcher, String)>,
        heartbeat: Option<&(String, Matcher, String)>,
    ) -> Case {
        let cancel = self.cancel.clone();
        let fields = data!("mode" => f.mode, "payload_hex" => spaced_hex(payload), "payload_preview" => preview(payload));
        let Some(u) = self.session.uarts.get_mut(key) else {
            return Case::failed(fields, Kind::Transport, "the transport is not open".into());
        };
        let start = u.end_offset();
        if let Err(e) = u.send(payload) {
            return Case::failed(fields, Kind::Transport, format!("UART write failed: {e}"));
        }
        let settle = Duration::from_millis(f.settle_ms);
        match fail {
            Some((m, rule)) => match u.expect_from(m, start, settle, &cancel) {
                Ok(seen) => {
                    let context = data!("tail" => u.tail_from(start));
                    return Case::failed_with(
                        fields,
                        Kind::Oracle,
                        format!("UART output matched the failure oracle ({rule}): {seen:?}"),
                        context,
                    );
                }
                Err(ExpectMiss::Timeout { .. }) => {}
                Err(ExpectMiss::Io(e)) => {
                    return Case::failed(fields, Kind::Transport, format!("UART read failed: {e}"));
                }
                Err(ExpectMiss::Cancelled) => {
                    return Case {
                        fields,
                        outcome: Outcome::Cancelled,
                    };
                }
            },
            None => {
                if cancel.wait_timeout(settle) {
                    return Case {
                        fields,
                        outcome: Outcome::Cancelled,
                    };
                }
            }
        }
        let Some((cmd, m, rule)) = heartbeat else {
            return Case {
                fields,
                outcome: Outcome::Passed,
            };
        };
        let hb_start = u.end_offset();
        if let Err(e) = u.send(cmd.as_bytes()) {
            return Case::failed(fields, Kind::Transport, format!("UART write failed: {e}"));
        }
        let within = Duration::from_millis(f.heartbeat_within_ms);
        match u.expect_from(m, hb_start, within, &cancel) {
            Ok(_) => Case {
                fields,
                outcome: Outcome::Passed,
            },
            Err(ExpectMiss::Timeout { tail, .. }) => Case::failed_with(
                fields,
                Kind::Heartbeat,
                format!(
                    "no heartbeat answer ({rule}) within {} ms of {cmd:?}",
                    f.heartbeat_within_ms
                ),
                data!("match_rule" => rule, "last_seen" => tail, "tail" => u.tail_from(start)),
            ),
            Err(ExpectMiss::Io(e)) => {
                Case::failed(fields, Kind::Transport, format!("UART read failed: {e}"))
            }
            Err(ExpectMiss::Cancelled) => Case {
                fields,
                outcome: Outcome::Cancelled,
            },
        }
    }

    pub(super) fn fuzz_modbus(&mut self, step: &Step, f: &FuzzModbus) -> StepResult {
        let key = (f.node.clone(), f.transport.clone());
        if !self.session.modbus.contains_key(&key) {
            return Err(StepError::Run(Failure::new(
                Category::TransportOpenFailed,
                format!("Modbus transport {}.{} is not open", f.node, f.transport),
            )));
        }
        let ops = f
            .operations
            .iter()
            .map(|o| {
                ModbusOp::parse(o)
                    .ok_or_else(|| config_error(format!("unknown fuzz_modbus operation `{o}`")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if ops.is_empty() {
            return Err(config_error(
                "fuzz_modbus needs at least one operation".into(),
            ));
        }
        let (replay, fixed) = match load_replay(self, &f.common, "modbus")? {
            Some((r, case)) => {
                let c = modbus_replay(&case)
                    .map_err(|e| config_error(format!("replay artifact {}: {e}", r.path)))?;
                (Some(r), Some(c))
            }
            None => (None, None),
        };
        let c = Campaign {
            step,
            protocol: "modbus",
            common: &f.common,
            replay,
            transport_log: self.session.modbus.get(&key).map(|m| m.log_path.clone()),
        };
        run_campaign(self, c, |exec, seed| {
            let case = fixed
                .clone()
                .unwrap_or_else(|| generate::modbus_case(f, &ops, seed));
            exec.modbus_case(&key, f, &case)
        })
    }

    fn modbus_case(&mut self, key: &(String, String), f: &FuzzModbus, c: &ModbusCase) -> Case {
        let cancel = self.cancel.clone();
        let Some(m) = self.session.modbus.get_mut(key) else {
            return Case::failed(
                Map::new(),
                Kind::Transport,
                "the transport is not open".into(),
            );
        };
        let slave = u8::try_from(f.slave.unwrap_or(m.default_slave)).unwrap_or(0);
        let fields = data!("operation" => c.op.name(), "slave" => slave, "address" => c.address,
                           "count" => c.count, "value" => c.value);
        let (count, value) = (c.count.unwrap_or(1), c.value.unwrap_or(0));
        let req = match c.op {
            ModbusOp::ReadHoldingRegisters => Request::ReadHoldingRegisters {
                address: c.address,
                count,
            },
            ModbusOp::ReadCoils => Request::ReadCoils {
                address: c.address,
                count,
            },
            ModbusOp::WriteSingleRegister => Request::WriteSingleRegister {
                address: c.address,
                value,
            },
            ModbusOp::WriteSingleCoil => Request::WriteSingleCoil {
                address: c.address,
                value: value != 0,
            },
        };
        m.log.line(&format!(
            "FUZZ {} slave {slave} address {} {}",
            c.op.name(),
            c.address,
            match (c.count, c.value) {
                (Some(n), _) => format!("count {n}"),
                (None, Some(v)) => format!("value {v}"),
                (None, None) => String::new(),
            }
        ));
        let result = m.link.call(slave, &req, &cancel);
        m.log.line(&match &result {
            Ok(_) => "OK".to_string(),
            Err(e) => format!("ERROR {e}"),
        });
        match result {
            Ok(_) => Case {
                fields,
                outcome: Outcome::Passed,
            },
            Err(e @ ModbusError::Exception { .. }) if f.allow_protocol_exceptions => Case {
                fields,
                outcome: Outcome::Exception(e.to_string()),
            },
            Err(e @ ModbusError::Exception { .. }) => Case::failed_with(
                fields,
                Kind::Oracle,
                format!("the slave answered with {e}"),
                data!("exception" => e.to_string()),
            ),
            Err(ModbusError::Cancelled) => Case {
                fields,
                outcome: Outcome::Cancelled,
            },
            Err(e @ (ModbusError::Timeout { .. } | ModbusError::Frame(_) | ModbusError::Io(_))) => {
                Case::failed(fields, Kind::Transport, format!("Modbus transport: {e}"))
            }
        }
    }

    pub(super) fn fuzz_can(&mut self, step: &Step, f: &FuzzCan) -> StepResult {
        let key = (f.node.clone(), f.transport.clone());
        let Some(mut port) = self.session.can.remove(&key) else {
            return Err(config_error(format!(
                "fuzz_can: transport {}.{} is not an open CAN transport",
                f.node, f.transport
            )));
        };
        let replay = load_replay(self, &f.common, "can");
        let result = replay.and_then(|replay| {
            let (replay, fixed) = match replay {
                Some((r, case)) => {
                    let frame = can_replay(&case)
                        .map_err(|e| config_error(format!("replay artifact {}: {e}", r.path)))?;
                    (Some(r), Some(frame))
                }
                None => (None, None),
            };
            let c = Campaign {
                step,
                protocol: "can",
                common: &f.common,
                replay,
                transport_log: None,
            };
            run_campaign(self, c, |exec, seed| {
                let frame = fixed.clone().unwrap_or_else(|| generate::can_case(f, seed));
                can_case(&mut port, f, &frame, &exec.cancel)
            })
        });
        self.session.can.insert(key, port);
        result
    }
}

fn can_case(
    port: &mut dyn CanPort,
    f: &FuzzCan,
    frame: &CanFrame,
    cancel: &hilt_hw::CancelToken,
) -> Case {
    let fields = data!("frame_id" => frame.id, "frame_id_hex" => format!("0x{:X}", frame.id),
                       "extended" => frame.extended, "fd" => frame.fd, "bitrate_switch" => frame.bitrate_switch,
                       "error_state_indicator" => frame.error_state_indicator, "payload_hex" => spaced_hex(&frame.data));
    let within = Duration::from_millis(f.response_within_ms);
    match can::run_case(port, frame, f.expect_response.as_ref(), within, cancel) {
        can::CanOutcome::Passed { .. } => Case {
            fields,
            outcome: Outcome::Passed,
        },
        can::CanOutcome::NoResponse { seen } => Case::failed_with(
            fields,
            Kind::ResponseOracle,
            format!(
                "no frame matching expect_response within {} ms",
                f.response_within_ms
            ),
            data!("observed_preview" => seen.iter().map(|s| format!("0x{:X} {}", s.id, hex::encode(&s.data))).collect::<Vec<_>>()),
        ),
        can::CanOutcome::Transport(e) => {
            Case::failed(fields, Kind::Transport, format!("CAN transport: {e}"))
        }
        can::CanOutcome::Cancelled => Case {
            fields,
            outcome: Outcome::Cancelled,
        },
    }
}

fn modbus_replay(case: &Value) -> Result<ModbusCase, String> {
    let op = case["operation"]
        .as_str()
        .and_then(ModbusOp::parse)
        .ok_or("its case has no known `operation`")?;
    let u16_field = |k: &str| -> Result<Option<u16>, String> {
        match &case[k] {
            Value::Null => Ok(None),
            v => v
                .as_u64()
                .and_then(|n| u16::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| format!("`{k}` is not a 16-bit number")),
        }
    };
    Ok(ModbusCase {
        op,
        address: u16_field("address")?.ok_or("its case has no `address`")?,
        count: u16_field("count")?,
        value: u16_field("value")?,
    })
}

fn can_replay(case: &Value) -> Result<CanFrame, String> {
    let flag = |k: &str| case[k].as_bool().unwrap_or(false);
    Ok(CanFrame {
        id: case["frame_id"]
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or("its case has no `frame_id`")?,
        extended: flag("extended"),
        fd: flag("fd"),
        bitrate_switch: flag("bitrate_switch"),
        error_state_indicator: flag("error_state_indicator"),
        data: hex_field(case, "payload_hex")?,
    })
}

/// The run's fuzz summary (run-results §6.1) over every campaign record.
pub fn fuzz_summary(campaigns: &[Value]) -> Value {
    let sum = |k: &str| {
        campaigns
            .iter()
            .map(|c| c[k].as_u64().unwrap_or(0))
            .sum::<u64>()
    };
    let protocols: std::collections::BTreeSet<&str> = campaigns
        .iter()
        .filter_map(|c| c["protocol"].as_str())
        .collect();
    let failures = sum("failures");
    json!({
        "schema_version": "benchci.fuzz_summary.v1",
        "campaign_count": campaigns.len(),
        "cases_executed": sum("cases_executed"),
        "failures": failures,
        "protocol_exceptions": sum("protocol_exceptions"),
        "protocols": protocols,
        "status": if failures > 0 { "failed" } else { "passed" },
    })
}

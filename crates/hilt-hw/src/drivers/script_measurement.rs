//! `script_measurement`: runs a bench-owned command per reading (argv split with shell-like
//! quoting, never a shell, in its own process group, killed at `timeout_ms`) and reads
//! its output: a bare number, a JSON number, or a JSON object with the value at
//! `value_json_path` (a dot path) and the unit at `unit_json_path`.
//!
//! Difference from BenchCI: the command's stderr is captured with its stdout (hilt's
//! process runner keeps one log per child), so a script that prints diagnostics should
//! print its JSON result as its last line; that line is tried when the whole output is
//! not JSON.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hilt_model::bench::ResourceDriver as Params;
use serde_json::Value;

use super::{Opened, Problem, ResourceDriver, resource_lock, wrong_params};
use crate::locks::LockSpec;
use crate::measurement::{Instrument, Reading};
use crate::process::{CommandSpec, run};
use crate::{CancelToken, HwError, ResourceKind};

const KIND: ResourceKind = ResourceKind::Measurement;
/// Output read back at most.
const MAX_OUTPUT: u64 = 64 * 1024;

pub struct ScriptMeasurement;

/// Splits a command line like a POSIX shell does for words: blanks separate, `'…'` is
/// literal, `"…"` allows `\"` `\\` `\$` `` \` ``, a backslash outside quotes escapes the next
/// character. No expansion of any kind.
pub fn split(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err("unterminated single quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => cur.push(c),
                            Some('\n') => {}
                            Some(c) => {
                                cur.push('\\');
                                cur.push(c);
                            }
                            None => return Err("unterminated double quote".into()),
                        },
                        Some(c) => cur.push(c),
                        None => return Err("unterminated double quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some('\n') => {}
                    Some(c) => cur.push(c),
                    None => return Err("a trailing backslash escapes nothing".into()),
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

impl ResourceDriver for ScriptMeasurement {
    fn tag(&self) -> &'static str {
        "script_measurement"
    }

    fn kind(&self) -> ResourceKind {
        KIND
    }

    fn check(&self, params: &Params) -> Vec<Problem> {
        let Params::ScriptMeasurement {
            command,
            timeout_ms,
            ..
        } = params
        else {
            return Vec::new();
        };
        let mut out = Vec::new();
        match split(command) {
            Ok(argv) if argv.is_empty() => out.push(Problem::new("command", "names no program")),
            Ok(_) => {}
            Err(e) => out.push(Problem::new(
                "command",
                format!("cannot be split into words: {e}"),
            )),
        }
        if *timeout_ms == 0 {
            out.push(Problem::new("timeout_ms", "must be greater than 0"));
        }
        out
    }

    fn lock_specs(&self, resource: &str, params: &Params) -> Vec<LockSpec> {
        let command = match params {
            Params::ScriptMeasurement { command, .. } => command.clone(),
            _ => String::new(),
        };
        vec![resource_lock(
            resource,
            params,
            format!("script_measurement:{command}"),
            format!("measurement {resource}"),
            "measurement_script",
        )]
    }

    fn open(&self, resource: &str, params: &Params) -> Result<Opened, HwError> {
        let Params::ScriptMeasurement {
            command,
            quantity,
            unit,
            value_json_path,
            unit_json_path,
            timeout_ms,
            cwd,
        } = params
        else {
            return Err(wrong_params(KIND, self.tag(), params));
        };
        let argv =
            split(command).map_err(|e| HwError::open(KIND, "measurement script", resource, e))?;
        if argv.is_empty() {
            return Err(HwError::open(
                KIND,
                "measurement script",
                resource,
                "names no program",
            ));
        }
        Ok(Opened::Instrument(Box::new(Script {
            argv,
            command: command.clone(),
            cwd: cwd.as_ref().map(PathBuf::from),
            timeout: Duration::from_millis((*timeout_ms).max(1)),
            quantity: quantity.clone(),
            unit: unit.clone(),
            value_path: value_json_path.clone(),
            unit_path: unit_json_path.clone(),
        })))
    }
}

struct Script {
    argv: Vec<String>,
    command: String,
    cwd: Option<PathBuf>,
    timeout: Duration,
    quantity: String,
    unit: Option<String>,
    value_path: String,
    unit_path: String,
}

fn at_path<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, k| v.get(k))
}

/// The value and unit in a script's output.
fn parse_output(
    text: &str,
    value_path: &str,
    unit_path: &str,
) -> Result<(f64, Option<String>), String> {
    let text = text.trim();
    let json = serde_json::from_str::<Value>(text).ok().or_else(|| {
        text.lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .and_then(|l| serde_json::from_str::<Value>(l.trim()).ok())
    });
    let short = &text[..text.floor_char_boundary(120)];
    let (v, unit) = match json {
        Some(Value::Object(o)) => {
            let o = Value::Object(o);
            let v = match at_path(&o, value_path) {
                Some(Value::Number(n)) => n.as_f64(),
                Some(Value::String(s)) => s.trim().parse().ok(),
                _ => None,
            }
            .ok_or_else(|| format!("output {short:?} has no numeric `{value_path}`"))?;
            let unit = match at_path(&o, unit_path) {
                Some(Value::String(s)) => Some(s.clone()),
                _ => None,
            };
            (v, unit)
        }
        Some(Value::Number(n)) => (n.as_f64().unwrap_or(f64::NAN), None),
        _ => (
            crate::scpi::parse_number(text)
                .ok_or_else(|| format!("output {short:?} holds no number"))?,
            None,
        ),
    };
    if !v.is_finite() {
        return Err(format!("{v} is not a finite reading"));
    }
    Ok((v, unit))
}

static SEQ: AtomicU64 = AtomicU64::new(0);

impl Instrument for Script {
    fn read(&mut self) -> Result<Reading, HwError> {
        let fail = |e: String| {
            HwError::io(
                KIND,
                "measurement script",
                format!("`{}`: {e}", self.command),
            )
        };
        let out_path = std::env::temp_dir().join(format!(
            "hilt-script-measurement-{}-{}.out",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let mut spec = CommandSpec::new(self.argv.clone(), &out_path);
        spec.cwd = self.cwd.clone();
        spec.timeout = self.timeout;
        spec.grace = Duration::from_millis(500);
        spec.max_output_bytes = MAX_OUTPUT;
        let outcome = run(&spec, &CancelToken::new());
        let text = std::fs::read(&out_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let _ = std::fs::remove_file(&out_path);
        let outcome = outcome.map_err(|e| fail(e.to_string()))?;
        if outcome.timed_out {
            return Err(fail(format!(
                "timed out after {} ms",
                self.timeout.as_millis()
            )));
        }
        if !outcome.success() {
            let tail: String = text
                .trim()
                .chars()
                .rev()
                .take(200)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            return Err(fail(format!(
                "exited with code {}: {tail}",
                outcome.exit_code
            )));
        }
        let (value, unit) = parse_output(&text, &self.value_path, &self.unit_path).map_err(fail)?;
        Ok(Reading {
            value,
            unit: unit.or_else(|| self.unit.clone()),
            quantity: self.quantity.clone(),
            backend: "script_measurement".into(),
            address: None,
            query: Some(self.command.clone()),
            raw_response: Some(text.trim().chars().take(200).collect()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn words_split_like_a_shell() {
        assert_eq!(
            split(r#"python3 -c 'print("{\"value\": 1}")' "a b" c\ d"#).unwrap(),
            ["python3", "-c", r#"print("{\"value\": 1}")"#, "a b", "c d"]
        );
        assert_eq!(split(r#""x\"y" ''"#).unwrap(), ["x\"y", ""]);
        assert!(split("echo 'open").is_err());
        assert!(split("").unwrap().is_empty());
    }

    #[test]
    fn outputs() {
        assert_eq!(parse_output("3.3\n", "value", "unit"), Ok((3.3, None)));
        assert_eq!(
            parse_output(
                "warming up\n{\"r\": {\"v\": 2}, \"u\": \"mA\"}\n",
                "r.v",
                "u"
            ),
            Ok((2.0, Some("mA".into())))
        );
        assert!(parse_output("{\"x\": 1}", "value", "unit").is_err());
        assert!(parse_output("nothing", "value", "unit").is_err());
    }

    proptest! {
        #[test]
        fn splitting_never_panics(s in "\\PC{0,80}") {
            let _ = split(&s);
            let _ = parse_output(&s, "a.b", "u");
        }
    }
}

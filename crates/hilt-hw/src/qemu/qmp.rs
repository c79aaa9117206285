//! A minimal QMP (QEMU Machine Protocol) client: capability negotiation and commands,
//! skipping the asynchronous events QEMU interleaves with answers.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use serde_json::{Value, json};

/// How long one QMP answer may take.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
/// A line longer than this is not QMP.
const MAX_LINE: usize = 1 << 20;

pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Qmp {
    /// Reads the greeting and leaves capability-negotiation mode.
    pub fn handshake(stream: UnixStream) -> io::Result<Qmp> {
        stream.set_read_timeout(Some(ANSWER_TIMEOUT))?;
        let writer = stream.try_clone()?;
        let mut qmp = Qmp {
            reader: BufReader::new(stream),
            writer,
        };
        let greeting = qmp.read_message()?;
        if greeting.get("QMP").is_none() {
            return Err(io::Error::other(format!(
                "unexpected QMP greeting: {greeting}"
            )));
        }
        qmp.execute("qmp_capabilities")?;
        Ok(qmp)
    }

    /// Runs a command without arguments and returns its `return` value.
    pub fn execute(&mut self, command: &str) -> io::Result<Value> {
        let mut line = json!({ "execute": command }).to_string();
        line.push('\n');
        self.writer.write_all(line.as_bytes())?;
        loop {
            let msg = self.read_message()?;
            if msg.get("event").is_some() {
                continue;
            }
            if let Some(r) = msg.get("return") {
                return Ok(r.clone());
            }
            let why = msg
                .pointer("/error/desc")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| msg.to_string());
            return Err(io::Error::other(format!("QMP `{command}` failed: {why}")));
        }
    }

    fn read_message(&mut self) -> io::Result<Value> {
        let mut line = String::new();
        let n = (&mut self.reader)
            .take(MAX_LINE as u64)
            .read_line(&mut line)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the emulator closed its monitor",
            ));
        }
        serde_json::from_str(&line)
            .map_err(|e| io::Error::other(format!("bad QMP message ({e}): {}", line.trim())))
    }
}

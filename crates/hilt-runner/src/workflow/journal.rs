//! `workflow_journal.jsonl`: every transition of a run's workflow — an attempt starting,
//! a host probed, a bundle staged, a step or a test done, an attempt ending — as one JSON
//! line, written with one `write` as it happens (no buffer a killed process could lose).
//! It is the source of truth `hilt runs resume` folds ([`super::WorkflowState`]); the
//! `workflow_state.json` snapshot is that fold, for people and programs.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;

pub const JOURNAL: &str = "workflow_journal.jsonl";

/// The journal of one attempt: appends lines tagged with the attempt number.
pub struct Journal {
    file: Option<File>,
    path: PathBuf,
    pub attempt: u32,
}

impl Journal {
    pub fn open(dir: &Path, attempt: u32) -> Journal {
        let path = dir.join(JOURNAL);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .ok();
        Journal {
            file,
            path,
            attempt,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `{"t": kind, "attempt": n, …fields}` with one write. Best effort: a journal
    /// that cannot be written costs resumability, never the run.
    pub fn record(&mut self, kind: &str, mut fields: serde_json::Map<String, Value>) {
        let Some(f) = &mut self.file else { return };
        let mut line = serde_json::Map::new();
        line.insert("t".into(), kind.into());
        line.insert("attempt".into(), self.attempt.into());
        line.insert("at".into(), hilt_model::run::now().into());
        line.append(&mut fields);
        let Ok(mut bytes) = serde_json::to_vec(&Value::Object(line)) else {
            return;
        };
        bytes.push(b'\n');
        let _ = f.write_all(&bytes);
    }
}

/// Every complete line of the journal in `dir`, parsed, and whether the file ends in a
/// torn or unparsable line (a process killed mid-write).
pub fn read(dir: &Path) -> std::io::Result<(Vec<Value>, bool)> {
    let text = match std::fs::read(dir.join(JOURNAL)) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), false)),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    let mut damaged = false;
    for line in text.split(|b| *b == b'\n') {
        if line.is_empty() {
            continue;
        }
        match serde_json::from_slice::<Value>(line) {
            Ok(v) if v.is_object() => out.push(v),
            _ => damaged = true,
        }
    }
    Ok((out, damaged))
}

/// The last `seq` of an events.jsonl, read from its tail (a resumed run numbers on from it).
pub fn last_event_seq(path: &Path) -> u64 {
    let Ok(mut f) = File::open(path) else {
        return 0;
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(64 * 1024);
    if f.seek(SeekFrom::Start(start)).is_err() {
        return 0;
    }
    let mut tail = Vec::new();
    if f.read_to_end(&mut tail).is_err() {
        return 0;
    }
    tail.split(|b| *b == b'\n')
        .filter_map(|l| serde_json::from_slice::<Value>(l).ok())
        .filter_map(|v| v["seq"].as_u64())
        .max()
        .unwrap_or(0)
}

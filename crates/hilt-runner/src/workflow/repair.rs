//! Damaged run files: a status.json that does not parse, a JSON-lines ledger whose lines do
//! not all parse (a process killed mid-write leaves a torn last line). The original is
//! always kept beside the file as `<name>.corrupt-<YYYYmmddTHHMMSSZ>`; the repaired file
//! keeps every line that parses, in order. Nothing is deleted.

use std::path::{Path, PathBuf};

/// The ledgers a run directory may hold.
pub const LEDGERS: &[&str] = &[
    "events.jsonl",
    "command_ledger.jsonl",
    "transfer_ledger.jsonl",
    super::JOURNAL,
];

/// One repair made.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Repair {
    pub file: String,
    /// Where the damaged original was kept.
    pub kept_as: String,
    pub what: String,
}

fn keep_original(path: &Path) -> std::io::Result<PathBuf> {
    let stamp = jiff::Timestamp::now()
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string();
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let mut kept = path.with_file_name(format!("{name}.corrupt-{stamp}"));
    let mut n = 2;
    while kept.exists() {
        kept = path.with_file_name(format!("{name}.corrupt-{stamp}-{n}"));
        n += 1;
    }
    std::fs::copy(path, &kept)?;
    Ok(kept)
}

/// Repairs a JSON-lines ledger in place when some of its lines do not parse.
pub fn ledger(path: &Path) -> std::io::Result<Option<Repair>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut good: Vec<u8> = Vec::with_capacity(bytes.len());
    let (mut bad, mut kept) = (0usize, 0usize);
    for line in bytes.split(|b| *b == b'\n') {
        if line.is_empty() {
            continue;
        }
        if serde_json::from_slice::<serde::de::IgnoredAny>(line).is_ok() {
            good.extend_from_slice(line);
            good.push(b'\n');
            kept += 1;
        } else {
            bad += 1;
        }
    }
    let torn_tail = !bytes.is_empty() && !bytes.ends_with(b"\n");
    if bad == 0 && !torn_tail {
        return Ok(None);
    }
    let kept_as = keep_original(path)?;
    crate::rundir::write_atomic(path, &good, true)?;
    Ok(Some(Repair {
        file: name(path),
        kept_as: name(&kept_as),
        what: format!("{bad} unreadable line(s) set aside, {kept} kept"),
    }))
}

/// Moves a status.json that does not parse aside (a copy, then the caller rewrites it).
pub fn status(path: &Path) -> std::io::Result<Option<Repair>> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if serde_json::from_slice::<serde_json::Value>(&text).is_ok_and(|v| v.is_object()) {
        return Ok(None);
    }
    let kept_as = keep_original(path)?;
    std::fs::remove_file(path)?;
    Ok(Some(Repair {
        file: name(path),
        kept_as: name(&kept_as),
        what: "not a JSON document; rebuilt from the run's other files".into(),
    }))
}

/// Checks the ledgers of `dir` cheaply: only their last 64 KiB are read; a ledger whose
/// tail is torn is repaired as a whole.
pub fn ledgers(dir: &Path) -> Vec<Repair> {
    LEDGERS
        .iter()
        .filter(|f| tail_damaged(&dir.join(f)))
        .filter_map(|f| ledger(&dir.join(f)).ok().flatten())
        .collect()
}

/// The ledgers of `dir` whose last line is torn (read-only: what `hilt runs status` reports).
pub fn damaged_ledgers(dir: &Path) -> Vec<&'static str> {
    LEDGERS
        .iter()
        .copied()
        .filter(|f| tail_damaged(&dir.join(f)))
        .collect()
}

/// Whether the file's last line is torn or does not parse.
fn tail_damaged(path: &Path) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    if len == 0 {
        return false;
    }
    let start = len.saturating_sub(64 * 1024);
    let mut tail = Vec::new();
    if f.seek(SeekFrom::Start(start)).is_err() || f.read_to_end(&mut tail).is_err() {
        return false;
    }
    if !tail.ends_with(b"\n") {
        return true;
    }
    let body = &tail[..tail.len() - 1];
    let last = match body.iter().rposition(|b| *b == b'\n') {
        Some(i) => &body[i + 1..],
        None if start == 0 => body,
        None => return false, // one line longer than the window: not judged from here
    };
    serde_json::from_slice::<serde::de::IgnoredAny>(last).is_err()
}

fn name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_ledger_keeps_its_original_and_its_good_lines() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("command_ledger.jsonl");
        std::fs::write(&p, "{\"a\":1}\n{\"b\":2}\n{\"c\":").unwrap();
        let r = ledgers(d.path());
        assert_eq!(r.len(), 1);
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "{\"a\":1}\n{\"b\":2}\n"
        );
        let kept = std::fs::read_to_string(d.path().join(&r[0].kept_as)).unwrap();
        assert_eq!(kept, "{\"a\":1}\n{\"b\":2}\n{\"c\":");
        assert!(ledgers(d.path()).is_empty(), "a repaired ledger is clean");
    }
}

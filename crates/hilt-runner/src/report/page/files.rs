//! What the page shows from the run directory's files: the transport-log lines around a
//! failure, and a link to every artifact.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use jiff::Timestamp;

/// Lines of an excerpt, at most.
pub const EXCERPT_LINES: usize = 40;
/// How much of a log is scanned for the excerpt.
const MAX_SCAN_BYTES: u64 = 64 << 20;
/// Files listed, at most, and how deep.
const MAX_FILES: usize = 500;
const MAX_DEPTH: usize = 6;

/// The last [`EXCERPT_LINES`] lines of `log` stamped within `[from, to]` (both optional:
/// open ends), or the log's last lines when none carries a readable time stamp.
pub fn excerpt(log: &Path, from: Option<Timestamp>, to: Option<Timestamp>) -> Vec<String> {
    let Ok(f) = std::fs::File::open(log) else {
        return Vec::new();
    };
    let mut in_window = VecDeque::with_capacity(EXCERPT_LINES);
    let mut tail = VecDeque::with_capacity(EXCERPT_LINES);
    let mut stamped = false;
    for line in BufReader::new(f.take(MAX_SCAN_BYTES)).lines() {
        let Ok(line) = line else { break };
        let at = line
            .split_once(' ')
            .and_then(|(t, _)| t.parse::<Timestamp>().ok());
        push(&mut tail, line.clone());
        if let Some(at) = at {
            stamped = true;
            if from.is_none_or(|f| at >= f) && to.is_none_or(|t| at <= t) {
                push(&mut in_window, line);
            }
        }
    }
    if stamped { in_window } else { tail }.into()
}

fn push(q: &mut VecDeque<String>, line: String) {
    if q.len() == EXCERPT_LINES {
        q.pop_front();
    }
    q.push_back(line);
}

/// Every file under `dir` (relative paths, sorted) with its size, up to [`MAX_FILES`];
/// `true` when some were left out. Symbolic links are listed, never followed; hidden
/// names (temporary files of writes in progress) are not.
pub fn list(dir: &Path) -> (Vec<(PathBuf, u64)>, bool) {
    let mut out = Vec::new();
    let mut more = false;
    walk(dir, dir, 0, &mut out, &mut more);
    out.sort();
    (out, more)
}

fn walk(root: &Path, dir: &Path, depth: usize, out: &mut Vec<(PathBuf, u64)>, more: &mut bool) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        // Hidden names are the temporary files of atomic writes in progress
        // (`.status.json.XXXX.tmp`): they are gone a moment later.
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let Ok(ft) = e.file_type() else { continue };
        let path = e.path();
        if ft.is_dir() {
            if depth < MAX_DEPTH {
                walk(root, &path, depth + 1, out, more);
            } else {
                *more = true;
            }
        } else if out.len() >= MAX_FILES {
            *more = true;
        } else if let Ok(rel) = path.strip_prefix(root) {
            let size = e.metadata().map(|m| m.len()).unwrap_or(0);
            out.push((rel.to_path_buf(), size));
        }
    }
}

/// A relative link to `rel`: every byte outside the unreserved set and `/` percent-encoded.
pub fn href(rel: &Path) -> String {
    let mut s = String::new();
    for b in rel.to_string_lossy().bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

/// `path` relative to the run directory, when it lies inside it.
pub fn inside(dir: &Path, path: &Path) -> Option<PathBuf> {
    let rel = path.strip_prefix(dir).ok()?;
    rel.components()
        .all(|c| matches!(c, std::path::Component::Normal(_)))
        .then(|| rel.to_path_buf())
}

/// A size a person reads at a glance.
pub fn size(n: u64) -> String {
    match n {
        n if n >= 1 << 20 => format!("{:.1} MB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_excerpt_keeps_the_window_and_its_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("t.log");
        let mut text = String::new();
        for i in 0..100 {
            text.push_str(&format!(
                "2026-01-01T00:00:{:02}.000000Z RX line {i}\n",
                i % 60
            ));
        }
        std::fs::write(&log, text).unwrap();
        let from: Timestamp = "2026-01-01T00:00:10Z".parse().unwrap();
        let to: Timestamp = "2026-01-01T00:00:12Z".parse().unwrap();
        let lines = excerpt(&log, Some(from), Some(to));
        // Seconds 10..=12 occur at i = 10..12 and 70..72: six lines.
        assert_eq!(lines.len(), 6);
        assert!(lines[0].ends_with("line 10") && lines[5].ends_with("line 72"));
        let all = excerpt(&log, None, None);
        assert_eq!(all.len(), EXCERPT_LINES);
        assert!(all.last().unwrap().ends_with("line 99"));
        std::fs::write(&log, "no stamps\nat all\n").unwrap();
        assert_eq!(
            excerpt(&log, Some(from), Some(to)),
            vec!["no stamps", "at all"]
        );
    }

    #[test]
    fn links_are_relative_and_encoded() {
        assert_eq!(
            href(Path::new("logs/nodes/a b/x.log")),
            "logs/nodes/a%20b/x.log"
        );
        assert_eq!(href(Path::new("r\"<x>.json")), "r%22%3Cx%3E.json");
        let d = Path::new("/runs/1");
        assert_eq!(
            inside(d, Path::new("/runs/1/logs/x.log")),
            Some(PathBuf::from("logs/x.log"))
        );
        assert_eq!(inside(d, Path::new("/runs/1/../2/x.log")), None);
        assert_eq!(inside(d, Path::new("/elsewhere/x.log")), None);
    }

    #[test]
    fn the_list_skips_writes_in_progress() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("logs")).unwrap();
        std::fs::write(dir.path().join("status.json"), "{}").unwrap();
        std::fs::write(dir.path().join(".status.json.Ab12Cd.tmp"), "{").unwrap();
        std::fs::write(dir.path().join("logs/a.log"), "x").unwrap();
        let (files, more) = list(dir.path());
        let names: Vec<PathBuf> = files.into_iter().map(|(f, _)| f).collect();
        assert_eq!(
            names,
            [PathBuf::from("logs/a.log"), PathBuf::from("status.json")]
        );
        assert!(!more);
    }

    #[test]
    fn sizes_read_at_a_glance() {
        assert_eq!(size(12), "12 B");
        assert_eq!(size(2048), "2.0 KB");
        assert_eq!(size(3 << 20), "3.0 MB");
    }
}

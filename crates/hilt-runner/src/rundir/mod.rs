//! The run directory: the durable record of one run.
//!
//! Snapshots (`status.json`, manifests, results) are written to a temporary file and
//! renamed into place, so a reader never sees half a file. Ledgers (`events.jsonl`,
//! `command_ledger.jsonl`) are append-only and flushed at phase and test boundaries.

mod ledger;
pub mod manifest;
mod status;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

pub use ledger::Ledger;
pub use manifest::{file_entries, write_manifests};
pub use status::{StatusBoard, derive_monitoring};

/// Writes `value` as pretty JSON (2-space indent) to `path` by atomic rename. Readers never
/// see half a file and a killed process loses nothing (the page cache survives it); the
/// run fsyncs its record once at the end ([`sync_files`]) for power loss.
pub fn write_json_atomic(path: &Path, value: &impl serde::Serialize) -> std::io::Result<()> {
    let mut text = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
    text.push(b'\n');
    write_atomic(path, &text, false)
}

/// As [`write_json_atomic`], and on disk before it returns (for acknowledgements).
pub fn write_json_durable(path: &Path, value: &impl serde::Serialize) -> std::io::Result<()> {
    let mut text = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
    text.push(b'\n');
    write_atomic(path, &text, true)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// fsyncs each file that exists, then their directory.
pub fn sync_files(dir: &Path, files: &[&str]) {
    for f in files {
        if let Ok(file) = fs::File::open(dir.join(f)) {
            let _ = file.sync_data();
        }
    }
    let _ = sync_dir(dir);
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// Writes bytes to `path` by writing a sibling temporary file (uniquely named, so
/// threads and processes writing the same document never share one) and renaming it over
/// `path`; `durable` also fsyncs the data first.
pub fn write_atomic(path: &Path, bytes: &[u8], durable: bool) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let mut f = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .permissions(fs::Permissions::from_mode(0o644))
        .tempfile_in(dir)?;
    f.write_all(bytes)?;
    if durable {
        f.as_file().sync_data()?;
    }
    f.persist(path).map(drop).map_err(|e| e.error)
}

/// Picks `<root>/<YYYYmmdd-HHMMSS>` (local time), adding `-2`, `-3`… when it exists, and
/// creates it.
pub fn create_timestamped(root: &Path) -> std::io::Result<PathBuf> {
    fs::create_dir_all(root)?;
    let stamp = jiff::Zoned::now().strftime("%Y%m%d-%H%M%S").to_string();
    for n in 1..1000 {
        let name = if n == 1 {
            stamp.clone()
        } else {
            format!("{stamp}-{n}")
        };
        let dir = root.join(name);
        match fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("too many runs in one second"))
}

/// Makes a path absolute without resolving symlinks.
pub fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

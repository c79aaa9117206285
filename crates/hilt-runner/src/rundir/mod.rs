//! The run directory: the durable record of one run.
//!
//! Snapshots (`status.json`, manifests, results) are written to a temporary file and
//! renamed into place, so a reader never sees half a file. Ledgers (`events.jsonl`,
//! `command_ledger.jsonl`) are append-only and flushed at phase and test boundaries.

mod ledger;
pub mod manifest;
mod status;
mod syncpool;
pub mod zip;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

pub use ledger::Ledger;
pub use manifest::{file_entries, write_manifests};
pub use status::{
    HEARTBEAT_INTERVAL_S, ProcState, STALL_AFTER_S, StatusBoard, derive_monitoring, process_state,
};

/// Writes `value` as pretty JSON (2-space indent) to `path` by atomic rename. Readers never
/// see half a file and a killed process loses nothing (the page cache survives it); the
/// run fsyncs its record once at the end ([`sync_files`]) for power loss.
pub fn write_json_atomic(path: &Path, value: &impl serde::Serialize) -> std::io::Result<()> {
    let mut text = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
    text.push(b'\n');
    write_atomic(path, &text, false)
}

/// fsyncs each file that exists and their directory: the run's one durability point, one
/// round of disk waits (see [`sync_together`]).
pub fn sync_files(dir: &Path, files: &[&str]) {
    let paths: Vec<PathBuf> = files
        .iter()
        .map(|f| dir.join(f))
        .filter(|p| p.is_file())
        .collect();
    let _ = sync_together(&paths, &[dir.to_path_buf()]);
}

/// Runs `f` on every item at once (the caller's thread takes the first, a fixed pool of
/// threads the rest); results in order.
fn sync_concurrently(
    items: &[PathBuf],
    f: fn(&Path) -> std::io::Result<()>,
) -> Vec<std::io::Result<()>> {
    syncpool::run_all(items, f)
}

/// Makes files already written durable in one round of disk waits: their data and the
/// directories holding them (and `dirs`) are synced all at once. The first file's error,
/// if any, is returned (the others are best effort, as in [`sync_files`]).
pub fn sync_together(files: &[PathBuf], dirs: &[PathBuf]) -> std::io::Result<()> {
    let mut all_dirs: Vec<PathBuf> = Vec::new();
    for d in files
        .iter()
        .map(|p| parent_dir(p))
        .chain(dirs.iter().map(PathBuf::as_path))
    {
        if !all_dirs.iter().any(|x| x == d) {
            all_dirs.push(d.to_path_buf());
        }
    }
    let n = files.len();
    let items: Vec<PathBuf> = files.iter().cloned().chain(all_dirs).collect();
    // Files and directories differ only in how they are synced.
    fn sync_any(p: &Path) -> std::io::Result<()> {
        let f = fs::File::open(p)?;
        if f.metadata()?.is_dir() {
            f.sync_all()
        } else {
            f.sync_data()
        }
    }
    let results = sync_concurrently(&items, sync_any);
    match results.into_iter().next() {
        Some(Err(e)) if n > 0 => Err(e),
        _ => Ok(()),
    }
}

/// Writes bytes to `path` by writing a sibling temporary file (uniquely named, so
/// threads and processes writing the same document never share one) and renaming it over
/// `path`; `durable` also fsyncs the data first.
pub fn write_atomic(path: &Path, bytes: &[u8], durable: bool) -> std::io::Result<()> {
    let mut f = temp_beside(path)?;
    f.write_all(bytes)?;
    if durable {
        f.as_file().sync_data()?;
    }
    f.persist(path).map(drop).map_err(|e| e.error)
}

/// A uniquely named temporary file in `path`'s directory, to be renamed over `path`.
fn temp_beside(path: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    use std::os::unix::fs::PermissionsExt;
    let dir = parent_dir(path);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .permissions(fs::Permissions::from_mode(0o644))
        .tempfile_in(dir)
}

/// The directory holding `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
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

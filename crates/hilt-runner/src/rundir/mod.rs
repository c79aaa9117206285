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

/// fsyncs each file that exists, then their directory: the run's one durability point.
/// The files are synced concurrently (one short-lived thread each), so their waits for the
/// disk overlap instead of queueing one behind another.
pub fn sync_files(dir: &Path, files: &[&str]) {
    let paths: Vec<PathBuf> = files
        .iter()
        .map(|f| dir.join(f))
        .filter(|p| p.is_file())
        .collect();
    sync_concurrently(&paths, |p| fs::File::open(p)?.sync_data());
    let _ = sync_dir(dir);
}

/// Replaces `path` with `bytes` durably, together with files already written: the new
/// content and every file of `also` are synced concurrently, then `path` is renamed into
/// place and the directories involved (theirs, and `dirs`, e.g. the parent of a directory
/// just created) are synced, concurrently too. Two rounds of disk waits in all, however
/// many files; on return all of it survives a power loss.
pub fn write_durable_with(
    path: &Path,
    bytes: &[u8],
    also: &[PathBuf],
    dirs: &[PathBuf],
) -> std::io::Result<()> {
    let dir = parent_dir(path);
    let mut tmp = temp_beside(path)?;
    tmp.write_all(bytes)?;
    let mut files: Vec<PathBuf> = vec![tmp.path().to_path_buf()];
    files.extend(also.iter().cloned());
    let results = sync_concurrently(&files, |p| fs::File::open(p)?.sync_data());
    results[0]
        .as_ref()
        .map_err(|e| std::io::Error::new(e.kind(), e.to_string()))?;
    tmp.persist(path).map_err(|e| e.error)?;
    let mut all: Vec<PathBuf> = vec![dir.to_path_buf()];
    for d in also
        .iter()
        .filter_map(|p| p.parent())
        .chain(dirs.iter().map(PathBuf::as_path))
    {
        if !all.iter().any(|x| x == d) {
            all.push(d.to_path_buf());
        }
    }
    let results = sync_concurrently(&all, sync_dir);
    results[0]
        .as_ref()
        .map_err(|e| std::io::Error::new(e.kind(), e.to_string()))?;
    Ok(())
}

/// Runs `f` on every item at once (the caller's thread takes the first); results in order.
fn sync_concurrently(
    items: &[PathBuf],
    f: impl Fn(&Path) -> std::io::Result<()> + Sync,
) -> Vec<std::io::Result<()>> {
    std::thread::scope(|s| {
        let f = &f;
        let handles: Vec<_> = items[1.min(items.len())..]
            .iter()
            .map(|p| s.spawn(move || f(p)))
            .collect();
        let mut out = Vec::with_capacity(items.len());
        if let Some(first) = items.first() {
            out.push(f(first));
        }
        out.extend(handles.into_iter().map(|h| {
            h.join()
                .unwrap_or_else(|_| Err(std::io::Error::other("sync thread panicked")))
        }));
        out
    })
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    fs::File::open(dir)?.sync_all()
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

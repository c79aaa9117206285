//! One lock file: open it safely, flock it, write and read the owner record.

use super::{Holder, LOCK_SCHEMA_VERSION, LockError, LockSpec};
use serde_json::{Map, Value, json};
use std::fs::{File, OpenOptions, Permissions};
use std::io::{self, ErrorKind, Read};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Largest owner record [`read_holder`] reads.
const MAX_OWNER_BYTES: u64 = 64 * 1024;

/// Who is taking locks; written into every lock file of one acquisition.
pub(crate) struct Owner {
    pub run_id: Option<String>,
    pub pid: u32,
    pub hostname: Option<String>,
    pub platform: String,
    pub created_at: String,
    pub lock_count: usize,
}

impl Owner {
    pub fn current(run_id: Option<&str>, lock_count: usize) -> Owner {
        Owner {
            run_id: run_id.map(str::to_owned),
            pid: std::process::id(),
            hostname: nix::unistd::gethostname()
                .ok()
                .map(|h| h.to_string_lossy().into_owned()),
            platform: platform(),
            created_at: utc_now(),
            lock_count,
        }
    }

    fn record(&self, spec: &LockSpec) -> Value {
        json!({
            "schema_version": LOCK_SCHEMA_VERSION,
            "run_id": self.run_id,
            "pid": self.pid,
            "hostname": self.hostname,
            "platform": self.platform,
            "created_at": self.created_at,
            "lock_count": self.lock_count,
            "resource": Value::Object(spec.to_json()),
        })
    }
}

/// A lock file this process holds an exclusive `flock` on.
pub(crate) struct HeldLock {
    file: File,
}

impl HeldLock {
    /// Truncates, unlocks and closes. The file itself stays.
    pub fn release(self) {
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

/// Opens and tries to lock `path`. `Ok(None)` when another open file holds the lock.
pub(crate) fn try_lock(
    path: &Path,
    shared_dir: bool,
    owner: &Owner,
    spec: &LockSpec,
) -> Result<Option<HeldLock>, LockError> {
    let io_err = |source: io::Error| LockError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = open_lock_file(path).map_err(io_err)?;
    let meta = file.metadata().map_err(io_err)?;
    if !meta.is_file() {
        return Err(io_err(io::Error::other(
            "not a regular file; remove it so a lock file can be created",
        )));
    }
    if shared_dir {
        let mode = meta.mode() & 0o777;
        if meta.uid() == nix::unistd::geteuid().as_raw() {
            if mode != 0o666 {
                file.set_permissions(Permissions::from_mode(0o666))
                    .map_err(io_err)?;
            }
        } else if mode & 0o666 != 0o666 {
            return Err(io_err(io::Error::new(
                ErrorKind::PermissionDenied,
                format!(
                    "owned by uid {} with mode {mode:o}, not world read-write; ask its owner to \
                     run `chmod 666` on it",
                    meta.uid()
                ),
            )));
        }
    }
    // `File::try_lock` is `flock(LOCK_EX | LOCK_NB)` on Linux, the lock kind BenchCI uses.
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
        Err(std::fs::TryLockError::Error(e)) => return Err(io_err(e)),
    }
    let held = HeldLock { file };
    let mut text = serde_json::to_string_pretty(&owner.record(spec)).expect("json value");
    text.push('\n');
    let written = held
        .file
        .set_len(0)
        // No fsync: the kernel's flock is the lock; the owner text is for people and dies
        // with the process anyway. (It was 1 fsync per resource per run.)
        .and_then(|()| held.file.write_all_at(text.as_bytes(), 0));
    match written {
        Ok(()) => Ok(Some(held)),
        Err(e) => {
            held.release();
            Err(io_err(e))
        }
    }
}

/// Opens an existing lock file or creates a new one (mode 0666 before umask), never
/// following a symlink. Existing files are opened without `O_CREAT` so that the
/// `protected_regular` rule of sticky directories does not refuse other users' files.
fn open_lock_file(path: &Path) -> io::Result<File> {
    let flags = nix::libc::O_NOFOLLOW | nix::libc::O_NOCTTY | nix::libc::O_CLOEXEC;
    let symlink_error = |e: io::Error| {
        if e.raw_os_error() == Some(nix::libc::ELOOP) {
            io::Error::other("it is a symlink; lock files must be regular files")
        } else {
            e
        }
    };
    for _ in 0..8 {
        match OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(flags)
            .open(path)
        {
            Ok(f) => return Ok(f),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(symlink_error(e)),
        }
        match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o666)
            .custom_flags(flags)
            .open(path)
        {
            Ok(f) => return Ok(f),
            // Someone created it between the two opens: open theirs.
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(symlink_error(e)),
        }
    }
    Err(io::Error::other(
        "the lock file keeps appearing and disappearing",
    ))
}

/// Reads the owner record of a lock file. `None` when the file is missing, empty, not a
/// regular file or not a JSON object.
pub fn read_holder(path: &Path) -> Option<Holder> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    file.take(MAX_OWNER_BYTES).read_to_string(&mut text).ok()?;
    let record: Map<String, Value> = serde_json::from_str(&text).ok()?;
    let string = |name: &str| record.get(name).and_then(Value::as_str).map(str::to_owned);
    Some(Holder {
        pid: record
            .get("pid")
            .and_then(Value::as_u64)
            .and_then(|p| u32::try_from(p).ok()),
        run_id: string("run_id"),
        hostname: string("hostname"),
        since: string("created_at"),
    })
}

/// The lock file path of `spec` in `dir`.
pub(crate) fn lock_path(dir: &Path, spec: &LockSpec) -> PathBuf {
    dir.join(super::lock_file_name(
        &spec.category,
        &spec.display_name,
        &spec.key,
    ))
}

/// UTC now, ISO-8601 with microseconds and `Z`.
fn utc_now() -> String {
    format!("{:.6}", jiff::Timestamp::now())
}

/// Like Python's `platform.platform()` prefix: `Linux-<kernel release>-<arch>`.
fn platform() -> String {
    let os = match std::env::consts::OS {
        "linux" => "Linux",
        "macos" => "Darwin",
        "freebsd" => "FreeBSD",
        other => other,
    };
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|r| r.trim().to_owned())
        .unwrap_or_default();
    if release.is_empty() {
        format!("{os}-{}", std::env::consts::ARCH)
    } else {
        format!("{os}-{release}-{}", std::env::consts::ARCH)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_at_is_utc_microseconds() {
        let t = utc_now();
        assert_eq!(t.len(), "2025-01-01T00:00:00.000000Z".len(), "{t}");
        assert!(t.ends_with('Z'));
        assert_eq!(&t[19..20], ".");
    }

    #[test]
    fn read_holder_tolerates_junk() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("x.lock");
        assert_eq!(read_holder(&p), None);
        std::fs::write(&p, b"").unwrap();
        assert_eq!(read_holder(&p), None);
        std::fs::write(&p, b"{\"pid\": 7, \"run_id\": null, \"created_at\": \"t\"}").unwrap();
        let h = read_holder(&p).unwrap();
        assert_eq!(h.pid, Some(7));
        assert_eq!(h.run_id, None);
        assert_eq!(h.since.as_deref(), Some("t"));
    }
}

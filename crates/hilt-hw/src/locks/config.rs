//! Where lock files live and whether locking is on.

use super::LockError;
use std::fs::{self, OpenOptions, Permissions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// BenchCI 2.0.1's default lock directory on POSIX hosts. hilt uses the same directory so
/// that hilt and BenchCI runs on one host exclude each other.
pub const DEFAULT_LOCK_DIR: &str = "/tmp/benchci-locks";

const DIR_VARS: [&str; 2] = ["HILT_LOCK_DIR", "BENCHCI_LOCK_DIR"];
const DISABLE_VARS: [&str; 2] = [
    "HILT_DISABLE_RESOURCE_LOCKS",
    "BENCHCI_DISABLE_RESOURCE_LOCKS",
];

/// Resolved lock settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockConfig {
    /// Absolute lock directory.
    pub dir: PathBuf,
    /// `false` when an opt-out variable is set; the caller should print a warning.
    pub enabled: bool,
}

impl LockConfig {
    /// Reads the process environment; see [`LockConfig::from_vars`].
    pub fn from_env() -> Result<LockConfig, LockError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Resolves the settings from a variable lookup, without touching the file system.
    ///
    /// Directory: `HILT_LOCK_DIR`, else `BENCHCI_LOCK_DIR` (made absolute against the
    /// current directory), else [`DEFAULT_LOCK_DIR`]. Locking is off when
    /// `HILT_DISABLE_RESOURCE_LOCKS` or `BENCHCI_DISABLE_RESOURCE_LOCKS` is `1`, `true`,
    /// `yes` or `on` (any case).
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<LockConfig, LockError> {
        let enabled = !DISABLE_VARS
            .iter()
            .any(|name| get(name).is_some_and(|v| is_truthy(&v)));
        let configured = DIR_VARS
            .iter()
            .find_map(|name| get(name).filter(|v| !v.is_empty()));
        let dir = match configured {
            Some(dir) => std::path::absolute(&dir).map_err(|e| LockError::Dir {
                path: PathBuf::from(&dir),
                reason: format!("cannot make the path absolute: {e}"),
            })?,
            None => PathBuf::from(DEFAULT_LOCK_DIR),
        };
        Ok(LockConfig { dir, enabled })
    }

    /// `true` for the shared default directory, whose lock files are made world
    /// read-write so that every user on the host can take them.
    pub fn is_default_dir(&self) -> bool {
        self.dir == Path::new(DEFAULT_LOCK_DIR)
    }

    /// Creates the directory if missing and checks it: it must be a real directory (not a
    /// symlink). The default directory is chmod'ed to `1777`; when that is refused (someone
    /// else owns it) its mode must already be sticky and world read-write.
    ///
    /// [`acquire`](super::acquire) calls this; self-tests may call it on their own.
    pub fn prepare_dir(&self) -> Result<(), LockError> {
        let path = &self.dir;
        let dir_err = |reason: String| LockError::Dir {
            path: path.clone(),
            reason,
        };
        match fs::symlink_metadata(path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fs::create_dir_all(path).map_err(|e| dir_err(format!("cannot create it: {e}")))?
            }
            Err(e) => return Err(dir_err(format!("cannot inspect it: {e}"))),
        }
        let meta =
            fs::symlink_metadata(path).map_err(|e| dir_err(format!("cannot inspect it: {e}")))?;
        if meta.file_type().is_symlink() {
            return Err(dir_err(
                "it is a symlink; the lock directory must be a real directory".into(),
            ));
        }
        if !meta.is_dir() {
            return Err(dir_err("it is not a directory".into()));
        }
        if self.is_default_dir() {
            // Open without following links so that the chmod hits what was checked above.
            let dir = OpenOptions::new()
                .read(true)
                .custom_flags(nix::libc::O_DIRECTORY | nix::libc::O_NOFOLLOW)
                .open(path)
                .map_err(|e| dir_err(format!("cannot open it: {e}")))?;
            if let Err(e) = dir.set_permissions(Permissions::from_mode(0o1777)) {
                let mode = dir
                    .metadata()
                    .map_err(|e| dir_err(format!("cannot inspect it: {e}")))?
                    .mode();
                if mode & 0o1006 != 0o1006 {
                    return Err(dir_err(format!(
                        "cannot chmod it to 1777 ({e}) and its mode {:o} is not sticky and \
                         world read-write; ask its owner to run `chmod 1777` on it",
                        mode & 0o7777
                    )));
                }
            }
        }
        Ok(())
    }
}

fn is_truthy(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "on"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> LockConfig {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        LockConfig::from_vars(|k| map.get(k).cloned()).unwrap()
    }

    #[test]
    fn default_dir_and_enabled() {
        let c = config(&[]);
        assert_eq!(c.dir, PathBuf::from(DEFAULT_LOCK_DIR));
        assert!(c.enabled);
        assert!(c.is_default_dir());
    }

    #[test]
    fn hilt_dir_wins_over_benchci_dir_and_is_absolute() {
        let c = config(&[("BENCHCI_LOCK_DIR", "/b"), ("HILT_LOCK_DIR", "rel/locks")]);
        assert!(c.dir.is_absolute());
        assert!(c.dir.ends_with("rel/locks"));
        let c = config(&[("BENCHCI_LOCK_DIR", "/b"), ("HILT_LOCK_DIR", "")]);
        assert_eq!(c.dir, PathBuf::from("/b"));
        assert!(!c.is_default_dir());
    }

    #[test]
    fn opt_out_values() {
        for v in ["1", "true", "YES", "On"] {
            assert!(
                !config(&[("HILT_DISABLE_RESOURCE_LOCKS", v)]).enabled,
                "{v}"
            );
            assert!(
                !config(&[("BENCHCI_DISABLE_RESOURCE_LOCKS", v)]).enabled,
                "{v}"
            );
        }
        for v in ["0", "false", "no", "off", ""] {
            assert!(config(&[("HILT_DISABLE_RESOURCE_LOCKS", v)]).enabled, "{v}");
        }
    }

    #[test]
    fn symlink_and_file_are_rejected() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("real");
        fs::create_dir(&real).unwrap();
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let file = tmp.path().join("file");
        fs::write(&file, b"").unwrap();
        for (path, needle) in [(&link, "symlink"), (&file, "not a directory")] {
            let c = LockConfig {
                dir: path.clone(),
                enabled: true,
            };
            match c.prepare_dir() {
                Err(LockError::Dir { reason, .. }) => assert!(reason.contains(needle), "{reason}"),
                other => panic!("expected a Dir error, got {other:?}"),
            }
        }
        let nested = LockConfig {
            dir: tmp.path().join("a/b"),
            enabled: true,
        };
        nested.prepare_dir().unwrap();
        assert!(tmp.path().join("a/b").is_dir());
    }
}

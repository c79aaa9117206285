//! Lock errors and the holder of a busy lock.

use std::fmt;
use std::path::PathBuf;

/// Who holds a lock, as recorded in its lock file. Every field is optional: the file may be
/// empty (a holder that has not written yet) or written by another tool version.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Holder {
    pub pid: Option<u32>,
    pub run_id: Option<String>,
    pub hostname: Option<String>,
    /// The holder's `created_at`.
    pub since: Option<String>,
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pid {
            Some(pid) => write!(f, "pid {pid}")?,
            None => f.write_str("another process")?,
        }
        if let Some(run_id) = &self.run_id {
            write!(f, " (run {run_id})")?;
        }
        if let Some(host) = &self.hostname {
            write!(f, " on host {host}")?;
        }
        if let Some(since) = &self.since {
            write!(f, " since {since}")?;
        }
        Ok(())
    }
}

fn holder_text(holder: &Option<Box<Holder>>) -> String {
    match holder {
        Some(h) => h.to_string(),
        None => "another process (the lock file names no owner)".to_owned(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds the lock (BenchCI category `RESOURCE_LOCKED`).
    #[error(
        "resource is locked: {display_name} ({category}) is held by {}; lock file {}; \
         help: wait for that run to finish, or stop it, then retry",
        holder_text(holder),
        lock_path.display()
    )]
    Busy {
        display_name: String,
        category: String,
        key: String,
        lock_path: PathBuf,
        /// Boxed to keep `Result<_, LockError>` small.
        holder: Option<Box<Holder>>,
    },
    /// The lock directory cannot be used.
    #[error(
        "lock directory {} is unusable: {reason}; help: point HILT_LOCK_DIR at a directory \
         you can write, or set HILT_DISABLE_RESOURCE_LOCKS=1 to run without resource locks",
        path.display()
    )]
    Dir { path: PathBuf, reason: String },
    /// A lock file cannot be opened, locked or written.
    #[error(
        "cannot use lock file {}: {source}; help: check the permissions of the lock file \
         and its directory",
        path.display()
    )]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_message_names_resource_holder_and_file() {
        let e = LockError::Busy {
            display_name: "/dev/ttyUSB0".into(),
            category: "serial_transport".into(),
            key: "serial:/dev/ttyUSB0".into(),
            lock_path: PathBuf::from("locks/x.lock"),
            holder: Some(Box::new(Holder {
                pid: Some(4242),
                run_id: Some("r-123".into()),
                hostname: Some("lab-pi-07".into()),
                since: Some("2025-01-01T00:00:00.000000Z".into()),
            })),
        };
        assert_eq!(
            e.to_string(),
            "resource is locked: /dev/ttyUSB0 (serial_transport) is held by pid 4242 (run r-123) \
             on host lab-pi-07 since 2025-01-01T00:00:00.000000Z; lock file locks/x.lock; \
             help: wait for that run to finish, or stop it, then retry"
        );
        let e = LockError::Busy {
            display_name: "probe".into(),
            category: "debug_probe".into(),
            key: "k".into(),
            lock_path: PathBuf::from("p.lock"),
            holder: None,
        };
        assert!(e.to_string().contains("held by another process"));
    }
}

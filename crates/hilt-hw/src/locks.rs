//! File-based cross-process resource locks, compatible with BenchCI.
//!
//! Two runs on one host (CLI, agent, any user, hilt or BenchCI) must not drive the same
//! physical resource at once. Every resource has a lock file in one shared directory; a run
//! holds a non-blocking exclusive `flock(2)` on each file for as long as it uses the
//! resource. The kernel drops the lock when the holder dies, so a crashed run never leaves
//! a lock behind; a stale file with content is harmless.
//!
//! The directory resolution, key strings, file names and lock kind are those of BenchCI so
//! that both tools exclude each other (see the self-test and locks spec, §3).
//!
//! ```no_run
//! use hilt_hw::locks::{acquire, LockConfig, LockSpec};
//!
//! let config = LockConfig::from_env()?;
//! let spec = LockSpec::new("serial:/dev/ttyUSB0", "/dev/ttyUSB0", "serial_transport");
//! let set = acquire(&config, vec![spec], Some("run-1"))?;
//! let metadata = set.metadata(); // stored as results.json `resource_locks`
//! # let _ = metadata;
//! set.release();
//! # Ok::<(), hilt_hw::locks::LockError>(())
//! ```

mod config;
mod error;
mod file;
mod name;
mod set;
mod spec;

pub use config::{DEFAULT_LOCK_DIR, LockConfig};
pub use error::{Holder, LockError};
pub use file::read_holder;
pub use name::{canonical_serial_key, lock_file_name};
pub use set::{LockSet, acquire};
pub use spec::LockSpec;

/// `schema_version` written into every lock file.
pub const LOCK_SCHEMA_VERSION: &str = "benchci.resource_locks.v1";

#[cfg(test)]
mod tests;

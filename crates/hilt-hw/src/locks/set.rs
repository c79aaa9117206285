//! Acquiring and releasing all locks of a run together.

use super::file::{HeldLock, Owner, lock_path, read_holder, try_lock};
use super::spec::normalize;
use super::{LockConfig, LockError, LockSpec};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// The locks of one run. Dropping it releases them (in reverse order), as does
/// [`LockSet::release`].
#[derive(Debug)]
pub struct LockSet {
    enabled: bool,
    dir: PathBuf,
    /// De-duplicated, sorted by key; when enabled, `held[i]` is the lock of `specs[i]`.
    specs: Vec<LockSpec>,
    held: Vec<HeldLock>,
}

impl std::fmt::Debug for HeldLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HeldLock")
    }
}

/// Takes a lock on every resource, without waiting.
///
/// Specs are de-duplicated by key (first wins) and locked in ascending key order. The first
/// busy lock aborts: the locks taken so far are released in reverse order and
/// [`LockError::Busy`] names the resource and its holder. With a disabled config nothing is
/// locked and the set only reports the specs.
pub fn acquire(
    config: &LockConfig,
    specs: Vec<LockSpec>,
    run_id: Option<&str>,
) -> Result<LockSet, LockError> {
    let specs = normalize(specs);
    if !config.enabled {
        return Ok(LockSet {
            enabled: false,
            dir: config.dir.clone(),
            specs,
            held: Vec::new(),
        });
    }
    if !specs.is_empty() {
        config.prepare_dir()?;
    }
    let owner = Owner::current(run_id, specs.len());
    let shared = config.is_default_dir();
    // Built up one lock at a time so that an early return drops (releases) what was taken.
    let mut set = LockSet {
        enabled: true,
        dir: config.dir.clone(),
        specs: Vec::with_capacity(specs.len()),
        held: Vec::with_capacity(specs.len()),
    };
    for spec in specs {
        let path = lock_path(&config.dir, &spec);
        match try_lock(&path, shared, &owner, &spec)? {
            Some(held) => {
                set.held.push(held);
                set.specs.push(spec);
            }
            None => {
                let holder = read_holder(&path).map(Box::new);
                return Err(LockError::Busy {
                    display_name: spec.display_name,
                    category: spec.category,
                    key: spec.key,
                    lock_path: path,
                    holder,
                });
            }
        }
    }
    Ok(set)
}

impl LockSet {
    /// `false` when locking was switched off by the environment.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn lock_dir(&self) -> &Path {
        &self.dir
    }

    /// The de-duplicated specs in lock order.
    pub fn specs(&self) -> &[LockSpec] {
        &self.specs
    }

    /// The `resource_locks` object of `results.json` and of the `resource_locks.acquired`
    /// event: `enabled`, `lock_dir` and `locks` (each spec, with `lock_path` when enabled).
    pub fn metadata(&self) -> Value {
        let locks: Vec<Value> = self
            .specs
            .iter()
            .map(|spec| {
                let mut m = spec.to_json();
                if self.enabled {
                    let path = lock_path(&self.dir, spec);
                    m.insert(
                        "lock_path".into(),
                        path.to_string_lossy().into_owned().into(),
                    );
                }
                Value::Object(m)
            })
            .collect();
        json!({
            "enabled": self.enabled,
            "lock_dir": self.dir.to_string_lossy(),
            "locks": locks,
        })
    }

    /// Releases every lock now (reverse order): truncate, unlock, close.
    pub fn release(mut self) {
        self.release_all();
    }

    fn release_all(&mut self) {
        while let Some(held) = self.held.pop() {
            held.release();
        }
    }
}

impl Drop for LockSet {
    fn drop(&mut self) {
        self.release_all();
    }
}

//! A small fixed pool of threads that wait for the disk: fsyncs of many files are issued at
//! once so their waits overlap, without starting a thread per file on every run.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};

/// Threads in the pool: enough for every document of a run at once (they only wait for
/// the disk, so they cost no CPU).
const THREADS: usize = 16;

type Job = Box<dyn FnOnce() + Send>;

fn pool() -> &'static Mutex<mpsc::Sender<Job>> {
    static POOL: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..THREADS {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("hilt-sync-{i}"))
                .stack_size(64 * 1024)
                .spawn(move || {
                    loop {
                        let job = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                });
            if spawned.is_err() {
                // Fewer threads only means less overlap; the caller's thread always works.
                break;
            }
        }
        Mutex::new(tx)
    })
}

/// Runs `f` on every item at once (the caller's thread takes the first, the pool the
/// rest); results in order.
pub fn run_all(items: &[PathBuf], f: fn(&Path) -> std::io::Result<()>) -> Vec<std::io::Result<()>> {
    let (tx, rx) = mpsc::channel();
    for (i, p) in items.iter().enumerate().skip(1) {
        let (tx, p) = (tx.clone(), p.clone());
        let job: Job = Box::new(move || {
            let _ = tx.send((i, f(&p)));
        });
        if let Err(mpsc::SendError(job)) =
            pool().lock().unwrap_or_else(|e| e.into_inner()).send(job)
        {
            job();
        }
    }
    drop(tx);
    let mut out: Vec<Option<std::io::Result<()>>> = (0..items.len()).map(|_| None).collect();
    if let Some(first) = items.first() {
        out[0] = Some(f(first));
    }
    for (i, r) in rx.iter() {
        out[i] = Some(r);
    }
    // A job whose thread died never answered: say so rather than report success.
    out.into_iter()
        .map(|r| r.unwrap_or_else(|| Err(std::io::Error::other("sync job lost"))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut items = Vec::new();
        for i in 0..40 {
            let p = dir.path().join(format!("f{i}"));
            if i % 3 != 0 {
                std::fs::write(&p, b"x").unwrap();
            }
            items.push(p);
        }
        let out = run_all(&items, |p| std::fs::File::open(p)?.sync_data());
        assert_eq!(out.len(), 40);
        for (i, r) in out.iter().enumerate() {
            assert_eq!(r.is_ok(), i % 3 != 0, "{i}: {r:?}");
        }
        assert!(run_all(&[], |_| Ok(())).is_empty());
    }
}

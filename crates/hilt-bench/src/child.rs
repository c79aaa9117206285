//! Child processes timed from spawn to exit, with their peak RSS from `wait4`.

use std::fs::File;
use std::io;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How a child ended.
#[derive(Debug, Clone, Copy)]
pub struct Finished {
    /// Exit code, or 128 + signal.
    pub code: i32,
    pub wall: Duration,
    /// Peak resident set size (`ru_maxrss`, KiB on Linux).
    pub max_rss_kib: u64,
}

impl Finished {
    pub fn rss_mb(&self) -> f64 {
        self.max_rss_kib as f64 * 1024.0 / 1e6
    }
}

/// Sends the child's stdout and stderr to `<stem>.out` / `<stem>.err`.
pub fn to_files(cmd: &mut Command, stem: &Path) -> io::Result<()> {
    let out = File::create(stem.with_extension("out"))?;
    let err = File::create(stem.with_extension("err"))?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err));
    Ok(())
}

/// Spawns and waits, timing the whole life of the process.
pub fn run(cmd: &mut Command) -> io::Result<Finished> {
    let started = Instant::now();
    let child = cmd.spawn()?;
    wait(child, started)
}

/// Reaps `child` with `wait4`, so its own peak RSS is known.
pub fn wait(child: Child, started: Instant) -> io::Result<Finished> {
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; all-zero is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: valid pointers to locals; pid is our own unreaped child.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == pid {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    let wall = started.elapsed();
    // Already reaped: `Child` has no destructor that waits, so dropping it is fine.
    drop(child);
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        -1
    };
    Ok(Finished {
        code,
        wall,
        max_rss_kib: ru.ru_maxrss.max(0) as u64,
    })
}

/// Stops a helper process we started (SIGTERM, then SIGKILL after `grace`) and reaps it.
pub fn terminate(mut child: Child, grace: Duration) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_exit_code_and_rss() {
        let f = run(Command::new("sh").args(["-c", "exit 3"])).unwrap();
        assert_eq!(f.code, 3);
        assert!(f.max_rss_kib > 0);
    }
}

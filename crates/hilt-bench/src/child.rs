//! Child processes timed from spawn to exit, with their own peak RSS.
//!
//! A child forked from this process starts with this process's resident pages counted in
//! its `ru_maxrss` (Linux carries the parent's high-water mark across fork and exec), and
//! hilt-bench itself grows while it runs in-process benchmarks. So every measured command
//! is started through `hilt-bench measure-child`, a freshly exec'd, small process that
//! spawns the command, reaps it and reports its exit code, wall time, CPU time and peak
//! RSS in a file.

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How a child ended.
#[derive(Debug, Clone, Copy)]
pub struct Finished {
    /// Exit code, or 128 + signal.
    pub code: i32,
    pub wall: Duration,
    /// User + system CPU time (`ru_utime + ru_stime`): on a shared machine, the figure that
    /// does not measure the neighbours.
    pub cpu: Duration,
    /// Peak resident set size (`ru_maxrss`, KiB on Linux).
    pub max_rss_kib: u64,
}

impl Finished {
    pub fn rss_mb(&self) -> f64 {
        self.max_rss_kib as f64 * 1024.0 / 1e6
    }
}

/// A measured command on its way.
pub struct Running {
    child: Child,
    report: PathBuf,
}

/// Starts `inner` (program, arguments, environment, directory) through `measure-child`,
/// its stdout and stderr going to `<stem>.out` / `<stem>.err`.
pub fn spawn(inner: &Command, stem: &Path) -> io::Result<Running> {
    let report = stem.with_extension("rusage");
    let mut c = Command::new(std::env::current_exe()?);
    c.arg("measure-child")
        .arg(&report)
        .arg("--")
        .arg(inner.get_program())
        .args(inner.get_args());
    for (k, v) in inner.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    if let Some(d) = inner.get_current_dir() {
        c.current_dir(d);
    }
    c.stdin(Stdio::null())
        .stdout(Stdio::from(File::create(stem.with_extension("out"))?))
        .stderr(Stdio::from(File::create(stem.with_extension("err"))?));
    Ok(Running {
        child: c.spawn()?,
        report,
    })
}

/// Waits for a command started by [`spawn`].
pub fn finish(mut r: Running) -> io::Result<Finished> {
    r.child.wait()?;
    let text = std::fs::read_to_string(&r.report)?;
    let f: Vec<&str> = text.split_whitespace().collect();
    let bad = || io::Error::other(format!("bad report in {}: {text:?}", r.report.display()));
    if f.len() != 4 {
        return Err(bad());
    }
    Ok(Finished {
        code: f[0].parse().map_err(|_| bad())?,
        wall: Duration::from_nanos(f[1].parse().map_err(|_| bad())?),
        cpu: Duration::from_nanos(f[2].parse().map_err(|_| bad())?),
        max_rss_kib: f[3].parse().map_err(|_| bad())?,
    })
}

pub fn run(inner: &Command, stem: &Path) -> io::Result<Finished> {
    finish(spawn(inner, stem)?)
}

/// Body of `hilt-bench measure-child REPORT -- PROGRAM ARGS...`.
pub fn measure_child(report: &Path, program: &OsString, args: &[OsString]) -> io::Result<i32> {
    let started = Instant::now();
    let child = Command::new(program).args(args).spawn()?;
    let f = wait(child, started)?;
    std::fs::write(
        report,
        format!(
            "{} {} {} {}\n",
            f.code,
            f.wall.as_nanos(),
            f.cpu.as_nanos(),
            f.max_rss_kib
        ),
    )?;
    Ok(f.code)
}

/// Reaps `child` and reads its peak RSS from `getrusage(RUSAGE_CHILDREN)`: the largest
/// peak of the children this process has reaped, which in `measure-child` (one child) is
/// the command's own.
fn wait(mut child: Child, started: Instant) -> io::Result<Finished> {
    use nix::sys::resource::{UsageWho, getrusage};
    use std::os::unix::process::ExitStatusExt;
    let status = child.wait()?;
    let wall = started.elapsed();
    let code = match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => 128 + signal,
        (None, None) => -1,
    };
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN).map_err(io::Error::from)?;
    let tv = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(t.tv_sec().max(0) as u64)
            + Duration::from_micros(t.tv_usec().max(0) as u64)
    };
    Ok(Finished {
        code,
        wall,
        cpu: tv(usage.user_time()) + tv(usage.system_time()),
        max_rss_kib: usage.max_rss().max(0) as u64,
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
    fn wait_reports_exit_code_and_rss() {
        let started = Instant::now();
        let c = Command::new("sh").args(["-c", "exit 3"]).spawn().unwrap();
        let f = wait(c, started).unwrap();
        assert_eq!(f.code, 3);
        assert!(f.max_rss_kib > 0);
    }
}

//! Local `ssh` processes: each in its own process group, waited for with a deadline that
//! wakes on cancel, and terminated as a group (SIGTERM, a short grace, SIGKILL).

use std::fs::File;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::CancelToken;

const SLICE: Duration = Duration::from_millis(10);
const GRACE: Duration = Duration::from_secs(1);

pub(super) enum Waited {
    Exited(ExitStatus),
    TimedOut(Child),
    Cancelled(Child),
}

pub(super) fn spawn(cmd: &mut Command) -> io::Result<Child> {
    cmd.process_group(0).spawn()
}

/// Waits for the child until `deadline` or cancellation.
pub(super) fn wait(
    mut child: Child,
    deadline: Instant,
    cancel: &CancelToken,
) -> io::Result<Waited> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Waited::Exited(status));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(Waited::TimedOut(child));
        }
        if cancel.wait_timeout((deadline - now).min(SLICE)) {
            return Ok(Waited::Cancelled(child));
        }
    }
}

/// SIGTERM to the child's group, up to a second, then SIGKILL; always reaps it.
pub(super) fn terminate(child: &mut Child) {
    let Ok(pid) = i32::try_from(child.id()) else {
        let _ = child.kill();
        let _ = child.wait();
        return;
    };
    let pgid = Pid::from_raw(pid);
    let _ = killpg(pgid, Signal::SIGTERM);
    let end = Instant::now() + GRACE;
    while Instant::now() < end {
        if let Ok(Some(_)) = child.try_wait() {
            let _ = killpg(pgid, Signal::SIGKILL);
            return;
        }
        std::thread::sleep(SLICE);
    }
    let _ = killpg(pgid, Signal::SIGKILL);
    let _ = child.wait();
}

/// A short command's result: status (`None` when it was stopped) and its output.
pub(super) struct Output {
    pub status: Option<ExitStatus>,
    pub cancelled: bool,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Runs a short command with output to files in `scratch` (no pipe can fill up).
pub(super) fn output(
    cmd: &mut Command,
    stdin: Stdio,
    scratch: &Path,
    timeout: Duration,
    cancel: &CancelToken,
) -> io::Result<Output> {
    let out = tempfile::NamedTempFile::new_in(scratch)?;
    let err = tempfile::NamedTempFile::new_in(scratch)?;
    cmd.stdin(stdin)
        .stdout(File::create(out.path())?)
        .stderr(File::create(err.path())?);
    let child = spawn(cmd)?;
    let (status, cancelled) = match wait(child, Instant::now() + timeout, cancel)? {
        Waited::Exited(s) => (Some(s), false),
        Waited::TimedOut(mut c) => {
            terminate(&mut c);
            (None, false)
        }
        Waited::Cancelled(mut c) => {
            terminate(&mut c);
            (None, true)
        }
    };
    Ok(Output {
        status,
        cancelled,
        stdout: std::fs::read(out.path())?,
        stderr: std::fs::read(err.path())?,
    })
}

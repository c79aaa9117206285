//! Signalling the child's process group: SIGTERM, grace, SIGKILL.

use super::capture::Capture;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::io;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

/// Granularity of the wait loops.
pub(super) const POLL_SLICE: Duration = Duration::from_millis(10);
/// How long output may keep flowing after a normal exit before leftovers are signalled.
const LINGER: Duration = Duration::from_millis(200);
/// How long to wait for the pipe to close after a SIGKILL.
const AFTER_KILL: Duration = Duration::from_millis(500);

/// The child was started with `process_group(0)`: its pid is the group id.
pub(super) fn pgid_of(child: &Child) -> Pid {
    Pid::from_raw(i32::try_from(child.id()).expect("pid fits in pid_t"))
}

/// What a timeout or cancellation did: the leader's status and when the grace ends.
pub(super) struct Terminated {
    pub status: ExitStatus,
    pub grace_end: Instant,
}

/// SIGTERM to the group, up to `grace` for the leader to exit, then SIGKILL; reaps it.
pub(super) fn terminate(child: &mut Child, pgid: Pid, grace: Duration) -> io::Result<Terminated> {
    let _ = killpg(pgid, Signal::SIGTERM);
    let grace_end = Instant::now() + grace;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Terminated { status, grace_end });
        }
        let now = Instant::now();
        if now >= grace_end {
            break;
        }
        std::thread::sleep((grace_end - now).min(POLL_SLICE));
    }
    let _ = killpg(pgid, Signal::SIGKILL);
    let status = child.wait()?;
    Ok(Terminated { status, grace_end })
}

/// Last resort on an internal error: SIGKILL the group and reap the leader.
pub(super) fn kill_now(child: &mut Child, pgid: Pid) {
    let _ = killpg(pgid, Signal::SIGKILL);
    let _ = child.wait();
}

/// After the leader has been reaped: lets the output pipe close, signalling what is left of
/// the group if something still holds it.
///
/// After a timeout or cancellation (`grace_end` set) leftovers get the rest of the grace
/// period and are then SIGKILLed. After a normal exit, output may flow for a moment; if the
/// pipe is still held then, the group gets SIGTERM, the grace period and SIGKILL. Members
/// that closed the pipe and outlive a normal exit are left alone (a tool may start a
/// daemon on purpose).
pub(super) fn settle(
    capture: &mut Capture,
    pgid: Pid,
    grace: Duration,
    grace_end: Option<Instant>,
) {
    match grace_end {
        Some(end) => {
            capture.wait_eof(end.saturating_duration_since(Instant::now()));
            let _ = killpg(pgid, Signal::SIGKILL);
        }
        None => {
            if capture.wait_eof(LINGER) {
                return;
            }
            let _ = killpg(pgid, Signal::SIGTERM);
            if capture.wait_eof(grace) {
                return;
            }
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
    capture.wait_eof(AFTER_KILL);
}

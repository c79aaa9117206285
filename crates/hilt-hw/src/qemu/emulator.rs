//! One running emulator: a QEMU process in its own process group, started paused, whose
//! UART and monitor connect back to sockets hilt listens on. The machine is let run only
//! once the UART is wired to the relay, so no byte of the boot banner is lost. Dropping
//! it kills the whole group and reaps it; where `setpriv` exists the process also gets a
//! parent-death signal, so even a hilt killed outright never leaves an emulator behind.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use super::qmp::Qmp;
use super::relay::Relay;

/// What starts an emulator.
pub struct Launch<'a> {
    pub binary: &'a Path,
    pub machine: &'a str,
    pub image: &'a Path,
    pub extra_args: &'a [String],
    /// Directory for the two sockets (short path: a socket path has ~100 bytes).
    pub dir: &'a Path,
    /// The emulator's stdout and stderr are appended here.
    pub log: &'a Path,
    pub timeout: Duration,
}

pub struct Emulator {
    child: Child,
    pgid: Pid,
    qmp: Qmp,
    pub argv: Vec<String>,
}

impl Emulator {
    /// Starts the emulator paused, wires its UART to `relay`, then lets it run.
    pub fn start(l: &Launch, relay: &mut Relay) -> io::Result<Emulator> {
        let uart_path = l.dir.join("uart.sock");
        let qmp_path = l.dir.join("qmp.sock");
        let uart_listener = listen(&uart_path)?;
        let qmp_listener = listen(&qmp_path)?;
        let mut argv: Vec<String> = vec![
            l.binary.display().to_string(),
            "-machine".into(),
            l.machine.into(),
            "-nographic".into(),
            "-monitor".into(),
            "none".into(),
            "-S".into(),
            "-kernel".into(),
            l.image.display().to_string(),
            "-chardev".into(),
            format!("socket,id=hilt-uart,path={}", uart_path.display()),
            "-serial".into(),
            "chardev:hilt-uart".into(),
            "-chardev".into(),
            format!("socket,id=hilt-qmp,path={}", qmp_path.display()),
            "-mon".into(),
            "chardev=hilt-qmp,mode=control".into(),
        ];
        argv.extend(l.extra_args.iter().cloned());
        let log = File::options().create(true).append(true).open(l.log)?;
        let mut cmd = match crate::process::which("setpriv") {
            Some(setpriv) => {
                let mut c = Command::new(setpriv);
                c.args(["--pdeathsig", "KILL", "--"]).args(&argv);
                c
            }
            None => {
                let mut c = Command::new(&argv[0]);
                c.args(&argv[1..]);
                c
            }
        };
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0);
        let child = cmd.spawn()?;
        let pgid = Pid::from_raw(child.id() as i32);
        let mut starting = Starting {
            child: Some(child),
            pgid,
        };
        let deadline = Instant::now() + l.timeout;
        let uart = accept(&uart_listener, &mut starting, deadline)?;
        let qmp = accept(&qmp_listener, &mut starting, deadline)?;
        let _ = std::fs::remove_file(&uart_path);
        let _ = std::fs::remove_file(&qmp_path);
        let mut qmp = Qmp::handshake(qmp)?;
        relay.connect(uart);
        qmp.execute("cont")?;
        let child = starting.child.take().expect("child is kept until started");
        Ok(Emulator {
            child,
            pgid,
            qmp,
            argv,
        })
    }

    /// `system_reset` through the monitor.
    pub fn reset(&mut self) -> io::Result<()> {
        self.qmp.execute("system_reset").map(|_| ())
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        kill(&mut self.child, self.pgid);
    }
}

/// A child not yet handed to an `Emulator`: killed if starting fails.
struct Starting {
    child: Option<Child>,
    pgid: Pid,
}

impl Drop for Starting {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            kill(c, self.pgid);
        }
    }
}

fn kill(child: &mut Child, pgid: Pid) {
    let _ = killpg(pgid, Signal::SIGKILL);
    let _ = child.wait();
}

fn listen(path: &Path) -> io::Result<UnixListener> {
    let _ = std::fs::remove_file(path);
    let l = UnixListener::bind(path)?;
    l.set_nonblocking(true)?;
    Ok(l)
}

/// Accepts the emulator's connection, or explains why it never came (the emulator
/// exited — its log says why — or the deadline passed).
fn accept(
    listener: &UnixListener,
    starting: &mut Starting,
    deadline: Instant,
) -> io::Result<UnixStream> {
    loop {
        match listener.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false)?;
                return Ok(s);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        if let Some(c) = &mut starting.child
            && let Ok(Some(status)) = c.try_wait()
        {
            starting.child = None;
            return Err(io::Error::other(format!(
                "the emulator exited during start-up ({status}); see its log"
            )));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the emulator did not connect its UART and monitor in time",
            ));
        }
        // Wake on the connection, or every 50 ms to notice an early exit.
        let wait = left.min(Duration::from_millis(50));
        let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        let _ = poll(
            &mut fds,
            PollTimeout::try_from(wait.as_millis() as i32).unwrap_or(PollTimeout::NONE),
        );
    }
}

/// The socket directory of a board: short, private, removed with the board.
pub fn socket_dir() -> io::Result<tempfile::TempDir> {
    tempfile::Builder::new().prefix("hilt-qemu-").tempdir()
}

/// A copy of the flashed image inside the board's directory, so a later power-on boots
/// what was flashed even if the artifact changes.
pub fn store_image(dir: &Path, image: &Path) -> io::Result<(PathBuf, String)> {
    use sha2::{Digest, Sha256};
    let bytes = std::fs::read(image)?;
    check_arm_elf(&bytes)?;
    let sha = hex::encode(Sha256::digest(&bytes));
    let stored = dir.join("flashed.elf");
    let tmp = dir.join("flashed.elf.tmp");
    std::fs::write(&tmp, &bytes)?;
    std::fs::rename(&tmp, &stored)?;
    Ok((stored, sha))
}

/// A 32-bit little-endian Arm ELF, as the emulated Cortex-M boards load (QEMU would take
/// anything else as a raw image and lock the CPU up at once).
fn check_arm_elf(bytes: &[u8]) -> io::Result<()> {
    const EM_ARM: u16 = 40;
    if bytes.len() < 20 || &bytes[..4] != b"\x7fELF" {
        return Err(io::Error::other("not an ELF file"));
    }
    let machine = u16::from_le_bytes([bytes[18], bytes[19]]);
    if bytes[4] != 1 || bytes[5] != 1 || machine != EM_ARM {
        return Err(io::Error::other(format!(
            "not a 32-bit little-endian Arm ELF (class {}, data {}, machine {machine})",
            bytes[4], bytes[5]
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_arm_elf;

    #[test]
    fn only_arm_elf_images_are_flashed() {
        let mut arm = b"\x7fELF\x01\x01\x01".to_vec();
        arm.resize(20, 0);
        arm[18] = 40;
        assert!(check_arm_elf(&arm).is_ok());
        let mut x86_64 = arm.clone();
        x86_64[4] = 2;
        x86_64[18] = 62;
        assert!(check_arm_elf(&x86_64).is_err());
        assert!(check_arm_elf(b"not an ELF file at all").is_err());
        assert!(check_arm_elf(b"").is_err());
    }
}

//! Serial ports: the trait the runner talks to, and the real driver, a tty opened and
//! configured through `std` and `rustix` (works on USB adapters and on pseudo-terminals
//! alike). The port is an owned file descriptor, so waiting on it needs no `unsafe`.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hilt_model::bench::Parity;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use rustix::termios::{self, ControlModes, InputModes, OptionalActions, QueueSelector};

use crate::{HwError, ResourceKind};

/// How long one write waits for room in the port's output buffer before it fails.
const WRITE_STALL: Duration = Duration::from_millis(50);

/// Line settings of a UART transport.
#[derive(Debug, Clone)]
pub struct SerialSettings {
    pub port: String,
    pub baud: u32,
    pub bytesize: u32,
    pub parity: Parity,
    pub stopbits: f64,
}

/// A byte stream to a device. `read` returns 0 when nothing arrived within `timeout`.
pub trait SerialPort: Send {
    fn read_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize>;
    fn write_all_bytes(&mut self, data: &[u8]) -> io::Result<()>;
    /// A second handle to the same port, so one thread reads while another writes.
    fn try_clone_port(&self) -> io::Result<Box<dyn SerialPort>>;
    /// The file descriptor to wait on, when the port has one: the reader then sleeps in
    /// `poll` and can be woken at once to stop.
    fn poll_fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }
}

/// Opens a real serial port with exclusive access (a second opener gets "busy"): the tty
/// is put in exclusive mode (`TIOCEXCL`) and held with an exclusive `flock`, in raw mode
/// with the requested frame and speed and no flow control, and input the device sent
/// before the open is discarded. The descriptor stays non-blocking (opening does not wait
/// for a carrier); reads and writes wait in `poll`.
pub fn open(settings: &SerialSettings) -> Result<Box<dyn SerialPort>, HwError> {
    let open_err =
        |reason: String| HwError::open(ResourceKind::Serial, "serial port", &settings.port, reason);
    if !std::path::Path::new(&settings.port).exists() {
        return Err(open_err(
            "no such device (is it plugged in, and is the path right?)".into(),
        ));
    }
    if matches!(settings.parity, Parity::M | Parity::S) {
        return Err(open_err(
            "mark/space parity is not supported on this platform".into(),
        ));
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(nix::libc::O_NOCTTY | nix::libc::O_NONBLOCK)
        .open(&settings.port)
        .map_err(|e| open_err(open_reason(&e)))?;
    // The flock first: a port another program holds is left exactly as it is (leaving
    // exclusive mode is only for the handle that entered it).
    file.try_lock().map_err(|e| {
        open_err(match e {
            std::fs::TryLockError::WouldBlock => {
                "port is busy: another program has it open exclusively".to_string()
            }
            std::fs::TryLockError::Error(e) => open_reason(&e),
        })
    })?;
    termios::ioctl_tiocexcl(&file).map_err(|e| open_err(format!("not a serial port: {e}")))?;
    let tty = Tty { file };
    configure(&tty.file, settings)
        .map_err(|e| open_err(format!("cannot configure the port: {e}")))?;
    // Bytes the device sent before we opened the port are not part of this run.
    let _ = termios::tcflush(&tty.file, QueueSelector::IFlush);
    Ok(Box::new(RealPort { tty: Arc::new(tty) }))
}

/// [`open`], with a failure to open told as the driver's own (`kind`, `what`): a serial
/// sensor's port that is missing is the sensor's open error, not a bare serial one.
pub fn open_as(
    settings: &SerialSettings,
    kind: ResourceKind,
    what: &'static str,
) -> Result<Box<dyn SerialPort>, HwError> {
    open(settings).map_err(|e| match e {
        HwError::Open { path, reason, .. } => HwError::open(kind, what, path, reason),
        other => other,
    })
}

/// Drops the input already waiting on the port (stale bytes or a late answer to an
/// earlier command), so that what is read next answers what is sent next.
pub fn drain(port: &mut dyn SerialPort) -> io::Result<()> {
    let mut buf = [0u8; 256];
    while port.read_timeout(&mut buf, Duration::ZERO)? > 0 {}
    Ok(())
}

/// Why opening the device node failed, in the words a bench owner needs.
fn open_reason(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(nix::libc::EBUSY) => "port is busy: another program has it open exclusively".into(),
        Some(nix::libc::EACCES) | Some(nix::libc::EPERM) => {
            "permission denied (add the user to the dialout group)".into()
        }
        _ => e.to_string(),
    }
}

/// Raw mode, receiver on, modem lines ignored, the requested frame and speed.
fn configure(fd: impl AsFd, s: &SerialSettings) -> io::Result<()> {
    let mut t = termios::tcgetattr(&fd)?;
    t.make_raw();
    t.control_modes |= ControlModes::CREAD | ControlModes::CLOCAL;
    t.control_modes &= !(ControlModes::CSIZE | ControlModes::CRTSCTS);
    t.control_modes |= match s.bytesize {
        5 => ControlModes::CS5,
        6 => ControlModes::CS6,
        7 => ControlModes::CS7,
        _ => ControlModes::CS8,
    };
    t.input_modes &= !(InputModes::IXON | InputModes::IXOFF);
    match s.parity {
        Parity::E => {
            t.control_modes |= ControlModes::PARENB;
            t.control_modes &= !ControlModes::PARODD;
            t.input_modes |= InputModes::INPCK;
            t.input_modes &= !InputModes::IGNPAR;
        }
        Parity::O => {
            t.control_modes |= ControlModes::PARENB | ControlModes::PARODD;
            t.input_modes |= InputModes::INPCK;
            t.input_modes &= !InputModes::IGNPAR;
        }
        _ => {
            t.control_modes &= !(ControlModes::PARENB | ControlModes::PARODD);
            t.input_modes &= !InputModes::INPCK;
            t.input_modes |= InputModes::IGNPAR;
        }
    }
    t.control_modes.set(ControlModes::CSTOPB, s.stopbits >= 2.0);
    t.set_speed(s.baud)?;
    termios::tcsetattr(&fd, OptionalActions::Now, &t)?;
    Ok(())
}

/// The open tty, shared by the reader's and the writer's handles. Exclusive mode is left
/// when the last handle goes: a pty keeps the flag after the slave is closed, and the next
/// run would find its port "busy".
struct Tty {
    file: File,
}

impl Drop for Tty {
    fn drop(&mut self) {
        let _ = termios::ioctl_tiocnxcl(&self.file);
    }
}

struct RealPort {
    tty: Arc<Tty>,
}

/// Waits until `fd` is ready for `events` (or hung up); false when `timeout` passed first.
fn wait_for(fd: BorrowedFd<'_>, events: PollFlags, timeout: Duration) -> io::Result<bool> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        // Rounded up, so poll does not return just before the deadline and spin.
        let ms = PollTimeout::try_from(left.as_micros().div_ceil(1000).min(60_000))
            .unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(fd, events)];
        match poll(&mut fds, ms) {
            Ok(0) if left.is_zero() => return Ok(false),
            Ok(0) => continue,
            Ok(_) => return Ok(true),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

impl SerialPort for RealPort {
    fn read_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        if !wait_for(self.tty.file.as_fd(), PollFlags::POLLIN, timeout)? {
            return Ok(0);
        }
        // Readable or hung up: a hang-up reads as EIO, which the caller reports.
        match (&self.tty.file).read(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
            r => r,
        }
    }

    fn write_all_bytes(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            if !wait_for(self.tty.file.as_fd(), PollFlags::POLLOUT, WRITE_STALL)? {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the port accepted no data for 50 ms",
                ));
            }
            match (&self.tty.file).write(data) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => data = &data[n..],
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
                    ) => {}
                Err(e) => return Err(e),
            }
        }
        loop {
            match termios::tcdrain(&self.tty.file) {
                Err(rustix::io::Errno::INTR) => continue,
                r => return r.map_err(io::Error::from),
            }
        }
    }

    fn try_clone_port(&self) -> io::Result<Box<dyn SerialPort>> {
        Ok(Box::new(RealPort {
            tty: self.tty.clone(),
        }))
    }

    fn poll_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.tty.file.as_fd())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::OwnedFd;

    /// A pty: the master end (the "device"), a handle on the slave that keeps it (and
    /// its input queue) alive between opens, and the slave's path (the port).
    fn pty() -> (File, OwnedFd, String) {
        let p = nix::pty::openpty(None, None).unwrap();
        let path = nix::unistd::ttyname(&p.slave).unwrap();
        // Raw from the start, so nothing the device sends is echoed back to it.
        let mut t = termios::tcgetattr(&p.slave).unwrap();
        t.make_raw();
        termios::tcsetattr(&p.slave, OptionalActions::Now, &t).unwrap();
        (File::from(p.master), p.slave, path.display().to_string())
    }

    fn settings(port: &str) -> SerialSettings {
        SerialSettings {
            port: port.to_string(),
            baud: 115_200,
            bytesize: 8,
            parity: Parity::N,
            stopbits: 1.0,
        }
    }

    fn read_for(port: &mut Box<dyn SerialPort>, wait: Duration) -> Vec<u8> {
        let deadline = Instant::now() + wait;
        let mut out = Vec::new();
        let mut buf = [0u8; 256];
        while Instant::now() < deadline {
            let n = port
                .read_timeout(&mut buf, Duration::from_millis(20))
                .unwrap();
            out.extend_from_slice(&buf[..n]);
        }
        out
    }

    #[test]
    fn reads_writes_and_drops_input_sent_before_the_open() {
        let (mut device, _slave, path) = pty();
        // Sent while no run had the port open: queued, then dropped by the open.
        device.write_all(b"stale\n").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let mut port = open(&settings(&path)).unwrap();
        // The port is raw: no echo, no line editing, bytes as sent.
        device.write_all(b"fresh\x03\r\n").unwrap();
        assert_eq!(
            read_for(&mut port, Duration::from_millis(200)),
            b"fresh\x03\r\n"
        );
        port.write_all_bytes(b"ping\n").unwrap();
        let mut got = [0u8; 5];
        device.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"ping\n");
        assert!(port.poll_fd().is_some());
    }

    #[test]
    fn a_second_opener_is_told_the_port_is_busy_until_the_first_closes() {
        let (_device, _slave, path) = pty();
        let first = open(&settings(&path)).unwrap();
        let reader = first.try_clone_port().unwrap();
        let err = open(&settings(&path)).err().unwrap().to_string();
        assert!(err.contains("busy"), "{err}");
        drop(first);
        // The reader's handle still holds the port.
        assert!(open(&settings(&path)).is_err());
        drop(reader);
        open(&settings(&path)).unwrap();
    }

    #[test]
    fn a_file_that_is_not_a_tty_is_refused() {
        let tmp = tempfile::NamedTempFile::new().unwrap();
        let err = open(&settings(&tmp.path().display().to_string()))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("not a serial port"), "{err}");
    }
}

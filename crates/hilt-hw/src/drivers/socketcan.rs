//! `can`: a Linux SocketCAN interface (`can0`, `vcan0`, an slcan adapter attached with
//! `slcand`), through a raw CAN socket with CAN FD frames enabled (the `socketcan` crate).
//!
//! Opening checks the interface in sysfs first (missing, down, or `fd: true` on an
//! interface whose MTU is not 72 are each said plainly), then binds the socket, installs
//! the transport's `filters` in the kernel and subscribes to error frames, which tell the
//! bus state (`bus_state`: error-passive, bus-off, …). The bit rate is the interface's
//! (`ip link set can0 type can bitrate …`); hilt does not reconfigure interfaces.
//!
//! The logic (frame conversion, filters, error frames, deadlines) sits over a small
//! [`RawCan`] trait and is unit-tested with a fake: the kernels hilt is built and tested
//! on have no CAN support at all (no `vcan` module, no `AF_CAN`), so no test here can
//! bind a real socket. `crates/hilt-cli/tests/can.rs` runs against `vcan0` when one
//! exists and otherwise says why it skipped.

use std::collections::VecDeque;
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use hilt_model::bench::Transport;
use socketcan::{
    CanAnyFrame, CanDataFrame, CanFdFrame, CanFdSocket, CanFilter, CanRemoteFrame, EmbeddedFrame,
    ExtendedId, Id, Socket, SocketOptions, StandardId,
};

use super::{OpenedTransport, Problem, TransportDriver};
use crate::can::{CANCEL_SLICE, CanError, CanLink, Filter, Frame};
use crate::{CancelToken, HwError, ResourceKind};

pub struct SocketCan;

const CAN_EFF_FLAG: u32 = 0x8000_0000;
/// Longest interface name the kernel takes (IFNAMSIZ - 1).
const IFNAME_MAX: usize = 15;
/// The MTU of an interface that carries CAN FD frames.
pub const CANFD_MTU: u32 = 72;

impl TransportDriver for SocketCan {
    fn tag(&self) -> &'static str {
        "can"
    }

    fn check(&self, t: &Transport) -> Vec<Problem> {
        let Transport::Can { interface, .. } = t else {
            return Vec::new();
        };
        match interface_name_problem(interface) {
            Some(p) => vec![
                Problem::new("interface", p)
                    .with_help("write the interface name alone, e.g. `can0`"),
            ],
            None => Vec::new(),
        }
    }

    fn open(&self, _node: &str, _name: &str, t: &Transport) -> Result<OpenedTransport, HwError> {
        let Transport::Can {
            interface,
            fd,
            timeout_ms,
            filters,
            ..
        } = t
        else {
            return Err(HwError::unsupported(
                ResourceKind::Can,
                format!("driver `can` cannot use `{}` parameters", t.backend()),
            ));
        };
        let open_err =
            |reason: String| HwError::open(ResourceKind::Can, "CAN interface", interface, reason);
        interface_state(Path::new("/sys/class/net"), interface, *fd).map_err(open_err)?;
        let filters: Vec<Filter> = filters
            .iter()
            .map(|f| Filter {
                id: f.id,
                mask: f.mask,
                extended: f.extended,
            })
            .collect();
        let raw = RealSocket::open(interface, &filters)
            .map_err(|e| open_err(format!("cannot bind a CAN socket: {e}")))?;
        Ok(OpenedTransport::Can(Box::new(SocketCanLink {
            raw,
            interface: interface.clone(),
            fd: *fd,
            timeout: Duration::from_millis((*timeout_ms).max(1)),
            queued: VecDeque::new(),
            old: 0,
            state: None,
            notes: Vec::new(),
        })))
    }
}

/// Why `name` cannot be an interface name, if it cannot.
pub fn interface_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        Some("must name a CAN interface".into())
    } else if name.len() > IFNAME_MAX {
        Some(format!(
            "`{name}` is longer than the {IFNAME_MAX} characters of an interface name"
        ))
    } else if name.contains('/') || name.chars().any(char::is_whitespace) {
        Some(format!("`{name}` is not an interface name"))
    } else {
        None
    }
}

/// The interface exists, is up, and carries CAN FD when `fd` asks for it (sysfs under
/// `net`, `/sys/class/net` on a real system).
pub fn interface_state(net: &Path, interface: &str, fd: bool) -> Result<(), String> {
    if let Some(p) = interface_name_problem(interface) {
        return Err(p);
    }
    let dir = net.join(interface);
    if !dir.exists() {
        return Err(
            "no such network interface (is the adapter plugged in and its driver loaded? this kernel may lack CAN support)"
                .into(),
        );
    }
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).map(|s| s.trim().to_string());
    if let Ok(t) = read("type")
        && t != "280"
    {
        return Err(format!("not a CAN interface (link type {t}, CAN is 280)"));
    }
    if read("operstate").is_ok_and(|s| s == "down") {
        return Err(format!(
            "the interface is down: `ip link set {interface} up type can bitrate <rate>`"
        ));
    }
    if fd
        && let Ok(mtu) = read("mtu")
        && mtu.parse::<u32>().ok() != Some(CANFD_MTU)
    {
        return Err(format!(
            "`fd: true` but the interface's MTU is {mtu}, not {CANFD_MTU}: it does not carry CAN FD frames (`ip link set {interface} type can … fd on`)"
        ));
    }
    Ok(())
}

/// The socket operations the link needs.
pub trait RawCan: Send {
    /// One frame within `timeout`, `None` when none arrived.
    fn read(&mut self, timeout: Duration) -> io::Result<Option<CanAnyFrame>>;
    fn write(&mut self, frame: &CanAnyFrame) -> io::Result<()>;
}

struct RealSocket(CanFdSocket);

impl RealSocket {
    fn open(interface: &str, filters: &[Filter]) -> io::Result<RealSocket> {
        let s = CanFdSocket::open(interface)?;
        if !filters.is_empty() {
            s.set_filters(&kernel_filters(filters))?;
        }
        s.set_error_filter_accept_all()?;
        Ok(RealSocket(s))
    }
}

impl RawCan for RealSocket {
    fn read(&mut self, timeout: Duration) -> io::Result<Option<CanAnyFrame>> {
        match self.0.read_frame_timeout(timeout) {
            Ok(f) => Ok(Some(f)),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
                ) =>
            {
                Ok(None)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn write(&mut self, frame: &CanAnyFrame) -> io::Result<()> {
        match frame {
            CanAnyFrame::Normal(f) => self.0.write_frame(f),
            CanAnyFrame::Remote(f) => self.0.write_frame(f),
            CanAnyFrame::Fd(f) => self.0.write_frame(f),
            CanAnyFrame::Error(_) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "error frames are not sent",
            )),
        }
    }
}

/// The kernel filters for the transport's `filters`: the id kind is part of the match.
pub fn kernel_filters(filters: &[Filter]) -> Vec<CanFilter> {
    filters
        .iter()
        .map(|f| {
            if f.extended {
                CanFilter::new(f.id | CAN_EFF_FLAG, f.mask | CAN_EFF_FLAG)
            } else {
                CanFilter::new(f.id, f.mask | CAN_EFF_FLAG)
            }
        })
        .collect()
}

fn hal_id(id: u32, extended: bool) -> Option<Id> {
    if extended {
        ExtendedId::new(id).map(Id::Extended)
    } else {
        u16::try_from(id)
            .ok()
            .and_then(StandardId::new)
            .map(Id::Standard)
    }
}

/// hilt's frame as a socket frame.
pub fn to_socket(f: &Frame) -> Result<CanAnyFrame, String> {
    f.check()?;
    let id = hal_id(f.id, f.extended).ok_or_else(|| format!("id {:#X} out of range", f.id))?;
    if f.remote {
        return CanRemoteFrame::new_remote(id, f.remote_len as usize)
            .map(CanAnyFrame::Remote)
            .ok_or_else(|| "invalid remote frame".into());
    }
    if f.fd {
        let mut fd = CanFdFrame::new(id, &f.data).ok_or("invalid CAN FD frame")?;
        fd.set_brs(f.brs);
        fd.set_esi(f.esi);
        return Ok(CanAnyFrame::Fd(fd));
    }
    CanDataFrame::new(id, &f.data)
        .map(CanAnyFrame::Normal)
        .ok_or_else(|| "invalid CAN frame".into())
}

/// A socket frame as hilt's; error frames are not frames (`Err` with the error).
pub fn from_socket(f: &CanAnyFrame) -> Result<Frame, String> {
    let hal = match f {
        CanAnyFrame::Normal(d) => d.id(),
        CanAnyFrame::Remote(r) => r.id(),
        CanAnyFrame::Fd(d) => d.id(),
        CanAnyFrame::Error(e) => return Err(e.into_error().to_string()),
    };
    let (id, extended) = match hal {
        Id::Standard(s) => (u32::from(s.as_raw()), false),
        Id::Extended(e) => (e.as_raw(), true),
    };
    Ok(match f {
        CanAnyFrame::Normal(d) => Frame::classic(id, extended, d.data()),
        CanAnyFrame::Remote(r) => Frame {
            id,
            extended,
            remote: true,
            remote_len: r.dlc() as u8,
            ..Frame::default()
        },
        CanAnyFrame::Fd(d) => Frame {
            id,
            extended,
            fd: true,
            brs: d.is_brs(),
            esi: d.is_esi(),
            data: d.data().to_vec(),
            ..Frame::default()
        },
        CanAnyFrame::Error(_) => Frame::default(),
    })
}

/// Keep at most this many received frames waiting to be read.
const MAX_QUEUED: usize = 4096;

pub struct SocketCanLink<R: RawCan> {
    raw: R,
    interface: String,
    fd: bool,
    timeout: Duration,
    queued: VecDeque<Frame>,
    /// `queued[..old]` were received before the last mark.
    old: usize,
    /// The last error frame's reading of the bus, until a good frame arrives.
    state: Option<String>,
    notes: Vec<String>,
}

impl<R: RawCan> SocketCanLink<R> {
    fn io(&self, e: io::Error) -> CanError {
        CanError::Io(HwError::io(
            ResourceKind::Can,
            "CAN socket",
            format!("{}: {e}", self.interface),
        ))
    }

    fn take(&mut self, f: CanAnyFrame) {
        match from_socket(&f) {
            Ok(frame) => {
                self.state = None;
                if self.queued.len() >= MAX_QUEUED {
                    self.queued.pop_front();
                    self.old = self.old.saturating_sub(1);
                    if self.notes.len() < 100 {
                        self.notes
                            .push("receive queue full: the oldest frame was dropped".into());
                    }
                }
                self.queued.push_back(frame);
            }
            Err(err) => {
                if self.notes.len() < 100 {
                    self.notes.push(format!("ERROR FRAME {err}"));
                }
                self.state = Some(format!("error frames ({err})"));
            }
        }
    }
}

impl<R: RawCan> CanLink for SocketCanLink<R> {
    fn send(&mut self, frame: &Frame, _cancel: &CancelToken) -> Result<(), CanError> {
        if frame.fd && !self.fd {
            return Err(CanError::Refused {
                what: "a CAN FD frame on a transport without `fd: true`".into(),
            });
        }
        let f = to_socket(frame).map_err(|e| CanError::Refused {
            what: format!("the frame ({e})"),
        })?;
        let started = Instant::now();
        loop {
            match self.raw.write(&f) {
                Ok(()) => return Ok(()),
                // The transmit queue is full: the bus is busy or nobody acknowledges.
                Err(e) if e.raw_os_error() == Some(nix::libc::ENOBUFS) => {
                    if started.elapsed() >= self.timeout {
                        return Err(match self.state.clone() {
                            Some(state) => CanError::Bus { state },
                            None => CanError::NoAnswer {
                                what: format!("frame id=0x{:X} (transmit queue full)", frame.id),
                                waited: self.timeout,
                            },
                        });
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) if e.raw_os_error() == Some(nix::libc::ENETDOWN) => {
                    return Err(CanError::Bus {
                        state: "bus-off (the interface is down)".into(),
                    });
                }
                Err(e) => return Err(self.io(e)),
            }
        }
    }

    fn recv(&mut self, deadline: Instant, cancel: &CancelToken) -> Result<Option<Frame>, CanError> {
        loop {
            if let Some(f) = self.queued.pop_front() {
                self.old = self.old.saturating_sub(1);
                return Ok(Some(f));
            }
            if cancel.is_cancelled() {
                return Err(CanError::Cancelled);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            match self.raw.read(left.min(CANCEL_SLICE)) {
                Ok(Some(f)) => self.take(f),
                Ok(None) => {}
                Err(e) => return Err(self.io(e)),
            }
        }
    }

    fn mark(&mut self) -> Result<usize, CanError> {
        let dropped = self.old.min(self.queued.len());
        self.queued.drain(..dropped);
        loop {
            match self.raw.read(Duration::ZERO) {
                Ok(Some(f)) => self.take(f),
                Ok(None) => break,
                Err(e) => return Err(self.io(e)),
            }
        }
        self.old = self.queued.len();
        Ok(dropped)
    }

    fn bus_state(&mut self, _cancel: &CancelToken) -> Result<Option<String>, CanError> {
        Ok(self.state.clone())
    }

    fn take_notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notes)
    }

    fn describe(&self) -> String {
        format!("socketcan {}", self.interface)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use socketcan::CanErrorFrame;

    /// A socket fed from a script: frames to read, and a record of writes.
    #[derive(Default)]
    struct Fake {
        inbox: VecDeque<CanAnyFrame>,
        written: Vec<CanAnyFrame>,
        write_error: Option<i32>,
    }

    impl RawCan for Fake {
        fn read(&mut self, timeout: Duration) -> io::Result<Option<CanAnyFrame>> {
            match self.inbox.pop_front() {
                Some(f) => Ok(Some(f)),
                None => {
                    std::thread::sleep(timeout.min(Duration::from_millis(5)));
                    Ok(None)
                }
            }
        }
        fn write(&mut self, frame: &CanAnyFrame) -> io::Result<()> {
            if let Some(e) = self.write_error {
                return Err(io::Error::from_raw_os_error(e));
            }
            self.written.push(*frame);
            Ok(())
        }
    }

    fn link(fake: Fake, fd: bool) -> SocketCanLink<Fake> {
        SocketCanLink {
            raw: fake,
            interface: "vcan0".into(),
            fd,
            timeout: Duration::from_millis(30),
            queued: VecDeque::new(),
            old: 0,
            state: None,
            notes: Vec::new(),
        }
    }

    fn frames() -> Vec<Frame> {
        let mut fd = Frame::classic(0x1234567, true, &[7; 12]);
        fd.fd = true;
        fd.brs = true;
        fd.esi = true;
        vec![
            Frame::classic(0x123, false, &[1, 2, 3]),
            Frame::classic(0x7FF, false, &[]),
            Frame::classic(0x1FFF_FFFF, true, &[0xFF; 8]),
            fd,
            Frame {
                id: 0x10,
                remote: true,
                remote_len: 4,
                ..Frame::default()
            },
        ]
    }

    #[test]
    fn frames_convert_both_ways() {
        for f in frames() {
            let s = to_socket(&f).unwrap();
            assert_eq!(from_socket(&s).unwrap(), f);
        }
        assert!(to_socket(&Frame::classic(0x800, false, &[])).is_err());
    }

    #[test]
    fn filters_carry_the_id_kind() {
        let k = kernel_filters(&[
            Filter {
                id: 0x100,
                mask: 0x700,
                extended: false,
            },
            Filter {
                id: 0x18DA00F1,
                mask: 0x1FFFFF00,
                extended: true,
            },
        ]);
        assert_eq!(k.len(), 2);
        let dbg = format!("{k:?}");
        assert!(dbg.contains(&format!("{}", 0x700 | CAN_EFF_FLAG)), "{dbg}");
        assert!(
            dbg.contains(&format!("{}", 0x18DA00F1u32 | CAN_EFF_FLAG)),
            "{dbg}"
        );
    }

    #[test]
    fn sends_receives_and_discards() {
        let mut fake = Fake::default();
        for f in frames() {
            fake.inbox.push_back(to_socket(&f).unwrap());
        }
        let mut l = link(fake, true);
        let cancel = CancelToken::new();
        l.send(&frames()[3], &cancel).unwrap();
        assert_eq!(l.raw.written.len(), 1);
        let got = l
            .recv(Instant::now() + Duration::from_millis(50), &cancel)
            .unwrap();
        assert_eq!(got, Some(frames()[0].clone()));
        // The first mark keeps what arrived (since the previous step began), the second
        // drops what is still unread.
        assert_eq!(l.mark().unwrap(), 0);
        assert_eq!(l.mark().unwrap(), 4);
        assert_eq!(
            l.recv(Instant::now() + Duration::from_millis(20), &cancel)
                .unwrap(),
            None
        );
    }

    #[test]
    fn fd_frames_need_an_fd_transport() {
        let mut l = link(Fake::default(), false);
        let e = l.send(&frames()[3], &CancelToken::new()).unwrap_err();
        assert!(matches!(e, CanError::Refused { .. }), "{e}");
    }

    #[test]
    fn error_frames_set_the_bus_state_and_a_full_queue_reports_it() {
        let mut fake = Fake::default();
        // CAN_ERR_BUSOFF in the class bits.
        let err = CanErrorFrame::new_error(0x40, &[0; 8]).unwrap();
        fake.inbox.push_back(CanAnyFrame::Error(err));
        fake.write_error = Some(nix::libc::ENOBUFS);
        let mut l = link(fake, false);
        let cancel = CancelToken::new();
        assert_eq!(
            l.recv(Instant::now() + Duration::from_millis(20), &cancel)
                .unwrap(),
            None
        );
        let state = l.bus_state(&cancel).unwrap().expect("a bus state");
        assert!(state.contains("error frames"), "{state}");
        assert!(l.take_notes().iter().any(|n| n.starts_with("ERROR FRAME")));
        let e = l.send(&frames()[0], &cancel).unwrap_err();
        assert!(matches!(e, CanError::Bus { .. }), "{e}");
        l.raw.write_error = Some(nix::libc::ENETDOWN);
        assert!(matches!(
            l.send(&frames()[0], &cancel),
            Err(CanError::Bus { .. })
        ));
    }

    #[test]
    fn interfaces_are_checked_in_sysfs() {
        let dir = tempfile::tempdir().unwrap();
        let net = dir.path();
        assert!(
            interface_state(net, "can0", false)
                .unwrap_err()
                .contains("no such")
        );
        assert!(interface_state(net, "a/b", false).is_err());
        assert!(interface_state(net, "abcdefghijklmnopq", false).is_err());
        let can0 = net.join("can0");
        std::fs::create_dir(&can0).unwrap();
        std::fs::write(can0.join("type"), "280\n").unwrap();
        std::fs::write(can0.join("operstate"), "down\n").unwrap();
        std::fs::write(can0.join("mtu"), "16\n").unwrap();
        assert!(
            interface_state(net, "can0", false)
                .unwrap_err()
                .contains("down")
        );
        std::fs::write(can0.join("operstate"), "up\n").unwrap();
        assert!(interface_state(net, "can0", false).is_ok());
        assert!(
            interface_state(net, "can0", true)
                .unwrap_err()
                .contains("MTU is 16")
        );
        std::fs::write(can0.join("mtu"), "72\n").unwrap();
        assert!(interface_state(net, "can0", true).is_ok());
        std::fs::write(can0.join("type"), "1\n").unwrap();
        assert!(
            interface_state(net, "can0", false)
                .unwrap_err()
                .contains("not a CAN")
        );
    }
}

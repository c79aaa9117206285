//! Modbus RTU side of the sim: a pty whose slave end is the "serial port" a client opens.
//! Requests are framed by their function's length; a frame with a bad CRC, or bytes that
//! cannot start a frame, are dropped without an answer (as a real slave does).

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hilt_hw::modbus::frame;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::{Answer, ModbusSim, Shared};
use crate::error::SimError;

/// A partial frame older than this is line noise and is dropped (RTU's inter-frame gap,
/// generous for a pty and a loaded machine).
const FRAME_GAP: Duration = Duration::from_millis(50);
/// How often the loop checks whether the sim is stopping.
const IDLE_CHECK: Duration = Duration::from_millis(50);

pub(super) fn start(shared: Arc<Shared>, link: Option<PathBuf>) -> Result<ModbusSim, SimError> {
    let pty = crate::pty::open()?;
    let path = pty.path.clone();
    if let Some(l) = &link {
        crate::link::create(l, &path)?;
    }
    let master = pty.master;
    let writer = master.try_clone().map_err(SimError::Thread)?;
    let sh = shared.clone();
    let thread = std::thread::Builder::new()
        .name("modbus-sim-rtu".into())
        .spawn(move || serve(&sh, master, writer))
        .map_err(SimError::Thread)?;
    Ok(ModbusSim {
        shared,
        address: path.display().to_string(),
        link,
        threads: vec![thread],
        // The loop wakes every IDLE_CHECK and sees the stop flag.
        waker: Box::new(|| {}),
        _keep: Some(Box::new(pty.slave)),
    })
}

fn serve(sh: &Shared, mut master: File, mut writer: File) {
    let mut buf: Vec<u8> = Vec::new();
    let mut last_byte = Instant::now();
    let mut chunk = [0u8; 512];
    while !sh.stopping() {
        let ready = {
            let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
            let ms =
                PollTimeout::try_from(IDLE_CHECK.as_millis() as u64).unwrap_or(PollTimeout::MAX);
            match poll(&mut fds, ms) {
                Ok(n) => n > 0,
                Err(nix::Error::EINTR) => false,
                Err(_) => return,
            }
        };
        if ready {
            match master.read(&mut chunk) {
                Ok(n) if n > 0 => {
                    if last_byte.elapsed() > FRAME_GAP {
                        buf.clear();
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    last_byte = Instant::now();
                }
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                // No client has the port open (EIO on a pty master): wait for one.
                Err(_) => std::thread::sleep(IDLE_CHECK),
            }
        } else if !buf.is_empty() && last_byte.elapsed() > FRAME_GAP {
            buf.clear();
        }
        // Answer every complete frame in the buffer.
        while buf.len() >= 2 {
            let Some(len) = frame::request_len(&buf[1..]).map(|n| n + 3) else {
                break;
            };
            if buf.len() < len {
                break;
            }
            let frame_bytes: Vec<u8> = buf.drain(..len).collect();
            let Ok((slave, pdu)) = frame::rtu_unframe(&frame_bytes) else {
                // Bad CRC: a real slave ignores the frame; so does the rest of the buffer.
                buf.clear();
                break;
            };
            let out = match sh.answer(slave, pdu) {
                Answer::Silence => continue,
                Answer::Pdu(p) => frame::rtu_frame(slave, &p),
                Answer::Garbled(p) => {
                    let mut f = frame::rtu_frame(slave, &p);
                    let last = f.len() - 1;
                    f[last] ^= 0xFF;
                    f
                }
            };
            if writer.write_all(&out).is_err() {
                return;
            }
        }
    }
}

//! Modbus TCP side of the sim: one thread accepts, one thread per connection answers
//! MBAP frames in order.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use hilt_hw::modbus::frame::{self, MBAP_LEN};

use super::{Answer, ModbusSim, Shared};
use crate::error::SimError;

/// How often an idle connection checks whether the sim is stopping.
const IDLE_CHECK: Duration = Duration::from_millis(100);

pub(super) fn start(shared: Arc<Shared>, bind: &str) -> Result<ModbusSim, SimError> {
    let listener = TcpListener::bind(bind)
        .map_err(|e| SimError::Config(format!("cannot listen on {bind}: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| SimError::Config(format!("cannot listen on {bind}: {e}")))?;
    let sh = shared.clone();
    let thread = std::thread::Builder::new()
        .name("modbus-sim-tcp".into())
        .spawn(move || {
            for conn in listener.incoming() {
                if sh.stopping() {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let sh = sh.clone();
                let _ = std::thread::Builder::new()
                    .name("modbus-sim-conn".into())
                    .spawn(move || serve(&sh, conn));
            }
        })
        .map_err(SimError::Thread)?;
    Ok(ModbusSim {
        shared,
        address: addr.to_string(),
        link: None,
        threads: vec![thread],
        // A connection to ourselves wakes `accept` so the thread sees the stop flag.
        waker: Box::new(move || {
            let _ = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
        }),
        _keep: None,
    })
}

/// Reads exactly `buf`, waking every [`IDLE_CHECK`] to notice a stop. False at EOF/stop.
fn fill(sh: &Shared, conn: &mut TcpStream, buf: &mut [u8]) -> bool {
    let mut n = 0;
    while n < buf.len() {
        if sh.stopping() {
            return false;
        }
        match conn.read(&mut buf[n..]) {
            Ok(0) => return false,
            Ok(k) => n += k,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}

fn serve(sh: &Shared, mut conn: TcpStream) {
    let _ = conn.set_read_timeout(Some(IDLE_CHECK));
    let _ = conn.set_nodelay(true);
    loop {
        let mut head = [0u8; MBAP_LEN];
        if !fill(sh, &mut conn, &mut head) {
            return;
        }
        // A header that is not Modbus: the stream cannot be resynchronised; hang up.
        let Ok(mbap) = frame::parse_mbap(&head) else {
            return;
        };
        let mut pdu = vec![0u8; mbap.pdu_len];
        if !fill(sh, &mut conn, &mut pdu) {
            return;
        }
        let out = match sh.answer(mbap.unit, &pdu) {
            Answer::Silence => continue,
            Answer::Pdu(p) => frame::tcp_frame(mbap.transaction, mbap.unit, &p),
            Answer::Garbled(p) => {
                let mut f = frame::tcp_frame(mbap.transaction, mbap.unit, &p);
                f.truncate(MBAP_LEN);
                f
            }
        };
        if conn.write_all(&out).is_err() {
            return;
        }
    }
}

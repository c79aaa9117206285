//! The control socket: a Unix stream socket serving the line protocol of
//! `hilt_hw::sim_link` to any number of concurrent clients (one thread each).

use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::Shutdown;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::controls::Controls;
use crate::error::SimError;
use crate::shared::Wakeup;

/// Longest request line; longer requests get an error and the connection is closed.
const MAX_REQUEST: u64 = 4096;
/// Concurrent clients beyond this are told so and disconnected.
const MAX_CLIENTS: usize = 64;

#[derive(Debug)]
pub(crate) struct ControlServer {
    path: PathBuf,
    /// Device and inode of the socket we bound, so we only ever remove our own.
    identity: (u64, u64),
    wake: Arc<Wakeup>,
    thread: Option<JoinHandle<()>>,
}

/// Binds `path`, replacing a stale socket but never a live one or a non-socket file.
fn bind(path: &Path) -> Result<UnixListener, SimError> {
    let fail = |reason: String| SimError::Control {
        path: path.to_path_buf(),
        reason,
    };
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if UnixStream::connect(path).is_ok() {
                return Err(fail(
                    "another sim DUT is already serving this socket; stop it or choose another path"
                        .into(),
                ));
            }
            fs::remove_file(path).map_err(|e| fail(format!("cannot remove stale socket: {e}")))?;
        }
        Ok(_) => {
            return Err(fail(
                "a file that is not a socket is in the way; remove it or choose another path"
                    .into(),
            ));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(fail(e.to_string())),
    }
    UnixListener::bind(path).map_err(|e| fail(e.to_string()))
}

impl ControlServer {
    pub fn start(path: &Path, controls: Controls) -> Result<ControlServer, SimError> {
        let listener = bind(path)?;
        let cleanup = |e: SimError| {
            let _ = fs::remove_file(path);
            e
        };
        let meta = fs::symlink_metadata(path)
            .map_err(|e| SimError::Control {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })
            .map_err(cleanup)?;
        let io_fail = |e: io::Error| cleanup(SimError::Thread(e));
        listener.set_nonblocking(true).map_err(io_fail)?;
        let wake = Arc::new(Wakeup::new().map_err(io_fail)?);
        let thread_wake = wake.clone();
        let thread = std::thread::Builder::new()
            .name("hilt-sim-control".into())
            .spawn(move || serve(listener, controls, &thread_wake))
            .map_err(io_fail)?;
        Ok(ControlServer {
            path: path.to_path_buf(),
            identity: (meta.dev(), meta.ino()),
            wake,
            thread: Some(thread),
        })
    }

    /// Disconnects every client, joins all threads and removes the socket file.
    pub fn stop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.wake.notify();
            let _ = thread.join();
        }
        if fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.identity) {
            let _ = fs::remove_file(&self.path);
        }
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Client {
    stream: UnixStream,
    thread: JoinHandle<()>,
}

fn serve(listener: UnixListener, controls: Controls, wake: &Wakeup) {
    let mut clients: Vec<Client> = Vec::new();
    loop {
        let (accept, stop) = {
            let mut fds = [
                PollFd::new(listener.as_fd(), PollFlags::POLLIN),
                PollFd::new(wake.fd(), PollFlags::POLLIN),
            ];
            if let Err(e) = poll(&mut fds, PollTimeout::NONE)
                && e != nix::Error::EINTR
            {
                break;
            }
            let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
            (ready(&fds[0]), ready(&fds[1]))
        };
        if stop {
            break;
        }
        clients.retain(|c| !c.thread.is_finished());
        if accept {
            while let Ok((stream, _)) = listener.accept() {
                if let Some(client) = admit(stream, &controls, clients.len()) {
                    clients.push(client);
                }
            }
        }
    }
    for client in &clients {
        let _ = client.stream.shutdown(Shutdown::Both);
    }
    for client in clients {
        let _ = client.thread.join();
    }
}

fn admit(stream: UnixStream, controls: &Controls, active: usize) -> Option<Client> {
    // Accepted sockets may inherit the listener's non-blocking mode on some systems.
    stream.set_nonblocking(false).ok()?;
    if active >= MAX_CLIENTS {
        let _ = (&stream).write_all(b"error: too many control clients; close some and retry\n");
        return None;
    }
    let handle = stream.try_clone().ok()?;
    let controls = controls.clone();
    let thread = std::thread::Builder::new()
        .name("hilt-sim-client".into())
        .spawn(move || serve_client(stream, &controls))
        .ok()?;
    Some(Client {
        stream: handle,
        thread,
    })
}

/// One request line in, one reply line out, until the client goes away.
fn serve_client(stream: UnixStream, controls: &Controls) {
    let Ok(write_half) = stream.try_clone() else {
        return;
    };
    let mut writer = io::BufWriter::new(write_half);
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader
            .by_ref()
            .take(MAX_REQUEST + 1)
            .read_until(b'\n', &mut line)
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if line.last() != Some(&b'\n') {
            if line.len() as u64 > MAX_REQUEST {
                let _ = writeln!(writer, "error: request longer than {MAX_REQUEST} bytes");
                let _ = writer.flush();
            }
            // Too long, or the client disconnected mid-line: either way, done.
            return;
        }
        let reply = match std::str::from_utf8(&line) {
            Ok(text) => controls.request(text.trim_end_matches(['\n', '\r'])),
            Err(_) => "error: request is not UTF-8 text".to_string(),
        };
        if writeln!(writer, "{reply}")
            .and_then(|()| writer.flush())
            .is_err()
        {
            return;
        }
    }
}

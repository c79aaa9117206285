//! Starting and stopping a simulated DUT: pty, optional symlink and control socket, and
//! the background threads that run them.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crate::config::DutConfig;
use crate::control_server::ControlServer;
use crate::controls::Controls;
use crate::error::SimError;
use crate::firmware::Firmware;
use crate::shared::Shared;
use crate::{link, pty};

/// Entry point: `SimDut::start(config)` brings a simulated device up.
#[derive(Debug)]
pub struct SimDut;

impl SimDut {
    /// Opens a pseudo-terminal, creates the optional link and control socket, and starts
    /// the firmware (booting at once when `config.powered`).
    pub fn start(config: DutConfig) -> Result<SimDutHandle, SimError> {
        config.validate()?;
        let pty = pty::open()?;
        let mut handle = SimDutHandle {
            port: pty.path.clone(),
            link: None,
            control: None,
            controls: None,
            io_thread: None,
            server: None,
            _slave: Some(pty.slave),
        };
        if let Some(path) = &config.link {
            link::create(path, &handle.port)?;
            handle.link = Some(path.clone());
        }
        let shared = Arc::new(
            Shared::new(Firmware::new(&config), Instant::now()).map_err(SimError::Thread)?,
        );
        let controls = Controls::new(shared.clone());
        handle.controls = Some(controls.clone());
        if let Some(path) = &config.control {
            handle.server = Some(ControlServer::start(path, controls)?);
            handle.control = Some(path.clone());
        }
        handle.io_thread = Some(spawn_io(shared, pty.master)?);
        Ok(handle)
    }
}

fn spawn_io(shared: Arc<Shared>, master: File) -> Result<JoinHandle<()>, SimError> {
    std::thread::Builder::new()
        .name("hilt-sim-pty".into())
        .spawn(move || pty::run(shared, master))
        .map_err(SimError::Thread)
}

/// A running simulated DUT. Dropping it stops the sim (threads joined, link and socket
/// removed), exactly like [`SimDutHandle::stop`].
#[derive(Debug)]
pub struct SimDutHandle {
    port: PathBuf,
    link: Option<PathBuf>,
    control: Option<PathBuf>,
    controls: Option<Controls>,
    io_thread: Option<JoinHandle<()>>,
    server: Option<ControlServer>,
    /// Keeps the pty from hanging up between clients; closed last.
    _slave: Option<OwnedFd>,
}

impl SimDutHandle {
    /// The pty slave to open as the DUT's serial port.
    pub fn port_path(&self) -> &Path {
        &self.port
    }

    /// The stable symlink to [`Self::port_path`], when configured.
    pub fn link_path(&self) -> Option<&Path> {
        self.link.as_deref()
    }

    /// The control socket, when configured.
    pub fn control_path(&self) -> Option<&Path> {
        self.control.as_deref()
    }

    /// In-process access to power, GPIO and faults (same operations as the socket).
    /// Waits until the device has booted (READY high), up to `timeout`. Returns whether
    /// it did.
    pub fn wait_ready(&self, timeout: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        let controls = self.controls();
        while !controls.state().ready {
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        true
    }

    pub fn controls(&self) -> Controls {
        self.controls
            .clone()
            .expect("controls exist for every started sim")
    }

    /// Stops the sim: joins its threads, closes the pty, removes the link and socket.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(mut server) = self.server.take() {
            server.stop();
        }
        if let Some(controls) = &self.controls {
            controls.shared().request_stop();
        }
        if let Some(thread) = self.io_thread.take() {
            let _ = thread.join();
        }
        self._slave = None;
        if let Some(path) = self.link.take() {
            link::remove(&path, &self.port);
        }
    }
}

impl Drop for SimDutHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

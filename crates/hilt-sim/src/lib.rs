//! Simulated device-under-test for demos, docs and tests.
//!
//! [`SimDut::start`] brings up a simulated embedded device on a real pseudo-terminal, so
//! hilt's serial driver talks to it exactly as to hardware: it boots with a banner,
//! answers commands, and misbehaves on demand. The wires around it (power outlet, RESET,
//! READY, LED and BUTTON lines, fault injection) are reached in-process through
//! [`Controls`] or from another process through the control socket, whose protocol and
//! channel numbers are defined in [`hilt_hw::sim_link`].
//!
//! The firmware itself ([`Firmware`]) is a pure state machine driven by a virtual clock,
//! so its behaviour is unit-tested without a pty:
//!
//! ```
//! use std::time::Duration;
//! use hilt_sim::{DutConfig, Firmware};
//!
//! let mut fw = Firmware::new(&DutConfig::default());
//! let mut out = Vec::new();
//! fw.take_output(Duration::from_millis(30), &mut out); // boot_ms later: the banner
//! assert!(out.ends_with(b"ready\r\n"));
//! out.clear();
//! fw.feed(Duration::from_millis(31), b"add 2 3\n");
//! fw.take_output(Duration::from_millis(31), &mut out);
//! assert_eq!(out, b"= 5\r\n");
//! ```
//!
//! Typical use in a test:
//!
//! ```no_run
//! use hilt_sim::{DutConfig, SimDut};
//!
//! let dut = SimDut::start(DutConfig { latency_ms: 2, ..DutConfig::default() })?;
//! println!("serial port: {}", dut.port_path().display());
//! dut.controls().power_set(false);
//! dut.stop();
//! # Ok::<(), hilt_sim::SimError>(())
//! ```

mod bus;
mod commands;
mod config;
mod control_server;
mod controls;
mod dut;
mod error;
mod fault;
mod firmware;
mod http_relay;
mod link;
mod modbus;
mod output;
mod pty;
mod rng;
mod scpi;
mod serial_relay;
mod shared;
mod slcan;
mod state;

pub use bus::BusSim;
pub use commands::MAX_FLOOD;
pub use config::{DutConfig, Identity};
pub use controls::Controls;
pub use dut::{SimDut, SimDutHandle};
pub use error::SimError;
pub use fault::Fault;
pub use firmware::{FIRMWARE_VERSION, Firmware, MAX_LINE, REGISTER_COUNT};
pub use http_relay::{HttpRelayConfig, HttpRelaySim, RecordedRequest};
pub use modbus::{
    MapError, ModbusBind, ModbusFault, ModbusSim, ModbusSimConfig, RegisterMap, SlaveTables,
};
pub use scpi::{ScpiFault, ScpiSim};
pub use serial_relay::{SerialRelaySim, relay_frame};
pub use slcan::{
    Adapter as SlcanAdapter, ECHO_ID, ECHO_REPLY_ID, EXT_ECHO_ID, EXT_ECHO_REPLY_ID,
    Fault as SlcanFault, HEARTBEAT_ID, REQUEST_ID, RESPONSE_ID, SlcanSim, SlcanSimConfig,
};
pub use state::{DutState, ResetCause};

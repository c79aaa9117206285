//! Hardware behind traits: transports, GPIO, power, measurement, flash tools, resource locks.
//!
//! Every resource has a real implementation and a simulated one; the runner picks one from
//! the bench file and never knows which it holds.

pub mod board;
pub mod can;
pub mod cancel;
pub mod drivers;
mod error;
pub mod flash;
pub mod gpio;
pub mod gpiochip;
pub mod http;
pub mod i2c;
pub mod locks;
pub mod measurement;
pub mod modbus;
pub mod ports;
pub mod power;
pub mod process;
pub mod qemu;
pub mod scpi;
pub mod serial;
pub mod sim_link;
pub mod simbus;
pub mod spi;
pub mod ssh;
pub mod tls;

pub use cancel::CancelToken;
pub use error::{HwError, ResourceKind};

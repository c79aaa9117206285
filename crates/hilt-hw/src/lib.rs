//! Hardware behind traits: transports, GPIO, power, measurement, flash tools, resource locks.
//!
//! Every resource has a real implementation and a simulated one; the runner picks one from
//! the bench file and never knows which it holds.

pub mod cancel;
pub mod locks;
pub mod process;
pub mod sim_link;

pub use cancel::CancelToken;

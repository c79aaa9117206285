//! Test support for the agent, shared by the agent's and the CLI's tests (and nothing else:
//! a dev-dependency only).
//!
//! - [`agent`]: a real agent served in-process on 127.0.0.1:0 with its own runtime, labs of
//!   benches, a blocking HTTP client and a raw socket client.
//! - [`process`]: `hilt agent serve` as a child process (signals, crashes, restarts).
//! - [`peers`]: find a peer program, skipping visibly or failing under `HILT_REQUIRE_PEERS`.
//! - [`sshd`]: real OpenSSH servers on loopback (jump chains) with generated keys.

pub mod agent;
pub mod peers;
pub mod postgres;
pub mod process;
pub mod sshd;

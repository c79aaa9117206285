//! Errors of the simulated DUT.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("invalid sim DUT configuration: {0}")]
    Config(String),
    #[error("cannot create the sim DUT pseudo-terminal ({what}): {source}")]
    Pty {
        what: &'static str,
        source: nix::Error,
    },
    #[error("cannot create the sim DUT port link {}: {reason}", path.display())]
    Link { path: PathBuf, reason: String },
    #[error("cannot open the sim DUT control socket {}: {reason}", path.display())]
    Control { path: PathBuf, reason: String },
    #[error("cannot start a sim DUT thread: {0}")]
    Thread(std::io::Error),
    /// A control request the DUT cannot honour (bad channel, unknown fault, ...).
    #[error("{0}")]
    Rejected(String),
}

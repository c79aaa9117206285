//! What crosses server processes. Several `hilt server` replicas may share one PostgreSQL
//! database; a wake-up made in one (a run queued, a bench freed, leases expired) must reach
//! the long-polls waiting in the others. PostgreSQL carries it with `NOTIFY` / `LISTEN`;
//! SQLite is one process's file, so there is nothing to tell and nobody to hear.

use tokio::sync::mpsc;

use super::Fut;

/// What a listener reports to the process that started it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    /// The listener is connected and `LISTEN`s: from now on no notification is missed (a
    /// reconnect sends it again, since notifications sent meanwhile are gone).
    Listening,
    /// One notification's payload.
    Payload(String),
}

pub trait Coordination {
    /// Whether other processes may share this store (PostgreSQL), so wake-ups must cross
    /// processes.
    fn shared(&self) -> bool;

    /// Sends each payload to every process listening on `channel` (one `NOTIFY` each, one
    /// round trip for all). Nothing on a store no other process shares.
    fn publish<'a>(&'a self, channel: &'a str, payloads: &'a [String]) -> Fut<'a, ()>;

    /// Connects a dedicated connection, `LISTEN`s on `channel`, sends [`Heard::Listening`],
    /// then each notification's payload, until the connection is lost (an error) or `heard`
    /// is closed (`Ok`). Returns `Ok` at once on a store no other process shares.
    fn listen<'a>(&'a self, channel: &'a str, heard: mpsc::Sender<Heard>) -> Fut<'a, ()>;
}

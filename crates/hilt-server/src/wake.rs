//! Wake-ups of long-polling agents, in this process and across replicas.
//!
//! Each agent's long-poll waits on its own `Notify` here. A wake-up (a run queued for one of
//! its benches, a bench freed, leases expired) notifies the local waiters at once and, on a
//! store other processes share (PostgreSQL), is published as a `NOTIFY` on [`CHANNEL`]:
//! every replica's listener ([`listen`]) wakes its own waiters for that agent. Publishing
//! goes through a bounded outbox drained by one task ([`publish`]), batching what piled up
//! into one round trip; a full outbox turns into one "wake everyone".
//!
//! A notification can be missed (the listener's connection lost, a publish that failed), so
//! nothing relies on it alone: after the listener (re)connects every local long-poll is
//! woken once to claim again, a silent listener is probed and replaced, and on a shared
//! store each long-poll re-checks the claim every `settings.recheck` anyway.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

use crate::App;
use crate::store::Heard;

/// The PostgreSQL notification channel of wake-ups.
pub const CHANNEL: &str = "hilt_wake";
/// Wake-ups waiting to be published; beyond, one "wake everyone" replaces them.
const OUTBOX: usize = 1024;
/// Most payloads per publishing round trip.
const BATCH: usize = 256;
/// Notifications heard but not yet handled (the listener waits when it is full).
const HEARD: usize = 1024;
/// The listener publishes a probe this often; silent for [`SILENT_LIMIT`] (no probe of its
/// own nor anything else came back), its connection is taken for dead and replaced.
const PROBE_EVERY: Duration = Duration::from_secs(10);
const SILENT_LIMIT: Duration = Duration::from_secs(30);
/// Payload targets: every agent, and the listener's probe.
const ALL: &str = "*";
const PROBE: &str = "~";

enum Wake {
    Agent(String),
    All,
}

pub struct Wakers {
    local: Mutex<HashMap<String, Arc<Notify>>>,
    /// This process's id in the payloads it publishes (its own are not acted on twice).
    replica: String,
    /// `None` on a store no other process shares.
    outbox: Option<mpsc::Sender<Wake>>,
    /// A wake-up did not fit in the outbox: the publisher sends "wake everyone".
    overflow: AtomicBool,
}

/// What [`publish`] drains; `None` when wake-ups stay in the process.
pub struct Outbox(Option<mpsc::Receiver<Wake>>);

impl Wakers {
    /// `shared`: the store is shared with other processes, wake-ups are published.
    pub fn new(shared: bool) -> (Wakers, Outbox) {
        let (outbox, rx) = if shared {
            let (tx, rx) = mpsc::channel(OUTBOX);
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let w = Wakers {
            local: Mutex::new(HashMap::new()),
            replica: crate::ids::new_id(),
            outbox,
            overflow: AtomicBool::new(false),
        };
        (w, Outbox(rx))
    }

    /// The agent's wake-up (made on first use; one per agent token).
    pub fn waker(&self, agent_id: &str) -> Arc<Notify> {
        let mut w = self.local.lock().unwrap_or_else(|e| e.into_inner());
        w.entry(agent_id.to_string()).or_default().clone()
    }

    pub fn wake(&self, agent_id: &str) {
        self.wake_here(agent_id);
        self.send(Wake::Agent(agent_id.to_string()));
    }

    pub fn wake_all(&self) {
        self.wake_all_here();
        self.send(Wake::All);
    }

    /// Wakes the agent's long-polls in this process only (no entry is made for an agent
    /// that never polled here).
    fn wake_here(&self, agent_id: &str) {
        let w = self.local.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = w.get(agent_id) {
            n.notify_waiters();
        }
    }

    fn wake_all_here(&self) {
        let w = self.local.lock().unwrap_or_else(|e| e.into_inner());
        for n in w.values() {
            n.notify_waiters();
        }
    }

    fn send(&self, wake: Wake) {
        let Some(tx) = &self.outbox else { return };
        if tx.try_send(wake).is_err() {
            self.overflow.store(true, Ordering::SeqCst);
        }
    }

    fn payload(&self, target: &str) -> String {
        format!("{} {target}", self.replica)
    }

    /// A notification from a replica (ours are skipped: already woken locally).
    fn heard(&self, payload: &str) {
        let Some((from, target)) = payload.split_once(' ') else {
            tracing::warn!("wake-up notification not understood: {payload:?}");
            return;
        };
        if from == self.replica {
            return;
        }
        match target {
            PROBE => {}
            ALL => self.wake_all_here(),
            agent => self.wake_here(agent),
        }
    }
}

/// Publishes queued wake-ups as notifications until the process ends.
pub async fn publish(app: Arc<App>, outbox: Outbox) {
    let Some(mut rx) = outbox.0 else { return };
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        batch.clear();
        if rx.recv_many(&mut batch, BATCH).await == 0 {
            return;
        }
        let all = app.wakers.overflow.swap(false, Ordering::SeqCst)
            || batch.iter().any(|w| matches!(w, Wake::All));
        let payloads: Vec<String> = if all {
            vec![app.wakers.payload(ALL)]
        } else {
            let mut agents: Vec<&str> = batch
                .iter()
                .filter_map(|w| match w {
                    Wake::Agent(a) => Some(a.as_str()),
                    Wake::All => None,
                })
                .collect();
            agents.sort_unstable();
            agents.dedup();
            agents.iter().map(|a| app.wakers.payload(a)).collect()
        };
        if let Err(e) = app.store.publish(CHANNEL, &payloads).await {
            // The other replicas' long-polls re-check on their own (settings.recheck).
            tracing::warn!(
                "cannot publish {} wake-up(s) to the other replicas: {e}",
                payloads.len()
            );
        }
    }
}

/// Listens to the other replicas' wake-ups until the process ends: reconnects with back-off
/// when the connection is lost or goes silent, and wakes every local long-poll once each
/// time it listens again (what was sent meanwhile is lost).
pub async fn listen(app: Arc<App>) {
    if !app.store.shared() {
        return;
    }
    let mut backoff = Duration::from_millis(200);
    let mut lost_once = false;
    loop {
        let (tx, mut rx) = mpsc::channel(HEARD);
        let listening = app.store.listen(CHANNEL, tx);
        let mut listening = std::pin::pin!(listening);
        let mut probe = tokio::time::interval(PROBE_EVERY);
        probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_heard = Instant::now();
        let mut connected = false;
        let why = loop {
            tokio::select! {
                r = &mut listening => break match r {
                    Ok(()) => return,
                    Err(e) => e.to_string(),
                },
                h = rx.recv() => match h {
                    Some(Heard::Listening) => {
                        connected = true;
                        last_heard = Instant::now();
                        backoff = Duration::from_millis(200);
                        if lost_once {
                            tracing::info!("listening to the other replicas' wake-ups again");
                        }
                        app.wakers.wake_all_here();
                    }
                    Some(Heard::Payload(p)) => {
                        last_heard = Instant::now();
                        app.wakers.heard(&p);
                    }
                    None => {}
                },
                _ = probe.tick(), if connected => {
                    if last_heard.elapsed() > SILENT_LIMIT {
                        break format!("nothing heard for {} s, not even its own probe", SILENT_LIMIT.as_secs());
                    }
                    let probe = [app.wakers.payload(PROBE)];
                    if let Err(e) = app.store.publish(CHANNEL, &probe).await {
                        tracing::warn!("cannot probe the wake-up listener: {e}");
                    }
                }
            }
        };
        lost_once = true;
        tracing::warn!(
            "wake-ups from other replicas: {why}; listening again in {} ms",
            backoff.as_millis()
        );
        // Long-polls claim again meanwhile rather than wait for a wake-up that may be lost.
        app.wakers.wake_all_here();
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::{ALL, OUTBOX, PROBE, Wake, Wakers};

    /// Whether `n` is notified within a moment.
    async fn woken(n: &Arc<tokio::sync::Notify>, f: impl FnOnce()) -> bool {
        let w = n.notified();
        let mut w = std::pin::pin!(w);
        w.as_mut().enable();
        f();
        tokio::time::timeout(Duration::from_millis(50), w)
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn other_replicas_wake_their_agent_ours_and_probes_are_ignored() {
        let (w, _outbox) = Wakers::new(true);
        let a = w.waker("agent-a");
        let b = w.waker("agent-b");
        assert!(woken(&a, || w.heard("other agent-a")).await);
        assert!(!woken(&b, || w.heard("other agent-a")).await);
        assert!(woken(&b, || w.heard(&format!("other {ALL}"))).await);
        // Our own notification: the local waiters were woken when it was made.
        assert!(!woken(&a, || w.heard(&w.payload("agent-a"))).await);
        assert!(!woken(&a, || w.heard(&format!("other {PROBE}"))).await);
        assert!(!woken(&a, || w.heard("no-space")).await);
        // An agent that never polled here gets no entry.
        w.heard("other agent-z");
        assert_eq!(w.local.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_full_outbox_becomes_one_wake_everyone() {
        let (w, outbox) = Wakers::new(true);
        for i in 0..OUTBOX + 5 {
            w.wake(&format!("agent-{i}"));
        }
        assert!(w.overflow.load(std::sync::atomic::Ordering::SeqCst));
        let mut rx = outbox.0.unwrap();
        assert_eq!(rx.len(), OUTBOX);
        assert!(matches!(rx.recv().await, Some(Wake::Agent(_))));
    }

    #[tokio::test]
    async fn nothing_is_published_when_the_store_is_not_shared() {
        let (w, outbox) = Wakers::new(false);
        assert!(outbox.0.is_none());
        let a = w.waker("agent-a");
        assert!(woken(&a, || w.wake("agent-a")).await);
        assert!(woken(&a, || w.wake_all()).await);
    }
}

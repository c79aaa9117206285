//! The dispatcher: one task that starts queued runs in FIFO order whenever their bench lock
//! is free. Runs on different benches execute in parallel; runs on one bench one at a time.

use std::sync::Arc;

use crate::record::RunState;
use crate::state::{Agent, Stop};

pub async fn dispatch(agent: Arc<Agent>) {
    loop {
        let notified = agent.wake.notified();
        if agent.stop_mode() == Stop::No {
            start_ready(&agent);
        }
        if agent.stop_mode() != Stop::No && agent.runs().active() == 0 {
            agent.stopped.notify_waiters();
        }
        notified.await;
    }
}

fn start_ready(agent: &Arc<Agent>) {
    let mut to_start = Vec::new();
    {
        let mut runs = agent.runs();
        let mut i = 0;
        let mut waiting = std::collections::HashSet::new();
        while i < runs.queue.len() {
            let id = runs.queue[i].clone();
            let keys: Vec<String> = match runs.map.get(id.as_str()).and_then(|e| e.rec.as_deref()) {
                Some(r) if r.status == RunState::Queued => std::iter::once(r.lock_key.clone())
                    .chain(r.resource_keys.iter().cloned())
                    .collect(),
                _ => {
                    runs.queue.remove(i);
                    continue;
                }
            };
            // The bench lock, and every physical resource the run will lock: runs that
            // share hardware wait here instead of failing with RESOURCE_LOCKED.
            // A waiting run also holds back later runs on its own bench (FIFO per bench).
            if keys.iter().any(|k| runs.busy.contains_key(k)) || waiting.contains(&keys[0]) {
                waiting.insert(keys[0].clone());
                i += 1;
                continue;
            }
            runs.queue.remove(i);
            for k in keys {
                runs.busy.insert(k, id.clone());
            }
            if let Some(e) = runs.map.get_mut(id.as_str()) {
                e.update(|r| r.status = RunState::Preparing);
            }
            to_start.push(id);
        }
    }
    for id in to_start {
        let agent = agent.clone();
        tokio::task::spawn_blocking(move || crate::worker::execute(&agent, &id));
    }
}

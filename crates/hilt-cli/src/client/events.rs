//! Following a run's events until it ends: the Server-Sent Events stream
//! (`GET /v1/runs/{id}/events/stream`, hilt) when the agent has it, otherwise polling
//! `GET /v1/runs/{id}/events?after=N` every 200 ms (a BenchCI agent ignores `after` and
//! returns the whole list; events without `seq` are then counted by position).
//!
//! The follower runs on its own thread and sends [`Feed`] messages, so the caller can wait
//! on the channel with a timeout and react to Ctrl-C while a read is blocked.

use std::io::{BufRead, BufReader};
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use hilt_api::EventsPage;
use hilt_model::run::Event;
use serde::Deserialize;
use serde_json::Value;

use super::{AgentClient, ClientError, segment};

/// Polling period when there is no stream.
pub const POLL: Duration = Duration::from_millis(200);
/// How long the agent may stay unreachable while a run is followed.
const OUTAGE: Duration = Duration::from_secs(60);

pub enum Feed {
    Event(Event),
    /// The run reached a terminal state and every event has been delivered.
    Ended,
    /// Following failed for good.
    Failed(ClientError),
}

/// An agent event (`{seq?, timestamp, event_type, message, data}`), typed; events without
/// `seq` (BenchCI agents) get `fallback_seq`. `None` for something that is not an event.
pub fn to_event(v: &Value, fallback_seq: u64) -> Option<Event> {
    let mut e = Event::deserialize(v).ok()?;
    if e.seq == 0 {
        e.seq = fallback_seq;
    }
    Some(e)
}

/// Which events have been delivered: by `seq` when the agent numbers them, else by position
/// in the full list.
#[derive(Default)]
struct Seen {
    last_seq: u64,
    count: usize,
}

impl Seen {
    /// The new events of a list answer (`after` may or may not have been honoured).
    fn take(&mut self, list: Vec<Event>) -> Vec<Event> {
        let numbered = list.iter().any(|e| e.seq > 0);
        let mut out = Vec::new();
        if numbered {
            for e in list {
                if e.seq > self.last_seq {
                    self.last_seq = e.seq;
                    self.count += 1;
                    out.push(e);
                }
            }
        } else {
            let total = list.len();
            for (i, mut e) in list.into_iter().enumerate().skip(self.count) {
                e.seq = i as u64 + 1;
                out.push(e);
            }
            self.count = self.count.max(total);
        }
        out
    }

    fn one(&mut self, e: &Event) -> bool {
        if e.seq > self.last_seq {
            self.last_seq = e.seq;
            self.count += 1;
            true
        } else {
            false
        }
    }
}

/// Follows `run_id` until it ends, sending everything to `tx`. Returns when the run ended,
/// following failed, or the receiver went away.
pub fn follow(client: AgentClient, run_id: String, tx: Sender<Feed>) {
    let mut f = Follower {
        client,
        id: segment(&run_id),
        tx,
        seen: Seen::default(),
        down_since: None,
        saw_final: false,
    };
    let end = f.run();
    let _ = f.tx.send(match end {
        Ok(()) => Feed::Ended,
        Err(e) => Feed::Failed(e),
    });
}

struct Follower {
    client: AgentClient,
    id: String,
    tx: Sender<Feed>,
    seen: Seen,
    down_since: Option<Instant>,
    /// The agent's own final event (it carries `exit_code`) has been delivered.
    saw_final: bool,
}

/// Why a stream ended.
enum StreamEnd {
    /// The agent has no stream endpoint.
    Unsupported,
    /// Closed or broken: look at the run and reconnect if it is still going.
    Closed,
    /// The receiver is gone.
    Gone,
}

impl Follower {
    fn run(&mut self) -> Result<(), ClientError> {
        let mut streams = true;
        loop {
            if streams {
                match self.stream() {
                    Ok(StreamEnd::Unsupported) => streams = false,
                    Ok(StreamEnd::Gone) => return Ok(()),
                    Ok(StreamEnd::Closed) => {}
                    Err(e) => self.transient(e)?,
                }
            }
            // After a stream ends (or instead of one): one poll catches what the stream did
            // not deliver and says whether the run is over.
            match self.poll() {
                Ok(Some(true)) => return Ok(()),
                Ok(Some(false)) => {}
                Ok(None) => return Ok(()),
                Err(e) => self.transient(e)?,
            }
            std::thread::sleep(POLL);
        }
    }

    /// An error while following: auth and refusals end it; an unreachable agent is retried
    /// for a while (it may be restarting: runs survive an agent restart).
    fn transient(&mut self, e: ClientError) -> Result<(), ClientError> {
        match e {
            ClientError::Unreachable { .. } => {
                let since = *self.down_since.get_or_insert_with(Instant::now);
                if since.elapsed() > OUTAGE {
                    return Err(e);
                }
                std::thread::sleep(Duration::from_secs(1));
                Ok(())
            }
            other => Err(other),
        }
    }

    fn send(&mut self, e: Event) -> bool {
        self.saw_final |= e.is_final();
        self.tx.send(Feed::Event(e)).is_ok()
    }

    /// One poll: delivers new events; `Some(terminal)`, or `None` when the receiver is gone.
    fn poll(&mut self) -> Result<Option<bool>, ClientError> {
        let page: EventsPage = self.client.get_as(&format!(
            "/v1/runs/{}/events?after={}",
            self.id, self.seen.last_seq
        ))?;
        self.down_since = None;
        for e in self.seen.take(page.events) {
            if !self.send(e) {
                return Ok(None);
            }
        }
        if page.status.is_terminal() {
            if self.saw_final {
                return Ok(Some(true));
            }
            // The state may turn terminal a moment before the last event is appended.
            std::thread::sleep(POLL);
            let page: EventsPage = self.client.get_as(&format!(
                "/v1/runs/{}/events?after={}",
                self.id, self.seen.last_seq
            ))?;
            for e in self.seen.take(page.events) {
                if !self.send(e) {
                    return Ok(None);
                }
            }
            return Ok(Some(true));
        }
        Ok(Some(false))
    }

    /// Reads the SSE stream until it closes.
    fn stream(&mut self) -> Result<StreamEnd, ClientError> {
        let path = format!(
            "/v1/runs/{}/events/stream?after={}",
            self.id, self.seen.last_seq
        );
        let resp = match self.client.get_raw(&path, "text/event-stream", true) {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(StreamEnd::Unsupported),
            Err(ClientError::Status { status, .. }) if status == 405 || status == 501 => {
                return Ok(StreamEnd::Unsupported);
            }
            Err(e) => return Err(e),
        };
        let is_sse = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if !is_sse {
            return Ok(StreamEnd::Unsupported);
        }
        self.down_since = None;
        let mut reader = BufReader::new(resp.into_body().into_reader());
        let mut data = String::new();
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return Ok(StreamEnd::Closed),
                Ok(_) => {}
            }
            let l = line.trim_end_matches(['\r', '\n']);
            if l.is_empty() {
                // Dispatch.
                if !data.is_empty() {
                    let v: Option<Value> = serde_json::from_str(&data).ok();
                    data.clear();
                    if let Some(e) = v.as_ref().and_then(|v| to_event(v, 0))
                        && self.seen.one(&e)
                        && !self.send(e)
                    {
                        return Ok(StreamEnd::Gone);
                    }
                }
            } else if let Some(rest) = l.strip_prefix("data:") {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(rest.strip_prefix(' ').unwrap_or(rest));
            }
            // `id:`, `event:`, `retry:` and `:` comments (keep-alives) carry nothing we
            // need: the JSON has the sequence number and type.
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn converts_agent_events() {
        let e = to_event(
            &json!({"seq": 4, "timestamp": "t", "event_type": "step.started", "message": null, "data": {"step_type": "sleep_ms"}}),
            0,
        )
        .unwrap();
        assert_eq!(e.seq, 4);
        assert_eq!(e.event_type, "step.started");
        assert_eq!(e.data["step_type"], "sleep_ms");
        let e = to_event(&json!({"timestamp": "t", "event_type": "run.queued"}), 7).unwrap();
        assert_eq!(e.seq, 7);
        assert!(e.data.is_empty());
        assert!(to_event(&json!({"nope": 1}), 0).is_none());
    }

    fn events(v: Value) -> Vec<Event> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| to_event(e, 0).unwrap())
            .collect()
    }

    #[test]
    fn numbered_lists_are_deduplicated_by_seq() {
        let mut s = Seen::default();
        let a = json!([{"seq": 1, "event_type": "a"}, {"seq": 2, "event_type": "b"}]);
        assert_eq!(s.take(events(a)).len(), 2);
        // An agent that ignores `after` sends everything again.
        let b = json!([{"seq": 1, "event_type": "a"}, {"seq": 2, "event_type": "b"}, {"seq": 3, "event_type": "c"}]);
        let got = s.take(events(b));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].event_type, "c");
    }

    #[test]
    fn unnumbered_lists_are_counted_by_position() {
        let mut s = Seen::default();
        let a = json!([{"event_type": "a"}]);
        assert_eq!(s.take(events(a)).len(), 1);
        let b = json!([{"event_type": "a"}, {"event_type": "b"}, {"event_type": "c"}]);
        let got = s.take(events(b));
        assert_eq!(
            got.iter()
                .map(|e| e.event_type.as_str())
                .collect::<Vec<_>>(),
            ["b", "c"]
        );
        assert_eq!(got[1].seq, 3);
    }
}

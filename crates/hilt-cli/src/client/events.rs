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

use hilt_model::run::Event;
use serde_json::{Map, Value};

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

pub fn is_terminal(status: &str) -> bool {
    matches!(status, "done" | "failed" | "cancelled")
}

/// An agent event (`{seq?, timestamp, event_type, message, data}`) as the runner's event.
/// `None` for something that is not an event at all.
pub fn to_event(v: &Value, fallback_seq: u64) -> Option<Event> {
    let obj = v.as_object()?;
    let event_type = obj.get("event_type")?.as_str()?.to_string();
    Some(Event {
        seq: obj
            .get("seq")
            .and_then(Value::as_u64)
            .unwrap_or(fallback_seq),
        timestamp: obj
            .get("timestamp")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        event_type,
        message: obj
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_string),
        data: obj
            .get("data")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_else(Map::new),
    })
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
    fn take(&mut self, list: &[Value]) -> Vec<Event> {
        let numbered = list.iter().any(|e| e.get("seq").is_some_and(Value::is_u64));
        let mut out = Vec::new();
        if numbered {
            for v in list {
                if let Some(e) = to_event(v, 0)
                    && e.seq > self.last_seq
                {
                    self.last_seq = e.seq;
                    self.count += 1;
                    out.push(e);
                }
            }
        } else {
            for (i, v) in list.iter().enumerate().skip(self.count) {
                if let Some(e) = to_event(v, i as u64 + 1) {
                    out.push(e);
                }
            }
            self.count = self.count.max(list.len());
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

/// The agent's last event of a run (the runner's `run.finished` has no `exit_code`).
fn is_final(e: &Event) -> bool {
    matches!(
        e.event_type.as_str(),
        "run.finished" | "run.failed" | "run.cancelled"
    ) && e.data.contains_key("exit_code")
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
        self.saw_final |= is_final(&e);
        self.tx.send(Feed::Event(e)).is_ok()
    }

    /// One poll: delivers new events; `Some(terminal)`, or `None` when the receiver is gone.
    fn poll(&mut self) -> Result<Option<bool>, ClientError> {
        let v = self.client.get_json(&format!(
            "/v1/runs/{}/events?after={}",
            self.id, self.seen.last_seq
        ))?;
        self.down_since = None;
        let list = v
            .get("events")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for e in self.seen.take(&list) {
            if !self.send(e) {
                return Ok(None);
            }
        }
        let status = v.get("status").and_then(Value::as_str).unwrap_or("");
        if is_terminal(status) {
            if self.saw_final {
                return Ok(Some(true));
            }
            // The state may turn terminal a moment before the last event is appended.
            std::thread::sleep(POLL);
            let v = self.client.get_json(&format!(
                "/v1/runs/{}/events?after={}",
                self.id, self.seen.last_seq
            ))?;
            let list = v
                .get("events")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for e in self.seen.take(&list) {
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

    #[test]
    fn numbered_lists_are_deduplicated_by_seq() {
        let mut s = Seen::default();
        let a = json!([{"seq": 1, "event_type": "a"}, {"seq": 2, "event_type": "b"}]);
        assert_eq!(s.take(a.as_array().unwrap()).len(), 2);
        // An agent that ignores `after` sends everything again.
        let b = json!([{"seq": 1, "event_type": "a"}, {"seq": 2, "event_type": "b"}, {"seq": 3, "event_type": "c"}]);
        let got = s.take(b.as_array().unwrap());
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].event_type, "c");
    }

    #[test]
    fn unnumbered_lists_are_counted_by_position() {
        let mut s = Seen::default();
        let a = json!([{"event_type": "a"}]);
        assert_eq!(s.take(a.as_array().unwrap()).len(), 1);
        let b = json!([{"event_type": "a"}, {"event_type": "b"}, {"event_type": "c"}]);
        let got = s.take(b.as_array().unwrap());
        assert_eq!(
            got.iter()
                .map(|e| e.event_type.as_str())
                .collect::<Vec<_>>(),
            ["b", "c"]
        );
        assert_eq!(got[1].seq, 3);
    }
}

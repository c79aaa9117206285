//! An agent's event batch as it arrives: each event is kept as the agent's own JSON text
//! (stored as is; every reader decodes it as a typed `RunEvent`) and checked against the
//! event's shape without being built: `event_type` a string, `seq` a non-negative integer,
//! `timestamp` and `message` strings (`message` may be null), `data` an object. A batch
//! that `RunEvent` would refuse is refused here too, with the event's index.

use std::borrow::Cow;
use std::fmt;

use hilt_agent::api::error::ApiError;
use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::store::NewEvent;

/// `POST /v1/agents/runs/{id}/events` (the OpenAPI document shows it as `EventBatch`).
#[derive(Deserialize)]
pub struct RawBatch {
    pub events: Vec<Box<RawValue>>,
}

/// What the server reads of an event, and the types it checks.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(default)]
    seq: u64,
    #[serde(default)]
    timestamp: AnyStr,
    #[serde(borrow)]
    event_type: Cow<'a, str>,
    #[serde(default)]
    message: Option<AnyStr>,
    #[serde(default)]
    data: AnyObject,
}

/// A string, not kept.
#[derive(Default)]
struct AnyStr;

impl<'de> Deserialize<'de> for AnyStr {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = AnyStr;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<AnyStr, E> {
                Ok(AnyStr)
            }
        }
        d.deserialize_str(V)
    }
}

/// A JSON object, not kept.
#[derive(Default)]
struct AnyObject;

impl<'de> Deserialize<'de> for AnyObject {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = AnyObject;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<AnyObject, A::Error> {
                while m.next_entry::<Cow<'de, str>, IgnoredAny>()?.is_some() {}
                Ok(AnyObject)
            }
        }
        d.deserialize_map(V)
    }
}

impl RawBatch {
    /// The events to store, in the batch's order; 422 naming the first malformed event.
    pub fn rows(self) -> Result<Vec<NewEvent>, ApiError> {
        let mut rows = Vec::with_capacity(self.events.len());
        for (i, raw) in self.events.into_iter().enumerate() {
            let head: Head = serde_json::from_str(raw.get()).map_err(|e| {
                ApiError::Unprocessable(format!("invalid request body: events[{i}]: {e}"))
            })?;
            if head.seq > i64::MAX as u64 {
                return Err(ApiError::Unprocessable("event seq out of range".into()));
            }
            let (_, _, _) = (head.timestamp, head.message, head.data);
            rows.push(NewEvent {
                agent_seq: (head.seq > 0).then_some(head.seq as i64),
                kind: head.event_type.into_owned(),
                body: String::from(Box::<str>::from(raw)),
            });
        }
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hilt_api::RunEvent;

    fn rows(json: &str) -> Result<Vec<NewEvent>, String> {
        let b: RawBatch = serde_json::from_str(json).map_err(|e| e.to_string())?;
        b.rows().map_err(|e| e.to_string())
    }

    #[test]
    fn keeps_the_agents_text_and_reads_seq_and_type() {
        let r = rows(
            r#"{"events":[{"seq":3,"timestamp":"t","event_type":"step.finished","message":null,"data":{"a":[1,{"b":"\u00e9"}]}},{"event_type":"log"}]}"#,
        )
        .unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(
            (r[0].agent_seq, r[0].kind.as_str()),
            (Some(3), "step.finished")
        );
        assert_eq!((r[1].agent_seq, r[1].kind.as_str()), (None, "log"));
        // What is stored decodes as the typed event.
        let e: RunEvent = serde_json::from_str(&r[0].body).unwrap();
        assert_eq!(e.data["a"][1]["b"], "é");
    }

    #[test]
    fn refuses_what_the_typed_event_refuses() {
        for (bad, what) in [
            (r#"{"seq":1}"#, "missing field `event_type`"),
            (r#"{"event_type":1}"#, "invalid type"),
            (r#"{"event_type":"x","seq":-1}"#, "invalid value"),
            (r#"{"event_type":"x","timestamp":null}"#, "invalid type"),
            (r#"{"event_type":"x","message":5}"#, "invalid type"),
            (r#"{"event_type":"x","data":[1]}"#, "invalid type"),
            (r#"{"event_type":"x","data":null}"#, "invalid type"),
            (r#"{"event_type":"x","seq":1,"seq":2}"#, "duplicate field"),
        ] {
            let json = format!(r#"{{"events":[{{"event_type":"ok"}},{bad}]}}"#);
            let err = rows(&json).unwrap_err();
            assert!(
                err.contains("events[1]") && err.contains(what),
                "{bad}: {err}"
            );
            assert!(
                serde_json::from_str::<RunEvent>(bad).is_err(),
                "the typed event accepts {bad}"
            );
        }
        let err = rows(r#"{"events":[{"event_type":"x","seq":9223372036854775808}]}"#).unwrap_err();
        assert!(err.contains("out of range"), "{err}");
    }
}

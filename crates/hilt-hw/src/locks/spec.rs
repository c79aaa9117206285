//! What a run wants to lock.

use serde_json::{Map, Value};

/// One physical resource a run needs exclusively.
///
/// `key` is the identity of the thing (`serial:/dev/ttyUSB0`, `gpio:local:/dev/gpiochip0:17`,
/// …); two specs with the same key conflict whatever their category.
#[derive(Debug, Clone, PartialEq)]
pub struct LockSpec {
    pub key: String,
    pub display_name: String,
    pub category: String,
    /// Non-null context (node, transport, backend …) written into the lock file.
    pub details: Map<String, Value>,
}

impl LockSpec {
    /// A spec with empty details.
    pub fn new(
        key: impl Into<String>,
        display_name: impl Into<String>,
        category: impl Into<String>,
    ) -> Self {
        LockSpec {
            key: key.into(),
            display_name: display_name.into(),
            category: category.into(),
            details: Map::new(),
        }
    }

    /// Adds one entry to `details`.
    pub fn with_detail(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.details.insert(name.into(), value.into());
        self
    }

    pub(crate) fn to_json(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("key".into(), self.key.clone().into());
        m.insert("display_name".into(), self.display_name.clone().into());
        m.insert("category".into(), self.category.clone().into());
        m.insert("details".into(), Value::Object(self.details.clone()));
        m
    }
}

/// De-duplicates by key (first wins) and sorts ascending by key.
pub(crate) fn normalize(specs: Vec<LockSpec>) -> Vec<LockSpec> {
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<LockSpec> = specs
        .into_iter()
        .filter(|s| seen.insert(s.key.clone()))
        .collect();
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_dedups_first_wins_and_sorts() {
        let specs = vec![
            LockSpec::new("serial:/dev/ttyUSB0", "console", "serial_transport"),
            LockSpec::new("debugger:openocd:1", "probe", "debug_probe"),
            LockSpec::new("serial:/dev/ttyUSB0", "relay", "power_serial_relay"),
        ];
        let out = normalize(specs);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].key, "debugger:openocd:1");
        assert_eq!(out[1].category, "serial_transport");
    }
}

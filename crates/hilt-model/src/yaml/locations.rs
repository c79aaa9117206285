//! Where each node of a parsed YAML document came from: a dotted path
//! (`tests[0].steps[1].send_uart`) is resolved by walking the [`Tree`] along its children
//! as written, so no path strings are formatted per node. An alias is located where it is
//! used, its insides at the alias; merged keys have no position of their own (their
//! mapping's).

use super::Loc;
use super::tree::{Kind, NO_KEY, Tree};

impl Tree {
    /// The location of `path`, or of its nearest ancestor that has one; `None` for an
    /// empty document.
    pub fn find(&self, path: &str) -> Option<Loc> {
        if self.nodes.is_empty() {
            return None;
        }
        let (id, _) = self.walk(0, path, true);
        let n = self.node(id);
        Some(Loc {
            key: n.key.is_set().then(|| n.key.pos()),
            value: n.value.pos(),
        })
    }

    /// Descends from `id` along `rest`; returns the deepest node reached and how much of
    /// `rest` it consumed. Keys may contain `.` or `[`, so every key that fits is tried
    /// and the deepest match wins (the later of equal ones, as a duplicate key's value
    /// replaces the earlier).
    fn walk(&self, id: u32, rest: &str, top: bool) -> (u32, usize) {
        if rest.is_empty() {
            return (id, 0);
        }
        if let Some(r) = rest.strip_prefix('[') {
            let Some(close) = r.find(']') else {
                return (id, 0);
            };
            let Ok(i) = r[..close].parse::<usize>() else {
                return (id, 0);
            };
            let kids = self.kids(id);
            // Sequence items have no key; a map child never matches an index.
            return match kids.get(i) {
                Some(k) if k.key_start == NO_KEY => {
                    let used = close + 2;
                    let (deep, more) = self.walk(k.node, &rest[used..], false);
                    (deep, used + more)
                }
                _ => (id, 0),
            };
        }
        let (skip, body) = if top {
            (0, rest)
        } else if let Some(b) = rest.strip_prefix('.') {
            (1, b)
        } else {
            return (id, 0);
        };
        if self.node(id).kind != Kind::Map {
            return (id, 0);
        }
        let mut best = (id, 0);
        for k in self.kids(id).iter().rev() {
            let key = self.key_text(k);
            let fits = body.starts_with(key)
                && matches!(body.as_bytes().get(key.len()), None | Some(b'.' | b'['));
            if !fits {
                continue;
            }
            let used = skip + key.len();
            let (deep, more) = self.walk(k.node, &rest[used..], false);
            if used + more > best.1 {
                best = (deep, used + more);
            }
        }
        best
    }
}

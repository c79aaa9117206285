//! Where each node of a parsed YAML document came from, as a compact tree that mirrors the
//! document: one small fixed-size record per node, children stored contiguously, and map
//! keys in one shared string. Built while parsing (no path strings are formatted per node);
//! a dotted path (`tests[0].steps[1].send_uart`) is resolved by walking it.

use super::{Loc, Pos};

#[derive(Debug, Clone, Copy, Default)]
struct P {
    line: u32,
    col: u32,
}

impl P {
    fn of(p: Pos) -> P {
        P {
            line: u32::try_from(p.line).unwrap_or(u32::MAX),
            col: u32::try_from(p.col).unwrap_or(u32::MAX),
        }
    }

    fn pos(self) -> Pos {
        Pos {
            line: self.line as usize,
            col: self.col as usize,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Node {
    /// Line 0: no key (the root, sequence items).
    key: P,
    value: P,
    kids_start: u32,
    kids_len: u32,
}

/// A child: its node, and its key's byte range in `keys` (`key_start == NO_KEY` for
/// sequence items).
#[derive(Debug, Clone, Copy)]
struct Kid {
    node: u32,
    key_start: u32,
    key_len: u32,
}

const NO_KEY: u32 = u32::MAX;

#[derive(Debug, Clone, Default)]
pub struct Locations {
    nodes: Vec<Node>,
    kids: Vec<Kid>,
    keys: String,
}

/// A child being collected while its parent is parsed: `(node, key)`.
pub(super) type PendingKid = (u32, Option<(u32, u32)>);

impl Locations {
    /// Records a node (before its children); the first one recorded is the root.
    pub(super) fn push(&mut self, key: Option<Pos>, value: Pos) -> u32 {
        let id = self.nodes.len() as u32;
        self.nodes.push(Node {
            key: key.map(P::of).unwrap_or_default(),
            value: P::of(value),
            kids_start: 0,
            kids_len: 0,
        });
        id
    }

    /// Stores a map key's text; the handle goes into [`Locations::set_kids`].
    pub(super) fn key(&mut self, text: &str) -> (u32, u32) {
        let start = self.keys.len() as u32;
        self.keys.push_str(text);
        (start, text.len() as u32)
    }

    /// Attaches the children of `id`, in document order.
    pub(super) fn set_kids(&mut self, id: u32, kids: &[PendingKid]) {
        let start = self.kids.len() as u32;
        self.kids.extend(kids.iter().map(|&(node, key)| {
            let (key_start, key_len) = key.unwrap_or((NO_KEY, 0));
            Kid {
                node,
                key_start,
                key_len,
            }
        }));
        let n = &mut self.nodes[id as usize];
        n.kids_start = start;
        n.kids_len = kids.len() as u32;
    }

    fn kids(&self, id: u32) -> &[Kid] {
        let n = &self.nodes[id as usize];
        &self.kids[n.kids_start as usize..(n.kids_start + n.kids_len) as usize]
    }

    fn key_text(&self, k: &Kid) -> &str {
        &self.keys[k.key_start as usize..(k.key_start + k.key_len) as usize]
    }

    /// The location of `path`, or of its nearest ancestor that has one; `None` for an
    /// empty document.
    pub fn find(&self, path: &str) -> Option<Loc> {
        if self.nodes.is_empty() {
            return None;
        }
        let (id, _) = self.walk(0, path, true);
        let n = &self.nodes[id as usize];
        Some(Loc {
            key: (n.key.line > 0).then(|| n.key.pos()),
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
        if !self.is_map(id) {
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

    /// Whether `id` was a mapping (its children have keys). An empty mapping and an empty
    /// sequence both have no children, and nothing below either can match.
    fn is_map(&self, id: u32) -> bool {
        self.kids(id).first().is_some_and(|k| k.key_start != NO_KEY)
    }
}

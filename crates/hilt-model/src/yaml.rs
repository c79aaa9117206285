//! YAML text → a compact [`Tree`] of nodes that is both the data and the map of source
//! locations; typed decoding reads it directly (`de.rs`).
//!
//! Scalars resolve like PyYAML's `safe_load` (YAML 1.1: `yes`/`on` are booleans, `0x40` and
//! `0o17` are integers), so files written for BenchCI mean the same thing here. Aliases are
//! expanded under a node budget and merge keys (`<<`) are honoured. Every node's position is
//! found by its dotted path (`nodes.dut.transports.console.port`, `tests[0].steps[1]`).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use serde_json::Value;

mod de;
mod locations;
mod tree;
use tree::{Kid, NO_KEY};
pub use tree::{NodeRef, Scalar, Shape, Tree};

/// Largest YAML document accepted, in bytes.
pub const MAX_INPUT_BYTES: usize = 8 * 1024 * 1024;
/// Largest number of nodes after alias expansion (billion-laughs guard).
pub const MAX_NODES: usize = 1_000_000;
/// Deepest nesting accepted.
pub const MAX_DEPTH: usize = 128;

/// 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

impl Pos {
    fn of(span: &Span) -> Pos {
        Pos {
            line: span.start.line(),
            col: span.start.col() + 1,
        }
    }
}

/// Where a path's key and value start.
#[derive(Debug, Clone, Copy, Default)]
pub struct Loc {
    pub key: Option<Pos>,
    pub value: Pos,
}

/// A parsed document: its tree (data and locations) and the duplicate keys found.
#[derive(Debug, Clone, Default)]
pub struct Doc {
    pub tree: Tree,
    /// Keys that appeared twice in one mapping (the later value wins, as in PyYAML).
    pub duplicate_keys: Vec<String>,
}

impl Doc {
    /// The position of `path`, or of its nearest ancestor that has one.
    pub fn pos(&self, path: &str, prefer_key: bool) -> Pos {
        match self.tree.find(path) {
            Some(loc) if prefer_key => loc.key.unwrap_or(loc.value),
            Some(loc) => loc.value,
            None => Pos { line: 1, col: 1 },
        }
    }

    /// The document's root: a mapping for any document that parsed as one.
    pub fn root(&self) -> Option<NodeRef<'_>> {
        self.tree.root()
    }

    /// The whole document as a `serde_json::Value` (`{}` for an empty one).
    pub fn to_value(&self) -> Value {
        self.root()
            .map_or_else(|| Value::Object(Default::default()), |r| r.to_value())
    }
}

/// `a.b[2].c` → `a.b[2]` → `a.b` → `a` → `` → None.
pub fn parent_path(path: &str) -> Option<String> {
    if path.is_empty() {
        return None;
    }
    let cut = path.rfind(['.', '[']).unwrap_or(0);
    Some(path[..cut].to_string())
}

/// Appends a map key to a path.
pub fn join_key(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Appends a sequence index to a path.
pub fn join_index(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}

/// Appends a map key to a path in place.
pub fn push_key(path: &mut String, key: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(key);
}

/// Appends a sequence index to a path in place.
pub fn push_index(path: &mut String, index: usize) {
    // Digits by hand: this runs for every sequence item of a large suite.
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = index;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    path.push('[');
    path.extend(digits[at..].iter().map(|&b| char::from(b)));
    path.push(']');
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub pos: Pos,
    pub message: String,
}

/// Parses one YAML document. An empty document is `{}` (as BenchCI treats it).
pub fn parse(text: &str) -> Result<Doc, YamlError> {
    if text.len() > MAX_INPUT_BYTES {
        return Err(YamlError {
            pos: Pos { line: 1, col: 1 },
            message: format!(
                "file is {} bytes; the limit is {MAX_INPUT_BYTES} bytes",
                text.len()
            ),
        });
    }
    let b = Builder {
        parser: Parser::new_from_str(text),
        anchors: HashMap::new(),
        doc: Doc::default(),
        nodes: 0,
        sizes: Vec::new(),
        stack: Vec::new(),
    };
    b.document()
}

struct Builder<'a> {
    parser: Parser<'a, saphyr_parser::StrInput<'a>>,
    /// Anchor → the node it names.
    anchors: HashMap<usize, u32>,
    doc: Doc,
    /// Nodes counted so far against [`MAX_NODES`], aliases expanded.
    nodes: usize,
    /// Each node's size with aliases expanded (an alias counts as a copy of its target).
    sizes: Vec<u32>,
    /// The children of the collections being parsed, innermost last (one buffer instead of
    /// a vector per collection).
    stack: Vec<Kid>,
}

type Ev<'a> = (Event<'a>, Span);

/// Map keys resolve as scalars and are used as text (`1` → "1", `~` → "null").
fn key_text<'t>(text: &'t str, style: ScalarStyle) -> Cow<'t, str> {
    match resolve_scalar(text, style, None) {
        Scalar::Str(s) => Cow::Borrowed(s),
        Scalar::Null => Cow::Borrowed("null"),
        other => Cow::Owned(other.to_value().to_string()),
    }
}

/// Above this many keys a mapping looks for duplicates in a set instead of a scan.
const SCAN_KEYS: usize = 16;

impl<'a> Builder<'a> {
    fn next(&mut self) -> Result<Ev<'a>, YamlError> {
        match self.parser.next_event() {
            Some(Ok(ev)) => Ok(ev),
            Some(Err(e)) => Err(YamlError {
                pos: Pos {
                    line: e.marker().line(),
                    col: e.marker().col() + 1,
                },
                message: e.info().to_string(),
            }),
            None => Err(YamlError {
                pos: Pos::default(),
                message: "unexpected end of input".into(),
            }),
        }
    }

    fn document(mut self) -> Result<Doc, YamlError> {
        let mut root = None;
        let mut seen = false;
        loop {
            let (ev, span) = self.next()?;
            match ev {
                Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
                Event::DocumentStart(_) => {
                    if seen {
                        return Err(YamlError {
                            pos: Pos::of(&span),
                            message: "expected a single YAML document, found a second one".into(),
                        });
                    }
                    seen = true;
                    let (ev, span) = self.next()?;
                    if matches!(ev, Event::DocumentEnd) {
                        continue;
                    }
                    let mut path = String::new();
                    root = Some(self.node(ev, span, &mut path, None, 0)?);
                }
                Event::StreamEnd => break,
                _ => {
                    return Err(YamlError {
                        pos: Pos::of(&span),
                        message: "unexpected YAML event".into(),
                    });
                }
            }
        }
        let tree = &mut self.doc.tree;
        match root {
            None => {
                tree.collection(None, Pos { line: 1, col: 1 }, true);
            }
            Some(id) => {
                if NodeRef::new(tree, id).scalar() == Some(Scalar::Null) {
                    tree.empty_map(id);
                }
            }
        }
        Ok(self.doc)
    }

    fn count(&mut self, n: usize, span: &Span) -> Result<(), YamlError> {
        self.nodes += n;
        if self.nodes > MAX_NODES {
            return Err(YamlError {
                pos: Pos::of(span),
                message: format!(
                    "document expands to more than {MAX_NODES} nodes (aliases nested too deeply?)"
                ),
            });
        }
        Ok(())
    }

    /// One node and everything below it; `path` is its dotted path (restored on return).
    /// Returns the node's id in the tree.
    fn node(
        &mut self,
        ev: Event<'a>,
        span: Span,
        path: &mut String,
        key_pos: Option<Pos>,
        depth: usize,
    ) -> Result<u32, YamlError> {
        if depth > MAX_DEPTH {
            return Err(YamlError {
                pos: Pos::of(&span),
                message: format!("nesting deeper than {MAX_DEPTH} levels"),
            });
        }
        let pos = Pos::of(&span);
        let (id, anchor) = match ev {
            Event::Scalar(text, style, anchor, tag) => {
                self.count(1, &span)?;
                let tag = tag.map(|t| t.suffix.clone());
                let s = resolve_scalar(&text, style, tag.as_deref());
                let id = self.doc.tree.scalar(key_pos, pos, s);
                self.sizes.push(1);
                (id, anchor)
            }
            Event::Alias(a) => {
                let target = *self.anchors.get(&a).ok_or_else(|| YamlError {
                    pos,
                    message: "alias refers to an unknown anchor".into(),
                })?;
                let size = self.sizes[target as usize];
                self.count(size as usize, &span)?;
                let id = self.doc.tree.alias(key_pos, pos, target);
                self.sizes.push(size);
                (id, 0)
            }
            Event::SequenceStart(anchor, _) => {
                self.count(1, &span)?;
                let id = self.doc.tree.collection(key_pos, pos, false);
                self.sizes.push(1);
                let base = self.stack.len();
                let mut size = 1u32;
                loop {
                    let (ev, span) = self.next()?;
                    if matches!(ev, Event::SequenceEnd) {
                        break;
                    }
                    let len = path.len();
                    push_index(path, self.stack.len() - base);
                    let r = self.node(ev, span, path, None, depth + 1);
                    path.truncate(len);
                    let kid = r?;
                    size = size.saturating_add(self.sizes[kid as usize]);
                    self.stack.push(Kid {
                        node: kid,
                        key_start: NO_KEY,
                        key_len: 0,
                    });
                }
                self.doc.tree.set_kids(id, &self.stack[base..]);
                self.stack.truncate(base);
                self.sizes[id as usize] = size;
                (id, anchor)
            }
            Event::MappingStart(anchor, _) => {
                self.count(1, &span)?;
                let id = self.doc.tree.collection(key_pos, pos, true);
                self.sizes.push(1);
                self.mapping(path, depth, id)?;
                (id, anchor)
            }
            _ => {
                return Err(YamlError {
                    pos,
                    message: "unexpected YAML event".into(),
                });
            }
        };
        if anchor != 0 {
            self.anchors.insert(anchor, id);
        }
        Ok(id)
    }

    /// The entries of mapping `id`, up to its end.
    fn mapping(&mut self, path: &mut String, depth: usize, id: u32) -> Result<(), YamlError> {
        let base = self.stack.len();
        // Which children are merge keys, and the mappings they merge, in order.
        let mut merge_kids: Vec<usize> = Vec::new();
        let mut merged: Vec<u32> = Vec::new();
        let mut duplicates = false;
        // The own keys, once there are too many to scan.
        let mut key_set: Option<HashSet<String>> = None;
        loop {
            let (ev, kspan) = self.next()?;
            if matches!(ev, Event::MappingEnd) {
                break;
            }
            let (key, plain) = match &ev {
                Event::Scalar(text, style, _, _) => {
                    (key_text(text, *style), *style == ScalarStyle::Plain)
                }
                _ => {
                    return Err(YamlError {
                        pos: Pos::of(&kspan),
                        message: "mapping keys must be plain scalars".into(),
                    });
                }
            };
            let (vev, vspan) = self.next()?;
            let len = path.len();
            push_key(path, &key);
            if key == "<<" && plain {
                let r = self.node(vev, vspan, path, None, depth + 1);
                path.truncate(len);
                let kid = r?;
                let (key_start, key_len) = self.doc.tree.string(&key);
                merge_kids.push(self.stack.len() - base);
                self.stack.push(Kid {
                    node: kid,
                    key_start,
                    key_len,
                });
                let tree = &self.doc.tree;
                let value = NodeRef::new(tree, kid);
                match value.shape() {
                    Shape::Map => merged.push(value.id),
                    Shape::Seq => merged.extend(value.items().filter(|i| i.is_map()).map(|i| i.id)),
                    Shape::Scalar(_) => {
                        return Err(YamlError {
                            pos: Pos::of(&vspan),
                            message: "merge key `<<` needs a mapping or a list of mappings".into(),
                        });
                    }
                }
                continue;
            }
            let r = self.node(vev, vspan, path, Some(Pos::of(&kspan)), depth + 1);
            if r.is_ok() && self.has_key(&self.stack[base..], &merge_kids, &mut key_set, &key) {
                duplicates = true;
                self.doc.duplicate_keys.push(path.clone());
            }
            path.truncate(len);
            let kid = r?;
            let (key_start, key_len) = self.doc.tree.string(&key);
            self.stack.push(Kid {
                node: kid,
                key_start,
                key_len,
            });
        }
        self.doc.tree.set_kids(id, &self.stack[base..]);
        if duplicates || !merge_kids.is_empty() {
            let entries = self.entries(&self.stack[base..], &merge_kids, &merged);
            self.doc.tree.set_entries(id, entries);
        }
        self.stack.truncate(base);
        let mut size = 1u32;
        for e in self.doc.tree.entries(id) {
            size = size.saturating_add(self.sizes[e.node as usize]);
        }
        self.sizes[id as usize] = size;
        Ok(())
    }

    /// Whether `key` is already one of the mapping's own keys (merge keys aside); records it.
    fn has_key(
        &self,
        kids: &[Kid],
        merge_kids: &[usize],
        key_set: &mut Option<HashSet<String>>,
        key: &str,
    ) -> bool {
        let tree = &self.doc.tree;
        let own = || {
            kids.iter()
                .enumerate()
                .filter(|(i, _)| !merge_kids.contains(i))
                .map(|(_, k)| tree.key_text(k))
        };
        if key_set.is_none() && kids.len() >= SCAN_KEYS {
            *key_set = Some(own().map(str::to_string).collect());
        }
        match key_set {
            Some(set) => !set.insert(key.to_string()),
            None => own().any(|k| k == key),
        }
    }

    /// A mapping's entries as PyYAML builds them: its own keys in first-seen order with
    /// their last values, then merged keys it does not have, in merge order.
    fn entries(&self, kids: &[Kid], merge_kids: &[usize], merged: &[u32]) -> Vec<Kid> {
        let tree = &self.doc.tree;
        let mut out: Vec<Kid> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        for (i, k) in kids.iter().enumerate() {
            if merge_kids.contains(&i) {
                continue;
            }
            match index.get(tree.key_text(k)) {
                Some(&j) => out[j].node = k.node,
                None => {
                    index.insert(tree.key_text(k), out.len());
                    out.push(*k);
                }
            }
        }
        for &m in merged {
            for e in tree.entries(m) {
                let text = tree.key_text(e);
                if !index.contains_key(text) {
                    index.insert(text, out.len());
                    out.push(*e);
                }
            }
        }
        out
    }
}

/// YAML 1.1 scalar resolution, as PyYAML's SafeLoader does it.
pub fn resolve_scalar<'t>(text: &'t str, style: ScalarStyle, tag: Option<&str>) -> Scalar<'t> {
    match tag {
        Some("str") => return Scalar::Str(text),
        Some("int") => {
            if let Some(n) = parse_int(text) {
                return n;
            }
        }
        Some("float") => {
            if let Some(n) = parse_float(text) {
                return n;
            }
        }
        Some("bool") => {
            if let Some(b) = parse_bool(text) {
                return Scalar::Bool(b);
            }
        }
        Some("null") => return Scalar::Null,
        _ => {}
    }
    if style != ScalarStyle::Plain {
        return Scalar::Str(text);
    }
    if matches!(text, "" | "~" | "null" | "Null" | "NULL") {
        return Scalar::Null;
    }
    if let Some(b) = parse_bool(text) {
        return Scalar::Bool(b);
    }
    // A number starts with a digit, a sign or a dot; most scalars (names, keys) do not.
    if !text
        .as_bytes()
        .first()
        .is_some_and(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.'))
    {
        return Scalar::Str(text);
    }
    if let Some(n) = parse_int(text) {
        return n;
    }
    if let Some(n) = parse_float(text) {
        return n;
    }
    Scalar::Str(text)
}

fn parse_bool(t: &str) -> Option<bool> {
    match t {
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => Some(true),
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => Some(false),
        _ => None,
    }
}

/// An integer in range of `i64` or `u64`; non-negative ones are `Uint` (as serde_json keeps
/// them).
fn parse_int(t: &str) -> Option<Scalar<'static>> {
    let (neg, body) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    if body.is_empty() || body.starts_with('_') {
        return None;
    }
    let clean: Cow<str> = if body.contains('_') {
        Cow::Owned(body.replace('_', ""))
    } else {
        Cow::Borrowed(body)
    };
    let (digits, radix) = if let Some(h) = clean.strip_prefix("0x") {
        (h, 16)
    } else if let Some(o) = clean.strip_prefix("0o") {
        (o, 8)
    } else if let Some(b) = clean.strip_prefix("0b") {
        (b, 2)
    } else if clean.len() > 1 && clean.starts_with('0') {
        (&clean[1..], 8)
    } else {
        (&clean[..], 10)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let n = i128::from_str_radix(digits, radix).ok()?;
    let n = if neg { -n } else { n };
    if let Ok(v) = u64::try_from(n) {
        Some(Scalar::Uint(v))
    } else if let Ok(v) = i64::try_from(n) {
        Some(Scalar::Int(v))
    } else {
        None
    }
}

fn parse_float(t: &str) -> Option<Scalar<'static>> {
    let body = t.trim_start_matches(['-', '+']);
    if body.eq_ignore_ascii_case(".inf") || body.eq_ignore_ascii_case(".nan") {
        // JSON cannot carry these; keep the text so typed decoding reports it clearly.
        return None;
    }
    let first = body.chars().next()?;
    if !(first.is_ascii_digit() || first == '.') {
        return None;
    }
    if !body
        .chars()
        .all(|c| c.is_ascii_digit() || "._eE+-".contains(c))
    {
        return None;
    }
    let v: f64 = t.replace('_', "").parse().ok()?;
    v.is_finite().then_some(Scalar::Float(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resolves_like_pyyaml() {
        let d = parse("a: yes\nb: 0x40\nc: '0x40'\nd: 1.5\ne: ~\nf: N\ng: 010\nh: on\n").unwrap();
        assert_eq!(
            d.to_value(),
            json!({"a": true, "b": 64, "c": "0x40", "d": 1.5, "e": null, "f": "N", "g": 8, "h": true})
        );
    }

    #[test]
    fn records_locations() {
        let d = parse("bench:\n  name: x\nnodes:\n  dut:\n    kind: mcu\nlist:\n  - a\n  - b\n")
            .unwrap();
        assert_eq!(d.pos("nodes.dut.kind", true), Pos { line: 5, col: 5 });
        assert_eq!(d.pos("nodes.dut.kind", false), Pos { line: 5, col: 11 });
        assert_eq!(d.pos("list[1]", false), Pos { line: 8, col: 5 });
        assert_eq!(d.pos("nodes.dut.missing", true), Pos { line: 4, col: 3 });
    }

    #[test]
    fn locations_of_odd_keys_duplicates_merges_and_aliases() {
        let d = parse(
            "a.b: 1\na:\n  b: 2\n  c: [x, {y: 3}]\nd: 1\nd: {e: 2}\nm: &m {k: 1}\nn:\n  <<: *m\n  j: 2\no: *m\n'': 5\n",
        )
        .unwrap();
        // Two paths spell `a.b`: the later one wins, as when a later key replaces an earlier.
        assert_eq!(d.pos("a.b", true), Pos { line: 3, col: 3 });
        assert_eq!(d.pos("a.c[1].y", false), Pos { line: 4, col: 14 });
        assert_eq!(d.pos("a.c[5]", false), Pos { line: 4, col: 6 });
        assert_eq!(d.pos("a.c[x]", false), Pos { line: 4, col: 6 });
        // A duplicate key: the later value's position.
        assert_eq!(d.pos("d", true), Pos { line: 6, col: 1 });
        assert_eq!(d.pos("d.e", false), Pos { line: 6, col: 8 });
        assert_eq!(d.duplicate_keys, vec!["d".to_string()]);
        // Merged keys have no position of their own: their mapping's.
        assert_eq!(d.pos("n.<<", false), Pos { line: 9, col: 7 });
        assert_eq!(d.pos("n.k", true), Pos { line: 8, col: 1 });
        assert_eq!(d.pos("n.j", true), Pos { line: 10, col: 3 });
        // An alias is located where it is used, its insides at the alias.
        assert_eq!(d.pos("o.k", false), Pos { line: 11, col: 4 });
        assert_eq!(d.pos("", false), Pos { line: 1, col: 1 });
        assert_eq!(d.pos("nope.deeper", true), Pos { line: 1, col: 1 });
        assert_eq!(parse("").unwrap().pos("x", true), Pos { line: 1, col: 1 });
    }

    #[test]
    fn empty_is_empty_map() {
        assert_eq!(parse("").unwrap().to_value(), json!({}));
        assert_eq!(parse("# only a comment\n").unwrap().to_value(), json!({}));
    }

    #[test]
    fn merge_keys_and_aliases() {
        let d = parse("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\n").unwrap();
        assert_eq!(d.to_value()["other"], json!({"x": 1, "y": 3}));
    }

    #[test]
    fn billion_laughs_is_refused() {
        let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        let mut prev = 'a';
        for name in 'b'..='j' {
            text.push_str(&format!(
                "{name}: &{name} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
            ));
            prev = name;
        }
        let err = parse(&text).unwrap_err();
        assert!(err.message.contains("expands"), "{}", err.message);
    }

    #[test]
    fn syntax_error_has_position() {
        let err = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.pos.line >= 1);
    }

    #[test]
    fn duplicate_keys_are_reported() {
        let d = parse("a: 1\na: 2\n").unwrap();
        assert_eq!(d.to_value(), json!({"a": 2}));
        assert_eq!(d.duplicate_keys, vec!["a".to_string()]);
    }
}

//! YAML text → `serde_json::Value` plus a map of source locations.
//!
//! Scalars resolve like PyYAML's `safe_load` (YAML 1.1: `yes`/`on` are booleans, `0x40` and
//! `0o17` are integers), so files written for BenchCI mean the same thing here. Aliases are
//! expanded under a node budget and merge keys (`<<`) are honoured. Every node's position is
//! recorded under its dotted path (`nodes.dut.transports.console.port`, `tests[0].steps[1]`).

use std::borrow::Cow;
use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use serde_json::{Map, Number, Value};

mod locations;
pub use locations::Locations;
use locations::PendingKid;

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

/// A parsed document: the value and where each path came from.
#[derive(Debug, Clone, Default)]
pub struct Doc {
    pub value: Value,
    pub locations: Locations,
    /// Keys that appeared twice in one mapping (the later value wins, as in PyYAML).
    pub duplicate_keys: Vec<String>,
}

impl Doc {
    /// The position of `path`, or of its nearest ancestor that has one.
    pub fn pos(&self, path: &str, prefer_key: bool) -> Pos {
        match self.locations.find(path) {
            Some(loc) if prefer_key => loc.key.unwrap_or(loc.value),
            Some(loc) => loc.value,
            None => Pos { line: 1, col: 1 },
        }
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

fn push_key(path: &mut String, key: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(key);
}

fn push_index(path: &mut String, index: usize) {
    use std::fmt::Write;
    let _ = write!(path, "[{index}]");
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
    };
    b.document()
}

struct Builder<'a> {
    parser: Parser<'a, saphyr_parser::StrInput<'a>>,
    anchors: HashMap<usize, Value>,
    doc: Doc,
    nodes: usize,
}

type Ev<'a> = (Event<'a>, Span);

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
        let mut value = None;
        loop {
            let (ev, span) = self.next()?;
            match ev {
                Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
                Event::DocumentStart(_) => {
                    if value.is_some() {
                        return Err(YamlError {
                            pos: Pos::of(&span),
                            message: "expected a single YAML document, found a second one".into(),
                        });
                    }
                    let (ev, span) = self.next()?;
                    if matches!(ev, Event::DocumentEnd) {
                        value = Some(Value::Object(Map::new()));
                        continue;
                    }
                    let mut path = String::new();
                    value = Some(self.node(ev, span, &mut path, None, 0)?.0);
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
        self.doc.value = match value {
            Some(Value::Null) | None => Value::Object(Map::new()),
            Some(v) => v,
        };
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
    /// Returns the value and the node's id in the location tree.
    fn node(
        &mut self,
        ev: Event<'a>,
        span: Span,
        path: &mut String,
        key_pos: Option<Pos>,
        depth: usize,
    ) -> Result<(Value, u32), YamlError> {
        if depth > MAX_DEPTH {
            return Err(YamlError {
                pos: Pos::of(&span),
                message: format!("nesting deeper than {MAX_DEPTH} levels"),
            });
        }
        let id = self.doc.locations.push(key_pos, Pos::of(&span));
        let (value, anchor) = match ev {
            Event::Scalar(text, style, anchor, tag) => {
                self.count(1, &span)?;
                let tag = tag.map(|t| t.suffix.clone());
                (resolve_scalar(&text, style, tag.as_deref()), anchor)
            }
            Event::Alias(id) => {
                let v = self.anchors.get(&id).cloned().ok_or_else(|| YamlError {
                    pos: Pos::of(&span),
                    message: "alias refers to an unknown anchor".into(),
                })?;
                self.count(size_of_value(&v), &span)?;
                (v, 0)
            }
            Event::SequenceStart(anchor, _) => {
                self.count(1, &span)?;
                let mut items = Vec::new();
                let mut kids: Vec<PendingKid> = Vec::new();
                loop {
                    let (ev, span) = self.next()?;
                    if matches!(ev, Event::SequenceEnd) {
                        break;
                    }
                    let len = path.len();
                    push_index(path, items.len());
                    let r = self.node(ev, span, path, None, depth + 1);
                    path.truncate(len);
                    let (v, kid) = r?;
                    items.push(v);
                    kids.push((kid, None));
                }
                self.doc.locations.set_kids(id, &kids);
                (Value::Array(items), anchor)
            }
            Event::MappingStart(anchor, _) => {
                self.count(1, &span)?;
                (Value::Object(self.mapping(path, depth, id)?), anchor)
            }
            _ => {
                return Err(YamlError {
                    pos: Pos::of(&span),
                    message: "unexpected YAML event".into(),
                });
            }
        };
        if anchor != 0 {
            self.anchors.insert(anchor, value.clone());
        }
        Ok((value, id))
    }

    fn mapping(
        &mut self,
        path: &mut String,
        depth: usize,
        id: u32,
    ) -> Result<Map<String, Value>, YamlError> {
        let mut map = Map::new();
        let mut merged: Vec<Map<String, Value>> = Vec::new();
        let mut kids: Vec<PendingKid> = Vec::new();
        loop {
            let (ev, kspan) = self.next()?;
            if matches!(ev, Event::MappingEnd) {
                break;
            }
            let key: String = match &ev {
                Event::Scalar(text, style, _, _) => match resolve_scalar(text, *style, None) {
                    Value::String(s) => s,
                    Value::Null => "null".to_string(),
                    other => other.to_string(),
                },
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
            if key == "<<" && matches!(ev, Event::Scalar(_, ScalarStyle::Plain, _, _)) {
                let r = self.node(vev, vspan, path, None, depth + 1);
                path.truncate(len);
                let (v, kid) = r?;
                let k = self.doc.locations.key(&key);
                kids.push((kid, Some(k)));
                match v {
                    Value::Object(m) => merged.push(m),
                    Value::Array(items) => {
                        for item in items {
                            if let Value::Object(m) = item {
                                merged.push(m);
                            }
                        }
                    }
                    _ => {
                        return Err(YamlError {
                            pos: Pos::of(&vspan),
                            message: "merge key `<<` needs a mapping or a list of mappings".into(),
                        });
                    }
                }
                continue;
            }
            let r = self.node(vev, vspan, path, Some(Pos::of(&kspan)), depth + 1);
            if r.is_ok() && map.contains_key(&key) {
                self.doc.duplicate_keys.push(path.clone());
            }
            path.truncate(len);
            let (v, kid) = r?;
            let k = self.doc.locations.key(&key);
            kids.push((kid, Some(k)));
            map.insert(key, v);
        }
        self.doc.locations.set_kids(id, &kids);
        for m in merged {
            for (k, v) in m {
                map.entry(k).or_insert(v);
            }
        }
        Ok(map)
    }
}

fn size_of_value(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(size_of_value).sum::<usize>(),
        Value::Object(m) => 1 + m.values().map(size_of_value).sum::<usize>(),
        _ => 1,
    }
}

/// YAML 1.1 scalar resolution, as PyYAML's SafeLoader does it.
pub fn resolve_scalar(text: &str, style: ScalarStyle, tag: Option<&str>) -> Value {
    match tag {
        Some("str") => return Value::String(text.to_string()),
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
                return Value::Bool(b);
            }
        }
        Some("null") => return Value::Null,
        _ => {}
    }
    if style != ScalarStyle::Plain {
        return Value::String(text.to_string());
    }
    if matches!(text, "" | "~" | "null" | "Null" | "NULL") {
        return Value::Null;
    }
    if let Some(b) = parse_bool(text) {
        return Value::Bool(b);
    }
    if let Some(n) = parse_int(text) {
        return n;
    }
    if let Some(n) = parse_float(text) {
        return n;
    }
    Value::String(text.to_string())
}

fn parse_bool(t: &str) -> Option<bool> {
    match t {
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => Some(true),
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => Some(false),
        _ => None,
    }
}

fn parse_int(t: &str) -> Option<Value> {
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
    if let Ok(v) = i64::try_from(n) {
        Some(Value::Number(Number::from(v)))
    } else if let Ok(v) = u64::try_from(n) {
        Some(Value::Number(Number::from(v)))
    } else {
        None
    }
}

fn parse_float(t: &str) -> Option<Value> {
    let lower = t.to_ascii_lowercase();
    let body = lower.trim_start_matches(['-', '+']);
    if matches!(body, ".inf" | ".nan") {
        // JSON cannot carry these; keep the text so typed decoding reports it clearly.
        return None;
    }
    let first = body.chars().next()?;
    if !(first.is_ascii_digit() || first == '.') {
        return None;
    }
    if !body
        .chars()
        .all(|c| c.is_ascii_digit() || "._e+-".contains(c))
    {
        return None;
    }
    let v: f64 = lower.replace('_', "").parse().ok()?;
    Number::from_f64(v).map(Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resolves_like_pyyaml() {
        let d = parse("a: yes\nb: 0x40\nc: '0x40'\nd: 1.5\ne: ~\nf: N\ng: 010\nh: on\n").unwrap();
        assert_eq!(
            d.value,
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
        assert_eq!(parse("").unwrap().value, json!({}));
        assert_eq!(parse("# only a comment\n").unwrap().value, json!({}));
    }

    #[test]
    fn merge_keys_and_aliases() {
        let d = parse("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\n").unwrap();
        assert_eq!(d.value["other"], json!({"x": 1, "y": 3}));
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
        assert_eq!(d.value, json!({"a": 2}));
        assert_eq!(d.duplicate_keys, vec!["a".to_string()]);
    }
}

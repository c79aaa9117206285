//! A parsed YAML document as one compact tree: a fixed-size record per node (its kind, its
//! scalar or its children, and where its key and value start), children stored
//! contiguously, and every map key and string in one shared buffer. It is both the data
//! (read through [`NodeRef`], which typed decoding deserializes from) and the location map
//! (see `locations.rs`), so a large suite is held once, in a few large allocations.
//!
//! Two views of a mapping differ only when it has merge keys (`<<`) or duplicate keys: its
//! children as written (for locations) and its entries as PyYAML builds them (first
//! position, last value, merged keys appended), kept aside for those few mappings.

use std::collections::HashMap;

use serde_json::{Map, Number, Value};

use super::Pos;

/// A resolved scalar (YAML 1.1, as PyYAML's SafeLoader resolves it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scalar<'t> {
    Null,
    Bool(bool),
    /// Non-negative integers (serde_json's `PosInt`).
    Uint(u64),
    /// Negative integers.
    Int(i64),
    Float(f64),
    Str(&'t str),
}

impl Scalar<'_> {
    pub fn to_value(self) -> Value {
        match self {
            Scalar::Null => Value::Null,
            Scalar::Bool(b) => Value::Bool(b),
            Scalar::Uint(u) => Value::Number(Number::from(u)),
            Scalar::Int(i) => Value::Number(Number::from(i)),
            Scalar::Float(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
            Scalar::Str(s) => Value::String(s.to_string()),
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub(super) struct P {
    line: u32,
    col: u32,
}

impl P {
    pub(super) fn of(p: Pos) -> P {
        P {
            line: u32::try_from(p.line).unwrap_or(u32::MAX),
            col: u32::try_from(p.col).unwrap_or(u32::MAX),
        }
    }

    pub(super) fn pos(self) -> Pos {
        Pos {
            line: self.line as usize,
            col: self.col as usize,
        }
    }

    pub(super) fn is_set(self) -> bool {
        self.line > 0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Null,
    Bool,
    Uint,
    Int,
    Float,
    /// `a`, `b`: byte range in `strings`.
    Str,
    /// `a`, `b`: range in `kids`.
    Seq,
    Map,
    /// `a`: the anchored node it repeats. It has no children of its own for locations.
    Alias,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Node {
    /// Line 0: no key (the root, sequence items).
    pub(super) key: P,
    pub(super) value: P,
    a: u32,
    b: u32,
    pub(super) kind: Kind,
}

/// A child: its node, and its key's byte range in `strings` (`key_start == NO_KEY` for
/// sequence items).
#[derive(Debug, Clone, Copy)]
pub(super) struct Kid {
    pub(super) node: u32,
    pub(super) key_start: u32,
    pub(super) key_len: u32,
}

pub(super) const NO_KEY: u32 = u32::MAX;

#[derive(Debug, Clone, Default)]
pub struct Tree {
    pub(super) nodes: Vec<Node>,
    pub(super) kids: Vec<Kid>,
    strings: String,
    /// The entries of mappings whose entries differ from their children (merge keys,
    /// duplicate keys).
    entries: HashMap<u32, Vec<Kid>>,
}

impl Tree {
    /// Records a scalar node.
    pub(super) fn scalar(&mut self, key: Option<Pos>, value: Pos, s: Scalar<'_>) -> u32 {
        let (kind, a, b) = match s {
            Scalar::Null => (Kind::Null, 0, 0),
            Scalar::Bool(v) => (Kind::Bool, v as u32, 0),
            Scalar::Uint(u) => (Kind::Uint, u as u32, (u >> 32) as u32),
            Scalar::Int(i) => (Kind::Int, i as u32, ((i as u64) >> 32) as u32),
            Scalar::Float(f) => {
                let bits = f.to_bits();
                (Kind::Float, bits as u32, (bits >> 32) as u32)
            }
            Scalar::Str(text) => {
                let (start, len) = self.string(text);
                (Kind::Str, start, len)
            }
        };
        self.push(key, value, kind, a, b)
    }

    /// Records a sequence or mapping node (before its children, see [`Tree::set_kids`]).
    pub(super) fn collection(&mut self, key: Option<Pos>, value: Pos, map: bool) -> u32 {
        let kind = if map { Kind::Map } else { Kind::Seq };
        self.push(key, value, kind, 0, 0)
    }

    /// Records an alias of node `target`.
    pub(super) fn alias(&mut self, key: Option<Pos>, value: Pos, target: u32) -> u32 {
        self.push(key, value, Kind::Alias, target, 0)
    }

    fn push(&mut self, key: Option<Pos>, value: Pos, kind: Kind, a: u32, b: u32) -> u32 {
        let id = self.nodes.len() as u32;
        self.nodes.push(Node {
            key: key.map(P::of).unwrap_or_default(),
            value: P::of(value),
            a,
            b,
            kind,
        });
        id
    }

    /// Stores a string; the handle goes into a [`Kid`] or a string node.
    pub(super) fn string(&mut self, text: &str) -> (u32, u32) {
        let start = self.strings.len() as u32;
        self.strings.push_str(text);
        (start, text.len() as u32)
    }

    /// Attaches the children of `id`, in document order.
    pub(super) fn set_kids(&mut self, id: u32, kids: &[Kid]) {
        let start = self.kids.len() as u32;
        self.kids.extend_from_slice(kids);
        let n = &mut self.nodes[id as usize];
        n.a = start;
        n.b = kids.len() as u32;
    }

    /// Sets the entries of mapping `id` when they differ from its children.
    pub(super) fn set_entries(&mut self, id: u32, entries: Vec<Kid>) {
        self.entries.insert(id, entries);
    }

    /// Turns the root into an empty mapping (an empty or `null` document), keeping its
    /// position.
    pub(super) fn empty_map(&mut self, id: u32) {
        let n = &mut self.nodes[id as usize];
        n.kind = Kind::Map;
        n.a = 0;
        n.b = 0;
    }

    pub(super) fn node(&self, id: u32) -> &Node {
        &self.nodes[id as usize]
    }

    /// The children of `id` as written (none for scalars and aliases).
    pub(super) fn kids(&self, id: u32) -> &[Kid] {
        let n = &self.nodes[id as usize];
        match n.kind {
            Kind::Seq | Kind::Map => &self.kids[n.a as usize..(n.a + n.b) as usize],
            _ => &[],
        }
    }

    /// The entries of `id` as data: its children, or its merged/deduplicated entries.
    pub(super) fn entries(&self, id: u32) -> &[Kid] {
        match self.entries.get(&id) {
            Some(e) => e,
            None => self.kids(id),
        }
    }

    pub(super) fn key_text(&self, k: &Kid) -> &str {
        &self.strings[k.key_start as usize..(k.key_start + k.key_len) as usize]
    }

    /// `id` with aliases followed.
    pub(super) fn target(&self, mut id: u32) -> u32 {
        while let Node {
            kind: Kind::Alias,
            a,
            ..
        } = self.nodes[id as usize]
        {
            id = a;
        }
        id
    }

    fn scalar_of(&self, n: &Node) -> Scalar<'_> {
        let wide = (n.a as u64) | ((n.b as u64) << 32);
        match n.kind {
            Kind::Bool => Scalar::Bool(n.a != 0),
            Kind::Uint => Scalar::Uint(wide),
            Kind::Int => Scalar::Int(wide as i64),
            Kind::Float => Scalar::Float(f64::from_bits(wide)),
            Kind::Str => Scalar::Str(&self.strings[n.a as usize..(n.a + n.b) as usize]),
            _ => Scalar::Null,
        }
    }

    /// The root node, or `None` for a tree with no nodes (a default `Doc`).
    pub fn root(&self) -> Option<NodeRef<'_>> {
        (!self.nodes.is_empty()).then(|| NodeRef::new(self, 0))
    }
}

/// One node of a [`Tree`] as data (aliases followed).
#[derive(Clone, Copy)]
pub struct NodeRef<'a> {
    pub(super) tree: &'a Tree,
    pub(super) id: u32,
}

/// What a node holds.
pub enum Shape<'a> {
    Scalar(Scalar<'a>),
    Seq,
    Map,
}

impl<'a> NodeRef<'a> {
    pub(super) fn new(tree: &'a Tree, id: u32) -> NodeRef<'a> {
        NodeRef {
            tree,
            id: tree.target(id),
        }
    }

    pub fn shape(&self) -> Shape<'a> {
        let n = self.tree.node(self.id);
        match n.kind {
            Kind::Seq => Shape::Seq,
            Kind::Map => Shape::Map,
            _ => Shape::Scalar(self.tree.scalar_of(n)),
        }
    }

    pub fn is_map(&self) -> bool {
        self.tree.node(self.id).kind == Kind::Map
    }

    pub fn is_seq(&self) -> bool {
        self.tree.node(self.id).kind == Kind::Seq
    }

    /// The scalar, or `None` for a sequence or mapping.
    pub fn scalar(&self) -> Option<Scalar<'a>> {
        match self.shape() {
            Shape::Scalar(s) => Some(s),
            _ => None,
        }
    }

    /// A sequence's items (empty for anything else).
    pub fn items(&self) -> impl ExactSizeIterator<Item = NodeRef<'a>> + 'a {
        let tree = self.tree;
        let kids = if self.is_seq() {
            tree.kids(self.id)
        } else {
            &[]
        };
        kids.iter().map(move |k| NodeRef::new(tree, k.node))
    }

    /// A mapping's entries in order (empty for anything else).
    pub fn entries(&self) -> impl ExactSizeIterator<Item = (&'a str, NodeRef<'a>)> + 'a {
        let tree = self.tree;
        let kids = if self.is_map() {
            tree.entries(self.id)
        } else {
            &[]
        };
        kids.iter()
            .map(move |k| (tree.key_text(k), NodeRef::new(tree, k.node)))
    }

    /// The value under `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<NodeRef<'a>> {
        self.entries().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Item `i` of a sequence.
    pub fn index(&self, i: usize) -> Option<NodeRef<'a>> {
        if !self.is_seq() {
            return None;
        }
        let tree = self.tree;
        tree.kids(self.id)
            .get(i)
            .map(|k| NodeRef::new(tree, k.node))
    }

    /// The node as a `serde_json::Value` (mappings keep their order).
    pub fn to_value(&self) -> Value {
        match self.shape() {
            Shape::Scalar(s) => s.to_value(),
            Shape::Seq => Value::Array(self.items().map(|i| i.to_value()).collect()),
            Shape::Map => {
                let mut m = Map::new();
                for (k, v) in self.entries() {
                    m.insert(k.to_string(), v.to_value());
                }
                Value::Object(m)
            }
        }
    }
}

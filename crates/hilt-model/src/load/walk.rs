//! Unknown keys and durations, found by walking the typed value as it serialises against
//! the input tree, without building the serialised value.
//!
//! The typed value is what hilt understood; serialising it names every field it kept, in
//! every nested struct, map and tagged enum, without `deny_unknown_fields` on each type.
//! An input key that the serialised mapping at the same place does not have was ignored by
//! decoding: it is reported with "did you mean" suggestions. A number under a key named
//! `*_ms` or `*_s` is bounded (`validate/durations.rs`).
//!
//! The serialisation is the one `serde_json::to_value` makes (same keys, same order, same
//! numbers), so the findings are those of comparing against that value: its mappings are
//! paired with the input's by key, its sequences item by item. Warnings come out in the
//! input's order (they are sorted by the positions of their input entries), duration
//! errors in the serialisation's order.

use std::fmt;

use serde::Serialize;
use serde::ser::{self, Impossible};

use crate::diag::{Diagnostic, Diags, suggest};
use crate::validate::{check_duration, duration_unit, too_long};
use crate::yaml::{NodeRef, push_index, push_key};

/// A key of the serialised value: a field or variant name, or a map key kept in `names`.
#[derive(Clone, Copy)]
enum Name {
    Static(&'static str),
    Owned(u32, u32),
}

/// One step of the current path.
#[derive(Clone, Copy)]
enum Seg {
    Key(Name),
    Index(usize),
}

/// Position of an entry that has no input counterpart (nothing below it can be reported).
const NO_INPUT: u32 = u32::MAX;

/// The walk's state across one or several walks of a file, until [`Checks::finish`].
pub(crate) struct Checks<'d, 'a> {
    d: &'d mut Diags<'a>,
    /// The current path (formatted only for a finding).
    segs: Vec<Seg>,
    /// The input entry or item index of each step of the path: the sort key of a warning.
    order: Vec<u32>,
    /// The keys of the serialised mappings being walked, innermost last.
    keys: Vec<Name>,
    /// Text of the map keys among `keys`.
    names: String,
    /// Whether numbers under `*_ms` / `*_s` keys are checked.
    durations: bool,
    warnings: Vec<(Vec<u32>, Diagnostic)>,
}

impl<'d, 'a> Checks<'d, 'a> {
    pub(crate) fn new(d: &'d mut Diags<'a>) -> Self {
        Checks {
            d,
            segs: Vec::new(),
            order: Vec::new(),
            keys: Vec::new(),
            names: String::new(),
            durations: false,
            warnings: Vec::new(),
        }
    }

    /// Walks `typed`, decoded from `input`, at the current path (see [`Checks::enter_key`]).
    /// Returns false, with nothing recorded by this walk, when the value does not serialise
    /// as a JSON value would (then it is not checked, as before).
    pub(crate) fn walk<T: Serialize + ?Sized>(
        &mut self,
        input: NodeRef<'a>,
        typed: &T,
        durations: bool,
    ) -> bool {
        let (errors, warnings) = (self.d.errors.len(), self.warnings.len());
        let (segs, order) = (self.segs.len(), self.order.len());
        self.durations = durations;
        let ok = typed
            .serialize(Ser {
                c: self,
                input: Some(input),
                unit: None,
            })
            .is_ok();
        if !ok {
            self.d.errors.truncate(errors);
            self.warnings.truncate(warnings);
            self.segs.truncate(segs);
            self.order.truncate(order);
            self.keys.clear();
            self.names.clear();
        }
        ok
    }

    /// Descends into the input entry `key` (the `index`th of its mapping) for the next walks.
    pub(crate) fn enter_key(&mut self, key: &'static str, index: usize) {
        self.segs.push(Seg::Key(Name::Static(key)));
        self.order.push(index as u32);
    }

    /// Descends into item `index` of the input sequence for the next walks.
    pub(crate) fn enter_index(&mut self, index: usize) {
        self.segs.push(Seg::Index(index));
        self.order.push(index as u32);
    }

    /// Undoes the last [`Checks::enter_key`] or [`Checks::enter_index`].
    pub(crate) fn leave(&mut self) {
        self.segs.pop();
        self.order.pop();
    }

    /// Hands the warnings over in input order.
    pub(crate) fn finish(mut self) {
        self.warnings.sort_by(|a, b| a.0.cmp(&b.0));
        self.d
            .warnings
            .extend(self.warnings.into_iter().map(|(_, w)| w));
    }

    fn text(&self, name: Name) -> &str {
        match name {
            Name::Static(s) => s,
            Name::Owned(start, len) => &self.names[start as usize..(start + len) as usize],
        }
    }

    fn path(&self) -> String {
        let mut path = String::new();
        for seg in &self.segs {
            match *seg {
                Seg::Key(name) => push_key(&mut path, self.text(name)),
                Seg::Index(i) => push_index(&mut path, i),
            }
        }
        path
    }

    #[cold]
    fn unknown(&mut self, index: usize, key: &str, known: usize) {
        let mut path = self.path();
        push_key(&mut path, key);
        let candidates = self.keys[known..].iter().map(|n| self.text(*n));
        let help = suggest(key, candidates).map(|s| format!("did you mean `{s}`?"));
        let diag = self.d.key_at(
            &path,
            format!("{path}: unknown key `{key}` is ignored"),
            help,
        );
        let mut order = self.order.clone();
        order.push(index as u32);
        self.warnings.push((order, diag));
    }

    fn number(&mut self, unit: Option<(u64, &'static str)>, n: f64) {
        if let Some(unit) = unit.filter(|u| self.durations && too_long(*u, n)) {
            let path = self.path();
            check_duration(self.d, &path, unit, n);
        }
    }
}

/// Why a value was not walked: it does not serialise as a JSON value.
#[derive(Debug)]
pub(crate) struct Unwalkable;

impl fmt::Display for Unwalkable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not representable as a JSON value")
    }
}

impl std::error::Error for Unwalkable {}

impl ser::Error for Unwalkable {
    fn custom<T: fmt::Display>(_msg: T) -> Self {
        Unwalkable
    }
}

/// One serialised mapping against its input mapping: which input entries it has.
struct Frame<'a> {
    /// The input, when it is a mapping.
    input: Option<NodeRef<'a>>,
    /// Where this mapping's keys start in [`Checks::keys`] and their text in `names`.
    keys: usize,
    names: usize,
    /// Input entries (the first 64) that a serialised key matched.
    matched: u64,
}

impl<'a> Frame<'a> {
    fn open(c: &Checks<'_, 'a>, input: Option<NodeRef<'a>>) -> Self {
        Frame {
            input: input.filter(NodeRef::is_map),
            keys: c.keys.len(),
            names: c.names.len(),
            matched: 0,
        }
    }

    /// Records the serialised key `name` and descends into it; returns the input value under
    /// it and the duration unit its name gives.
    fn enter(
        &mut self,
        c: &mut Checks<'_, 'a>,
        name: Name,
    ) -> (Option<NodeRef<'a>>, Option<(u64, &'static str)>) {
        c.keys.push(name);
        let text = c.text(name);
        let unit = duration_unit(text);
        let found = self.input.and_then(|i| {
            i.entries()
                .enumerate()
                .find(|(_, (k, _))| *k == text)
                .map(|(j, (_, v))| (j, v))
        });
        let index = match found {
            Some((j, _)) => {
                if j < 64 {
                    self.matched |= 1 << j;
                }
                j as u32
            }
            None => NO_INPUT,
        };
        c.segs.push(Seg::Key(name));
        c.order.push(index);
        (found.map(|(_, v)| v), unit)
    }

    fn leave(c: &mut Checks<'_, 'a>) {
        c.segs.pop();
        c.order.pop();
    }

    /// Reports the input entries no serialised key matched.
    fn close(self, c: &mut Checks<'_, 'a>) {
        if let Some(input) = self.input {
            for (j, (k, _)) in input.entries().enumerate() {
                let known = if j < 64 {
                    self.matched & (1 << j) != 0
                } else {
                    c.keys[self.keys..].iter().any(|n| c.text(*n) == k)
                };
                if !known {
                    c.unknown(j, k, self.keys);
                }
            }
        }
        c.keys.truncate(self.keys);
        c.names.truncate(self.names);
    }
}

/// The serializer: one value at the current path, with its input counterpart.
struct Ser<'w, 'd, 'a> {
    c: &'w mut Checks<'d, 'a>,
    input: Option<NodeRef<'a>>,
    /// The duration unit of the key this value is directly under.
    unit: Option<(u64, &'static str)>,
}

impl<'w, 'd, 'a> Ser<'w, 'd, 'a> {
    fn number(self, n: f64) -> Result<(), Unwalkable> {
        self.c.number(self.unit, n);
        Ok(())
    }

    /// Opens `{variant: …}`, the mapping serde_json wraps a newtype, tuple or struct variant
    /// in; returns it (entered) with the input value under `variant` and its duration unit.
    fn variant(
        &mut self,
        variant: &'static str,
    ) -> (Frame<'a>, Option<NodeRef<'a>>, Option<(u64, &'static str)>) {
        let mut frame = Frame::open(self.c, self.input);
        let (input, unit) = frame.enter(self.c, Name::Static(variant));
        (frame, input, unit)
    }
}

/// Leaves and closes the wrapping mapping of a variant, if any.
fn close_outer<'a>(c: &mut Checks<'_, 'a>, outer: Option<Frame<'a>>) {
    if let Some(frame) = outer {
        Frame::leave(c);
        frame.close(c);
    }
}

/// A serialised sequence (or tuple) against its input sequence, item by item.
struct Seq<'w, 'd, 'a> {
    c: &'w mut Checks<'d, 'a>,
    input: Option<NodeRef<'a>>,
    n: usize,
    outer: Option<Frame<'a>>,
}

impl<'a> Seq<'_, '_, 'a> {
    fn item<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unwalkable> {
        let input = self.input.and_then(|i| i.index(self.n));
        self.c.segs.push(Seg::Index(self.n));
        self.c.order.push(self.n as u32);
        self.n += 1;
        let r = value.serialize(Ser {
            c: &mut *self.c,
            input,
            unit: None,
        });
        Frame::leave(self.c);
        r
    }

    fn done(self) -> Result<(), Unwalkable> {
        close_outer(self.c, self.outer);
        Ok(())
    }
}

/// A serialised mapping (struct, map or struct variant) against its input mapping.
struct Map<'w, 'd, 'a> {
    c: &'w mut Checks<'d, 'a>,
    frame: Frame<'a>,
    /// The key given by `serialize_key`, waiting for its value.
    pending: Option<Name>,
    outer: Option<Frame<'a>>,
}

impl<'a> Map<'_, '_, 'a> {
    fn entry<T: Serialize + ?Sized>(&mut self, name: Name, value: &T) -> Result<(), Unwalkable> {
        let (input, unit) = self.frame.enter(self.c, name);
        let r = value.serialize(Ser {
            c: &mut *self.c,
            input,
            unit,
        });
        Frame::leave(self.c);
        r
    }

    fn done(self) -> Result<(), Unwalkable> {
        self.frame.close(self.c);
        close_outer(self.c, self.outer);
        Ok(())
    }
}

macro_rules! numbers {
    ($($method:ident: $t:ty),*) => {
        $(
            fn $method(self, v: $t) -> Result<(), Unwalkable> {
                self.number(v as f64)
            }
        )*
    };
}

impl<'w, 'd, 'a> ser::Serializer for Ser<'w, 'd, 'a> {
    type Ok = ();
    type Error = Unwalkable;
    type SerializeSeq = Seq<'w, 'd, 'a>;
    type SerializeTuple = Seq<'w, 'd, 'a>;
    type SerializeTupleStruct = Seq<'w, 'd, 'a>;
    type SerializeTupleVariant = Seq<'w, 'd, 'a>;
    type SerializeMap = Map<'w, 'd, 'a>;
    type SerializeStruct = Map<'w, 'd, 'a>;
    type SerializeStructVariant = Map<'w, 'd, 'a>;

    numbers!(serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
        serialize_u8: u8, serialize_u16: u16, serialize_u32: u32, serialize_u64: u64);

    fn serialize_i128(self, v: i128) -> Result<(), Unwalkable> {
        // As serde_json: in range of u64 or i64, else not representable.
        if u64::try_from(v).is_ok() || i64::try_from(v).is_ok() {
            self.number(v as f64)
        } else {
            Err(Unwalkable)
        }
    }

    fn serialize_u128(self, v: u128) -> Result<(), Unwalkable> {
        if u64::try_from(v).is_ok() {
            self.number(v as f64)
        } else {
            Err(Unwalkable)
        }
    }

    fn serialize_f32(self, v: f32) -> Result<(), Unwalkable> {
        self.serialize_f64(f64::from(v))
    }

    fn serialize_f64(self, v: f64) -> Result<(), Unwalkable> {
        // serde_json makes a non-finite float `null`, which is not a number.
        if v.is_finite() {
            self.number(v)
        } else {
            Ok(())
        }
    }

    fn serialize_bool(self, _: bool) -> Result<(), Unwalkable> {
        Ok(())
    }

    fn serialize_char(self, _: char) -> Result<(), Unwalkable> {
        Ok(())
    }

    fn serialize_str(self, _: &str) -> Result<(), Unwalkable> {
        Ok(())
    }

    /// An array of numbers: no keys, and its items are under no key.
    fn serialize_bytes(self, _: &[u8]) -> Result<(), Unwalkable> {
        Ok(())
    }

    fn serialize_none(self) -> Result<(), Unwalkable> {
        Ok(())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Unwalkable> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), Unwalkable> {
        Ok(())
    }

    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Unwalkable> {
        Ok(())
    }

    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
    ) -> Result<(), Unwalkable> {
        Ok(())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Unwalkable> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        mut self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Unwalkable> {
        let (frame, input, unit) = self.variant(variant);
        value.serialize(Ser {
            c: &mut *self.c,
            input,
            unit,
        })?;
        close_outer(self.c, Some(frame));
        Ok(())
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Seq<'w, 'd, 'a>, Unwalkable> {
        Ok(Seq {
            input: self.input.filter(NodeRef::is_seq),
            c: self.c,
            n: 0,
            outer: None,
        })
    }

    fn serialize_tuple(self, len: usize) -> Result<Seq<'w, 'd, 'a>, Unwalkable> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_struct(
        self,
        _: &'static str,
        len: usize,
    ) -> Result<Seq<'w, 'd, 'a>, Unwalkable> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_variant(
        mut self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Seq<'w, 'd, 'a>, Unwalkable> {
        let (frame, input, _) = self.variant(variant);
        Ok(Seq {
            input: input.filter(NodeRef::is_seq),
            c: self.c,
            n: 0,
            outer: Some(frame),
        })
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Map<'w, 'd, 'a>, Unwalkable> {
        Ok(Map {
            frame: Frame::open(self.c, self.input),
            c: self.c,
            pending: None,
            outer: None,
        })
    }

    fn serialize_struct(self, _: &'static str, len: usize) -> Result<Map<'w, 'd, 'a>, Unwalkable> {
        self.serialize_map(Some(len))
    }

    fn serialize_struct_variant(
        mut self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Map<'w, 'd, 'a>, Unwalkable> {
        let (outer, input, _) = self.variant(variant);
        Ok(Map {
            frame: Frame::open(self.c, input),
            c: self.c,
            pending: None,
            outer: Some(outer),
        })
    }
}

impl ser::SerializeSeq for Seq<'_, '_, '_> {
    type Ok = ();
    type Error = Unwalkable;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unwalkable> {
        self.item(value)
    }

    fn end(self) -> Result<(), Unwalkable> {
        self.done()
    }
}

impl ser::SerializeTuple for Seq<'_, '_, '_> {
    type Ok = ();
    type Error = Unwalkable;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unwalkable> {
        self.item(value)
    }

    fn end(self) -> Result<(), Unwalkable> {
        self.done()
    }
}

impl ser::SerializeTupleStruct for Seq<'_, '_, '_> {
    type Ok = ();
    type Error = Unwalkable;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unwalkable> {
        self.item(value)
    }

    fn end(self) -> Result<(), Unwalkable> {
        self.done()
    }
}

impl ser::SerializeTupleVariant for Seq<'_, '_, '_> {
    type Ok = ();
    type Error = Unwalkable;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unwalkable> {
        self.item(value)
    }

    fn end(self) -> Result<(), Unwalkable> {
        self.done()
    }
}

impl ser::SerializeMap for Map<'_, '_, '_> {
    type Ok = ();
    type Error = Unwalkable;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Unwalkable> {
        let start = self.c.names.len();
        key.serialize(KeySer(&mut self.c.names))?;
        let len = self.c.names.len() - start;
        self.pending = Some(Name::Owned(start as u32, len as u32));
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unwalkable> {
        let name = self.pending.take().ok_or(Unwalkable)?;
        self.entry(name, value)
    }

    fn end(self) -> Result<(), Unwalkable> {
        self.done()
    }
}

impl ser::SerializeStruct for Map<'_, '_, '_> {
    type Ok = ();
    type Error = Unwalkable;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Unwalkable> {
        self.entry(Name::Static(key), value)
    }

    fn end(self) -> Result<(), Unwalkable> {
        self.done()
    }
}

impl ser::SerializeStructVariant for Map<'_, '_, '_> {
    type Ok = ();
    type Error = Unwalkable;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Unwalkable> {
        self.entry(Name::Static(key), value)
    }

    fn end(self) -> Result<(), Unwalkable> {
        self.done()
    }
}

/// A map key as serde_json writes it: strings, numbers as their digits, booleans, chars and
/// unit variants; anything else is not representable.
struct KeySer<'s>(&'s mut String);

macro_rules! key_numbers {
    ($($method:ident: $t:ty),*) => {
        $(
            fn $method(self, v: $t) -> Result<(), Unwalkable> {
                use std::fmt::Write;
                write!(self.0, "{v}").map_err(|_| Unwalkable)
            }
        )*
    };
}

impl ser::Serializer for KeySer<'_> {
    type Ok = ();
    type Error = Unwalkable;
    type SerializeSeq = Impossible<(), Unwalkable>;
    type SerializeTuple = Impossible<(), Unwalkable>;
    type SerializeTupleStruct = Impossible<(), Unwalkable>;
    type SerializeTupleVariant = Impossible<(), Unwalkable>;
    type SerializeMap = Impossible<(), Unwalkable>;
    type SerializeStruct = Impossible<(), Unwalkable>;
    type SerializeStructVariant = Impossible<(), Unwalkable>;

    key_numbers!(serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
        serialize_i128: i128, serialize_u8: u8, serialize_u16: u16, serialize_u32: u32,
        serialize_u64: u64, serialize_u128: u128, serialize_bool: bool, serialize_char: char);

    fn serialize_str(self, v: &str) -> Result<(), Unwalkable> {
        self.0.push_str(v);
        Ok(())
    }

    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), Unwalkable> {
        self.serialize_str(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Unwalkable> {
        value.serialize(self)
    }

    /// serde_json writes finite floats as keys in its own shortest form; no hilt map has
    /// float keys, so they are refused rather than written differently.
    fn serialize_f32(self, _: f32) -> Result<(), Unwalkable> {
        Err(Unwalkable)
    }

    fn serialize_f64(self, _: f64) -> Result<(), Unwalkable> {
        Err(Unwalkable)
    }

    fn serialize_bytes(self, _: &[u8]) -> Result<(), Unwalkable> {
        Err(Unwalkable)
    }

    fn serialize_none(self) -> Result<(), Unwalkable> {
        Err(Unwalkable)
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<(), Unwalkable> {
        Err(Unwalkable)
    }

    fn serialize_unit(self) -> Result<(), Unwalkable> {
        Err(Unwalkable)
    }

    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Unwalkable> {
        Err(Unwalkable)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Unwalkable> {
        Err(Unwalkable)
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Unwalkable> {
        Err(Unwalkable)
    }

    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Unwalkable> {
        Err(Unwalkable)
    }

    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, Unwalkable> {
        Err(Unwalkable)
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Unwalkable> {
        Err(Unwalkable)
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Unwalkable> {
        Err(Unwalkable)
    }

    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, Unwalkable> {
        Err(Unwalkable)
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Unwalkable> {
        Err(Unwalkable)
    }
}

#[cfg(test)]
mod tests;

//! Typed decoding straight from the [`Tree`]: a `serde::Deserializer` over [`NodeRef`] that
//! behaves as serde_json's `&Value` deserializer does (same visits, same error messages), so
//! a suite is decoded without first being copied into a `serde_json::Value`.

use serde::de::value::BorrowedStrDeserializer;
use serde::de::{self, DeserializeSeed, Expected, Unexpected, Visitor};
use serde_json::Error;

use super::tree::{NodeRef, Scalar, Shape};

impl<'a> NodeRef<'a> {
    fn unexpected(&self) -> Unexpected<'a> {
        match self.shape() {
            Shape::Scalar(Scalar::Null) => Unexpected::Unit,
            Shape::Scalar(Scalar::Bool(b)) => Unexpected::Bool(b),
            Shape::Scalar(Scalar::Uint(u)) => Unexpected::Unsigned(u),
            Shape::Scalar(Scalar::Int(i)) => Unexpected::Signed(i),
            Shape::Scalar(Scalar::Float(f)) => Unexpected::Float(f),
            Shape::Scalar(Scalar::Str(s)) => Unexpected::Str(s),
            Shape::Seq => Unexpected::Seq,
            Shape::Map => Unexpected::Map,
        }
    }

    #[cold]
    fn invalid_type(&self, exp: &dyn Expected) -> Error {
        de::Error::invalid_type(self.unexpected(), exp)
    }

    fn visit_seq<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        let mut items = self.items();
        let len = items.len();
        let value = visitor.visit_seq(Items(&mut items))?;
        if items.len() == 0 {
            Ok(value)
        } else {
            Err(de::Error::invalid_length(len, &"fewer elements in array"))
        }
    }

    fn visit_map<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        let mut entries = self.entries();
        let len = entries.len();
        let mut access = Entries {
            iter: &mut entries,
            value: None,
        };
        let value = visitor.visit_map(&mut access)?;
        if access.iter.len() == 0 {
            Ok(value)
        } else {
            Err(de::Error::invalid_length(len, &"fewer elements in map"))
        }
    }

    fn visit_number<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.scalar() {
            Some(Scalar::Uint(u)) => visitor.visit_u64(u),
            Some(Scalar::Int(i)) => visitor.visit_i64(i),
            Some(Scalar::Float(f)) => visitor.visit_f64(f),
            _ => Err(self.invalid_type(&visitor)),
        }
    }
}

macro_rules! number {
    ($($method:ident)*) => {
        $(
            fn $method<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
                self.visit_number(visitor)
            }
        )*
    };
}

impl<'a> de::Deserializer<'a> for NodeRef<'a> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.shape() {
            Shape::Scalar(Scalar::Null) => visitor.visit_unit(),
            Shape::Scalar(Scalar::Bool(b)) => visitor.visit_bool(b),
            Shape::Scalar(Scalar::Uint(u)) => visitor.visit_u64(u),
            Shape::Scalar(Scalar::Int(i)) => visitor.visit_i64(i),
            Shape::Scalar(Scalar::Float(f)) => visitor.visit_f64(f),
            Shape::Scalar(Scalar::Str(s)) => visitor.visit_borrowed_str(s),
            Shape::Seq => self.visit_seq(visitor),
            Shape::Map => self.visit_map(visitor),
        }
    }

    number!(deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
        deserialize_f32 deserialize_f64);

    fn deserialize_option<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.scalar() {
            Some(Scalar::Null) => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_enum<V: Visitor<'a>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.shape() {
            Shape::Map => {
                let mut entries = self.entries();
                match (entries.next(), entries.next()) {
                    (Some((variant, value)), None) => visitor.visit_enum(Variant {
                        variant,
                        value: Some(value),
                    }),
                    _ => Err(de::Error::invalid_value(
                        Unexpected::Map,
                        &"map with a single key",
                    )),
                }
            }
            Shape::Scalar(Scalar::Str(variant)) => visitor.visit_enum(Variant {
                variant,
                value: None,
            }),
            _ => Err(self.invalid_type(&"string or map")),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'a>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_bool<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.scalar() {
            Some(Scalar::Bool(b)) => visitor.visit_bool(b),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_char<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.scalar() {
            Some(Scalar::Str(s)) => visitor.visit_borrowed_str(s),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_string<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.shape() {
            Shape::Scalar(Scalar::Str(s)) => visitor.visit_borrowed_str(s),
            Shape::Seq => self.visit_seq(visitor),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_unit<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.scalar() {
            Some(Scalar::Null) => visitor.visit_unit(),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'a>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_seq<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.shape() {
            Shape::Seq => self.visit_seq(visitor),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_tuple<V: Visitor<'a>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'a>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.shape() {
            Shape::Map => self.visit_map(visitor),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_struct<V: Visitor<'a>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.shape() {
            Shape::Seq => self.visit_seq(visitor),
            Shape::Map => self.visit_map(visitor),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_identifier<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'a>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }
}

struct Items<'r, I>(&'r mut I);

impl<'a, I: Iterator<Item = NodeRef<'a>> + ExactSizeIterator> de::SeqAccess<'a> for Items<'_, I> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'a>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        match self.0.next() {
            Some(v) => seed.deserialize(v).map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct Entries<'r, 'a, I> {
    iter: &'r mut I,
    value: Option<NodeRef<'a>>,
}

impl<'a, I> de::MapAccess<'a> for Entries<'_, 'a, I>
where
    I: Iterator<Item = (&'a str, NodeRef<'a>)> + ExactSizeIterator,
{
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'a>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match self.iter.next() {
            Some((k, v)) => {
                self.value = Some(v);
                // Every map key in the model is a string.
                seed.deserialize(BorrowedStrDeserializer::new(k)).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<T: DeserializeSeed<'a>>(&mut self, seed: T) -> Result<T::Value, Error> {
        match self.value.take() {
            Some(v) => seed.deserialize(v),
            None => Err(de::Error::custom("value is missing")),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

/// An enum: a one-key mapping (`send_uart: {...}`) or a bare string (a unit variant).
struct Variant<'a> {
    variant: &'a str,
    value: Option<NodeRef<'a>>,
}

impl<'a> de::EnumAccess<'a> for Variant<'a> {
    type Error = Error;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'a>>(self, seed: V) -> Result<(V::Value, Self), Error> {
        let name = BorrowedStrDeserializer::<Error>::new(self.variant);
        seed.deserialize(name).map(|v| (v, self))
    }
}

impl<'a> de::VariantAccess<'a> for Variant<'a> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        match self.value {
            Some(v) => serde::Deserialize::deserialize(v),
            None => Ok(()),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'a>>(self, seed: T) -> Result<T::Value, Error> {
        match self.value {
            Some(v) => seed.deserialize(v),
            None => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"newtype variant",
            )),
        }
    }

    fn tuple_variant<V: Visitor<'a>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            Some(v) if v.is_seq() => {
                if v.items().len() == 0 {
                    visitor.visit_unit()
                } else {
                    v.visit_seq(visitor)
                }
            }
            Some(other) => Err(other.invalid_type(&"tuple variant")),
            None => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"tuple variant",
            )),
        }
    }

    fn struct_variant<V: Visitor<'a>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.value {
            Some(v) if v.is_map() => v.visit_map(visitor),
            Some(other) => Err(other.invalid_type(&"struct variant")),
            None => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"struct variant",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::de::DeserializeOwned;

    use crate::bench::Bench;
    use crate::suite::Suite;
    use crate::yaml::parse;

    /// Decoding from the tree and from the same document as a `serde_json::Value` give the
    /// same value, or the same error message.
    fn same<T: DeserializeOwned + serde::Serialize>(text: &str) -> Result<(), String> {
        let doc = parse(text).unwrap();
        let from_tree = T::deserialize(doc.root().unwrap()).map_err(|e| e.to_string());
        let from_value = T::deserialize(&doc.to_value()).map_err(|e| e.to_string());
        let json = |r: Result<T, String>| r.map(|v| serde_json::to_value(v).unwrap());
        let (a, b) = (json(from_tree), json(from_value));
        assert_eq!(a, b, "{text}");
        a.map(|_| ())
    }

    #[test]
    fn decodes_as_serde_json_does() {
        let ok = "version: 1\nsuite: {name: s, version: 2, tags: [a, b]}\nbase: &b {node: dut, transport: console}\ntests:\n  - name: t\n    steps:\n      - sleep_ms: 0x10\n      - send_uart: {<<: *b, data: \"x\"}\n      - expect_uart: {<<: *b, contains: ok, within_ms: 5, within_ms: 7}\n      - gpio_set: {node: dut, line: led, value: on}\n      - assert_metric: {name: m, expect_less_than: -2}\n      - measure: {resource: r, unit: A}\n";
        same::<Suite>(ok).unwrap();
        for bad in [
            "suite: {name: 5}\n",
            "suite: {name: s}\ntests: {a: 1}\n",
            "suite: {name: s}\ntests:\n  - name: t\n    steps:\n      - sleep_ms: -1\n",
            "suite: {name: s}\ntests:\n  - name: t\n    steps:\n      - sleep_ms: 1.5\n",
            "suite: {name: s}\ntests:\n  - name: t\n    steps:\n      - send_uart: 3\n",
            "suite: {name: s}\ntests:\n  - name: t\n    steps:\n      - bogus: {}\n",
            "suite: {name: s}\ntests:\n  - name: t\n    steps:\n      - {sleep_ms: 1, reset: dut}\n",
            "suite: {name: s}\ntests:\n  - name: t\n    steps:\n      - gpio_set: {node: dut, line: led, value: maybe}\n",
            "suite: {name: s}\ntests:\n  - steps: []\n",
        ] {
            assert!(same::<Suite>(bad).is_err(), "{bad}");
        }
        same::<Bench>("bench: {name: b}\nnodes:\n  dut:\n    kind: mcu\n    transports:\n      console: {backend: uart, port: /dev/null, baud: 115200}\nresources:\n  m: {kind: measurement, driver: {type: mock_measurement, value: 0.5}}\n").unwrap();
        assert!(
            same::<Bench>(
                "bench: {name: b}\nresources:\n  m: {kind: measurement, driver: {type: nope}}\n"
            )
            .is_err()
        );
    }
}

//! Small lenient deserializers for fields BenchCI files write in more than one way.

use serde::{Deserialize, Deserializer};

#[derive(Deserialize)]
#[serde(untagged)]
enum StrOrInt {
    S(String),
    I(i64),
}

/// Accepts `"0x08000000"` or `0x08000000` (an integer, rendered back as hex).
pub fn opt_string_or_int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<StrOrInt>::deserialize(d)?.map(|v| match v {
        StrOrInt::S(s) => s,
        StrOrInt::I(i) => format!("{i:#x}"),
    }))
}

//! Default-value functions for serde and schemars (`#[serde(default = "…")]`).

pub fn t() -> bool {
    true
}
pub fn u32_<const N: u32>() -> u32 {
    N
}
pub fn u64_<const N: u64>() -> u64 {
    N
}
pub fn f64_one() -> f64 {
    1.0
}
pub fn s_n() -> String {
    "N".to_string()
}
pub fn s_newline() -> String {
    "\n".to_string()
}
pub fn s_generic() -> String {
    "generic".to_string()
}
pub fn u16_<const N: u16>() -> u16 {
    N
}

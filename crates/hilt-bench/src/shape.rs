//! Structural diff of two results.json documents: key paths and value kinds, not values.

use std::collections::BTreeMap;

use serde_json::Value;

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Every key path (`a.b[].c`; `tests[i]` keeps its index) with the kinds seen there.
fn paths(v: &Value, at: String, out: &mut BTreeMap<String, Vec<&'static str>>) {
    let kinds = out.entry(at.clone()).or_default();
    if !kinds.contains(&kind(v)) {
        kinds.push(kind(v));
    }
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                paths(x, p, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                let p = if at == "tests" {
                    format!("tests[{i}]")
                } else {
                    format!("{at}[]")
                };
                paths(x, p, out);
            }
        }
        _ => {}
    }
}

/// Differences that are by design: BenchCI records its Python version, hilt its own version.
const EXPECTED: &[&str] = &[
    "evidence.environment.python",
    "evidence.environment.hilt_version",
];

/// One difference; `path` is empty for whole-document remarks.
pub struct Difference {
    pub path: String,
    pub text: String,
}

impl Difference {
    pub fn by_design(&self) -> bool {
        EXPECTED.contains(&self.path.as_str())
    }
}

/// Differences in key paths, value kinds, key order and test outcomes; empty when the
/// shapes agree.
pub fn diff(benchci: &Value, hilt: &Value) -> Vec<Difference> {
    let mut b = BTreeMap::new();
    let mut h = BTreeMap::new();
    paths(benchci, String::new(), &mut b);
    paths(hilt, String::new(), &mut h);
    let mut out = Vec::new();
    let mut push = |path: &str, text: String| {
        out.push(Difference {
            path: path.to_string(),
            text,
        })
    };
    for (p, kb) in &b {
        match h.get(p) {
            None => push(p, format!("only in BenchCI: {p} ({})", kb.join("|"))),
            Some(kh) if kh != kb => {
                // null vs a value depends on the data (timestamps, optional fields).
                let strip = |k: &Vec<&str>| k.iter().filter(|x| **x != "null").count();
                let soft = strip(kb) == 0 || strip(kh) == 0;
                push(
                    p,
                    format!(
                        "{}kind differs at {p}: BenchCI {} / hilt {}",
                        if soft { "(null vs value) " } else { "" },
                        kb.join("|"),
                        kh.join("|")
                    ),
                );
            }
            _ => {}
        }
    }
    for (p, kh) in &h {
        if !b.contains_key(p) {
            push(p, format!("only in hilt: {p} ({})", kh.join("|")));
        }
    }
    let keys = |v: &Value| -> Vec<String> {
        v.as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    };
    if keys(benchci) != keys(hilt) {
        push("", "top-level key order differs".into());
    }
    let (tb, th) = (&benchci["tests"], &hilt["tests"]);
    let n = tb
        .as_array()
        .map_or(0, Vec::len)
        .max(th.as_array().map_or(0, Vec::len));
    for i in 0..n {
        for field in ["name", "test_case_id", "passed"] {
            if tb[i][field] != th[i][field] {
                push(
                    "",
                    format!(
                        "tests[{i}].{field}: BenchCI {} / hilt {}",
                        tb[i][field], th[i][field]
                    ),
                );
            }
        }
        if keys(&tb[i]) != keys(&th[i]) {
            push("", format!("tests[{i}] key order differs"));
        }
    }
    for field in ["status", "summary"] {
        if benchci[field] != hilt[field] {
            push(
                "",
                format!("{field}: BenchCI {} / hilt {}", benchci[field], hilt[field]),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_missing_keys_and_kinds() {
        let b = json!({"a": 1, "tests": [{"name": "x", "passed": true}], "m": [{"k": 1}]});
        let h = json!({"a": "1", "tests": [{"name": "x", "passed": true}], "m": [{"j": 1}]});
        let d: Vec<String> = diff(&b, &h).into_iter().map(|d| d.text).collect();
        assert!(d.iter().any(|l| l.contains("kind differs at a")));
        assert!(d.iter().any(|l| l == "only in BenchCI: m[].k (number)"));
        assert!(d.iter().any(|l| l == "only in hilt: m[].j (number)"));
        assert!(diff(&b, &b).is_empty());
    }
}

//! What must agree between BenchCI and hilt for one case: exit code, whether results.json
//! exists, run status and summary, the run's failure category, per-test verdicts and
//! categories, and the shape of results.json (key paths and value kinds at every level,
//! key order of every object the spec orders).

use std::collections::BTreeMap;

use serde_json::Value;

/// One disagreement. `field` is what the allow-list is keyed by.
#[derive(Debug, Clone, PartialEq)]
pub struct Difference {
    pub field: String,
    pub benchci: String,
    pub hilt: String,
}

impl Difference {
    fn new(field: impl Into<String>, benchci: impl ToString, hilt: impl ToString) -> Self {
        Difference {
            field: field.into(),
            benchci: benchci.to_string(),
            hilt: hilt.to_string(),
        }
    }
}

/// Compares two outcomes; `None` results means the tool wrote no results.json.
pub fn compare(exit: (i32, i32), benchci: Option<&Value>, hilt: Option<&Value>) -> Vec<Difference> {
    let mut out = Vec::new();
    if exit.0 != exit.1 {
        out.push(Difference::new("exit_code", exit.0, exit.1));
    }
    let (b, h) = match (benchci, hilt) {
        (Some(b), Some(h)) => (b, h),
        (None, None) => return out,
        (b, h) => {
            let said = |v: Option<&Value>| match v {
                Some(v) => format!("written (status {})", v["status"]),
                None => "absent".to_string(),
            };
            out.push(Difference::new("results.json", said(b), said(h)));
            return out;
        }
    };
    for field in [
        "status",
        "summary",
        "skip_flash",
        "verbose",
        "tool",
        "command",
        "run_mode",
    ] {
        if b[field] != h[field] {
            out.push(Difference::new(field, &b[field], &h[field]));
        }
    }
    for field in ["category", "source"] {
        let (x, y) = (&b["failure"][field], &h["failure"][field]);
        if x != y {
            out.push(Difference::new(format!("failure.{field}"), x, y));
        }
    }
    verdicts(b, h, &mut out);
    shape(b, h, &mut out);
    out
}

/// Per-test name, verdict and failure category, by position.
fn verdicts(b: &Value, h: &Value, out: &mut Vec<Difference>) {
    let empty = Vec::new();
    let tb = b["tests"].as_array().unwrap_or(&empty);
    let th = h["tests"].as_array().unwrap_or(&empty);
    if tb.len() != th.len() {
        out.push(Difference::new("tests.len", tb.len(), th.len()));
    }
    for (i, (x, y)) in tb.iter().zip(th).enumerate() {
        for (field, a, c) in [
            ("name", &x["name"], &y["name"]),
            ("passed", &x["passed"], &y["passed"]),
            (
                "failure.category",
                &x["failure"]["category"],
                &y["failure"]["category"],
            ),
            (
                "failure.source",
                &x["failure"]["source"],
                &y["failure"]["source"],
            ),
        ] {
            if a != c {
                out.push(Difference::new(format!("tests[{i}].{field}"), a, c));
            }
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Objects whose keys are names from the bench/suite (or free-form details), not schema.
fn keys_are_data(path: &str) -> bool {
    const DATA: &[&str] = &[
        "nodes",
        "resources",
        "metrics",
        "details",
        "transport_logs",
        "configured",
        "observed",
    ];
    let last = path.rsplit(['.', ']']).next().unwrap_or(path);
    // A failure's artifacts are the logs that matter to it; the run's are fixed keys.
    DATA.contains(&last) || path.ends_with("failure.artifacts")
}

/// Every path (arrays as `[]`) with the set of value kinds seen there, and the key order of
/// every schema object.
fn paths(
    v: &Value,
    at: &str,
    kinds: &mut BTreeMap<String, Vec<&'static str>>,
    orders: &mut BTreeMap<String, Vec<String>>,
) {
    let k = kinds.entry(at.to_string()).or_default();
    if !k.contains(&kind(v)) {
        k.push(kind(v));
        k.sort_unstable();
    }
    match v {
        Value::Object(m) => {
            let data = keys_are_data(at);
            if !data {
                orders
                    .entry(at.to_string())
                    .or_insert_with(|| m.keys().cloned().collect());
            }
            for (key, x) in m {
                let key = if data { "*" } else { key.as_str() };
                let p = if at.is_empty() {
                    key.to_string()
                } else {
                    format!("{at}.{key}")
                };
                paths(x, &p, kinds, orders);
            }
        }
        Value::Array(a) => {
            for x in a {
                paths(x, &format!("{at}[]"), kinds, orders);
            }
        }
        _ => {}
    }
}

type Kinds = BTreeMap<String, Vec<&'static str>>;

/// The path one level up: `a.b` → `a`, `a[]` → `a`, `a` → ``.
fn parent(p: &str) -> Option<&str> {
    if p.is_empty() {
        return None;
    }
    if let Some(x) = p.strip_suffix("[]") {
        return Some(x);
    }
    Some(p.rfind('.').map_or("", |i| &p[..i]))
}

/// Whether `p`'s absence from `side` follows from data rather than shape: an ancestor there
/// is an empty array or map (`[]`/`.*` never seen) or null.
fn absent_by_data(p: &str, side: &Kinds) -> bool {
    let mut at = p;
    while let Some(up) = parent(at) {
        let container = at.ends_with("[]") || at.ends_with(".*") || at == "*";
        match side.get(up) {
            Some(k) if k.iter().all(|x| *x == "null") => return true,
            Some(_) => return !side.contains_key(at) && container,
            None => at = up,
        }
    }
    false
}

/// Key paths, value kinds and key order. A path that holds `null` in one tool and a value in
/// the other is only reported when the value kinds (beside null) disagree; what lies below
/// an empty array/map or a null on one side is not compared (the data differs, the verdict
/// comparison reports that); `details` objects are free-form (spec: run-results §9).
fn shape(b: &Value, h: &Value, out: &mut Vec<Difference>) {
    let (mut kb, mut ob) = (BTreeMap::new(), BTreeMap::new());
    let (mut kh, mut oh) = (BTreeMap::new(), BTreeMap::new());
    paths(b, "", &mut kb, &mut ob);
    paths(h, "", &mut kh, &mut oh);
    let strip = |k: &Vec<&'static str>| -> Vec<&'static str> {
        k.iter().copied().filter(|x| *x != "null").collect()
    };
    let free_form =
        |p: &str| p.contains("details.") || (p == "error" && b["status"] != h["status"]);
    for (p, x) in &kb {
        if free_form(p) {
            continue;
        }
        match kh.get(p) {
            None if absent_by_data(p, &kh) => {}
            None => out.push(Difference::new(format!("shape:{p}"), x.join("|"), "absent")),
            Some(y) => {
                let (sx, sy) = (strip(x), strip(y));
                if !sx.is_empty() && !sy.is_empty() && sx != sy {
                    out.push(Difference::new(
                        format!("kind:{p}"),
                        x.join("|"),
                        y.join("|"),
                    ));
                }
            }
        }
    }
    for (p, y) in &kh {
        if !kb.contains_key(p) && !free_form(p) && !absent_by_data(p, &kb) {
            out.push(Difference::new(format!("shape:{p}"), "absent", y.join("|")));
        }
    }
    for (p, x) in &ob {
        if let Some(y) = oh.get(p) {
            let common = |a: &Vec<String>, other: &Vec<String>| -> Vec<String> {
                a.iter().filter(|k| other.contains(k)).cloned().collect()
            };
            let (cx, cy) = (common(x, y), common(y, x));
            if cx != cy {
                let at = if p.is_empty() { "<top>" } else { p.as_str() };
                out.push(Difference::new(
                    format!("order:{at}"),
                    cx.join(","),
                    cy.join(","),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn agreeing_documents_have_no_differences() {
        let doc = json!({"status": "failed", "summary": {"total": 1},
            "tests": [{"name": "a", "passed": false, "failure": {"category": "X"}}],
            "nodes": {"dut": {"gpio_log": null}}});
        assert!(compare((1, 1), Some(&doc), Some(&doc)).is_empty());
    }

    #[test]
    fn finds_every_kind_of_difference() {
        let b = json!({"status": "error", "failure": {"category": "MEASUREMENT_FAILED"},
            "tests": [{"name": "a", "passed": true, "failure": null, "x": 1}],
            "only_b": 1, "order": {"p": 1, "q": 2}, "n": 1.5});
        let h = json!({"status": "failed", "failure": {"category": "MEASUREMENT_ASSERTION_FAILED"},
            "tests": [{"name": "a", "passed": false, "failure": {"category": "C"}, "x": "1"},
                      {"name": "b", "passed": true}],
            "order": {"q": 2, "p": 1}, "n": 2});
        let fields: Vec<String> = compare((1, 3), Some(&b), Some(&h))
            .into_iter()
            .map(|d| d.field)
            .collect();
        for f in [
            "exit_code",
            "status",
            "failure.category",
            "tests.len",
            "tests[0].passed",
            "tests[0].failure.category",
            "shape:only_b",
            "kind:tests[].x",
            "kind:n",
            "order:order",
        ] {
            assert!(
                fields.contains(&f.to_string()),
                "{f} not found in {fields:?}"
            );
        }
        let none = compare((1, 3), None, Some(&h));
        assert_eq!(none.len(), 2, "{none:?}");
        assert_eq!(none[1].field, "results.json");
    }

    #[test]
    fn nothing_is_reported_below_an_empty_or_null_container() {
        let b = json!({"tests": [], "failure": null, "metrics": {}});
        let h = json!({"tests": [{"name": "a", "failure": {"category": "X"}}],
            "failure": {"category": "X", "details": {"a": 1}},
            "metrics": {"i": {"value": 1.0}}});
        assert_eq!(
            compare((1, 1), Some(&b), Some(&h)).len(),
            2,
            "tests.len and failure.category only"
        );
        let h2 = json!({"tests": [], "failure": {"category": "X", "extra": 1}, "metrics": {}});
        let b2 = json!({"tests": [], "failure": {"category": "X"}, "metrics": {}});
        let d = compare((1, 1), Some(&b2), Some(&h2));
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].field, "shape:failure.extra");
    }

    #[test]
    fn data_keyed_objects_compare_by_shape_not_by_name_order() {
        let b = json!({"metrics": {"a": {"value": 1.0}, "b": {"value": 2.0}}});
        let h = json!({"metrics": {"b": {"value": 2.0}, "a": {"value": 1.0}}});
        assert!(compare((0, 0), Some(&b), Some(&h)).is_empty());
    }
}

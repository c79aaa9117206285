//! The walk against the comparison it replaced (the typed value re-serialised into a
//! `serde_json::Value` and diffed against the input), on every bench and suite in the
//! repository and on variants of them with unknown keys and over-long durations inserted;
//! and located findings in nested steps, options and tagged enums.

use serde_json::Value;

use super::super::{common_checks, suite_tests_checks, top_level};
use crate::bench::Bench;
use crate::diag::{Diagnostic, Diags, suggest};
use crate::suite::Suite;
use crate::yaml::{self, Doc, NodeRef, push_index, push_key};

// ---- the previous implementation, kept as the reference ----

fn ref_unknown_keys(d: &mut Diags, input: NodeRef, canonical: &Value, path: &mut String) {
    match canonical {
        Value::Object(c) => {
            for (k, v) in input.entries() {
                ref_unknown_key(d, c, k, v, path);
            }
        }
        Value::Array(c) => {
            for (n, (iv, cv)) in input.items().zip(c).enumerate() {
                let len = path.len();
                push_index(path, n);
                ref_unknown_keys(d, iv, cv, path);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

fn ref_unknown_key(
    d: &mut Diags,
    c: &serde_json::Map<String, Value>,
    k: &str,
    v: NodeRef,
    path: &mut String,
) {
    let len = path.len();
    push_key(path, k);
    match c.get(k) {
        Some(cv) => ref_unknown_keys(d, v, cv, path),
        None => {
            let p = path.as_str();
            let help =
                suggest(k, c.keys().map(String::as_str)).map(|s| format!("did you mean `{s}`?"));
            let diag = d.key_at(p, format!("{p}: unknown key `{k}` is ignored"), help);
            d.warnings.push(diag);
        }
    }
    path.truncate(len);
}

fn ref_durations(d: &mut Diags, v: &Value, path: &mut String) {
    const MAX: u64 = crate::validate::MAX_DURATION_MS;
    let len = path.len();
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                push_key(path, k);
                let scale = if k.ends_with("_ms") {
                    Some((1, "ms"))
                } else if k.ends_with("_s") {
                    Some((1000, "s"))
                } else {
                    None
                };
                if let (Some((per_ms, unit)), Some(n)) = (scale, v.as_f64()) {
                    let max = MAX / per_ms;
                    if n > max as f64 {
                        d.error(
                            path,
                            format!(
                                "{n} {unit} is longer than the limit of {max} {unit} (24 h) for one duration"
                            ),
                        );
                    }
                }
                ref_durations(d, v, path);
                path.truncate(len);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                push_index(path, i);
                ref_durations(d, v, path);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

fn ref_bench(d: &mut Diags, root: NodeRef, bench: &Bench) {
    if let Ok(canonical) = serde_json::to_value(bench) {
        ref_unknown_keys(d, root, &canonical, &mut String::new());
        ref_durations(d, &canonical, &mut String::new());
    }
}

fn ref_suite(d: &mut Diags, root: NodeRef, suite: &Suite) {
    let top = top_level(suite);
    let Ok(Value::Object(c)) = serde_json::to_value(&top) else {
        return;
    };
    let mut path = String::new();
    for (k, v) in root.entries() {
        if k != "tests" {
            ref_unknown_key(d, &c, k, v, &mut path);
            continue;
        }
        for (n, (iv, t)) in v.items().zip(&suite.tests).enumerate() {
            if let Ok(cv) = serde_json::to_value(t) {
                path.clear();
                push_key(&mut path, "tests");
                push_index(&mut path, n);
                ref_unknown_keys(d, iv, &cv, &mut path);
                ref_durations(d, &cv, &mut path);
            }
        }
        path.clear();
    }
}

// ---- comparison ----

type Found = (Vec<Diagnostic>, Vec<Diagnostic>);

fn run<'a>(doc: &'a Doc, f: impl FnOnce(&mut Diags<'a>)) -> Found {
    let mut d = Diags::new("f.yaml", doc);
    f(&mut d);
    d.into_parts()
}

/// (new, reference) findings for `text`, or `None` when it is neither a bench nor a suite
/// that decodes.
fn compare(text: &str) -> Option<(Found, Found)> {
    let doc: Doc = yaml::parse(text).ok()?;
    let root = doc.root().filter(|r| r.is_map())?;
    if root.get("tests").is_some() || root.get("suite").is_some() {
        let suite: Suite = serde::Deserialize::deserialize(root).ok()?;
        Some((
            run(&doc, |d| suite_tests_checks(d, root, &suite)),
            run(&doc, |d| ref_suite(d, root, &suite)),
        ))
    } else {
        let bench: Bench = serde::Deserialize::deserialize(root).ok()?;
        // The reference had no duplicate-key and version checks in it: leave them out.
        let new = run(&doc, |d| common_checks(d, root, &bench, true));
        let new_without_other = {
            let mut d = Diags::new("f.yaml", &doc);
            super::super::other_checks(&mut d, root);
            let other = d.into_parts().1;
            let (e, w) = new;
            let w = w[..w.len() - other.len()].to_vec();
            (e, w)
        };
        Some((new_without_other, run(&doc, |d| ref_bench(d, root, &bench))))
    }
}

fn yaml_files() -> Vec<std::path::PathBuf> {
    let crates = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut out = Vec::new();
    let mut dirs = vec![crates];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Variants of `text`: an unknown key (with a duration's name) before each `key:` line, at
/// its indentation, and every `*_ms` / `*_s` number made far too long.
fn variants(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let body = line.trim_start();
        let indent = line.len() - body.len();
        let is_key = body.split_once(':').is_some_and(|(k, _)| {
            !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
        if !is_key {
            continue;
        }
        for extra in ["bogus_ms: 5", "nmae: x"] {
            let mut v: Vec<String> = lines[..i].iter().map(|s| s.to_string()).collect();
            v.push(format!("{}{extra}", " ".repeat(indent)));
            v.extend(lines[i..].iter().map(|s| s.to_string()));
            out.push(v.join("\n") + "\n");
        }
    }
    let long: Vec<String> = lines
        .iter()
        .map(|l| match l.split_once("_ms: ") {
            Some((k, v)) if v.trim().parse::<u64>().is_ok() => format!("{k}_ms: 99999999999"),
            _ => match l.split_once("_s: ") {
                Some((k, v)) if v.trim().parse::<f64>().is_ok() => format!("{k}_s: 9e9"),
                _ => l.to_string(),
            },
        })
        .collect();
    out.push(long.join("\n") + "\n");
    out
}

#[test]
fn same_findings_as_the_reserialising_comparison_on_every_repository_file_and_variant() {
    let files = yaml_files();
    assert!(files.len() > 20, "found only {} YAML files", files.len());
    let (mut compared, mut with_findings) = (0, 0);
    for path in files {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        for t in std::iter::once(text.clone()).chain(variants(&text)) {
            if let Some((new, reference)) = compare(&t) {
                assert_eq!(new, reference, "{}:\n{t}", path.display());
                compared += 1;
                if !new.0.is_empty() || !new.1.is_empty() {
                    with_findings += 1;
                }
            }
        }
    }
    assert!(compared > 500, "only {compared} documents compared");
    assert!(
        with_findings > 300,
        "only {with_findings} documents with findings"
    );
}

#[test]
fn finds_unknown_keys_in_nested_steps_options_and_tagged_enums_in_input_order() {
    let text = "\
zzz: 1
suite: {name: s, nmae: x}
tests:
  - name: t
    steps:
      - expect_uart: {node: dut, transport: console, contains: ok, within: 5}
      - measure:
          resource: r
          expect_less_than: 1
          tolerence: 0.1
      - sleep_ms: 99999999999
    bogus: [1]
  - name: u
    steps: [{sleep_ms: 1}]
    stepz: []
version: 1
";
    let doc = yaml::parse(text).unwrap();
    let root = doc.root().unwrap();
    let suite: Result<Suite, _> = serde::Deserialize::deserialize(root);
    let suite = suite.unwrap();
    let mut d = Diags::new("s.yaml", &doc);
    suite_tests_checks(&mut d, root, &suite);
    let (errors, warnings) = d.into_parts();
    let got: Vec<(usize, usize, &str, Option<&str>)> = warnings
        .iter()
        .map(|w| (w.line, w.col, w.message.as_str(), w.help.as_deref()))
        .collect();
    let want = vec![
        (1, 1, "zzz: unknown key `zzz` is ignored", None),
        (
            2,
            18,
            "suite.nmae: unknown key `nmae` is ignored",
            Some("did you mean `name`?"),
        ),
        (
            6,
            68,
            "tests[0].steps[0].expect_uart.within: unknown key `within` is ignored",
            Some("did you mean `within_ms`?"),
        ),
        (
            10,
            11,
            "tests[0].steps[1].measure.tolerence: unknown key `tolerence` is ignored",
            Some("did you mean `tolerance`?"),
        ),
        (
            12,
            5,
            "tests[0].bogus: unknown key `bogus` is ignored",
            None,
        ),
        (
            15,
            5,
            "tests[1].stepz: unknown key `stepz` is ignored",
            Some("did you mean `steps`?"),
        ),
    ];
    assert_eq!(got, want);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!((errors[0].line, errors[0].col), (11, 19));
    assert!(
        errors[0]
            .message
            .starts_with("tests[0].steps[2].sleep_ms: 99999999999 ms is longer than the limit"),
        "{}",
        errors[0].message
    );
    let (new, reference) = compare(text).unwrap();
    assert_eq!(new, reference);
}

#[test]
fn bench_findings_in_maps_and_tagged_drivers() {
    let text = "\
bench: {name: b}
nodes:
  dut:
    kind: mcu
    transports:
      console: {backend: uart, port: /dev/null, baud: 115200, baudrate: 9600}
resources:
  r:
    kind: measurement
    driver: {type: mock_measurement, value: 1, quantity: current, unit: A, colour: red}
defaults: {timeouts: {within_ms: 99999999999}}
";
    let (new, reference) = compare(text).unwrap();
    assert_eq!(new, reference);
    let (errors, warnings) = new;
    let msgs: Vec<&str> = warnings.iter().map(|w| w.message.as_str()).collect();
    assert_eq!(
        msgs,
        [
            "nodes.dut.transports.console.baudrate: unknown key `baudrate` is ignored",
            "resources.r.driver.colour: unknown key `colour` is ignored",
        ]
    );
    assert_eq!((warnings[0].line, warnings[0].col), (6, 63));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0]
            .message
            .starts_with("defaults.timeouts.within_ms: 99999999999 ms")
    );
}

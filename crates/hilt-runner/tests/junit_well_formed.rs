//! The JUnit export is well-formed XML 1.0 whatever the names and messages hold, checked
//! by reading it back with quick-xml strictly (end names, attributes, references, the
//! characters XML allows, one root), independently of hilt's own importer. The values a
//! JUnit consumer reads back are the ones hilt wrote, with only the characters XML 1.0
//! cannot carry replaced by U+FFFD.

use hilt_runner::report::junit_xml;
use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};
use serde_json::{Value, json};

/// Whether XML 1.0 allows `c` in a document (production `Char`).
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// One element as a consumer sees it: name, attributes (normalised) and direct text.
#[derive(Debug, Default)]
struct Element {
    name: String,
    attrs: Vec<(String, String)>,
    text: String,
}

impl Element {
    fn attr(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

fn element(e: &BytesStart<'_>) -> Element {
    let mut attrs = Vec::new();
    for a in e.attributes() {
        let a = a.unwrap_or_else(|err| panic!("bad attribute: {err}"));
        let key = a.key.as_ref().to_string();
        let value = a
            .normalized_value(XmlVersion::Implicit1_0)
            .unwrap_or_else(|err| panic!("attribute {key}: {err}"))
            .into_owned();
        assert!(value.chars().all(xml_char), "{key}={value:?}");
        attrs.push((key, value));
    }
    Element {
        name: e.name().as_ref().to_string(),
        attrs,
        text: String::new(),
    }
}

/// Reads `xml` strictly; panics on anything a conforming XML 1.0 parser would reject.
/// Returns every element in document order.
fn read_strict(xml: &str) -> Vec<Element> {
    assert!(
        xml.chars().all(xml_char),
        "a character XML 1.0 forbids:\n{xml}"
    );
    let mut reader = Reader::from_str(xml);
    reader.config_mut().check_end_names = true;
    reader.config_mut().check_comments = true;
    let mut out: Vec<Element> = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    let mut roots = 0;
    loop {
        let event = reader.read_event().unwrap_or_else(|e| {
            panic!("not well-formed at {}: {e}\n{xml}", reader.error_position())
        });
        match event {
            Event::Start(e) => {
                roots += usize::from(open.is_empty());
                open.push(out.len());
                out.push(element(&e));
            }
            Event::Empty(e) => {
                roots += usize::from(open.is_empty());
                out.push(element(&e));
            }
            Event::End(_) => {
                open.pop();
            }
            Event::Text(t) => {
                let text = t.xml10_content();
                match open.last() {
                    Some(&i) => out[i].text.push_str(&text),
                    None => assert!(text.trim().is_empty(), "text outside the root: {text:?}"),
                }
            }
            Event::GeneralRef(r) => {
                let c = if r.is_char_ref() {
                    r.resolve_char_ref()
                        .ok()
                        .flatten()
                        .expect("a valid character reference")
                } else {
                    match &*r {
                        "lt" => '<',
                        "gt" => '>',
                        "amp" => '&',
                        "apos" => '\'',
                        "quot" => '"',
                        other => panic!("undefined entity &{other};"),
                    }
                };
                assert!(xml_char(c), "reference to a forbidden character {c:?}");
                let &i = open.last().expect("a reference outside the root");
                out[i].text.push(c);
            }
            Event::CData(_) | Event::DocType(_) | Event::PI(_) => {
                panic!("unexpected {event:?} in hilt's JUnit")
            }
            Event::Decl(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    assert!(open.is_empty(), "unclosed elements");
    assert_eq!(roots, 1, "one root element");
    out
}

/// What a consumer reads for a string hilt wrote: the same, except characters XML 1.0
/// cannot carry, which become U+FFFD.
fn sanitised(s: &str) -> String {
    s.chars()
        .map(|c| if xml_char(c) { c } else { '\u{FFFD}' })
        .collect()
}

/// Names and messages an awkward firmware, suite author or attacker could produce.
fn hostile() -> Vec<String> {
    [
        "a<b>&c\"d'e",
        "]]> <![CDATA[x]]> <!-- c --> <?pi x?> <!DOCTYPE x [<!ENTITY e \"boom\">]> &e;",
        "&amp; &#0; &#x1; &lt;&#60;",
        "tab\there, cr\rhere, crlf\r\nhere, lf\nhere",
        "nul\u{0} bel\u{7} esc\u{1b}[31m vt\u{b} ff\u{c} del\u{7f} c1\u{85}\u{9b}",
        "non-characters \u{FFFE}\u{FFFF} and \u{FFFD}",
        "line separators \u{2028}\u{2029} bom \u{FEFF}",
        "🦀 ελληνικά 中文 \u{10FFFF}",
        "  leading and trailing spaces  ",
        "",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("long {}", "x<&\"".repeat(5_000))])
    .collect()
}

fn results_with(name: &str, message: &str) -> Value {
    json!({
        "suite": format!("suite {name}"), "status": "error", "bench": name,
        "run_id": message, "duration_s": 1.5, "started_at": name,
        "tests": [
            {"name": name, "test_case_id": name, "requirement_ids": [name, message],
             "risk_ids": [], "tags": [name], "passed": true, "duration_s": 0.5},
            {"name": format!("{name} failing"), "passed": false, "duration_s": 1.0,
             "failure": {"category": name, "source": "firmware", "title": message,
                         "message": message, "explanation": name,
                         "suggestions": [message]}},
            {"name": format!("{name} skipped"), "status": "skipped"}
        ],
        "evidence": {"traceability": {"tests": [
            {"name": name, "status": "passed"},
            {"name": format!("{name} failing"), "status": "failed"},
            {"name": format!("{name} never ran"), "status": "not_run"}
        ]}},
        "error": message,
        "failure": {"category": "FLASH_FAILED", "title": name, "message": message}
    })
}

#[test]
fn hostile_names_and_messages_give_well_formed_junit_that_reads_back_unchanged() {
    let strings = hostile();
    for name in &strings {
        for message in &strings {
            let xml = junit_xml(&results_with(name, message));
            let elements = read_strict(&xml);
            let cases: Vec<&Element> = elements.iter().filter(|e| e.name == "testcase").collect();
            assert_eq!(cases.len(), 5, "{xml}");
            assert_eq!(cases[0].attr("name"), Some(sanitised(name).as_str()));
            assert_eq!(
                cases[1].attr("name"),
                Some(sanitised(&format!("{name} failing")).as_str())
            );
            let failure = elements
                .iter()
                .find(|e| e.name == "failure")
                .expect("a <failure>");
            if !message.is_empty() {
                assert_eq!(failure.attr("message"), Some(sanitised(message).as_str()));
                assert!(
                    failure.text.starts_with(&sanitised(message)),
                    "{:?}",
                    failure.text
                );
            }
            let property = |key: &str| {
                elements
                    .iter()
                    .find(|e| e.name == "property" && e.attr("name") == Some(key))
                    .and_then(|e| e.attr("value"))
            };
            if !name.is_empty() {
                assert_eq!(failure.attr("type"), Some(sanitised(name).as_str()));
                assert_eq!(property("test_case_id"), Some(sanitised(name).as_str()));
                assert_eq!(property("bench"), Some(sanitised(name).as_str()));
            }
        }
    }
}

//! Reading JUnit XML and CTRF JSON reports written by external test tools
//! (`run_external`, run-results spec §6.3 and §11).
//!
//! Both parsers are total: any input gives either tests or an [`ImportError`], never a
//! panic. JUnit documents with a DTD (`<!DOCTYPE …>`, which is where entity declarations
//! live) are refused outright; entity references other than XML's five predefined ones
//! and character references are errors, so nothing is ever expanded from a declaration.

use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{split_list, string_list, text};

/// One test read from an external report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExternalTest {
    pub name: String,
    pub classname: Option<String>,
    /// `passed`, `failed`, `error` or `skipped`.
    pub status: String,
    pub duration_s: Option<f64>,
    pub failure_message: Option<String>,
    pub failure_type: Option<String>,
    pub skip_message: Option<String>,
    pub requirement_ids: Vec<String>,
    pub test_case_id: Option<String>,
}

impl ExternalTest {
    fn new(name: String) -> ExternalTest {
        ExternalTest {
            name,
            classname: None,
            status: "passed".to_owned(),
            duration_s: None,
            failure_message: None,
            failure_type: None,
            skip_message: None,
            requirement_ids: Vec::new(),
            test_case_id: None,
        }
    }
}

/// Why an external report could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ImportError {
    #[error(
        "junit report contains a dtd or entity declaration (<!DOCTYPE …> / <!ENTITY …>); these are not allowed"
    )]
    DtdForbidden,
    #[error("junit report is not well-formed xml (at byte {position}): {message}")]
    MalformedXml { position: u64, message: String },
    #[error("junit report has no root element")]
    NoRootElement,
    #[error("ctrf report is not valid json: {0}")]
    MalformedJson(String),
    #[error("ctrf report is invalid: {0}")]
    InvalidCtrf(String),
}

fn malformed(position: u64, message: impl Into<String>) -> ImportError {
    ImportError::MalformedXml {
        position,
        message: message.into(),
    }
}

// ---------------------------------------------------------------------------------------
// JUnit
// ---------------------------------------------------------------------------------------

/// What a `failure` / `error` / `skipped` child says; the worst one wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Verdict {
    Skipped,
    Failed,
    Error,
}

impl Verdict {
    fn from_local_name(name: &str) -> Option<Verdict> {
        match name {
            "failure" => Some(Verdict::Failed),
            "error" => Some(Verdict::Error),
            "skipped" => Some(Verdict::Skipped),
            _ => None,
        }
    }
}

/// A `testcase` element being read.
struct OpenCase {
    /// Index into the output list.
    index: usize,
    /// Element depth of the `testcase` element (stack length before it was pushed).
    depth: usize,
    verdict: Option<(Verdict, Option<String>, Option<String>, String)>, // kind, message, type, text
}

/// Where character data is being collected.
enum Capture {
    /// Text of a verdict child (`failure`, …) of the innermost open test case.
    Verdict { depth: usize },
    /// Text of a `property` element without a `value` attribute.
    Property {
        depth: usize,
        name: String,
        value: String,
    },
}

/// Reads every `testcase` element of a JUnit XML document, wherever it is nested and
/// whatever namespace it is in, in document order.
pub fn parse_junit(xml: &str) -> Result<Vec<ExternalTest>, ImportError> {
    let mut reader = Reader::from_str(xml);
    // Keep end-name checking (the default) so mismatched tags are errors.
    reader.config_mut().check_end_names = true;

    let mut out: Vec<ExternalTest> = Vec::new();
    let mut stack: Vec<String> = Vec::new();
    let mut cases: Vec<OpenCase> = Vec::new();
    let mut capture: Option<Capture> = None;
    let mut seen_root = false;

    loop {
        let position = reader.buffer_position();
        let event = match reader.read_event() {
            Ok(event) => event,
            Err(e) => {
                let at = reader.error_position();
                // An entity declaration outside a DTD is a syntax error to the parser;
                // name it for what it is.
                let rest = usize::try_from(at).ok().and_then(|at| xml.get(at..));
                if rest.is_some_and(|r| starts_with_ignore_case(r, "<!ENTITY")) {
                    return Err(ImportError::DtdForbidden);
                }
                return Err(malformed(at, e.to_string()));
            }
        };
        match event {
            Event::DocType(_) => return Err(ImportError::DtdForbidden),
            Event::Start(_) | Event::Empty(_) if stack.is_empty() && seen_root => {
                return Err(malformed(position, "more than one root element"));
            }
            Event::Start(e) => {
                seen_root = true;
                let name = local_name(&e);
                open_element(
                    &e,
                    &name,
                    false,
                    position,
                    &stack,
                    &mut out,
                    &mut cases,
                    &mut capture,
                )?;
                stack.push(name);
            }
            Event::Empty(e) => {
                seen_root = true;
                let name = local_name(&e);
                open_element(
                    &e,
                    &name,
                    true,
                    position,
                    &stack,
                    &mut out,
                    &mut cases,
                    &mut capture,
                )?;
            }
            Event::End(_) => {
                // check_end_names guarantees this matches the innermost open element.
                stack.pop();
                let depth = stack.len();
                match &capture {
                    Some(Capture::Verdict { depth: d }) if *d == depth => capture = None,
                    Some(Capture::Property { depth: d, .. }) if *d == depth => {
                        if let (Some(Capture::Property { name, value, .. }), Some(case)) =
                            (capture.take(), cases.last())
                        {
                            apply_property(&mut out[case.index], &name, &value);
                        }
                    }
                    _ => {}
                }
                if cases.last().is_some_and(|c| c.depth == depth) {
                    let case = cases.pop().expect("checked above");
                    finish_case(&mut out[case.index], case.verdict);
                }
            }
            Event::Text(t) => {
                let content = t.xml10_content();
                if stack.is_empty() {
                    if !content.trim().is_empty() {
                        return Err(malformed(position, "text outside the root element"));
                    }
                } else {
                    collect(&mut capture, &mut cases, &content);
                }
            }
            Event::CData(t) => {
                if stack.is_empty() {
                    return Err(malformed(position, "cdata outside the root element"));
                }
                collect(&mut capture, &mut cases, &t.xml10_content());
            }
            Event::GeneralRef(r) => {
                if stack.is_empty() {
                    return Err(malformed(position, "reference outside the root element"));
                }
                let c = resolve_reference(&r, position)?;
                collect(&mut capture, &mut cases, c.encode_utf8(&mut [0; 4]));
            }
            Event::Eof => break,
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
        }
    }

    if let Some(open) = stack.last() {
        return Err(malformed(
            reader.buffer_position(),
            format!("unexpected end of document: <{open}> is not closed"),
        ));
    }
    if !seen_root {
        return Err(ImportError::NoRootElement);
    }
    Ok(out)
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.as_bytes()
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes()))
}

fn local_name(e: &BytesStart<'_>) -> String {
    e.local_name().into_inner().to_owned()
}

/// Attributes of an element by local name, with entity and character references resolved.
fn attributes(e: &BytesStart<'_>, position: u64) -> Result<Vec<(String, String)>, ImportError> {
    let mut out = Vec::new();
    for attr in e.attributes() {
        let attr = attr.map_err(|err| malformed(position, err.to_string()))?;
        let key = attr.key.local_name().into_inner().to_owned();
        let value = attr
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|err| malformed(position, format!("attribute {key}: {err}")))?;
        out.push((key, value.into_owned()));
    }
    Ok(out)
}

fn attr<'a>(attrs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

#[allow(clippy::too_many_arguments)]
fn open_element(
    e: &BytesStart<'_>,
    name: &str,
    empty: bool,
    position: u64,
    stack: &[String],
    out: &mut Vec<ExternalTest>,
    cases: &mut Vec<OpenCase>,
    capture: &mut Option<Capture>,
) -> Result<(), ImportError> {
    // Attributes are checked on every element so a broken one anywhere is reported.
    let attrs = attributes(e, position)?;
    let depth = stack.len();

    if name == "testcase" {
        let mut test = ExternalTest::new(attr(&attrs, "name").unwrap_or_default().to_owned());
        test.classname = attr(&attrs, "classname")
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        test.duration_s = attr(&attrs, "time").and_then(parse_seconds);
        out.push(test);
        let case = OpenCase {
            index: out.len() - 1,
            depth,
            verdict: None,
        };
        if empty {
            finish_case(&mut out[case.index], None);
        } else {
            cases.push(case);
        }
        return Ok(());
    }

    let Some(case) = cases.last_mut() else {
        return Ok(());
    };

    if let Some(kind) = Verdict::from_local_name(name) {
        // Only direct children of the test case count.
        if depth != case.depth + 1 {
            return Ok(());
        }
        let message = attr(&attrs, "message").map(str::to_owned);
        let kind_type = attr(&attrs, "type").map(str::to_owned);
        let replace = case.verdict.as_ref().is_none_or(|(k, ..)| kind > *k);
        if replace {
            case.verdict = Some((kind, message, kind_type, String::new()));
            if !empty {
                *capture = Some(Capture::Verdict { depth });
            }
        }
        return Ok(());
    }

    if name == "property" && stack.last().is_some_and(|p| p == "properties") {
        let Some(prop_name) = attr(&attrs, "name").map(str::to_owned) else {
            return Ok(());
        };
        match attr(&attrs, "value") {
            Some(value) => apply_property(&mut out[case.index], &prop_name, value),
            None if !empty => {
                *capture = Some(Capture::Property {
                    depth,
                    name: prop_name,
                    value: String::new(),
                })
            }
            None => {}
        }
    }
    Ok(())
}

fn collect(capture: &mut Option<Capture>, cases: &mut [OpenCase], s: &str) {
    match capture {
        Some(Capture::Verdict { .. }) => {
            if let Some((.., text)) = cases.last_mut().and_then(|c| c.verdict.as_mut()) {
                text.push_str(s);
            }
        }
        Some(Capture::Property { value, .. }) => value.push_str(s),
        None => {}
    }
}

fn apply_property(test: &mut ExternalTest, name: &str, value: &str) {
    match name {
        "requirement_ids" => {
            for id in split_list(value) {
                if !test.requirement_ids.contains(&id) {
                    test.requirement_ids.push(id);
                }
            }
        }
        "test_case_id" => {
            let id = value.trim();
            if !id.is_empty() && test.test_case_id.is_none() {
                test.test_case_id = Some(id.to_owned());
            }
        }
        _ => {}
    }
}

fn finish_case(
    test: &mut ExternalTest,
    verdict: Option<(Verdict, Option<String>, Option<String>, String)>,
) {
    let Some((kind, message, kind_type, body)) = verdict else {
        test.status = "passed".to_owned();
        return;
    };
    let message = message.filter(|m| !m.trim().is_empty());
    let body = body.trim();
    let body = (!body.is_empty()).then(|| body.to_owned());
    match kind {
        Verdict::Skipped => {
            test.status = "skipped".to_owned();
            test.skip_message = message.or(body);
        }
        Verdict::Failed | Verdict::Error => {
            test.status = if kind == Verdict::Failed {
                "failed"
            } else {
                "error"
            }
            .to_owned();
            test.failure_type = kind_type.filter(|t| !t.trim().is_empty());
            test.failure_message = match (message, body) {
                (Some(m), Some(b)) if b != m => Some(format!("{m}\n{b}")),
                (Some(m), _) => Some(m),
                (None, b) => b,
            };
        }
    }
}

fn resolve_reference(
    r: &quick_xml::events::BytesRef<'_>,
    position: u64,
) -> Result<char, ImportError> {
    if r.is_char_ref() {
        return match r.resolve_char_ref() {
            Ok(Some(c)) => Ok(c),
            _ => Err(malformed(
                position,
                format!("invalid character reference &{};", &**r),
            )),
        };
    }
    match &**r {
        "lt" => Ok('<'),
        "gt" => Ok('>'),
        "amp" => Ok('&'),
        "apos" => Ok('\''),
        "quot" => Ok('"'),
        other => Err(malformed(
            position,
            format!("undefined entity &{other}; (custom entities are not allowed)"),
        )),
    }
}

/// A JUnit `time` attribute: seconds, finite and non-negative.
fn parse_seconds(s: &str) -> Option<f64> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|t| t.is_finite() && *t >= 0.0)
}

// ---------------------------------------------------------------------------------------
// CTRF
// ---------------------------------------------------------------------------------------

/// Maps a CTRF (or tool-specific) test status to `passed`, `failed`, `skipped` or
/// `error`: passed/pass/done/success → passed; skipped/skip → skipped; failed/fail →
/// failed; everything else (error, timeout, infra, broken, interrupted, cancelled,
/// unknown, other, pending, …) → error. Case and surrounding blanks are ignored.
pub fn map_ctrf_status(raw: &str) -> &'static str {
    match raw.trim().to_ascii_lowercase().as_str() {
        "passed" | "pass" | "done" | "success" => "passed",
        "skipped" | "skip" => "skipped",
        "failed" | "fail" => "failed",
        _ => "error",
    }
}

/// Reads the tests of a CTRF document: `results.tests[]`, or a top-level `tests[]`.
pub fn parse_ctrf(json: &str) -> Result<Vec<ExternalTest>, ImportError> {
    let doc: Value =
        serde_json::from_str(json).map_err(|e| ImportError::MalformedJson(e.to_string()))?;
    let invalid = |m: &str| ImportError::InvalidCtrf(m.to_owned());
    let top = doc
        .as_object()
        .ok_or_else(|| invalid("the top level is not a json object"))?;
    let tests = match top.get("results") {
        Some(Value::Object(results)) if results.contains_key("tests") => results.get("tests"),
        Some(Value::Object(_)) | None => top.get("tests"),
        Some(_) => return Err(invalid("\"results\" is not an object")),
    };
    let tests = tests
        .ok_or_else(|| invalid("no \"results.tests\" array"))?
        .as_array()
        .ok_or_else(|| invalid("\"tests\" is not an array"))?;

    tests
        .iter()
        .enumerate()
        .map(|(i, test)| {
            if test.is_object() {
                Ok(ctrf_test(test))
            } else {
                Err(ImportError::InvalidCtrf(format!(
                    "test #{i} is not an object"
                )))
            }
        })
        .collect()
}

fn ctrf_test(test: &Value) -> ExternalTest {
    let extra = test.get("extra").filter(|e| e.is_object());
    let raw_status = text(test.get("status")).unwrap_or_default();
    let status = map_ctrf_status(&raw_status);
    let nonempty = |v: Option<String>| v.filter(|s| !s.trim().is_empty());

    let mut t = ExternalTest::new(text(test.get("name")).unwrap_or_default());
    t.status = status.to_owned();
    t.classname = match test.get("suite") {
        Some(Value::Array(parts)) => {
            let parts: Vec<String> = parts.iter().filter_map(|p| text(Some(p))).collect();
            (!parts.is_empty()).then(|| parts.join(" > "))
        }
        other => nonempty(text(other)),
    };
    t.duration_s = match test.get("duration") {
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        other => other.and_then(Value::as_f64),
    }
    .filter(|ms| ms.is_finite() && *ms >= 0.0)
    .map(|ms| ms / 1000.0);

    let message = nonempty(text(test.get("message")));
    match status {
        "failed" | "error" => {
            let trace = nonempty(text(test.get("trace")));
            t.failure_message = match (message, trace) {
                (Some(m), Some(tr)) => Some(format!("{m}\n{tr}")),
                (m, tr) => m.or(tr),
            };
            let normalised = raw_status.trim().to_ascii_lowercase();
            t.failure_type = nonempty(text(extra.and_then(|e| e.get("category"))))
                .or_else(|| (status == "error" && normalised != "error").then_some(normalised))
                .filter(|s| !s.is_empty());
        }
        "skipped" => t.skip_message = message,
        _ => {}
    }
    if let Some(extra) = extra {
        t.requirement_ids = string_list(extra.get("requirement_ids"));
        t.requirement_ids.dedup();
        t.test_case_id = nonempty(text(extra.get("test_case_id"))).map(|s| s.trim().to_owned());
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_suites_and_namespaces() {
        let xml = r#"<?xml version="1.0"?>
<!-- produced by a tool -->
<j:testsuites xmlns:j="urn:junit" xmlns="urn:default">
  <j:testsuite name="outer">
    <properties><property name="requirement_ids" value="SUITE-LEVEL"/></properties>
    <testsuite name="inner">
      <j:testcase name="a" classname="pkg.A" time="0.5">
        <j:properties>
          <j:property name="requirement_ids" value="REQ-1, REQ-2,,"/>
          <property name="test_case_id">TC-A</property>
        </j:properties>
      </j:testcase>
      <testcase name="b" time="1,5"><failure message="boom" type="AssertionError">trace &amp; more</failure></testcase>
      <testcase name="c"><error message="crash"/><failure message="ignored"/></testcase>
      <testcase name="d"><skipped><![CDATA[not <today>]]></skipped></testcase>
      <testcase name="e"/>
    </testsuite>
  </j:testsuite>
</j:testsuites>"#;
        let tests = parse_junit(xml).unwrap();
        let names: Vec<&str> = tests.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c", "d", "e"]);
        let a = &tests[0];
        assert_eq!(a.status, "passed");
        assert_eq!(a.classname.as_deref(), Some("pkg.A"));
        assert_eq!(a.duration_s, Some(0.5));
        assert_eq!(a.requirement_ids, ["REQ-1", "REQ-2"]);
        assert_eq!(a.test_case_id.as_deref(), Some("TC-A"));
        let b = &tests[1];
        assert_eq!(b.status, "failed");
        assert_eq!(b.duration_s, None);
        assert_eq!(b.failure_type.as_deref(), Some("AssertionError"));
        assert_eq!(b.failure_message.as_deref(), Some("boom\ntrace & more"));
        assert!(b.requirement_ids.is_empty());
        assert_eq!(tests[2].status, "error");
        assert_eq!(tests[2].failure_message.as_deref(), Some("crash"));
        assert_eq!(tests[3].status, "skipped");
        assert_eq!(tests[3].skip_message.as_deref(), Some("not <today>"));
        assert_eq!(tests[4].status, "passed");
    }

    #[test]
    fn dtd_and_entities_are_refused() {
        let doctype = r#"<?xml version="1.0"?>
<!DOCTYPE testsuites [<!ENTITY x "expanded">]>
<testsuites><testcase name="&x;"/></testsuites>"#;
        assert_eq!(parse_junit(doctype), Err(ImportError::DtdForbidden));
        let lower = "<!doctype testsuites><testsuites/>";
        assert_eq!(parse_junit(lower), Err(ImportError::DtdForbidden));
        let bare_entity = r#"<testsuites><!ENTITY x "y"><testcase name="a"/></testsuites>"#;
        assert_eq!(parse_junit(bare_entity), Err(ImportError::DtdForbidden));
        let undefined = r#"<testsuites><testcase name="&x;"/></testsuites>"#;
        let err = parse_junit(undefined).unwrap_err().to_string();
        assert!(err.contains("not well-formed"), "{err}");
        let undefined_text =
            r#"<testsuites><testcase name="a"><failure>&x;</failure></testcase></testsuites>"#;
        let err = parse_junit(undefined_text).unwrap_err().to_string();
        assert!(err.contains("undefined entity &x;"), "{err}");
        // The same words inside character data are just text.
        let cdata = r#"<testsuites><testcase name="a"><system-out><![CDATA[<!DOCTYPE html>]]></system-out></testcase></testsuites>"#;
        assert_eq!(parse_junit(cdata).unwrap().len(), 1);
    }

    #[test]
    fn malformed_xml_is_an_error() {
        for bad in [
            "",
            "   ",
            "<testsuites>",
            "<testsuites><testcase name='a'></testsuites>",
            "<a/><b/>",
            "text<a/>",
            "<a x='1' x='2'/>",
            "<a x=1/>",
            "<a>&#0;</a>",
            "<a",
        ] {
            let err = parse_junit(bad).expect_err(bad);
            let text = err.to_string();
            assert!(text.starts_with("junit report"), "{text}");
        }
        assert_eq!(parse_junit("<testsuites/>"), Ok(vec![]));
    }

    #[test]
    fn ctrf_status_table() {
        for (raw, want) in [
            ("passed", "passed"),
            ("pass", "passed"),
            ("done", "passed"),
            ("success", "passed"),
            ("PASSED", "passed"),
            ("skipped", "skipped"),
            ("skip", "skipped"),
            ("failed", "failed"),
            ("fail", "failed"),
            ("error", "error"),
            ("timeout", "error"),
            ("infra", "error"),
            ("broken", "error"),
            ("interrupted", "error"),
            ("cancelled", "error"),
            ("unknown", "error"),
            ("other", "error"),
            ("pending", "error"),
            ("", "error"),
            ("weird", "error"),
        ] {
            assert_eq!(map_ctrf_status(raw), want, "{raw}");
        }
    }

    #[test]
    fn ctrf_fields() {
        let json = r#"{"results": {"tool": {"name": "x"}, "tests": [
            {"name": "a", "status": "passed", "duration": 1500, "suite": ["top", "sub"],
             "extra": {"requirement_ids": ["R1", "R2"], "test_case_id": "TC-1"}},
            {"name": "b", "status": "fail", "duration": 2, "message": "bad", "trace": "at x",
             "suite": "s", "extra": {"requirement_ids": "R3, R4", "category": "UART_FAILED"}},
            {"name": "c", "status": "timeout"},
            {"name": "d", "status": "skipped", "message": "later"},
            {"name": "e"}
        ]}}"#;
        let tests = parse_ctrf(json).unwrap();
        assert_eq!(tests[0].status, "passed");
        assert_eq!(tests[0].duration_s, Some(1.5));
        assert_eq!(tests[0].classname.as_deref(), Some("top > sub"));
        assert_eq!(tests[0].requirement_ids, ["R1", "R2"]);
        assert_eq!(tests[0].test_case_id.as_deref(), Some("TC-1"));
        assert_eq!(tests[0].failure_message, None);
        assert_eq!(tests[1].status, "failed");
        assert_eq!(tests[1].failure_message.as_deref(), Some("bad\nat x"));
        assert_eq!(tests[1].failure_type.as_deref(), Some("UART_FAILED"));
        assert_eq!(tests[1].requirement_ids, ["R3", "R4"]);
        assert_eq!(tests[1].classname.as_deref(), Some("s"));
        assert_eq!(tests[2].status, "error");
        assert_eq!(tests[2].failure_type.as_deref(), Some("timeout"));
        assert_eq!(tests[3].skip_message.as_deref(), Some("later"));
        assert_eq!(tests[4].status, "error");

        let top_level = parse_ctrf(r#"{"tests": [{"name": "x", "status": "pass"}]}"#).unwrap();
        assert_eq!(top_level[0].status, "passed");
    }

    #[test]
    fn ctrf_errors() {
        for (bad, needle) in [
            ("", "not valid json"),
            ("{", "not valid json"),
            ("[]", "top level is not a json object"),
            ("{}", "no \"results.tests\" array"),
            (r#"{"results": 3}"#, "\"results\" is not an object"),
            (r#"{"results": {"tests": {}}}"#, "\"tests\" is not an array"),
            (r#"{"results": {"tests": [1]}}"#, "test #0 is not an object"),
        ] {
            let err = parse_ctrf(bad).expect_err(bad).to_string();
            assert!(err.contains(needle), "{bad}: {err}");
            assert!(err.starts_with("ctrf report"), "{err}");
        }
        // serde_json's recursion limit turns deep nesting into an error, not a stack overflow.
        let deep = "[".repeat(100_000);
        assert!(parse_ctrf(&deep).is_err());
    }

    #[test]
    fn deep_xml_does_not_overflow() {
        let deep = format!("{}{}", "<a>".repeat(50_000), "</a>".repeat(50_000));
        assert_eq!(parse_junit(&deep), Ok(vec![]));
    }
}

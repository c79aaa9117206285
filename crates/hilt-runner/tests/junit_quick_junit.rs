//! Why hilt's JUnit writer is hand-written instead of `quick-junit` (ARCHITECTURE.md,
//! "JUnit export"): the inputs below are ones hilt must carry (UART text with tabs and
//! carriage returns, multi-line test names and failure titles, firmware bytes that are
//! not XML characters), run through the `quick-junit` version in Cargo.lock and through
//! hilt's writer. The first test pins what quick-junit does today; when a new version
//! keeps these inputs, it fails, and adopting quick-junit should be looked at again.

use hilt_runner::report::{junit_xml, parse_junit};
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite, XmlString};
use quick_xml::events::Event;
use quick_xml::{Reader, XmlVersion};
use serde_json::json;

const NAME: &str = "multi\nline\r\nname\twith tab";
const TITLE: &str = "title with \"quotes\" and\nnewline";
const BODY: &str = "rx:\tOK\r\nnext line \u{FFFF}\u{FFFE} end";

/// The `key` attribute of every `element`, as a conforming parser reads it.
fn attributes(xml: &str, element: &str, key: &str) -> Vec<String> {
    let mut reader = Reader::from_str(xml);
    let mut out = Vec::new();
    loop {
        match reader.read_event().unwrap() {
            Event::Start(e) | Event::Empty(e) if e.name().as_ref() == element => {
                for a in e.attributes().flatten() {
                    if a.key.as_ref() == key {
                        let v = a.normalized_value(XmlVersion::Implicit1_0).unwrap();
                        out.push(v.into_owned());
                    }
                }
            }
            Event::Eof => return out,
            _ => {}
        }
    }
}

fn quick_junit_report() -> String {
    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
    status.set_message(TITLE).set_description(BODY);
    let mut case = TestCase::new(NAME, status);
    case.set_classname("suite");
    let mut suite = TestSuite::new("suite");
    suite.add_test_case(case);
    let mut report = Report::new("suite");
    report.add_test_suite(suite);
    report.to_string().unwrap()
}

#[test]
fn quick_junit_still_loses_what_hilt_keeps() {
    // Every string goes through `XmlString::new`, which deletes tabs and carriage returns
    // (and ANSI escapes): nothing a caller escapes first survives it either.
    assert_eq!(
        XmlString::new(NAME).as_str(),
        "multi\nline\nnamewith tab",
        "quick-junit now keeps tabs and CRs: look at adopting it again"
    );
    let xml = quick_junit_report();
    // Line breaks inside attributes are written raw, so a parser reads them as spaces.
    assert!(xml.contains("name=\"multi\nline\nnamewith tab\""), "{xml}");
    assert_eq!(
        attributes(&xml, "testcase", "name"),
        ["multi line namewith tab"]
    );
    assert_eq!(
        attributes(&xml, "failure", "message"),
        ["title with \"quotes\" and newline"]
    );
    // U+FFFF and U+FFFE are written as they are: not XML 1.0 characters, so a
    // conforming parser (Jenkins', GitLab's) rejects the whole report.
    assert!(
        xml.contains("next line \u{FFFF}\u{FFFE} end"),
        "quick-junit now replaces non-characters: look at adopting it again\n{xml}"
    );
}

#[test]
fn hilts_writer_keeps_the_same_inputs() {
    let results = json!({
        "suite": "suite", "status": "failed",
        "tests": [{"name": NAME, "passed": false, "duration_s": 1.0,
                   "failure": {"category": "UART_EXPECTATION_FAILED", "title": TITLE,
                               "message": BODY}}]
    });
    let xml = junit_xml(&results);
    assert!(
        !xml.contains('\u{FFFF}') && !xml.contains('\u{FFFE}'),
        "{xml}"
    );
    assert_eq!(attributes(&xml, "testcase", "name"), [NAME]);
    assert_eq!(attributes(&xml, "failure", "message"), [TITLE]);
    let tests = parse_junit(&xml).unwrap();
    assert_eq!(tests[0].name, NAME);
    let message = tests[0].failure_message.as_deref().unwrap();
    assert!(
        message.contains("rx:\tOK\r\nnext line \u{FFFD}\u{FFFD} end"),
        "{message:?}"
    );
}

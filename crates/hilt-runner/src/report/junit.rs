//! results.json → JUnit XML (run-results spec §11).
//!
//! ```text
//! <testsuites name=suite tests failures errors skipped time>
//!   <testsuite name=suite tests failures errors skipped time timestamp=started_at>
//!     <properties> bench, run_id, run_mode, status, results_dir </properties>
//!     <testcase name=test.name classname=suite time=duration_s>
//!       <properties> test_case_id, requirement_ids, risk_ids, tags, failure_source </properties>
//!       <failure type=CATEGORY message=TITLE>message, source, explanation, suggestions</failure>
//!     </testcase>
//!     <testcase name="(run error)"> <error type=CATEGORY message=TITLE>…</error> </testcase>
//!   </testsuite>
//! </testsuites>
//! ```
//!
//! Tests the run never reached (listed `not_run` in the evidence's traceability) appear
//! as `<skipped>` test cases. The text is hand-written rather than produced by a writer
//! library so the output is byte-for-byte stable; every attribute and text goes through
//! [`escape_attr`] / [`escape_text`].
//!
//! Not `quick-junit` (checked with 0.8.0): its strings drop tabs and carriage returns
//! from names and failure text, it writes line breaks inside attributes raw so a
//! conforming parser folds a multi-line test name or failure title into one line, and it
//! passes U+FFFE/U+FFFF through (ill-formed XML 1.0). ARCHITECTURE.md ("JUnit export")
//! has the evidence; `tests/junit_quick_junit.rs` pins it, `tests/junit_well_formed.rs`
//! reads this writer's output back strictly for hostile names and messages.

use std::fmt::Write as _;

use serde_json::Value;

use super::{Outcome, RUN_ERROR_TEST_NAME, RunView, TestView};

/// Renders a results.json document as a JUnit XML report. Never fails; the output is
/// well-formed XML 1.0 whatever the strings in the document contain.
pub fn junit_xml(results: &Value) -> String {
    let run = RunView::from_results(results);
    let failures = run.count(Outcome::Failed);
    let skipped = run.count(Outcome::Skipped) + run.count(Outcome::Other);
    let errors = usize::from(run.run_error.is_some());
    let tests = run.tests.len() + errors;
    let time = secs(run.duration_s);
    let suite = escape_attr(&run.suite);

    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let counts = format!(
        "tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{time}\""
    );
    let _ = writeln!(x, "<testsuites name=\"{suite}\" {counts}>");
    let _ = write!(x, "  <testsuite name=\"{suite}\" {counts}");
    if let Some(started) = &run.started_at {
        let _ = write!(x, " timestamp=\"{}\"", escape_attr(started));
    }
    x.push_str(">\n");

    let suite_properties: Vec<(&str, String)> = [
        ("bench", &run.bench),
        ("run_id", &run.run_id),
        ("run_mode", &run.run_mode),
        ("status", &Some(run.status.clone())),
        ("results_dir", &run.results_dir),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.as_ref().filter(|v| !v.is_empty()).map(|v| (k, v.clone())))
    .collect();
    write_properties(&mut x, "    ", &suite_properties);

    for test in &run.tests {
        write_testcase(&mut x, &suite, test);
    }

    if let Some(run_error) = &run.run_error {
        let f = &run_error.failure;
        let _ = writeln!(
            x,
            "    <testcase name=\"{}\" classname=\"{suite}\" time=\"0.000\">",
            escape_attr(RUN_ERROR_TEST_NAME)
        );
        if let Some(source) = &f.source {
            write_properties(&mut x, "      ", &[("failure_source", source.clone())]);
        }
        let _ = writeln!(
            x,
            "      <error type=\"{}\" message=\"{}\">{}</error>",
            escape_attr(run_error.category()),
            escape_attr(&f.title),
            escape_text(&f.body())
        );
        x.push_str("    </testcase>\n");
    }

    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}

fn write_testcase(x: &mut String, suite_attr: &str, test: &TestView) {
    let _ = write!(
        x,
        "    <testcase name=\"{}\" classname=\"{suite_attr}\" time=\"{}\"",
        escape_attr(&test.name),
        secs(test.duration_s)
    );
    let mut properties: Vec<(&str, String)> = Vec::new();
    if let Some(id) = &test.test_case_id {
        properties.push(("test_case_id", id.clone()));
    }
    for (key, list) in [
        ("requirement_ids", &test.requirement_ids),
        ("risk_ids", &test.risk_ids),
        ("tags", &test.tags),
    ] {
        if !list.is_empty() {
            properties.push((key, list.join(",")));
        }
    }
    if let Some(source) = test.failure.as_ref().and_then(|f| f.source.clone()) {
        properties.push(("failure_source", source));
    }

    let child = match test.outcome {
        Outcome::Passed => None,
        Outcome::Failed => test.failure.as_ref().map(|f| {
            format!(
                "<failure type=\"{}\" message=\"{}\">{}</failure>",
                escape_attr(f.category.as_deref().unwrap_or("FAILED")),
                escape_attr(&f.title),
                escape_text(&f.body())
            )
        }),
        Outcome::Skipped => Some(format!(
            "<skipped message=\"{}\"/>",
            escape_attr(test.skip_message.as_deref().unwrap_or("skipped"))
        )),
        Outcome::Other => Some("<skipped message=\"no result recorded\"/>".to_owned()),
    };

    if properties.is_empty() && child.is_none() {
        x.push_str("/>\n");
        return;
    }
    x.push_str(">\n");
    write_properties(x, "      ", &properties);
    if let Some(child) = child {
        let _ = writeln!(x, "      {child}");
    }
    x.push_str("    </testcase>\n");
}

fn write_properties(x: &mut String, indent: &str, properties: &[(&str, String)]) {
    if properties.is_empty() {
        return;
    }
    let _ = writeln!(x, "{indent}<properties>");
    for (name, value) in properties {
        let _ = writeln!(
            x,
            "{indent}  <property name=\"{}\" value=\"{}\"/>",
            escape_attr(name),
            escape_attr(value)
        );
    }
    let _ = writeln!(x, "{indent}</properties>");
}

/// Seconds with 3 decimals, as `duration_s` carries them.
fn secs(s: f64) -> String {
    format!("{s:.3}")
}

/// Whether `c` may appear in an XML 1.0 document (production `Char`).
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Escapes text content. Characters XML 1.0 forbids become U+FFFD; `\r` is written as
/// a character reference so parsers do not fold it into `\n`.
pub fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c if is_xml_char(c) => out.push(c),
            _ => out.push('\u{FFFD}'),
        }
    }
    out
}

/// Escapes a double-quoted attribute value. Tabs and line breaks are written as
/// character references so attribute-value normalisation keeps them.
pub fn escape_attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c if is_xml_char(c) => out.push(c),
            _ => out.push('\u{FFFD}'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn failed_run() -> Value {
        json!({
            "tool": "hilt", "bench": "rig A", "suite": "thermo-smoke", "status": "failed",
            "run_id": null, "run_mode": "local",
            "started_at": "2025-03-04T10:15:00.100000Z", "finished_at": "2025-03-04T10:15:09.900000Z",
            "duration_s": 9.8,
            "tests": [
                {"name": "boots", "test_case_id": "TC-1", "requirement_ids": ["REQ-1", "REQ-2"],
                 "risk_ids": [], "tags": ["smoke"], "passed": true, "duration_s": 4.2,
                 "failure_reason": null, "failure": null},
                {"name": "button wakes board", "test_case_id": null, "requirement_ids": [],
                 "risk_ids": ["RISK-9"], "tags": [], "passed": false, "duration_s": 2.1,
                 "failure_reason": "GPIO edge wait timed out",
                 "failure": {"category": "GPIO_EXPECTATION_FAILED", "source": "firmware",
                             "title": "GPIO expectation failed",
                             "message": "GPIO edge wait timed out on dut.led",
                             "explanation": "The expected GPIO level or edge was not observed.",
                             "suggestions": ["Check chip and line numbers.", "Check active_high and bias."]}}
            ]
        })
    }

    #[test]
    fn renders_the_documented_shape() {
        let xml = junit_xml(&failed_run());
        let expected = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="thermo-smoke" tests="2" failures="1" errors="0" skipped="0" time="9.800">
  <testsuite name="thermo-smoke" tests="2" failures="1" errors="0" skipped="0" time="9.800" timestamp="2025-03-04T10:15:00.100000Z">
    <properties>
      <property name="bench" value="rig A"/>
      <property name="run_mode" value="local"/>
      <property name="status" value="failed"/>
    </properties>
    <testcase name="boots" classname="thermo-smoke" time="4.200">
      <properties>
        <property name="test_case_id" value="TC-1"/>
        <property name="requirement_ids" value="REQ-1,REQ-2"/>
        <property name="tags" value="smoke"/>
      </properties>
    </testcase>
    <testcase name="button wakes board" classname="thermo-smoke" time="2.100">
      <properties>
        <property name="risk_ids" value="RISK-9"/>
        <property name="failure_source" value="firmware"/>
      </properties>
      <failure type="GPIO_EXPECTATION_FAILED" message="GPIO expectation failed">GPIO edge wait timed out on dut.led

source: Firmware
The expected GPIO level or edge was not observed.
suggestions:
- Check chip and line numbers.
- Check active_high and bias.</failure>
    </testcase>
  </testsuite>
</testsuites>
"#;
        assert_eq!(xml, expected);
        // Deterministic.
        assert_eq!(junit_xml(&failed_run()), xml);
    }

    #[test]
    fn run_error_and_cancel_add_an_error_testcase() {
        let results = json!({
            "suite": "s", "status": "error", "duration_s": 1.0,
            "error": "Flashing failed: openocd exited with 1",
            "failure": {"category": "FLASH_FAILED", "source": "bench_infrastructure",
                        "title": "Flashing failed", "message": "openocd exited with 1",
                        "suggestions": ["Open flash.log."]},
            "tests": []
        });
        let xml = junit_xml(&results);
        assert!(
            xml.contains(r#"tests="1" failures="0" errors="1""#),
            "{xml}"
        );
        assert!(xml.contains(r#"<testcase name="(run error)" classname="s" time="0.000">"#));
        assert!(xml.contains(
            r#"<error type="FLASH_FAILED" message="Flashing failed">openocd exited with 1"#
        ));
        assert!(xml.contains("source: Bench infrastructure"));

        let cancelled = json!({"suite": "s", "status": "cancelled", "tests": []});
        let xml = junit_xml(&cancelled);
        assert!(
            xml.contains(r#"<error type="CANCELLED" message="Run cancelled">"#),
            "{xml}"
        );
    }

    #[test]
    fn escaping() {
        assert_eq!(escape_attr("a<&>\"'b"), "a&lt;&amp;&gt;&quot;&apos;b");
        assert_eq!(escape_attr("x\ty\nz\r"), "x&#9;y&#10;z&#13;");
        assert_eq!(escape_text("a<&>\"'b"), "a&lt;&amp;&gt;\"'b");
        assert_eq!(
            escape_text("\u{0}\u{1b}[0m\u{FFFE}ok\n"),
            "\u{FFFD}\u{FFFD}[0m\u{FFFD}ok\n"
        );
        assert_eq!(escape_attr("\u{7}"), "\u{FFFD}");
        assert_eq!(escape_text("🦀"), "🦀");
    }

    #[test]
    fn any_document_renders() {
        for doc in [
            json!(null),
            json!({"tests": [1, {"passed": "?"}]}),
            json!({"status": "error"}),
        ] {
            let xml = junit_xml(&doc);
            assert!(xml.ends_with("</testsuites>\n"));
        }
    }
}

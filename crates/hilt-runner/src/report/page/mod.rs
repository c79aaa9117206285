//! evidence.html: one self-contained page a person opens from the run directory — inline
//! CSS and SVG, no scripts, nothing fetched. It shows the verdict, traceability ids, the
//! failure with its explanation, checks and the transport-log lines around it, every test
//! with its steps and their timings, measurements drawn against their limits, and a link
//! to every file of the run.
//!
//! A pure function of results.json's data, the evidence object and the run directory's
//! files (`events.jsonl` for step timings, the logs for the excerpt), so it renders any run
//! directory; unreadable or missing files only leave their section short.

mod files;
mod plot;
mod timeline;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use hilt_model::run::{Failure, Metric, RunResults, RunStatus, TestResult};
use serde_json::Value;

use timeline::{Outcome, Timeline};

/// HTML-escapes text for element content and attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "\
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1b1b1b;background:#fafafa}\
main{max-width:1100px;margin:0 auto;padding:0 1.2em 2em}\
header.verdict{padding:1em 1.2em;color:#fff}\
header.passed{background:#0a7d32}header.failed{background:#b00020}\
header.error{background:#8a4b00}header.cancelled{background:#555}\
header h1{margin:0 0 .2em;font-size:1.5em}header p{margin:0;opacity:.92}\
section{background:#fff;border:1px solid #ddd;border-radius:6px;margin:1em 0;padding:.6em 1em}\
h2{font-size:1.15em;margin:.3em 0 .6em}\
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #eee;padding:3px 6px;text-align:left;vertical-align:top}\
th{font-weight:600;color:#555}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\
.ok{color:#0a7d32;font-weight:600}.bad{color:#b00020;font-weight:600}.dim{color:#777}\
details{border-top:1px solid #eee;padding:.3em 0}summary{cursor:pointer}\
pre{background:#f3f3f3;padding:.6em;overflow-x:auto;font-size:12px;line-height:1.35}\
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em;margin:0}dt{color:#555}dd{margin:0;word-break:break-all}\
.failure{border-left:5px solid #b00020}.tag{display:inline-block;background:#eef;border-radius:3px;padding:0 .35em;margin-right:.25em;font-size:12px}\
code{font-size:12px}";

/// The whole page for a run (carrying its full evidence object) whose files are in `dir`.
pub fn evidence_html(r: &RunResults, dir: &Path) -> String {
    let tl = timeline::read(dir);
    let mut p = String::with_capacity(16 * 1024);
    let status = r.status.as_str();
    let _ = write!(
        p,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{} — {} on {}</title><style>{STYLE}</style></head><body>",
        status.to_uppercase(),
        esc(&r.suite),
        esc(&r.bench)
    );
    verdict(&mut p, r);
    p.push_str("<main>");
    if let Some(f) = &r.failure {
        failure(&mut p, f, &tl, dir);
    }
    traceability(&mut p, r, &r.evidence);
    tests(&mut p, r, &tl);
    measurements(&mut p, &r.measurements, r);
    artifacts(&mut p, dir);
    let _ = writeln!(
        p,
        "<p class=\"dim\">Written by {} at the end of the run. Self-contained: no scripts, nothing loaded from the network.</p></main></body></html>",
        esc(&r.tool)
    );
    p
}

fn verdict(p: &mut String, r: &RunResults) {
    let word = match r.status {
        RunStatus::Passed => "PASSED",
        RunStatus::Failed => "FAILED",
        RunStatus::Error => "RUN ERROR",
        RunStatus::Cancelled => "CANCELLED",
    };
    let _ = write!(
        p,
        "<header class=\"verdict {}\"><h1>{word} — {} on {}</h1><p>{} passed, {} failed of {} tests · {:.3} s · {} → {}{}</p></header>",
        r.status.as_str(),
        esc(&r.suite),
        esc(&r.bench),
        r.summary.passed,
        r.summary.failed,
        r.summary.total,
        r.duration_s,
        esc(&r.started_at),
        esc(&r.finished_at),
        r.run_id
            .as_deref()
            .map(|id| format!(" · run {}", esc(id)))
            .unwrap_or_default()
    );
}

fn failure(p: &mut String, f: &Failure, tl: &Timeline, dir: &Path) {
    let at = match (&f.failed_step.test_name, f.failed_step.step_index) {
        (Some(t), Some(i)) => format!(
            "at test “{}”, step {i}{}",
            esc(t),
            f.failed_step
                .step_type
                .as_deref()
                .map(|s| format!(" ({})", esc(s)))
                .unwrap_or_default()
        ),
        (Some(t), None) => format!("in test “{}”", esc(t)),
        _ => String::new(),
    };
    let _ = write!(
        p,
        "<section class=\"failure\" id=\"failure\"><h2>{} — likely source: {} <span class=\"dim\">({})</span></h2><p>{at}</p><p><b>{}</b></p><p>{}</p>",
        esc(&f.title),
        esc(f.source.label()),
        esc(f.category.as_str()),
        esc(&f.message),
        esc(&f.explanation)
    );
    if !f.suggestions.is_empty() {
        p.push_str("<p>Check:</p><ul>");
        for s in &f.suggestions {
            let _ = write!(p, "<li>{}</li>", esc(s));
        }
        p.push_str("</ul>");
    }
    if !f.details.is_empty() {
        p.push_str("<dl>");
        for (k, v) in &f.details {
            let _ = write!(p, "<dt>{}</dt><dd>{}</dd>", esc(k), esc(&plain(v)));
        }
        p.push_str("</dl>");
    }
    // The lines the device and the bench exchanged during the failing test.
    let window = f
        .failed_step
        .test_name
        .as_ref()
        .and_then(|t| tl.tests.get(t))
        .map(|t| (t.started, t.finished))
        .unwrap_or((None, None));
    for log in failure_logs(f, dir) {
        let lines = files::excerpt(&dir.join(&log), window.0, window.1);
        if lines.is_empty() {
            continue;
        }
        let _ = write!(
            p,
            "<p>From <a href=\"{}\"><code>{}</code></a> during the failing test (last {} lines at most):</p><pre>{}</pre>",
            files::href(&log),
            esc(&log.to_string_lossy()),
            files::EXCERPT_LINES,
            esc(&lines.join("\n"))
        );
    }
    p.push_str("</section>");
}

/// The logs a failure points at (inside the run directory), else its node's transport logs.
fn failure_logs(f: &Failure, dir: &Path) -> Vec<PathBuf> {
    let named: Vec<PathBuf> = f
        .artifacts
        .values()
        .filter_map(Value::as_str)
        .filter_map(|s| files::inside(dir, Path::new(s)))
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    if !named.is_empty() {
        return named;
    }
    let Some(node) = f.failed_step.node_name.as_deref() else {
        return Vec::new();
    };
    let node_dir = PathBuf::from("logs").join("nodes").join(node);
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir.join(&node_dir))
        .map(|rd| {
            rd.flatten()
                .map(|e| node_dir.join(e.file_name()))
                .filter(|p| p.extension().is_some_and(|e| e == "log"))
                .collect()
        })
        .unwrap_or_default();
    logs.sort();
    logs
}

fn traceability(p: &mut String, r: &RunResults, ev: &Value) {
    p.push_str("<section id=\"traceability\"><h2>Traceability</h2><dl>");
    let tr = &ev["traceability"];
    let mut row = |k: &str, v: String| {
        if !v.is_empty() {
            let _ = write!(p, "<dt>{}</dt><dd>{v}</dd>", esc(k));
        }
    };
    row("suite", esc(&r.suite));
    row("suite version", esc(&plain(&ev["suite"]["version"])));
    row("release", esc(&plain(&ev["suite"]["release_id"])));
    row("requirements", tags(&tr["requirement_ids"]));
    row("risks", tags(&tr["risk_ids"]));
    row("test cases", tags(&tr["test_case_ids"]));
    row("suite sha256", code(&ev["suite"]["sha256"]));
    row("bench", esc(&r.bench));
    row("bench id", esc(&plain(&ev["bench"]["bench_id"])));
    row("bench sha256", code(&ev["bench"]["config_sha256"]));
    row("firmware", esc(&plain(&ev["firmware"]["filename"])));
    row("firmware sha256", code(&ev["firmware"]["sha256"]));
    row("git commit", code(&ev["source"]["git_commit"]));
    row("git branch", esc(&plain(&ev["source"]["git_branch"])));
    row("CI job", esc(&plain(&ev["ci"]["ci_job_url"])));
    row("run mode", esc(&r.run_mode));
    p.push_str("</dl></section>");
}

fn tests(p: &mut String, r: &RunResults, tl: &Timeline) {
    let _ = write!(
        p,
        "<section id=\"tests\"><h2>Tests ({})</h2>",
        r.tests.len()
    );
    for t in &r.tests {
        test(p, t, tl);
    }
    if tl.steps_left_out > 0 || tl.truncated {
        let _ = write!(
            p,
            "<p class=\"dim\">{} more steps are not shown here; events.jsonl has every one.</p>",
            tl.steps_left_out
        );
    }
    p.push_str("</section>");
}

fn test(p: &mut String, t: &TestResult, tl: &Timeline) {
    let (cls, mark) = if t.passed {
        ("ok", "✓")
    } else {
        ("bad", "✗")
    };
    let ids: String = t
        .test_case_id
        .iter()
        .chain(&t.requirement_ids)
        .chain(&t.risk_ids)
        .chain(&t.tags)
        .map(|s| format!("<span class=\"tag\">{}</span>", esc(s)))
        .collect();
    let _ = write!(
        p,
        "<details{}><summary><span class=\"{cls}\">{mark}</span> {} <span class=\"dim\">{:.3} s</span> {ids}</summary>",
        if t.passed { "" } else { " open" },
        esc(&t.name),
        t.duration_s
    );
    if let Some(f) = &t.failure {
        let _ = write!(
            p,
            "<p class=\"bad\">{} ({}): {}</p>",
            esc(&f.title),
            esc(f.source.label()),
            esc(&f.message)
        );
    }
    if let Some(times) = tl.tests.get(&t.name)
        && !times.steps.is_empty()
    {
        p.push_str(
            "<table><tr><th>#</th><th>step</th><th>ms</th><th>result</th><th>reported</th></tr>",
        );
        for s in &times.steps {
            let (cls, word) = match &s.outcome {
                Outcome::Passed => ("ok", "passed".to_string()),
                Outcome::Failed(why) => ("bad", format!("failed: {}", timeline::cut(why, 200))),
                Outcome::Skipped => ("dim", "skipped".to_string()),
                Outcome::Open => ("dim", "not finished".to_string()),
            };
            let _ = write!(
                p,
                "<tr><td class=\"num\">{}</td><td><code>{}</code></td><td class=\"num\">{}</td><td class=\"{cls}\">{}</td><td class=\"dim\">{}</td></tr>",
                s.index,
                esc(&s.kind),
                s.ms.map(|m| format!("{m:.1}")).unwrap_or_default(),
                esc(&word),
                esc(&s.detail)
            );
        }
        p.push_str("</table>");
    }
    if !t.measurements.is_empty() {
        metric_table(p, &t.measurements, !t.passed);
    }
    p.push_str("</details>");
}

fn measurements(p: &mut String, all: &[Metric], r: &RunResults) {
    if all.is_empty() {
        return;
    }
    let _ = write!(
        p,
        "<section id=\"measurements\"><h2>Measurements ({})</h2>",
        all.len()
    );
    // A reading is drawn red when the test that took it failed on a measurement.
    let failed_on = |m: &Metric| {
        r.tests.iter().any(|t| {
            !t.passed
                && t.measurements
                    .iter()
                    .any(|x| x.name == m.name && x.timestamp == m.timestamp)
        })
    };
    p.push_str(
        "<table><tr><th>name</th><th>value</th><th>limits</th><th></th><th>resource</th></tr>",
    );
    for m in all {
        metric_row(p, m, failed_on(m));
    }
    p.push_str("</table></section>");
}

fn metric_table(p: &mut String, ms: &[Metric], failed: bool) {
    p.push_str(
        "<table><tr><th>name</th><th>value</th><th>limits</th><th></th><th>resource</th></tr>",
    );
    for m in ms {
        metric_row(p, m, failed);
    }
    p.push_str("</table>");
}

fn metric_row(p: &mut String, m: &Metric, failed: bool) {
    let _ = write!(
        p,
        "<tr><td>{}</td><td class=\"num\">{} {}</td><td><code>{}</code></td><td>{}</td><td class=\"dim\">{}</td></tr>",
        esc(&m.name),
        plot::fmt_num(m.value),
        esc(m.unit.as_deref().unwrap_or("")),
        esc(m.assertion.as_deref().unwrap_or("")),
        plot::svg(m, failed).unwrap_or_default(),
        esc(m.resource.as_deref().unwrap_or(""))
    );
}

fn artifacts(p: &mut String, dir: &Path) {
    let (found, more) = files::list(dir);
    let mut list: Vec<(PathBuf, Option<u64>)> =
        found.into_iter().map(|(f, n)| (f, Some(n))).collect();
    // Some of the final documents are written after this page: listed all the same.
    for d in crate::run::FINAL_DOCUMENTS {
        if !list.iter().any(|(f, _)| f == Path::new(d)) {
            list.push((PathBuf::from(d), None));
        }
    }
    list.sort();
    let _ = write!(
        p,
        "<section id=\"artifacts\"><h2>Files of this run ({})</h2><table><tr><th>file</th><th>size</th></tr>",
        list.len()
    );
    for (rel, size) in &list {
        let _ = write!(
            p,
            "<tr><td><a href=\"{}\">{}</a></td><td class=\"num\">{}</td></tr>",
            files::href(rel),
            esc(&rel.to_string_lossy()),
            size.map(files::size).unwrap_or_default()
        );
    }
    p.push_str("</table>");
    if more {
        p.push_str(
            "<p class=\"dim\">More files are in the run directory than are listed here.</p>",
        );
    }
    p.push_str("</section>");
}

/// A JSON value as plain text (`null` as nothing).
fn plain(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn code(v: &Value) -> String {
    let s = plain(v);
    if s.is_empty() {
        s
    } else {
        format!("<code>{}</code>", esc(&s))
    }
}

fn tags(v: &Value) -> String {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|x| format!("<span class=\"tag\">{}</span>", esc(&plain(x))))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_attributes_and_content() {
        assert_eq!(
            esc("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}

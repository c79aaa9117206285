//! A measurement drawn against its limits: an inline SVG bar (no scripts, no fonts to
//! fetch), the pass band shaded, the reading marked.

use hilt_model::run::Metric;

use super::esc;

/// The limits a measurement was held to, read back from its `assertion` text
/// (`< 0.015`, `>= 3.2 and <= 3.4`, `== 5 ± 0.1`: what `exec::measure::check` writes).
#[derive(Debug, Default, PartialEq)]
pub struct Limits {
    pub low: Option<f64>,
    pub high: Option<f64>,
}

pub fn limits(assertion: &str) -> Limits {
    let mut l = Limits::default();
    for rule in assertion.split(" and ") {
        let rule = rule.trim();
        let num = |s: &str| s.trim().parse::<f64>().ok();
        if let Some(x) = rule
            .strip_prefix("<=")
            .or(rule.strip_prefix('<'))
            .and_then(num)
        {
            l.high = Some(l.high.map_or(x, |h| h.min(x)));
        } else if let Some(x) = rule
            .strip_prefix(">=")
            .or(rule.strip_prefix('>'))
            .and_then(num)
        {
            l.low = Some(l.low.map_or(x, |v| v.max(x)));
        } else if let Some(rest) = rule.strip_prefix("==") {
            let mut parts = rest.split('±');
            if let (Some(x), Some(t)) = (
                parts.next().and_then(num),
                parts.next().and_then(num).or(Some(0.0)),
            ) {
                l.low = Some(x - t);
                l.high = Some(x + t);
            }
        }
    }
    l
}

const W: f64 = 360.0;
const H: f64 = 34.0;
const PAD: f64 = 10.0;

/// The reading against its limits; `None` when the measurement had no limits.
pub fn svg(m: &Metric, failed: bool) -> Option<String> {
    let l = limits(m.assertion.as_deref()?);
    if l.low.is_none() && l.high.is_none() {
        return None;
    }
    let v = m.value;
    let (lo, hi) = match (l.low, l.high) {
        (Some(a), Some(b)) => (a, b),
        (Some(a), None) => (a, a + (v - a).abs().max(a.abs() * 0.5).max(1e-9)),
        (None, Some(b)) => (b - (b - v).abs().max(b.abs() * 0.5).max(1e-9), b),
        (None, None) => return None,
    };
    // The axis spans the band and the reading, with a margin either side.
    let min = lo.min(v);
    let max = hi.max(v);
    let span = (max - min).max(f64::EPSILON);
    let (min, max) = (min - span * 0.15, max + span * 0.15);
    let x = |val: f64| PAD + (val - min) / (max - min) * (W - 2.0 * PAD);
    let band_from = if l.low.is_some() { x(lo) } else { PAD };
    let band_to = if l.high.is_some() { x(hi) } else { W - PAD };
    let unit = m.unit.as_deref().unwrap_or("");
    let mark = if failed { "#b00020" } else { "#0a7d32" };
    let mut s = format!(
        "<svg class=\"plot\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{name} = {v} {unit} against {rule}\">",
        name = esc(&m.name),
        unit = esc(unit),
        rule = esc(m.assertion.as_deref().unwrap_or("")),
    );
    s.push_str(&format!(
        "<line x1=\"{PAD}\" y1=\"14\" x2=\"{}\" y2=\"14\" stroke=\"#999\"/>",
        W - PAD
    ));
    s.push_str(&format!(
        "<rect x=\"{band_from:.1}\" y=\"8\" width=\"{:.1}\" height=\"12\" fill=\"#cde8d4\"/>",
        (band_to - band_from).max(1.0)
    ));
    for (limit, val) in [(l.low, lo), (l.high, hi)] {
        if limit.is_some() {
            s.push_str(&format!(
                "<line x1=\"{0:.1}\" y1=\"4\" x2=\"{0:.1}\" y2=\"24\" stroke=\"#555\"/><text x=\"{0:.1}\" y=\"33\" font-size=\"9\" text-anchor=\"middle\">{1}</text>",
                x(val),
                fmt_num(val)
            ));
        }
    }
    s.push_str(&format!(
        "<circle cx=\"{:.1}\" cy=\"14\" r=\"5\" fill=\"{mark}\"/></svg>",
        x(v)
    ));
    Some(s)
}

/// A number short enough for an axis label.
pub fn fmt_num(v: f64) -> String {
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-" {
        "0".into()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_read_back_every_rule_the_runner_writes() {
        assert_eq!(
            limits("< 0.015"),
            Limits {
                low: None,
                high: Some(0.015)
            }
        );
        assert_eq!(
            limits(">= 3.2 and <= 3.4"),
            Limits {
                low: Some(3.2),
                high: Some(3.4)
            }
        );
        let l = limits("== 5 ± 0.1");
        assert!((l.low.unwrap() - 4.9).abs() < 1e-9 && (l.high.unwrap() - 5.1).abs() < 1e-9);
        assert_eq!(limits("whatever"), Limits::default());
    }

    #[test]
    fn a_reading_is_drawn_inside_or_outside_its_band() {
        let m = Metric {
            name: "idle_current".into(),
            resource: None,
            value: 0.02,
            unit: Some("A".into()),
            quantity: None,
            timestamp: String::new(),
            backend: None,
            address: None,
            query: None,
            raw_response: None,
            assertion: Some("< 0.015".into()),
        };
        let s = svg(&m, true).unwrap();
        assert!(s.starts_with("<svg") && s.ends_with("</svg>"));
        assert!(s.contains("#b00020") && s.contains("0.015"));
        let none = Metric {
            assertion: None,
            ..m
        };
        assert!(svg(&none, false).is_none());
    }

    #[test]
    fn numbers_are_short() {
        assert_eq!(fmt_num(0.015), "0.015");
        assert_eq!(fmt_num(3.0), "3");
        assert_eq!(fmt_num(0.0), "0");
    }
}

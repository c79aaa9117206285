//! The one output format: a titled table of `case | hilt | baseline | ratio | target | met`.

use std::fmt::Write as _;

pub struct Row {
    pub case: String,
    pub hilt: String,
    pub baseline: String,
    pub ratio: String,
    pub target: String,
    /// `None` when the row has no target or could not be judged.
    pub met: Option<bool>,
}

pub struct Table {
    pub title: String,
    pub baseline_name: String,
    pub rows: Vec<Row>,
    pub notes: Vec<String>,
}

impl Table {
    pub fn new(title: impl Into<String>, baseline_name: impl Into<String>) -> Table {
        Table {
            title: title.into(),
            baseline_name: baseline_name.into(),
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub fn row(
        &mut self,
        case: impl Into<String>,
        hilt: impl Into<String>,
        baseline: impl Into<String>,
        ratio: impl Into<String>,
        target: impl Into<String>,
        met: Option<bool>,
    ) {
        self.rows.push(Row {
            case: case.into(),
            hilt: hilt.into(),
            baseline: baseline.into(),
            ratio: ratio.into(),
            target: target.into(),
            met,
        });
    }

    pub fn note(&mut self, text: impl Into<String>) {
        self.notes.push(text.into());
    }

    /// Targets judged, and how many of them were met.
    pub fn verdict(&self) -> (usize, usize) {
        let judged = self.rows.iter().filter(|r| r.met.is_some()).count();
        let met = self.rows.iter().filter(|r| r.met == Some(true)).count();
        (judged, met)
    }

    pub fn render(&self) -> String {
        let headers = [
            "case".to_string(),
            "hilt".to_string(),
            format!("baseline: {}", self.baseline_name),
            "ratio".to_string(),
            "target".to_string(),
            "met".to_string(),
        ];
        let cells: Vec<[String; 6]> = self
            .rows
            .iter()
            .map(|r| {
                [
                    r.case.clone(),
                    r.hilt.clone(),
                    r.baseline.clone(),
                    r.ratio.clone(),
                    r.target.clone(),
                    match r.met {
                        Some(true) => "yes".into(),
                        Some(false) => "NO".into(),
                        None => "-".into(),
                    },
                ]
            })
            .collect();
        let mut width = headers.clone().map(|h| h.chars().count());
        for row in &cells {
            for (w, c) in width.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cols: &[String; 6]| {
            let mut s = String::from("|");
            for (c, w) in cols.iter().zip(width) {
                let pad = w - c.chars().count();
                let _ = write!(s, " {c}{} |", " ".repeat(pad));
            }
            s
        };
        let mut out = format!("\n## {}\n\n", self.title);
        out.push_str(&line(&headers));
        out.push('\n');
        out.push('|');
        for w in width {
            out.push_str(&"-".repeat(w + 2));
            out.push('|');
        }
        out.push('\n');
        for row in &cells {
            out.push_str(&line(row));
            out.push('\n');
        }
        for n in &self.notes {
            let _ = writeln!(out, "- {n}");
        }
        out
    }
}

/// `hilt / baseline` as `12.3×` when both are known.
pub fn ratio(hilt: f64, baseline: Option<f64>) -> String {
    match baseline {
        Some(b) if b > 0.0 && hilt.is_finite() => format!("{:.1}×", hilt / b),
        _ => "-".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_aligned_markdown() {
        let mut t = Table::new("x", "base");
        t.row("a", "1", "2", "0.5×", "≥ 1×", Some(false));
        let s = t.render();
        assert!(s.contains("| a    | 1    | 2              | 0.5×  | ≥ 1×   | NO  |"));
        assert_eq!(t.verdict(), (1, 0));
        assert_eq!(ratio(10.0, Some(2.0)), "5.0×");
        assert_eq!(ratio(10.0, None), "-");
    }
}

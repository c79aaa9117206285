//! Diagnostics that name the file, line and column of the problem.

use std::fmt;

use crate::yaml::Doc;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Diagnostic {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.col, self.message
        )?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

/// Collects errors and warnings for one file, locating each by its dotted path.
pub struct Diags<'a> {
    pub file: &'a str,
    pub doc: &'a Doc,
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
}

impl<'a> Diags<'a> {
    pub fn new(file: &'a str, doc: &'a Doc) -> Self {
        Diags {
            file,
            doc,
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// The errors and the warnings, ending the borrow of the document.
    pub fn into_parts(self) -> (Vec<Diagnostic>, Vec<Diagnostic>) {
        (self.errors, self.warnings)
    }

    pub fn at(&self, path: &str, message: impl Into<String>, help: Option<String>) -> Diagnostic {
        // Point at the value when the path names one, else at its key.
        let pos = self.doc.pos(path, false);
        Diagnostic {
            file: self.file.to_string(),
            line: pos.line,
            col: pos.col,
            message: message.into(),
            help,
        }
    }

    pub fn key_at(
        &self,
        path: &str,
        message: impl Into<String>,
        help: Option<String>,
    ) -> Diagnostic {
        let pos = self.doc.pos(path, true);
        Diagnostic {
            file: self.file.to_string(),
            line: pos.line,
            col: pos.col,
            message: message.into(),
            help,
        }
    }

    pub fn error(&mut self, path: &str, message: impl Into<String>) {
        let d = self.at(path, with_path(path, message.into()), None);
        self.errors.push(d);
    }

    pub fn error_help(&mut self, path: &str, message: impl Into<String>, help: impl Into<String>) {
        let d = self.at(path, with_path(path, message.into()), Some(help.into()));
        self.errors.push(d);
    }

    pub fn warn(&mut self, path: &str, message: impl Into<String>) {
        let d = self.at(path, with_path(path, message.into()), None);
        self.warnings.push(d);
    }
}

fn with_path(path: &str, message: String) -> String {
    if path.is_empty() {
        message
    } else {
        format!("{path}: {message}")
    }
}

/// The closest candidate to a misspelt word, if one is close enough to suggest.
pub fn suggest<'c>(word: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score >= 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

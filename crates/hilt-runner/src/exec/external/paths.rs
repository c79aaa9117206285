//! File names for the run directory, and keeping suite-supplied paths inside their root.

use std::path::{Component, Path, PathBuf};

/// The run-directory slug rule: characters outside `[A-Za-z0-9._-]` become `-`, leading and
/// trailing `-._` are stripped, and an empty result becomes `test`.
pub fn slug(s: &str) -> String {
    let mapped: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = mapped.trim_matches(|c| matches!(c, '-' | '.' | '_'));
    if trimmed.is_empty() {
        "test".to_string()
    } else {
        trimmed.to_string()
    }
}

/// A path that would leave its root (absolute, `..`, or a symlink pointing outside).
#[derive(Debug, Clone, PartialEq)]
pub struct Escape(pub String);

/// Checks that `rel` is a relative path without `..` and returns it as a clean path.
pub fn relative(rel: &str, what: &str) -> Result<PathBuf, Escape> {
    if rel.is_empty() {
        return Err(Escape(format!("{what} path is empty")));
    }
    let mut out = PathBuf::new();
    for c in Path::new(rel).components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(Escape(format!(
                    "{what} path `{rel}` escapes its root: `..` (path traversal) is not allowed"
                )));
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(Escape(format!(
                    "{what} path `{rel}` escapes its root: absolute paths are not allowed"
                )));
            }
        }
    }
    if out.as_os_str().is_empty() {
        return Err(Escape(format!("{what} path `{rel}` names no file")));
    }
    Ok(out)
}

/// Where `rel` really is below the canonical directory `root`.
///
/// `Ok(None)`: nothing exists there (a dangling symlink counts as missing).
/// `Err`: the path is absolute, uses `..`, or resolves (through symlinks) outside `root`.
pub fn confine(root: &Path, rel: &str, what: &str) -> Result<Option<PathBuf>, Escape> {
    let clean = relative(rel, what)?;
    let joined = root.join(&clean);
    match joined.canonicalize() {
        Ok(real) if real.starts_with(root) => Ok(Some(real)),
        Ok(_) => Err(Escape(format!(
            "{what} path `{rel}` escapes its root {} through a symbolic link",
            root.display()
        ))),
        Err(_) => Ok(None),
    }
}

/// Checks an already-found path (e.g. a file met while walking a directory).
pub fn inside(
    root: &Path,
    path: &Path,
    shown: &str,
    what: &str,
) -> Result<Option<PathBuf>, Escape> {
    match path.canonicalize() {
        Ok(real) if real.starts_with(root) => Ok(Some(real)),
        Ok(_) => Err(Escape(format!(
            "{what} path `{shown}` escapes its root {} through a symbolic link",
            root.display()
        ))),
        Err(_) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(
            slug("boots and reports version"),
            "boots-and-reports-version"
        );
        assert_eq!(slug("..__--"), "test");
        assert_eq!(slug(""), "test");
        assert_eq!(slug("-a/b.c_"), "a-b.c");
        assert_eq!(slug("ünï"), "n");
    }

    #[test]
    fn relative_paths() {
        assert_eq!(relative("a/./b", "x").unwrap(), PathBuf::from("a/b"));
        assert!(relative("../a", "x").is_err());
        assert!(relative("a/../../b", "x").is_err());
        assert!(relative("/etc/passwd", "x").is_err());
        assert!(relative("", "x").is_err());
        assert!(relative(".", "x").is_err());
    }
}

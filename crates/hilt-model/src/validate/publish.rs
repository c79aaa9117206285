//! Checks on the `publish` targets of a bench or suite (hilt extension, issue 14). Whether
//! the repository exists, git and gh are installed and the remote answers is checked by
//! `hilt validate --scope publish`, since this crate reads nothing but the file it loads.

use std::collections::BTreeMap;

use crate::diag::Diags;
use crate::publish::{PublishTarget, is_plain_relative, unknown_placeholders};

pub fn publish(d: &mut Diags, targets: &BTreeMap<String, PublishTarget>) {
    for (name, t) in targets {
        let p = format!("publish.{name}");
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            d.error(
                &p,
                format!("target name `{name}` may only use letters, digits, `-`, `_` and `.`"),
            );
        }
        if t.repo.trim().is_empty() {
            d.error_help(
                &format!("{p}.repo"),
                "a publish target needs the path of a local git repository",
                "clone the results repository once and give its path",
            );
        }
        for (field, value) in [("branch", &t.branch), ("path", &t.path)] {
            let Some(v) = value else { continue };
            let fp = format!("{p}.{field}");
            for u in unknown_placeholders(v) {
                d.error_help(
                    &fp,
                    format!("unknown placeholder `{u}`"),
                    "use {suite}, {bench}, {run_id} or {target}",
                );
            }
            if !is_plain_relative(v) {
                d.error(
                    &fp,
                    format!(
                        "`{v}` must be a relative path of non-empty parts, without `.` or `..`"
                    ),
                );
            }
        }
        for (i, inc) in t.include.iter().enumerate() {
            if !is_plain_relative(inc) {
                d.error(
                    &format!("{p}.include[{i}]"),
                    format!("`{inc}` must be a path inside the run directory (relative, no `..`)"),
                );
            }
        }
        if let Some(r) = &t.remote
            && (r.trim().is_empty() || r.starts_with('-'))
        {
            d.error(
                &format!("{p}.remote"),
                format!("`{r}` is not a remote name"),
            );
        }
        if t.pull_request.is_some() && !t.push {
            d.error_help(
                &format!("{p}.pull_request"),
                "a pull request needs the branch on the remote",
                "set `push: true` on this target",
            );
        }
        if let Some(b) = &t.base
            && (b.trim().is_empty() || b.starts_with('-'))
        {
            d.error(&format!("{p}.base"), format!("`{b}` is not a revision"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_and_paths_are_checked() {
        assert!(unknown_placeholders("a/{suite}/{run_id}").is_empty());
        assert_eq!(unknown_placeholders("a/{sute}/{x"), ["{sute}", "{x"]);
        assert!(is_plain_relative("hilt-runs/{suite}"));
        for bad in ["", "/abs", "a/../b", "a//b", "./a", "a\\b"] {
            assert!(!is_plain_relative(bad), "{bad}");
        }
    }
}

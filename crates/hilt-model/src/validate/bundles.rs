//! Checks on a suite's `bundles` and the steps naming them (hilt extension, issue 14).
//! Whether a candidate's file exists is the runner's decision (a missing file is a
//! fallback, recorded), not an error here.

use crate::diag::Diags;
use crate::suite::{Step, Suite, parse_platform};

pub fn bundles(d: &mut Diags, s: &Suite) {
    for (name, b) in &s.bundles {
        let p = format!("bundles.{name}");
        if !b.dest.starts_with('/') || b.dest.ends_with('/') {
            d.error_help(
                &format!("{p}.dest"),
                format!("`{}` must be an absolute remote file path", b.dest),
                "for example /tmp/hilt-bundles/tool.tar.gz",
            );
        }
        if b.candidates.is_empty() && b.fallback.is_none() {
            d.error_help(
                &p,
                "a bundle needs at least one candidate or a fallback",
                "list prebuilt files under `candidates` with their platform and sha256",
            );
        }
        for (i, c) in b.candidates.iter().enumerate() {
            let cp = format!("{p}.candidates[{i}]");
            if c.sha256.len() != 64 || !c.sha256.chars().all(|ch| ch.is_ascii_hexdigit()) {
                d.error_help(
                    &format!("{cp}.sha256"),
                    "must be 64 hexadecimal digits",
                    "compute it with `sha256sum FILE`",
                );
            }
            if c.path.trim().is_empty() {
                d.error(&format!("{cp}.path"), "must not be empty");
            }
            if let (_, Some(a)) = parse_platform(&c.platform)
                && (a.is_empty() || a.contains(char::is_whitespace))
            {
                d.error(
                    &format!("{cp}.platform"),
                    format!("`{}` is not a platform (arch, os/arch or any)", c.platform),
                );
            }
        }
        if let Some(f) = &b.fallback {
            if f.script.trim().is_empty() {
                d.error(&format!("{p}.fallback.script"), "must not be empty");
            }
            if f.timeout_ms == 0 {
                d.error(
                    &format!("{p}.fallback.timeout_ms"),
                    "must be greater than 0",
                );
            }
        }
    }
    for (ti, test) in s.tests.iter().enumerate() {
        for (si, step) in test.steps.iter().enumerate() {
            let Step::SshExec(e) = step else { continue };
            let Some(name) = &e.bundle else { continue };
            if !s.bundles.contains_key(name) {
                let names: Vec<&str> = s.bundles.keys().map(String::as_str).collect();
                let help = match crate::diag::suggest(name, names.iter().copied()) {
                    Some(n) => format!("did you mean `{n}`?"),
                    None if names.is_empty() => "the suite defines no `bundles`".to_string(),
                    None => format!("bundles in this suite: {}", names.join(", ")),
                };
                d.error_help(
                    &format!("tests[{ti}].steps[{si}].ssh_exec.bundle"),
                    format!("unknown bundle `{name}`"),
                    help,
                );
            }
        }
    }
}

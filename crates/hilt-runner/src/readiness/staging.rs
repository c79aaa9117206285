//! Staging as the suite declares it: each `upload` step's local source (present, size,
//! SHA-256), the remote directory it goes to, and whether the host already holds an
//! identical file; `sha256sum` on every host a copy goes to (both ends are verified).
//! An upload always copies and verifies: the prediction is what it will copy and whether
//! it can.

use std::collections::BTreeSet;
use std::path::Path;

use hilt_hw::CancelToken;
use hilt_hw::ssh::{sha256_file, shell_quote};
use hilt_model::suite::{Step, Suite};

use super::hosts::Session;
use super::{Check, Scope, Status};

fn check(host: &str, what: &str, status: Status, detail: impl Into<String>) -> Check {
    Check::new(
        format!("staging.{host}.{what}"),
        Scope::Staging,
        status,
        detail,
    )
    .host(host)
}

pub(super) fn staging(
    s: &mut Session<'_>,
    suite: &Suite,
    suite_dir: &Path,
    cancel: &CancelToken,
) -> Vec<Check> {
    let host = s.name.clone();
    let copies: Vec<(usize, usize, &Step)> = super::steps(suite)
        .filter(|(_, _, st)| match st {
            Step::Upload(u) => u.host == host,
            Step::Download(d) => d.host == host,
            _ => false,
        })
        .collect();
    let mut out = Vec::new();
    if copies.is_empty() {
        out.push(check(
            &host,
            "copies",
            Status::Skip,
            format!("the suite copies nothing to or from {host}"),
        ));
        return out;
    }
    let tools: Vec<String> = ["sha256sum", "wc", "cat"]
        .iter()
        .map(|t| t.to_string())
        .collect();
    match s.which(&tools, cancel) {
        Ok(found) => {
            for (n, p) in found {
                out.push(match p {
                    Some(p) => check(&host, &format!("tool.{n}"), Status::Pass, format!("`{n}` is {p} on {host} (copies are verified on both ends)")),
                    None => check(&host, &format!("tool.{n}"), Status::Fail, format!("`{n}` is not found on {host}; uploads and downloads verify the copy with it"))
                        .fix(format!("install coreutils on {host}")),
                });
            }
        }
        Err(e) => out.push(check(
            &host,
            "tool.sha256sum",
            Status::Skip,
            format!("not checked: {e}"),
        )),
    }
    let mut seen = BTreeSet::new();
    for (ti, si, st) in copies {
        let Step::Upload(u) = st else { continue };
        let id = format!("upload.tests[{ti}].steps[{si}]");
        let local = if Path::new(&u.src).is_absolute() {
            Path::new(&u.src).to_path_buf()
        } else {
            suite_dir.join(&u.src)
        };
        let (size, sum) = match sha256_file(&local) {
            Ok(x) => x,
            Err(e) => {
                out.push(
                    check(&host, &id, Status::Fail, format!("upload source {} cannot be read: {e}", local.display()))
                        .fix("build or fetch the file before the run, or fix the step's `src` (relative to the suite file)"),
                );
                continue;
            }
        };
        let remote = format!(
            "d=$(dirname -- {q}); if [ ! -d \"$d\" ]; then echo nodir; elif [ ! -w \"$d\" ]; then echo readonly; \
             elif [ -f {q} ]; then echo \"file $(wc -c < {q}) $(sha256sum < {q} | cut -d' ' -f1)\"; else echo absent; fi",
            q = shell_quote(&u.dest)
        );
        let what = format!(
            "{} ({size} bytes, sha256 {sum}) → {host}:{}",
            local.display(),
            u.dest
        );
        let c = match s.run(&remote, cancel) {
            Err(e) => check(
                &host,
                &id,
                Status::Skip,
                format!("{what}: remote side not checked: {e}"),
            ),
            Ok((_, text)) => {
                let line = text.lines().next().unwrap_or("").trim().to_string();
                if line == "nodir" {
                    check(&host, &id, Status::Fail, format!("{what}: the remote directory does not exist"))
                        .fix(format!("create the directory of {} on {host} (an ssh_exec `mkdir -p` step before the upload)", u.dest))
                } else if line == "readonly" {
                    check(
                        &host,
                        &id,
                        Status::Fail,
                        format!("{what}: the remote directory is not writable by the login user"),
                    )
                    .fix(format!(
                        "choose a writable `dest` or change the directory's permissions on {host}"
                    ))
                } else if let Some(rest) = line.strip_prefix("file ") {
                    let same = rest.split_whitespace().nth(1) == Some(sum.as_str());
                    let state = if same {
                        "the host already holds an identical file (it is copied and verified again)"
                    } else {
                        "replaces a different file on the host"
                    };
                    check(
                        &host,
                        &id,
                        Status::Pass,
                        format!("{what}: will copy; {state}"),
                    )
                } else if line == "absent" {
                    check(
                        &host,
                        &id,
                        Status::Pass,
                        format!("{what}: will copy (not on the host yet)"),
                    )
                } else {
                    check(
                        &host,
                        &id,
                        Status::Skip,
                        format!("{what}: unexpected answer from the host: {line:?}"),
                    )
                }
            }
        };
        if seen.insert(u.dest.clone()) {
            out.push(c);
        } else {
            out.push(c.optional());
        }
    }
    out
}

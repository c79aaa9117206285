//! After the trigger: read the declared reports, copy logs and artifacts into the run
//! directory under the target's caps, and note every path that tries to leave the output
//! root. Over-cap items are truncated (logs) or skipped (artifacts) with a note; missing
//! logs and artifacts are noted, not failures.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::Ctx;
use super::paths::{self, Escape, slug};
use crate::report::{ExternalTest, parse_ctrf, parse_junit};

/// Directory levels walked below a declared artifact directory at most.
const MAX_DEPTH: usize = 32;

#[derive(Default)]
pub struct Collected {
    /// `junit` / `ctrf` → `{path, size_bytes, sha256, test_count}` (or `error`).
    pub reports: Map<String, Value>,
    pub tests: Vec<ExternalTest>,
    pub logs: Vec<Value>,
    pub artifacts: Vec<Value>,
    /// Absolute paths of the copied logs.
    pub log_files: Vec<PathBuf>,
    /// Paths refused because they leave their root.
    pub violations: Vec<String>,
    /// Declared reports that are missing, too large or unreadable.
    pub report_problems: Vec<String>,
    /// Declared reports with zero tests.
    pub empty_reports: Vec<String>,
}

impl Collected {
    fn refuse(&mut self, e: Escape) -> String {
        let note = format!("refused: {}", e.0);
        self.violations.push(e.0);
        note
    }
}

pub fn collect(ctx: &Ctx, root: Option<&Path>) -> Collected {
    let mut c = Collected::default();
    reports(ctx, root, &mut c);
    logs(ctx, root, &mut c);
    artifacts(ctx, root, &mut c);
    for url in &ctx.r.artifact_urls {
        let name = url
            .split(['?', '#'])
            .next()
            .unwrap_or("")
            .rsplit('/')
            .find(|s| !s.is_empty())
            .unwrap_or(url.as_str());
        c.artifacts
            .push(json!({"name": name, "url": url, "external": true}));
    }
    c
}

/// Resolves a declared path; `Ok(None)` when it does not exist (or there is no root).
fn resolve(root: Option<&Path>, rel: &str, what: &str) -> Result<Option<PathBuf>, Escape> {
    match root {
        Some(root) => paths::confine(root, rel, what),
        None => paths::relative(rel, what).map(|_| None),
    }
}

/// Reads at most `cap` bytes of a regular file; the flag says whether more were there.
///
/// `path` is already resolved, so its last component must not be a symlink now (it may
/// have been swapped since it was checked), and a FIFO put there must not block the run.
fn read_capped(path: &Path, cap: u64) -> std::io::Result<(Vec<u8>, bool)> {
    use nix::fcntl::OFlag;
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK).bits())
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut buf = Vec::new();
    f.take(cap.saturating_add(1)).read_to_end(&mut buf)?;
    let over = buf.len() as u64 > cap;
    buf.truncate(usize::try_from(cap).unwrap_or(usize::MAX).min(buf.len()));
    Ok((buf, over))
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn reports(ctx: &Ctx, root: Option<&Path>, c: &mut Collected) {
    let cap = ctx.t.max_results_document_bytes;
    for (kind, rel) in [("junit", &ctx.r.junit), ("ctrf", &ctx.r.ctrf)] {
        let Some(rel) = rel else { continue };
        let problem = |c: &mut Collected, msg: String| {
            c.reports
                .insert(kind.into(), json!({"path": rel, "error": msg.clone()}));
            c.report_problems.push(msg);
        };
        let real = match resolve(root, rel, &format!("{kind} report")) {
            Ok(Some(p)) if p.is_file() => p,
            Ok(Some(_)) => {
                problem(c, format!("{kind} report `{rel}` is not a regular file"));
                continue;
            }
            Ok(None) => {
                problem(
                    c,
                    format!("{kind} report `{rel}` was not found under the output root"),
                );
                continue;
            }
            Err(e) => {
                let note = c.refuse(e);
                c.reports
                    .insert(kind.into(), json!({"path": rel, "error": note}));
                continue;
            }
        };
        let (bytes, over) = match read_capped(&real, cap) {
            Ok(r) => r,
            Err(e) => {
                problem(c, format!("cannot read {kind} report `{rel}`: {e}"));
                continue;
            }
        };
        if over {
            problem(
                c,
                format!(
                    "{kind} report `{rel}` is larger than the target's max_results_document_bytes ({cap})"
                ),
            );
            continue;
        }
        let text = String::from_utf8_lossy(&bytes);
        let parsed = if kind == "junit" {
            parse_junit(&text)
        } else {
            parse_ctrf(&text)
        };
        let tests = match parsed {
            Ok(t) => t,
            Err(e) => {
                problem(c, format!("{kind} report `{rel}` cannot be read: {e}"));
                continue;
            }
        };
        c.reports.insert(
            kind.into(),
            json!({"path": rel, "size_bytes": bytes.len(), "sha256": sha256(&bytes), "test_count": tests.len()}),
        );
        if tests.is_empty() {
            c.empty_reports.push(format!("{kind} `{rel}`"));
        }
        c.tests.extend(tests);
    }
}

fn logs(ctx: &Ctx, root: Option<&Path>, c: &mut Collected) {
    let t = ctx.t;
    let dir = ctx.run_dir.join("logs/external");
    let mut total: u64 = 0;
    for (i, rel) in ctx.r.logs.iter().enumerate() {
        let n = i + 1;
        let skipped = |note: String| json!({"name": rel, "skipped": true, "note": note});
        let real = match resolve(root, rel, "log") {
            Ok(Some(p)) => p,
            Ok(None) => {
                c.logs.push(skipped("not found".into()));
                continue;
            }
            Err(e) => {
                let note = c.refuse(e);
                c.logs.push(skipped(note));
                continue;
            }
        };
        if n as u64 > t.max_logs {
            c.logs.push(skipped(format!(
                "skipped: more than max_logs ({}) logs",
                t.max_logs
            )));
            continue;
        }
        if !real.is_file() {
            c.logs.push(skipped("not a regular file".into()));
            continue;
        }
        let left = t.max_log_total_bytes.saturating_sub(total);
        if left == 0 {
            c.logs.push(skipped(format!(
                "skipped: max_log_total_bytes ({}) reached",
                t.max_log_total_bytes
            )));
            continue;
        }
        let cap = t.max_log_bytes.min(left);
        let original = std::fs::metadata(&real).map(|m| m.len()).unwrap_or(0);
        let (bytes, over) = match read_capped(&real, cap) {
            Ok(r) => r,
            Err(e) => {
                c.logs.push(skipped(format!("cannot read: {e}")));
                continue;
            }
        };
        let base = real
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let filename = format!("{}-{n}-{}", slug(ctx.target), slug(&base));
        let dest = dir.join(&filename);
        if let Err(e) = write_new(&dest, &bytes) {
            c.logs.push(skipped(format!("cannot copy: {e}")));
            continue;
        }
        total += bytes.len() as u64;
        let mut entry = json!({
            "name": rel,
            "filename": filename,
            "path": format!("logs/external/{filename}"),
            "size_bytes": bytes.len(),
            "original_size_bytes": original.max(bytes.len() as u64),
            "sha256": sha256(&bytes),
            "truncated": over,
        });
        if over {
            let which = if cap < t.max_log_bytes {
                format!("max_log_total_bytes ({})", t.max_log_total_bytes)
            } else {
                format!("max_log_bytes ({})", t.max_log_bytes)
            };
            entry["note"] = format!("truncated to {} bytes by {which}", bytes.len()).into();
        }
        c.logs.push(entry);
        c.log_files.push(dest);
    }
}

fn write_new(dest: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(d) = dest.parent() {
        std::fs::create_dir_all(d)?;
    }
    let mut f = File::create(dest)?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn artifacts(ctx: &Ctx, root: Option<&Path>, c: &mut Collected) {
    let t = ctx.t;
    let base = ctx
        .run_dir
        .join("external-artifacts")
        .join(slug(ctx.target));
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    let mut seen = BTreeSet::new();
    for rel in &ctx.r.artifacts {
        let skipped = |note: String| json!({"name": rel, "skipped": true, "note": note});
        let real = match resolve(root, rel, "artifact") {
            Ok(Some(p)) => p,
            Ok(None) => {
                c.artifacts.push(skipped("not found".into()));
                continue;
            }
            Err(e) => {
                let note = c.refuse(e);
                c.artifacts.push(skipped(note));
                continue;
            }
        };
        // `relative` cannot fail here: `resolve` checked it.
        let clean = paths::relative(rel, "artifact").unwrap_or_default();
        if real.is_dir() {
            let root = root.unwrap_or(Path::new("/"));
            walk(root, &real, &clean, 0, &mut files, c);
        } else if real.is_file() {
            files.push((clean.to_string_lossy().into_owned(), real));
        } else {
            c.artifacts.push(skipped("not a regular file".into()));
        }
    }
    let mut count: u64 = 0;
    let mut total: u64 = 0;
    for (rel, real) in files {
        if !seen.insert(rel.clone()) {
            continue;
        }
        let skipped = |note: String| json!({"name": rel, "skipped": true, "note": note});
        if count >= t.max_artifacts {
            c.artifacts.push(skipped(format!(
                "skipped: more than max_artifacts ({}) files",
                t.max_artifacts
            )));
            continue;
        }
        let size = std::fs::metadata(&real).map(|m| m.len()).unwrap_or(0);
        if size > t.max_artifact_bytes {
            c.artifacts.push(skipped(format!(
                "skipped: {size} bytes is over max_artifact_bytes ({})",
                t.max_artifact_bytes
            )));
            continue;
        }
        let cap = t
            .max_artifact_bytes
            .min(t.max_artifact_total_bytes.saturating_sub(total));
        let (bytes, over) = match read_capped(&real, cap) {
            Ok(r) => r,
            Err(e) => {
                c.artifacts.push(skipped(format!("cannot read: {e}")));
                continue;
            }
        };
        if over {
            let why = if size > cap && cap < t.max_artifact_bytes {
                format!(
                    "max_artifact_total_bytes ({}) reached",
                    t.max_artifact_total_bytes
                )
            } else {
                format!("over max_artifact_bytes ({})", t.max_artifact_bytes)
            };
            c.artifacts.push(skipped(format!("skipped: {why}")));
            continue;
        }
        let dest = base.join(&rel);
        if let Err(e) = write_new(&dest, &bytes) {
            c.artifacts.push(skipped(format!("cannot copy: {e}")));
            continue;
        }
        count += 1;
        total += bytes.len() as u64;
        let filename = Path::new(&rel)
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        c.artifacts.push(json!({
            "name": rel,
            "filename": filename,
            "path": format!("external-artifacts/{}/{rel}", slug(ctx.target)),
            "size_bytes": bytes.len(),
            "sha256": sha256(&bytes),
        }));
    }
}

/// Lists the regular files below `dir` (sorted), checking symlinks stay under `root`.
/// Symlinked directories are not followed.
fn walk(
    root: &Path,
    dir: &Path,
    rel: &Path,
    depth: usize,
    out: &mut Vec<(String, PathBuf)>,
    c: &mut Collected,
) {
    if depth > MAX_DEPTH {
        c.artifacts
            .push(json!({"name": rel.to_string_lossy(), "skipped": true,
            "note": format!("skipped: deeper than {MAX_DEPTH} directory levels")}));
        return;
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = rd.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let child_rel = rel.join(e.file_name());
        let shown = child_rel.to_string_lossy().into_owned();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            walk(root, &e.path(), &child_rel, depth + 1, out, c);
        } else if ft.is_file() {
            out.push((shown, e.path()));
        } else if ft.is_symlink() {
            match paths::inside(root, &e.path(), &shown, "artifact") {
                Ok(Some(real)) if real.is_file() => out.push((shown, real)),
                Ok(Some(_)) => c.artifacts.push(json!({"name": shown, "skipped": true,
                    "note": "symbolic link to a directory not followed"})),
                Ok(None) => c.artifacts.push(json!({"name": shown, "skipped": true,
                    "note": "dangling symbolic link"})),
                Err(esc) => {
                    let note = c.refuse(esc);
                    c.artifacts
                        .push(json!({"name": shown, "skipped": true, "note": note}));
                }
            }
        }
    }
}

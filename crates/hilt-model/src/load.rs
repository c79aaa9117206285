//! Loading bench and suite files: YAML → typed model, with unknown-key warnings and
//! validation errors that name file:line:column.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::bench::Bench;
use crate::diag::{Diagnostic, Diags, suggest};
use crate::suite::{STEP_TYPES, Suite};
use crate::validate;
use crate::yaml::{self, Doc, NodeRef, Scalar, join_index, join_key};

mod walk;
use walk::Checks;

/// A successfully loaded file.
#[derive(Debug, Clone)]
pub struct Loaded<T> {
    pub value: T,
    pub doc: Doc,
    pub path: PathBuf,
    /// The exact text read, for input snapshots.
    pub text: String,
    pub warnings: Vec<Diagnostic>,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", render(.diagnostics))]
    Invalid { diagnostics: Vec<Diagnostic> },
}

fn render(d: &[Diagnostic]) -> String {
    d.iter()
        .map(|d| format!("error: {d}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl LoadError {
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            LoadError::Io { .. } => &[],
            LoadError::Invalid { diagnostics } => diagnostics,
        }
    }
}

/// `--strict` turns warnings (unknown keys, duplicate keys, unknown versions) into errors.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions {
    pub strict: bool,
}

pub fn load_bench(path: &Path, opts: LoadOptions) -> Result<Loaded<Bench>, LoadError> {
    let text = read(path)?;
    bench_from(&text, &path.display().to_string(), opts).map(|mut l| {
        l.path = path.to_path_buf();
        l.text = text;
        l
    })
}

pub fn load_suite(path: &Path, opts: LoadOptions) -> Result<Loaded<Suite>, LoadError> {
    let text = read(path)?;
    suite_from(&text, &path.display().to_string(), opts).map(|mut l| {
        l.path = path.to_path_buf();
        l.text = text;
        l
    })
}

/// Largest bench/suite file read from disk.
pub const MAX_FILE_BYTES: u64 = yaml::MAX_INPUT_BYTES as u64;

pub(crate) fn read(path: &Path) -> Result<String, LoadError> {
    let io = |source| LoadError::Io {
        path: path.display().to_string(),
        source,
    };
    let bytes = read_capped(path, MAX_FILE_BYTES).map_err(io)?;
    String::from_utf8(bytes).map_err(|_| io(std::io::Error::other("file is not valid UTF-8")))
}

/// Reads a whole regular file of at most `cap` bytes. Anything else is refused without
/// blocking or reading more than `cap + 1` bytes, whatever size the file reports: a
/// directory, a device (`/dev/zero`, `/dev/urandom`), a FIFO or a socket is "not a regular
/// file", and a file that turns out longer than `cap` (or grows while read) is "too large".
pub fn read_capped(path: &Path, cap: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    // `metadata` never opens the file, so a FIFO without a writer cannot block us here.
    check_regular(&std::fs::metadata(path)?)?;
    let file = std::fs::File::open(path)?;
    // The path may have been swapped between the two calls: check what was opened.
    let meta = file.metadata()?;
    check_regular(&meta)?;
    let too_large = || {
        std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            format!("file is larger than the limit of {cap} bytes"),
        )
    };
    if meta.len() > cap {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(cap.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(too_large());
    }
    Ok(bytes)
}

/// Refuses anything but a regular file (following symlinks) without opening it.
pub fn ensure_regular_file(path: &Path) -> std::io::Result<()> {
    check_regular(&std::fs::metadata(path)?)
}

fn check_regular(meta: &std::fs::Metadata) -> std::io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    let what = if t.is_file() {
        return Ok(());
    } else if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else {
        "a special file"
    };
    Err(std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!("not a regular file ({what})"),
    ))
}

pub fn parse_bench(text: &str, file: &str, opts: LoadOptions) -> Result<Loaded<Bench>, LoadError> {
    bench_from(text, file, opts).map(|l| with_text(l, text))
}

/// [`parse_bench`] without its copy of the text (the caller stores it).
fn bench_from(text: &str, file: &str, opts: LoadOptions) -> Result<Loaded<Bench>, LoadError> {
    let doc = parse_doc(text, file)?;
    let mut d = Diags::new(file, &doc);
    let root = top_level_map(&mut d)?;
    let bench: Bench = decode(&mut d, root, "")?;
    common_checks(&mut d, root, &bench, true);
    validate::bench(&mut d, &bench);
    let (errors, warnings) = d.into_parts();
    finish(errors, warnings, doc, bench, opts)
}

fn with_text<T>(mut l: Loaded<T>, text: &str) -> Loaded<T> {
    l.text = text.to_string();
    l
}

/// Parses any typed document with the shared pipeline (syntax, types, unknown keys,
/// `check`'s semantic rules).
pub(crate) fn parse_with<T: DeserializeOwned + Serialize>(
    text: &str,
    file: &str,
    opts: LoadOptions,
    check: impl FnOnce(&mut Diags, &T),
) -> Result<Loaded<T>, LoadError> {
    let doc = parse_doc(text, file)?;
    let mut d = Diags::new(file, &doc);
    let root = top_level_map(&mut d)?;
    let value: T = decode(&mut d, root, "")?;
    common_checks(&mut d, root, &value, false);
    check(&mut d, &value);
    let (errors, warnings) = d.into_parts();
    finish(errors, warnings, doc, value, opts).map(|l| with_text(l, text))
}

pub fn parse_suite(text: &str, file: &str, opts: LoadOptions) -> Result<Loaded<Suite>, LoadError> {
    suite_from(text, file, opts).map(|l| with_text(l, text))
}

/// [`parse_suite`] without its copy of the text (the caller stores it).
fn suite_from(text: &str, file: &str, opts: LoadOptions) -> Result<Loaded<Suite>, LoadError> {
    let doc = parse_doc(text, file)?;
    let mut d = Diags::new(file, &doc);
    let root = top_level_map(&mut d)?;
    check_step_shapes(&mut d, root);
    if !d.errors.is_empty() {
        return Err(LoadError::Invalid {
            diagnostics: d.errors,
        });
    }
    let suite: Suite = decode(&mut d, root, "")?;
    suite_tests_checks(&mut d, root, &suite);
    other_checks(&mut d, root);
    validate::suite(&mut d, &suite);
    let (errors, warnings) = d.into_parts();
    finish(errors, warnings, doc, suite, opts)
}

fn parse_doc(text: &str, file: &str) -> Result<Doc, LoadError> {
    yaml::parse(text).map_err(|e| LoadError::Invalid {
        diagnostics: vec![Diagnostic {
            file: file.to_string(),
            line: e.pos.line,
            col: e.pos.col,
            message: format!("invalid YAML: {}", e.message),
            help: None,
        }],
    })
}

/// The document's root, which must be a mapping.
fn top_level_map<'a>(d: &mut Diags<'a>) -> Result<NodeRef<'a>, LoadError> {
    if let Some(root) = d.doc.root().filter(|r| r.is_map()) {
        return Ok(root);
    }
    d.error("", "expected a mapping at the top level of the file");
    Err(LoadError::Invalid {
        diagnostics: std::mem::take(&mut d.errors),
    })
}

/// Decodes `node` into `T`, turning the first type error into a located diagnostic. The
/// path of an error is tracked only when there is one: decoding again with the tracker
/// meets the same error.
fn decode<T: DeserializeOwned>(d: &mut Diags, node: NodeRef, base: &str) -> Result<T, LoadError> {
    if let Ok(v) = T::deserialize(node) {
        return Ok(v);
    }
    match serde_path_to_error::deserialize(node) {
        Ok(v) => Ok(v),
        Err(e) => {
            let mut path = base.to_string();
            for seg in e.path().iter() {
                match seg {
                    serde_path_to_error::Segment::Map { key } => path = join_key(&path, key),
                    serde_path_to_error::Segment::Enum { variant } => {
                        path = join_key(&path, variant)
                    }
                    serde_path_to_error::Segment::Seq { index } => path = join_index(&path, *index),
                    serde_path_to_error::Segment::Unknown => {}
                }
            }
            let msg = e.into_inner().to_string();
            let (path, msg) = refine(node, path, msg);
            let help = missing_field_help(&msg);
            let diag = d.at(&path, prefixed(&path, &msg), help);
            Err(LoadError::Invalid {
                diagnostics: vec![diag],
            })
        }
    }
}

/// Inside internally tagged maps serde loses the field name; find the one key under `path`
/// whose value the message quotes, so the error points at the field, not its parent.
fn refine(root: NodeRef, path: String, msg: String) -> (String, String) {
    let quoted = msg
        .split_once("invalid type: ")
        .or_else(|| msg.split_once("invalid value: "))
        .or_else(|| msg.split_once("unknown variant "))
        .map(|(_, rest)| rest);
    let Some(rest) = quoted else {
        return (path, msg);
    };
    let literal = if let Some(r) = rest.split_once('"') {
        r.1.split('"').next().map(|s| Value::String(s.to_string()))
    } else {
        rest.split('`').nth(1).map(|s| {
            serde_json::from_str::<Value>(s).unwrap_or_else(|_| Value::String(s.to_string()))
        })
    };
    let Some(literal) = literal else {
        return (path, msg);
    };
    let mut node = Some(root);
    for part in path.split(['.', '[']).filter(|p| !p.is_empty()) {
        node = node.and_then(
            |n| match part.strip_suffix(']').and_then(|i| i.parse().ok()) {
                Some(i) => n.index(i),
                None => n.get(part),
            },
        );
    }
    let hits: Vec<&str> = node
        .map(|m| {
            m.entries()
                .filter(|(_, v)| v.to_value() == literal)
                .map(|(k, _)| k)
                .collect()
        })
        .unwrap_or_default();
    match hits.as_slice() {
        [key] => (join_key(&path, key), format!("field `{key}`: {msg}")),
        _ => (path, msg),
    }
}

fn prefixed(path: &str, msg: &str) -> String {
    if path.is_empty() {
        msg.to_string()
    } else {
        format!("{path}: {msg}")
    }
}

fn missing_field_help(msg: &str) -> Option<String> {
    msg.strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
        .map(|f| format!("add `{f}:` here (it is required)"))
}

/// Each step must be a one-key map naming a known step type.
fn check_step_shapes(d: &mut Diags, root: NodeRef) {
    let Some(tests) = root.get("tests").filter(|t| t.is_seq()) else {
        return;
    };
    for (ti, test) in tests.items().enumerate() {
        let Some(steps) = test.get("steps").filter(|s| s.is_seq()) else {
            continue;
        };
        for (si, step) in steps.items().enumerate() {
            if !step.is_map() {
                d.error(
                    &format!("tests[{ti}].steps[{si}]"),
                    "a step must be a one-key mapping such as `- sleep_ms: 100`",
                );
                continue;
            }
            let mut keys = step.entries();
            if keys.len() != 1 {
                let n = keys.len();
                let keys: Vec<&str> = keys.map(|(k, _)| k).collect();
                d.error(
                    &format!("tests[{ti}].steps[{si}]"),
                    format!(
                        "a step must have exactly one key (the step type), found {n}: {}",
                        keys.join(", ")
                    ),
                );
                continue;
            }
            let key = keys.next().map(|(k, _)| k).unwrap_or_default();
            if !STEP_TYPES.contains(&key) {
                let path = format!("tests[{ti}].steps[{si}]");
                let p = join_key(&path, key);
                let help = suggest(key, STEP_TYPES.iter().copied())
                    .map(|s| format!("did you mean `{s}`?"));
                let diag = d.key_at(&p, format!("{p}: unknown step action `{key}`"), help);
                d.errors.push(diag);
            }
        }
    }
}

/// Unknown keys (warnings) and, with `durations`, over-long durations (errors), then
/// duplicate keys and the format version.
fn common_checks<'a, T: Serialize>(
    d: &mut Diags<'a>,
    root: NodeRef<'a>,
    typed: &T,
    durations: bool,
) {
    let mut c = Checks::new(d);
    c.walk(root, typed, durations);
    c.finish();
    other_checks(d, root);
}

/// The suite's top level: everything but its tests.
fn top_level(suite: &Suite) -> Suite {
    Suite {
        version: suite.version.clone(),
        suite: suite.suite.clone(),
        tests: Vec::new(),
        publish: suite.publish.clone(),
        bundles: suite.bundles.clone(),
    }
}

/// A suite's unknown keys and durations: the top level with no tests (durations are
/// bounded in tests only), then one test at a time. Warnings come in input order, duration
/// errors test by test; a test that cannot be walked is not checked, and nothing is when
/// the top level cannot be.
fn suite_tests_checks<'a>(d: &mut Diags<'a>, root: NodeRef<'a>, suite: &Suite) {
    let top = top_level(suite);
    let mut c = Checks::new(d);
    if !c.walk(root, &top, false) {
        return;
    }
    let tests = root.entries().enumerate().find(|(_, (k, _))| *k == "tests");
    if let Some((j, (_, input))) = tests {
        c.enter_key("tests", j);
        for (n, (iv, t)) in input.items().zip(&suite.tests).enumerate() {
            c.enter_index(n);
            c.walk(iv, t, true);
            c.leave();
        }
        c.leave();
    }
    c.finish();
}

/// Duplicate keys and the format version.
fn other_checks(d: &mut Diags, root: NodeRef) {
    let doc = d.doc;
    for p in &doc.duplicate_keys {
        let diag = d.key_at(p, format!("{p}: duplicate key; the later value wins"), None);
        d.warnings.push(diag);
    }
    let Some(version) = root.get("version") else {
        return;
    };
    match version.scalar() {
        Some(Scalar::Null | Scalar::Uint(1)) => {}
        Some(Scalar::Str("1")) => {}
        _ => d.warn(
            "version",
            format!(
                "unknown format version {}; only 1 is recognised",
                version.to_value()
            ),
        ),
    }
}

fn finish<T>(
    mut errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
    doc: Doc,
    value: T,
    opts: LoadOptions,
) -> Result<Loaded<T>, LoadError> {
    let warnings = if opts.strict {
        errors.extend(warnings.into_iter().map(|mut w| {
            w.message = format!("{} (--strict)", w.message);
            w
        }));
        Vec::new()
    } else {
        warnings
    };
    if !errors.is_empty() {
        errors.sort_by_key(|e| (e.line, e.col));
        return Err(LoadError::Invalid {
            diagnostics: errors,
        });
    }
    Ok(Loaded {
        value,
        doc,
        path: PathBuf::new(),
        text: String::new(),
        warnings,
    })
}

/// Checks a loaded suite against a bench (names exist and fit, steps and drivers are in
/// this build). Errors point into the suite file, except a driver this build lacks: that
/// is reported once, at its definition in the bench file, with the steps that use it.
pub fn check_against(
    bench: &Loaded<Bench>,
    suite: &Loaded<Suite>,
    opts: &validate::CrossOptions<'_>,
) -> Result<(), LoadError> {
    let file = suite.path.display().to_string();
    let mut d = Diags::new(&file, &suite.doc);
    let unsupported = validate::cross(&mut d, &bench.value, &suite.value, opts);
    let mut diagnostics = d.errors;
    diagnostics.sort_by_key(|e| (e.line, e.col));
    let bench_file = bench.path.display().to_string();
    let mut bd = Diags::new(&bench_file, &bench.doc);
    for u in unsupported {
        bd.error_help(&u.bench_path, u.message_with_uses(), u.help);
    }
    let mut in_bench = bd.errors;
    in_bench.sort_by_key(|e| (e.line, e.col));
    diagnostics.extend(in_bench);
    if diagnostics.is_empty() {
        Ok(())
    } else {
        Err(LoadError::Invalid { diagnostics })
    }
}

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
use crate::yaml::{self, Doc, join_index, join_key};

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
    parse_bench(&text, &path.display().to_string(), opts).map(|mut l| {
        l.path = path.to_path_buf();
        l
    })
}

pub fn load_suite(path: &Path, opts: LoadOptions) -> Result<Loaded<Suite>, LoadError> {
    let text = read(path)?;
    parse_suite(&text, &path.display().to_string(), opts).map(|mut l| {
        l.path = path.to_path_buf();
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
    let doc = parse_doc(text, file)?;
    let mut d = Diags::new(file, &doc);
    top_level_map(&mut d)?;
    let bench: Bench = decode(&mut d, &doc.value, "")?;
    common_checks(&mut d, &bench);
    durations(&mut d, &bench);
    validate::bench(&mut d, &bench);
    let (errors, warnings) = d.into_parts();
    finish(errors, warnings, doc, bench, text, opts)
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
    top_level_map(&mut d)?;
    let value: T = decode(&mut d, &doc.value, "")?;
    common_checks(&mut d, &value);
    check(&mut d, &value);
    let (errors, warnings) = d.into_parts();
    finish(errors, warnings, doc, value, text, opts)
}

pub fn parse_suite(text: &str, file: &str, opts: LoadOptions) -> Result<Loaded<Suite>, LoadError> {
    let doc = parse_doc(text, file)?;
    let mut d = Diags::new(file, &doc);
    top_level_map(&mut d)?;
    check_step_shapes(&mut d);
    if !d.errors.is_empty() {
        return Err(LoadError::Invalid {
            diagnostics: d.errors,
        });
    }
    let suite: Suite = decode(&mut d, &doc.value, "")?;
    suite_unknown_keys(&mut d, &suite);
    other_checks(&mut d);
    suite_durations(&mut d, &suite);
    validate::suite(&mut d, &suite);
    let (errors, warnings) = d.into_parts();
    finish(errors, warnings, doc, suite, text, opts)
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

fn top_level_map(d: &mut Diags) -> Result<(), LoadError> {
    if d.doc.value.is_object() {
        return Ok(());
    }
    d.error("", "expected a mapping at the top level of the file");
    Err(LoadError::Invalid {
        diagnostics: std::mem::take(&mut d.errors),
    })
}

/// Decodes `value` into `T`, turning the first type error into a located diagnostic.
fn decode<T: DeserializeOwned>(d: &mut Diags, value: &Value, base: &str) -> Result<T, LoadError> {
    match serde_path_to_error::deserialize(value) {
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
            let (path, msg) = refine(&d.doc.value, path, msg);
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
fn refine(root: &Value, path: String, msg: String) -> (String, String) {
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
    let mut node = root;
    for part in path.split(['.', '[']).filter(|p| !p.is_empty()) {
        node = match part.strip_suffix(']').and_then(|i| i.parse::<usize>().ok()) {
            Some(i) => &node[i],
            None => &node[part],
        };
    }
    let hits: Vec<&String> = node
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(_, v)| **v == literal)
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
fn check_step_shapes(d: &mut Diags) {
    let doc = d.doc;
    let Some(tests) = doc.value.get("tests").and_then(Value::as_array) else {
        return;
    };
    for (ti, test) in tests.iter().enumerate() {
        let Some(steps) = test.get("steps").and_then(Value::as_array) else {
            continue;
        };
        for (si, step) in steps.iter().enumerate() {
            let path = format!("tests[{ti}].steps[{si}]");
            let Some(map) = step.as_object() else {
                d.error(
                    &path,
                    "a step must be a one-key mapping such as `- sleep_ms: 100`",
                );
                continue;
            };
            if map.len() != 1 {
                let keys: Vec<_> = map.keys().map(String::as_str).collect();
                d.error(
                    &path,
                    format!(
                        "a step must have exactly one key (the step type), found {}: {}",
                        map.len(),
                        keys.join(", ")
                    ),
                );
                continue;
            }
            let key = map.keys().next().map(String::as_str).unwrap_or_default();
            if !STEP_TYPES.contains(&key) {
                let p = join_key(&path, key);
                let help = suggest(key, STEP_TYPES.iter().copied())
                    .map(|s| format!("did you mean `{s}`?"));
                let diag = d.key_at(&p, format!("{p}: unknown step action `{key}`"), help);
                d.errors.push(diag);
            }
        }
    }
}

/// Bounds every duration of a bench (validate/durations.rs).
fn durations<T: Serialize>(d: &mut Diags, typed: &T) {
    if let Ok(canonical) = serde_json::to_value(typed) {
        validate::durations(d, &canonical, "");
    }
}

/// [`durations`] for a suite, one test at a time (as [`suite_unknown_keys`], so a large
/// suite is never re-serialised whole).
fn suite_durations(d: &mut Diags, suite: &Suite) {
    for (n, t) in suite.tests.iter().enumerate() {
        if let Ok(v) = serde_json::to_value(t) {
            validate::durations(d, &v, &join_index("tests", n));
        }
    }
}

/// Unknown keys, duplicate keys and the format version.
fn common_checks<T: Serialize>(d: &mut Diags, typed: &T) {
    if let Ok(canonical) = serde_json::to_value(typed) {
        let doc = d.doc;
        unknown_keys(d, &doc.value, &canonical, "");
    }
    other_checks(d);
}

/// [`common_checks`]' unknown keys for a suite, without re-serialising the whole suite at
/// once: the top level with no tests, then one test at a time (a 20,000-step suite would
/// otherwise hold a second full copy of itself). Same warnings, same order.
fn suite_unknown_keys(d: &mut Diags, suite: &Suite) {
    let top = Suite {
        version: suite.version.clone(),
        suite: suite.suite.clone(),
        tests: Vec::new(),
    };
    let Ok(Value::Object(c)) = serde_json::to_value(&top) else {
        return;
    };
    let doc = d.doc;
    let Value::Object(i) = &doc.value else {
        return;
    };
    for (k, v) in i {
        if k == "tests" {
            if let Value::Array(items) = v {
                for (n, (iv, t)) in items.iter().zip(&suite.tests).enumerate() {
                    if let Ok(cv) = serde_json::to_value(t) {
                        unknown_keys(d, iv, &cv, &join_index("tests", n));
                    }
                }
            }
            continue;
        }
        unknown_key(d, &c, k, v, "");
    }
}

/// Duplicate keys and the format version.
fn other_checks(d: &mut Diags) {
    let doc = d.doc;
    for p in &doc.duplicate_keys {
        let diag = d.key_at(p, format!("{p}: duplicate key; the later value wins"), None);
        d.warnings.push(diag);
    }
    match doc.value.get("version") {
        None | Some(Value::Null) => {}
        Some(Value::Number(n)) if n.as_i64() == Some(1) => {}
        Some(Value::String(s)) if s == "1" => {}
        Some(other) => d.warn(
            "version",
            format!("unknown format version {other}; only 1 is recognised"),
        ),
    }
}

fn unknown_keys(d: &mut Diags, input: &Value, canonical: &Value, path: &str) {
    match (input, canonical) {
        (Value::Object(i), Value::Object(c)) => {
            for (k, v) in i {
                unknown_key(d, c, k, v, path);
            }
        }
        (Value::Array(i), Value::Array(c)) => {
            for (n, (iv, cv)) in i.iter().zip(c).enumerate() {
                unknown_keys(d, iv, cv, &join_index(path, n));
            }
        }
        _ => {}
    }
}

/// One input key `k` (with value `v`) of the mapping at `path`, against the canonical
/// mapping `c`: recurse when it is known, warn when it is not.
fn unknown_key(d: &mut Diags, c: &serde_json::Map<String, Value>, k: &str, v: &Value, path: &str) {
    let p = join_key(path, k);
    match c.get(k) {
        Some(cv) => unknown_keys(d, v, cv, &p),
        None => {
            let help =
                suggest(k, c.keys().map(String::as_str)).map(|s| format!("did you mean `{s}`?"));
            let diag = d.key_at(&p, format!("{p}: unknown key `{k}` is ignored"), help);
            d.warnings.push(diag);
        }
    }
}

fn finish<T>(
    mut errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
    doc: Doc,
    value: T,
    text: &str,
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
        text: text.to_string(),
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

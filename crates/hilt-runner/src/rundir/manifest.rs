//! manifest.json (BenchCI's shape) and artifact_manifest.json: sha256 and size per file.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::write_json_atomic;

/// Every regular file below `root` as a relative path (sorted), except those in `skip` and
/// hidden temporaries.
pub fn list_files(root: &Path, skip: &[&str]) -> std::io::Result<Vec<String>> {
    let mut files = Vec::new();
    walk(root, root, &mut files)?;
    let mut out: Vec<String> = files
        .into_iter()
        .map(|rel| rel.to_string_lossy().replace('\\', "/"))
        .filter(|r| !(skip.contains(&r.as_str()) || r.contains("/.") || r.starts_with('.')))
        .collect();
    out.sort();
    Ok(out)
}

/// [`list_files`] with the sha256 and size of each file.
pub fn file_entries(root: &Path, skip: &[&str]) -> std::io::Result<Vec<Value>> {
    list_files(root, skip)?
        .into_iter()
        .map(|rel| {
            let (sha, size) = hash_file(&root.join(&rel))?;
            Ok(json!({"path": rel, "sha256": sha, "size_bytes": size}))
        })
        .collect()
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let ft = entry.file_type()?;
        let path = entry.path();
        if ft.is_dir() {
            walk(root, &path, out)?;
        } else if ft.is_file() {
            out.push(path.strip_prefix(root).unwrap_or(&path).to_path_buf());
        }
    }
    Ok(())
}

/// sha256 (hex) and size of a file, streamed.
pub fn hash_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut f = fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        h.update(&buf[..n]);
    }
    Ok((hex::encode(h.finalize()), size))
}

/// Writes `artifact_manifest.json` and then `manifest.json` (last, as BenchCI does).
pub fn write_manifests(root: &Path) -> std::io::Result<()> {
    let generated_at = hilt_model::run::now();
    let root_s = root.display().to_string();
    // The publish ledger changes after the run (each `hilt runs publish`), so it is not
    // part of the run's fingerprint.
    let entries = file_entries(
        root,
        &[
            "manifest.json",
            "artifact_manifest.json",
            crate::publish::LEDGER_FILE,
        ],
    )?;
    write_json_atomic(
        &root.join("artifact_manifest.json"),
        &json!({"schema_version": "hilt.artifact_manifest.v1", "generated_at": generated_at,
                "root_dir": root_s, "artifact_count": entries.len(), "artifacts": entries}),
    )?;
    // Every file is hashed once: manifest.json = the same entries + artifact_manifest.json.
    let mut entries = entries;
    let (sha, size) = hash_file(&root.join("artifact_manifest.json"))?;
    entries.push(json!({"path": "artifact_manifest.json", "sha256": sha, "size_bytes": size}));
    entries.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));
    write_json_atomic(
        &root.join("manifest.json"),
        &json!({"schema_version": "benchci.artifact_manifest.v1", "generated_at": generated_at,
                "root_dir": root_s, "artifact_count": entries.len(), "artifacts": entries}),
    )
}

//! A finished run's results: `artifacts.zip` streamed to a file, then extracted safely (no
//! absolute paths, no `..`, no symlinks) into a directory.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Component, Path, PathBuf};

use super::{AgentClient, ClientError, segment};

/// Downloads `artifacts.zip` of `run_id` into `dest`. `Ok(false)` when the run has no
/// results (404).
pub fn download(client: &AgentClient, run_id: &str, dest: &Path) -> Result<bool, ClientError> {
    let path = format!("/v1/runs/{}/artifacts.zip", segment(run_id));
    let Some(resp) = client.get_raw(&path, "application/zip", true)? else {
        return Ok(false);
    };
    let local =
        |e: io::Error| ClientError::Protocol(format!("cannot write {}: {e}", dest.display()));
    if let Some(dir) = dest.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(local)?;
    }
    let part = dest.with_extension("zip.part");
    let mut out = BufWriter::new(File::create(&part).map_err(local)?);
    let mut body = resp.into_body().into_reader();
    if let Err(e) = io::copy(&mut body, &mut out) {
        let _ = std::fs::remove_file(&part);
        return Err(ClientError::Unreachable {
            url: client.base().to_string(),
            reason: format!("the download of artifacts.zip broke off: {e}"),
        });
    }
    out.flush().map_err(local)?;
    drop(out);
    std::fs::rename(&part, dest).map_err(local)?;
    Ok(true)
}

/// Why an entry was not extracted.
pub struct Skipped {
    pub name: String,
    pub why: &'static str,
}

/// The entry name as a relative path inside the target, or why it is refused.
pub fn safe_path(name: &str) -> Result<PathBuf, &'static str> {
    if name.contains('\0') {
        return Err("contains a NUL byte");
    }
    if name.starts_with('/') || name.starts_with('\\') {
        return Err("absolute path");
    }
    let p = Path::new(name);
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => out.push(s),
            Component::CurDir => {}
            Component::ParentDir => return Err("contains `..`"),
            Component::RootDir | Component::Prefix(_) => return Err("absolute path"),
        }
    }
    if name.split(['/', '\\']).any(|s| s == "..") {
        return Err("contains `..`");
    }
    if out.as_os_str().is_empty() {
        return Err("empty name");
    }
    Ok(out)
}

/// Extracts `zip` into `into` (created). Returns the refused entries.
pub fn extract(zip: &Path, into: &Path) -> io::Result<Vec<Skipped>> {
    let mut archive = zip::ZipArchive::new(File::open(zip)?).map_err(io::Error::other)?;
    std::fs::create_dir_all(into)?;
    let mut skipped = Vec::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(io::Error::other)?;
        let name = entry
            .name()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| String::from_utf8_lossy(entry.name_raw()).into_owned());
        let rel = match safe_path(&name) {
            Ok(p) => p,
            Err(why) => {
                skipped.push(Skipped { name, why });
                continue;
            }
        };
        if entry.is_symlink() {
            skipped.push(Skipped {
                name,
                why: "symbolic link",
            });
            continue;
        }
        let target = into.join(&rel);
        if entry.is_dir() {
            std::fs::create_dir_all(&target)?;
            continue;
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        // Never write through a symlink that is already there.
        if std::fs::symlink_metadata(&target).is_ok_and(|m| m.file_type().is_symlink()) {
            std::fs::remove_file(&target)?;
        }
        let mut out = BufWriter::new(File::create(&target)?);
        io::copy(&mut entry, &mut out)?;
        out.flush()?;
    }
    Ok(skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_names_are_refused() {
        assert_eq!(
            safe_path("results.json").unwrap(),
            Path::new("results.json")
        );
        assert_eq!(safe_path("./logs/a.log").unwrap(), Path::new("logs/a.log"));
        assert!(safe_path("/etc/passwd").is_err());
        assert!(safe_path("../x").is_err());
        assert!(safe_path("logs/../../x").is_err());
        assert!(safe_path("logs\\..\\x").is_err());
        assert!(safe_path("").is_err());
        assert!(safe_path("a\0b").is_err());
    }

    #[test]
    fn extracts_safe_entries_and_skips_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let zp = dir.path().join("a.zip");
        {
            let mut z = zip::ZipWriter::new(File::create(&zp).unwrap());
            let o = zip::write::SimpleFileOptions::default();
            z.start_file("results.json", o).unwrap();
            z.write_all(b"{}").unwrap();
            z.start_file("logs/dut.log", o).unwrap();
            z.write_all(b"hello").unwrap();
            z.start_file("../evil", o).unwrap();
            z.write_all(b"x").unwrap();
            z.start_file("/abs", o).unwrap();
            z.write_all(b"x").unwrap();
            z.finish().unwrap();
        }
        let out = dir.path().join("out");
        let skipped = extract(&zp, &out).unwrap();
        assert_eq!(std::fs::read(out.join("results.json")).unwrap(), b"{}");
        assert_eq!(std::fs::read(out.join("logs/dut.log")).unwrap(), b"hello");
        assert_eq!(skipped.len(), 2);
        assert!(!dir.path().join("evil").exists());
    }
}

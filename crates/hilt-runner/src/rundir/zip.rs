//! A run directory as a zip: what an agent serves at `/v1/runs/{id}/artifacts.zip`, what a
//! cloud agent uploads, and the `artifacts.zip` a local run leaves beside its documents.
//! Entries are stored, not deflated (results are small text or already-compressed firmware
//! and logs, and deflate on one core was the download's bottleneck), written while the
//! directory is read, so memory stays bounded whatever the size. Symlinks are not followed.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The local run's archive, in the run directory and left out of itself.
pub const LOCAL_ZIP: &str = "artifacts.zip";

const CHUNK: usize = 256 * 1024;

/// Regular files under `root`, sorted, except `skip` (paths relative to `root`).
fn files(root: &Path, skip: &[&str]) -> std::io::Result<Vec<PathBuf>> {
    let skip: Vec<PathBuf> = skip.iter().map(|s| root.join(s)).collect();
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            let ft = e.file_type()?;
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() && !skip.contains(&e.path()) {
                out.push(e.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Writes the zip of `root` (without the `skip` entries) into `sink`; returns the flushed
/// sink.
pub fn write_zip<W: Write>(root: &Path, skip: &[&str], sink: W) -> std::io::Result<W> {
    let mut z = zip::ZipWriter::new_stream(sink);
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(true);
    let mut buf = vec![0u8; CHUNK];
    for path in files(root, skip)? {
        let rel = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .to_string_lossy()
            .replace('\\', "/");
        z.start_file(rel, opts).map_err(std::io::Error::other)?;
        let mut f = std::fs::File::open(&path)?;
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            z.write_all(&buf[..n])?;
        }
    }
    let sink = z.finish().map_err(std::io::Error::other)?;
    let mut w = sink.into_inner();
    w.flush()?;
    Ok(w)
}

/// Writes the zip of `root` to the file `dest` (a temporary sibling renamed into place, so
/// a reader never sees half an archive) and syncs it. `dest` inside `root` is left out.
pub fn write_zip_file(root: &Path, dest: &Path) -> std::io::Result<()> {
    let parent = dest.parent().unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".artifacts-")
        .suffix(".zip.tmp")
        .tempfile_in(parent)?;
    // The temporary file and the destination are both skipped when they are inside root.
    let rel_tmp = tmp.path().strip_prefix(root).ok().map(Path::to_path_buf);
    let rel_dest = dest.strip_prefix(root).ok().map(Path::to_path_buf);
    let skip: Vec<String> = [rel_tmp, rel_dest]
        .into_iter()
        .flatten()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let skip: Vec<&str> = skip.iter().map(String::as_str).collect();
    let w = write_zip(
        root,
        &skip,
        std::io::BufWriter::with_capacity(CHUNK, tmp.as_file()),
    )?;
    w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    tmp.persist(dest).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(zip_path: &Path) -> Vec<String> {
        let f = std::fs::File::open(zip_path).unwrap();
        let z = zip::ZipArchive::new(f).unwrap();
        let mut n: Vec<String> = z.file_names().map(|n| n.unwrap().into_owned()).collect();
        n.sort();
        n
    }

    #[test]
    fn the_archive_holds_every_file_but_itself() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("results.json"), b"{}").unwrap();
        std::fs::create_dir(d.path().join("logs")).unwrap();
        std::fs::write(d.path().join("logs/uart.log"), b"PONG\n").unwrap();
        let dest = d.path().join(LOCAL_ZIP);
        write_zip_file(d.path(), &dest).unwrap();
        // A second archive over the first one still leaves the first out.
        write_zip_file(d.path(), &dest).unwrap();
        assert_eq!(names(&dest), ["logs/uart.log", "results.json"]);
        let leftovers: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn entry_content_is_the_file() {
        let d = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..600_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(d.path().join("big.bin"), &data).unwrap();
        let out = tempfile::tempdir().unwrap();
        let dest = out.path().join("a.zip");
        write_zip_file(d.path(), &dest).unwrap();
        let mut z = zip::ZipArchive::new(std::fs::File::open(&dest).unwrap()).unwrap();
        let mut got = Vec::new();
        z.by_name("big.bin").unwrap().read_to_end(&mut got).unwrap();
        assert_eq!(got, data);
    }
}

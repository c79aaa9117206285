//! Timestamped, human-readable log files (transport, gpio, power, measurement logs).

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

pub struct LogFile {
    path: PathBuf,
    out: Option<BufWriter<File>>,
}

impl LogFile {
    /// Opens for appending; parent directories are created.
    pub fn open(path: &Path) -> std::io::Result<LogFile> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let f = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(LogFile {
            path: path.to_path_buf(),
            out: Some(BufWriter::with_capacity(64 * 1024, f)),
        })
    }

    pub fn path_string(&self) -> String {
        self.path.display().to_string()
    }

    /// `<timestamp> <text>\n`.
    pub fn line(&mut self, text: &str) {
        if let Some(out) = &mut self.out {
            let _ = writeln!(out, "{} {text}", hilt_model::run::now());
        }
    }

    /// `<timestamp> <dir> <n>B <escaped bytes>\n` for raw traffic.
    pub fn bytes(&mut self, dir: &str, data: &[u8]) {
        if let Some(out) = &mut self.out {
            let _ = write!(out, "{} {dir} {}B ", hilt_model::run::now(), data.len());
            let _ = out.write_all(escape(data).as_bytes());
            let _ = out.write_all(b"\n");
        }
    }

    pub fn flush(&mut self) {
        if let Some(out) = &mut self.out {
            let _ = out.flush();
        }
    }
}

impl Drop for LogFile {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Printable ASCII as is; `\r`, `\n`, `\t`, `\\` escaped; everything else `\xNN`.
/// Valid UTF-8 text outside ASCII is kept.
pub fn escape(data: &[u8]) -> String {
    let text = String::from_utf8_lossy(data);
    let mut s = String::with_capacity(data.len() + 8);
    for c in text.chars() {
        match c {
            '\r' => s.push_str("\\r"),
            '\n' => s.push_str("\\n"),
            '\t' => s.push_str("\\t"),
            '\\' => s.push_str("\\\\"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                s.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => s.push(c),
        }
    }
    s
}

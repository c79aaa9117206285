//! Append-only JSON-lines ledgers.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::Path;

pub struct Ledger {
    out: BufWriter<File>,
}

impl Ledger {
    pub fn open(path: &Path) -> std::io::Result<Ledger> {
        let f = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Ledger {
            out: BufWriter::with_capacity(64 * 1024, f),
        })
    }

    pub fn append(&mut self, value: &impl serde::Serialize) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.out, value).map_err(std::io::Error::other)?;
        self.out.write_all(b"\n")
    }

    /// Pushes buffered lines to the file (not necessarily to disk).
    pub fn flush_buffer(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }

    /// Pushes buffered lines to the file and to disk.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_data()
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        let _ = self.out.flush();
    }
}

//! Request bodies built as a chain of readers with a length known up front, so a 200 MB
//! firmware image is streamed from its file and never held in memory: `multipart/form-data`
//! for `POST /v1/runs` and the JSON document with an inline base64 artifact for
//! `POST /v1/runs/json`.

use std::collections::VecDeque;
use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Cursor, Read};
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

type Part = Box<dyn Read + Send>;

/// A body: readers read one after the other, and their total length.
pub struct Body {
    parts: VecDeque<Part>,
    len: u64,
}

impl Body {
    fn new() -> Body {
        Body {
            parts: VecDeque::new(),
            len: 0,
        }
    }

    fn push_bytes(&mut self, b: impl Into<Vec<u8>>) {
        let b = b.into();
        self.len += b.len() as u64;
        self.parts.push_back(Box::new(Cursor::new(b)));
    }

    /// A reader of exactly `len` bytes.
    fn push_reader(&mut self, r: Part, len: u64) {
        self.len += len;
        self.parts.push_back(r);
    }

    pub fn len(&self) -> u64 {
        self.len
    }
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while let Some(p) = self.parts.front_mut() {
            let n = p.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            self.parts.pop_front();
        }
        Ok(0)
    }
}

/// Opens `path` and returns it limited to its current length (so a file that grows while it
/// is sent cannot overrun the announced Content-Length) with that length.
pub fn open(path: &Path) -> io::Result<(Part, u64)> {
    // Checked before opening: opening a FIFO without a writer would block.
    hilt_model::load::ensure_regular_file(path)?;
    let f = File::open(path)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    let len = meta.len();
    Ok((Box::new(Exact::new(f, len)), len))
}

/// A reader of exactly `len` bytes: fails if the source ends early (the file shrank).
struct Exact<R> {
    inner: io::Take<R>,
}

impl<R: Read> Exact<R> {
    fn new(r: R, len: u64) -> Exact<R> {
        Exact { inner: r.take(len) }
    }
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() && self.inner.limit() > 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file got shorter while it was being sent",
            ));
        }
        Ok(n)
    }
}

/// A `multipart/form-data` body (RFC 7578).
pub struct Multipart {
    boundary: String,
    body: Body,
}

impl Default for Multipart {
    fn default() -> Self {
        Multipart::new()
    }
}

impl Multipart {
    pub fn new() -> Multipart {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        h.write_u32(std::process::id());
        Multipart {
            boundary: format!("----hilt-form-{:016x}", h.finish()),
            body: Body::new(),
        }
    }

    pub fn content_type(&self) -> String {
        format!("multipart/form-data; boundary={}", self.boundary)
    }

    pub fn text(&mut self, name: &str, value: &str) {
        self.body.push_bytes(format!(
            "--{}\r\nContent-Disposition: form-data; name=\"{}\"\r\n\r\n{value}\r\n",
            self.boundary,
            quote(name)
        ));
    }

    /// A file part whose content is `len` bytes read from `content`.
    pub fn file(
        &mut self,
        name: &str,
        filename: &str,
        content_type: &str,
        content: Part,
        len: u64,
    ) {
        self.body.push_bytes(format!(
            "--{}\r\nContent-Disposition: form-data; name=\"{}\"; filename=\"{}\"\r\nContent-Type: {content_type}\r\n\r\n",
            self.boundary,
            quote(name),
            quote(filename)
        ));
        self.body.push_reader(content, len);
        self.body.push_bytes("\r\n");
    }

    /// The finished body (closing boundary added).
    pub fn finish(mut self) -> Body {
        self.body.push_bytes(format!("--{}--\r\n", self.boundary));
        self.body
    }
}

/// A quoted-string value of Content-Disposition: quotes and line breaks escaped the way
/// browsers do.
fn quote(s: &str) -> String {
    s.replace('"', "%22")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// The `POST /v1/runs/json` document; the artifact is base64-encoded while it is sent.
pub fn run_json(
    fields: &serde_json::Map<String, serde_json::Value>,
    artifact: Option<(Part, u64)>,
) -> Body {
    let mut body = Body::new();
    let mut head = serde_json::to_string(fields).unwrap_or_else(|_| "{}".into());
    match artifact {
        None => body.push_bytes(head),
        Some((file, len)) => {
            head.pop(); // the closing brace
            if !fields.is_empty() {
                head.push(',');
            }
            head.push_str("\"artifact_base64\":\"");
            body.push_bytes(head);
            body.push_reader(Box::new(Base64Reader::new(file)), base64_len(len));
            body.push_bytes("\"}");
        }
    }
    body
}

/// Length of the padded standard base64 encoding of `n` bytes.
pub fn base64_len(n: u64) -> u64 {
    n.div_ceil(3) * 4
}

/// Encodes what it reads as standard padded base64.
pub struct Base64Reader<R> {
    inner: R,
    raw: Vec<u8>,
    out: Vec<u8>,
    pos: usize,
    eof: bool,
}

const RAW_CHUNK: usize = 48 * 1024;

impl<R: Read> Base64Reader<R> {
    pub fn new(inner: R) -> Base64Reader<R> {
        Base64Reader {
            inner,
            raw: Vec::with_capacity(RAW_CHUNK + 3),
            out: Vec::new(),
            pos: 0,
            eof: false,
        }
    }

    /// Refills `out`; false at the end.
    fn refill(&mut self) -> io::Result<bool> {
        self.out.clear();
        self.pos = 0;
        while self.out.is_empty() {
            if self.eof {
                if self.raw.is_empty() {
                    return Ok(false);
                }
                self.out = STANDARD.encode(&self.raw).into_bytes();
                self.raw.clear();
                continue;
            }
            let have = self.raw.len();
            self.raw.resize(RAW_CHUNK, 0);
            let n = match self.inner.read(&mut self.raw[have..]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
                Err(e) => {
                    self.raw.truncate(have);
                    return Err(e);
                }
            };
            self.raw.truncate(have + n);
            if n == 0 {
                self.eof = true;
                continue;
            }
            let whole = self.raw.len() / 3 * 3;
            if whole > 0 {
                self.out = STANDARD.encode(&self.raw[..whole]).into_bytes();
                self.raw.drain(..whole);
            }
        }
        Ok(true)
    }
}

impl<R: Read> Read for Base64Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.pos >= self.out.len() && !self.refill()? {
            return Ok(0);
        }
        let n = buf.len().min(self.out.len() - self.pos);
        buf[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(mut r: impl Read) -> Vec<u8> {
        let mut v = Vec::new();
        r.read_to_end(&mut v).unwrap();
        v
    }

    /// Hands out at most `step` bytes per read, to exercise partial reads.
    struct Trickle(Cursor<Vec<u8>>, usize);

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.1);
            self.0.read(&mut buf[..n])
        }
    }

    #[test]
    fn base64_matches_the_engine_whatever_the_read_sizes() {
        for n in [
            0usize,
            1,
            2,
            3,
            4,
            5,
            100,
            RAW_CHUNK - 1,
            RAW_CHUNK,
            RAW_CHUNK + 1,
            3 * RAW_CHUNK + 2,
        ] {
            let data: Vec<u8> = (0..n).map(|i| (i * 7 + i / 3) as u8).collect();
            for step in [1, 2, 5, 4096, usize::MAX] {
                let got = read_all(Base64Reader::new(Trickle(Cursor::new(data.clone()), step)));
                assert_eq!(
                    got,
                    STANDARD.encode(&data).into_bytes(),
                    "n={n} step={step}"
                );
                assert_eq!(got.len() as u64, base64_len(n as u64));
            }
        }
    }

    #[test]
    fn json_body_with_artifact_is_valid_json_of_the_announced_length() {
        let mut fields = serde_json::Map::new();
        fields.insert("bench_id".into(), "b".into());
        fields.insert("suite_yaml".into(), "version: 1\n\"q\"".into());
        let data = b"\x7fELF and some bytes".to_vec();
        let body = run_json(
            &fields,
            Some((Box::new(Cursor::new(data.clone())), data.len() as u64)),
        );
        let len = body.len();
        let bytes = read_all(body);
        assert_eq!(bytes.len() as u64, len);
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["suite_yaml"], "version: 1\n\"q\"");
        assert_eq!(
            STANDARD
                .decode(v["artifact_base64"].as_str().unwrap())
                .unwrap(),
            data
        );
        let plain = read_all(run_json(&fields, None));
        let v: serde_json::Value = serde_json::from_slice(&plain).unwrap();
        assert!(v.get("artifact_base64").is_none());
    }

    #[test]
    fn multipart_layout_and_length() {
        let mut m = Multipart::new();
        let ct = m.content_type();
        let boundary = ct.split("boundary=").nth(1).unwrap().to_string();
        m.text("skip_flash", "true");
        m.file(
            "artifact",
            "fw\".bin",
            "application/octet-stream",
            Box::new(Cursor::new(b"abc".to_vec())),
            3,
        );
        let body = m.finish();
        let len = body.len();
        let bytes = read_all(body);
        assert_eq!(bytes.len() as u64, len);
        let text = String::from_utf8(bytes).unwrap();
        assert_eq!(
            text,
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"skip_flash\"\r\n\r\ntrue\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"artifact\"; filename=\"fw%22.bin\"\r\nContent-Type: application/octet-stream\r\n\r\nabc\r\n--{boundary}--\r\n"
            )
        );
    }

    #[test]
    fn a_file_that_shrinks_is_an_error() {
        let mut r = Exact::new(Cursor::new(vec![1u8; 3]), 5);
        let mut v = Vec::new();
        assert!(r.read_to_end(&mut v).is_err());
    }
}

//! HTTP clients of the `agent` benchmark: a tiny keep-alive HTTP/1.1 client on a raw
//! `TcpStream` (for the latency and cold-start probes, where every microsecond is ours to
//! account for) and a `ureq` wrapper for the JSON API and the streaming download.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

/// One keep-alive connection speaking just enough HTTP/1.1 for `GET` of small bodies.
pub struct Conn {
    addr: SocketAddr,
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub fn connect(addr: SocketAddr) -> io::Result<Conn> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(Conn {
            addr,
            stream,
            buf: Vec::with_capacity(4096),
        })
    }

    /// `GET path`; returns the status code and the body. The connection stays open unless
    /// the server said `Connection: close` (then the next call reconnects).
    pub fn get(&mut self, path: &str) -> io::Result<(u16, Vec<u8>)> {
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\n\r\n",
            self.addr
        );
        self.stream.write_all(req.as_bytes())?;
        let (status, body, close) = self.read_response()?;
        if close {
            *self = Conn::connect(self.addr)?;
        }
        Ok((status, body))
    }

    /// As [`Conn::get`], reconnecting once when the server closed an idle connection.
    pub fn get_retry(&mut self, path: &str) -> io::Result<(u16, Vec<u8>)> {
        match self.get(path) {
            Ok(r) => Ok(r),
            Err(_) => {
                *self = Conn::connect(self.addr)?;
                self.get(path)
            }
        }
    }

    fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 8192];
        let n = self.stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed by the server",
            ));
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    fn read_response(&mut self) -> io::Result<(u16, Vec<u8>, bool)> {
        let head_end = loop {
            if let Some(p) = find(&self.buf, b"\r\n\r\n") {
                break p + 4;
            }
            self.fill()?;
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        self.buf.drain(..head_end);
        let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("no status line"))?;
        let mut length = None;
        let mut chunked = false;
        let mut close = false;
        for l in lines {
            let Some((k, v)) = l.split_once(':') else {
                continue;
            };
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_ascii_lowercase());
            match k.as_str() {
                "content-length" => length = v.parse::<usize>().ok(),
                "transfer-encoding" => chunked = v.contains("chunked"),
                "connection" => close = v == "close",
                _ => {}
            }
        }
        let body = if chunked {
            let mut body = Vec::new();
            loop {
                let line_end = loop {
                    if let Some(p) = find(&self.buf, b"\r\n") {
                        break p;
                    }
                    self.fill()?;
                };
                let size_text = String::from_utf8_lossy(&self.buf[..line_end]).into_owned();
                let size =
                    usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                        .map_err(|_| bad("bad chunk size"))?;
                self.buf.drain(..line_end + 2);
                while self.buf.len() < size + 2 {
                    self.fill()?;
                }
                body.extend_from_slice(&self.buf[..size]);
                self.buf.drain(..size + 2);
                if size == 0 {
                    break;
                }
            }
            body
        } else {
            let n = length.ok_or_else(|| bad("no content-length"))?;
            while self.buf.len() < n {
                self.fill()?;
            }
            self.buf.drain(..n).collect()
        };
        Ok((status, body, close))
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `GET /health` on a fresh connection; `true` on a 200.
pub fn healthy_once(addr: SocketAddr) -> bool {
    match Conn::connect(addr) {
        Ok(mut c) => matches!(c.get("/health"), Ok((200, _))),
        Err(_) => false,
    }
}

/// The JSON API through `ureq` (keep-alive pool shared by clones).
#[derive(Clone)]
pub struct Api {
    http: ureq::Agent,
    pub base: String,
}

impl Api {
    pub fn new(port: u16) -> Api {
        let http = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_per_read(Some(Duration::from_secs(120)))
            .max_idle_connections_per_host(64)
            .build()
            .new_agent();
        Api {
            http,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    pub fn get_json(&self, path: &str) -> anyhow::Result<Value> {
        let mut r = self
            .http
            .get(format!("{}{path}", self.base))
            .call()
            .with_context(|| format!("GET {path}"))?;
        let status = r.status().as_u16();
        let text = r.body_mut().read_to_string()?;
        if status != 200 {
            bail!("GET {path}: HTTP {status}: {text}");
        }
        Ok(serde_json::from_str(&text)?)
    }

    pub fn post_json(&self, path: &str, body: &[u8]) -> anyhow::Result<Value> {
        let mut r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("Content-Type", "application/json")
            .send(body)
            .with_context(|| format!("POST {path}"))?;
        let status = r.status().as_u16();
        let text = r.body_mut().read_to_string()?;
        if status != 200 {
            bail!("POST {path}: HTTP {status}: {text}");
        }
        Ok(serde_json::from_str(&text)?)
    }

    /// Streams `GET path` into `out` with a 256 KiB buffer; returns the bytes written.
    pub fn download(&self, path: &str, out: &mut dyn Write) -> anyhow::Result<u64> {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .call()
            .with_context(|| format!("GET {path}"))?;
        let status = r.status().as_u16();
        let mut body = r.into_body();
        if status != 200 {
            let text = body.read_to_string().unwrap_or_default();
            bail!("GET {path}: HTTP {status}: {text}");
        }
        let mut reader = body.into_reader();
        let mut buf = vec![0u8; 256 * 1024];
        let mut total = 0u64;
        loop {
            let n = reader.read(&mut buf)?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n])?;
            total += n as u64;
        }
        out.flush()?;
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// Serves `replies` in order on one connection, one per request head received.
    fn serve(replies: Vec<&'static [u8]>) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut seen = Vec::new();
            for r in replies {
                while find(&seen, b"\r\n\r\n").is_none() {
                    let mut b = [0u8; 1024];
                    let n = s.read(&mut b).unwrap();
                    seen.extend_from_slice(&b[..n]);
                }
                let end = find(&seen, b"\r\n\r\n").unwrap() + 4;
                seen.drain(..end);
                s.write_all(r).unwrap();
            }
        });
        addr
    }

    #[test]
    fn keep_alive_content_length_and_chunked() {
        let addr = serve(vec![
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
        ]);
        let mut c = Conn::connect(addr).unwrap();
        assert_eq!(c.get("/health").unwrap(), (200, b"hello".to_vec()));
        assert_eq!(c.get("/x").unwrap(), (404, b"abcde".to_vec()));
    }
}

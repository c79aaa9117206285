//! A UART transport during a run: a reader thread fills a rolling receive buffer and the
//! transport log; `expect` waits on it without polling.
//!
//! Matching follows BenchCI: the whole rolling buffer since the port was opened is searched,
//! nothing is consumed, so text printed before the step (even in an earlier test) counts.
//! hilt bounds the buffer by bytes (the last 200 000 bytes, cut at a UTF-8 boundary), and
//! offers `scope: since_mark` to search only text after the previous send or match.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hilt_hw::CancelToken;
use hilt_hw::serial::SerialPort;

use crate::logfile::LogFile;

/// Bytes kept for matching.
pub const BUFFER_BYTES: usize = 200_000;
/// How often the reader checks for stop; also the cost of closing a port at the end of a run.
const READ_SLICE: Duration = Duration::from_millis(2);

#[derive(Default)]
struct Buffer {
    data: Vec<u8>,
    /// Stream offset of `data[0]`.
    base: u64,
    /// Offset after the previous send or match, for `since_mark`.
    mark: u64,
    error: Option<String>,
}

impl Buffer {
    fn end(&self) -> u64 {
        self.base + self.data.len() as u64
    }

    fn push(&mut self, bytes: &[u8]) {
        self.data.extend_from_slice(bytes);
        // Trim in halves so the copy is amortised.
        if self.data.len() > 2 * BUFFER_BYTES {
            let mut cut = self.data.len() - BUFFER_BYTES;
            while cut < self.data.len() && (self.data[cut] & 0xC0) == 0x80 {
                cut += 1;
            }
            self.data.drain(..cut);
            self.base += cut as u64;
        }
    }

    /// Search window start (index into data) for a search beginning at stream offset `from`.
    fn index_of(&self, from: u64) -> usize {
        let window_start = self
            .end()
            .saturating_sub(BUFFER_BYTES as u64)
            .max(self.base);
        (from.max(window_start) - self.base) as usize
    }
}

struct Shared {
    buf: Mutex<Buffer>,
    cv: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Buffer> {
        self.buf.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub enum Matcher {
    Contains(Vec<u8>),
    Regex(regex::bytes::Regex),
}

/// Why an expectation ended without a match.
pub enum ExpectMiss {
    Timeout { received_total: u64, tail: String },
    Io(String),
    Cancelled,
}

pub struct Uart {
    /// Written to (then closed) to wake the reader out of poll() when stopping.
    wake: Option<OwnedFd>,
    writer: Box<dyn SerialPort>,
    shared: Arc<Shared>,
    log: Arc<Mutex<LogFile>>,
    stop: Arc<AtomicBool>,
    reader: Option<JoinHandle<()>>,
}

impl Uart {
    /// Starts reading `port` at once, so everything the device prints is kept.
    pub fn start(port: Box<dyn SerialPort>, log: LogFile, name: &str) -> std::io::Result<Uart> {
        let mut reader_port = port.try_clone_port()?;
        let shared = Arc::new(Shared {
            buf: Mutex::new(Buffer::default()),
            cv: Condvar::new(),
        });
        let log = Arc::new(Mutex::new(log));
        let stop = Arc::new(AtomicBool::new(false));
        // The reader sleeps in poll() on the port and a wake pipe, so stopping is immediate.
        let (wake_r, wake_w) = nix::unistd::pipe().map_err(std::io::Error::from)?;
        let reader = {
            let (shared, log, stop) = (shared.clone(), log.clone(), stop.clone());
            std::thread::Builder::new()
                .name(format!("uart-{name}"))
                .spawn(move || {
                    let mut chunk = vec![0u8; 64 * 1024];
                    while !stop.load(Ordering::Relaxed) {
                        let slice = match reader_port.poll_fd() {
                            Some(fd) => match wait_readable(fd, wake_r.as_fd()) {
                                Readable::Port => Duration::ZERO,
                                Readable::Wake => break,
                                Readable::Nothing => continue,
                            },
                            None => READ_SLICE,
                        };
                        match reader_port.read_timeout(&mut chunk, slice) {
                            Ok(0) => {}
                            Ok(n) => {
                                log.lock()
                                    .unwrap_or_else(|e| e.into_inner())
                                    .bytes("RX", &chunk[..n]);
                                shared.lock().push(&chunk[..n]);
                                shared.cv.notify_all();
                            }
                            Err(e) => {
                                let msg = match e.raw_os_error() {
                                    Some(5) => {
                                        "the device went away (I/O error: port closed or unplugged)"
                                            .to_string()
                                    }
                                    _ => format!("read failed: {e}"),
                                };
                                log.lock()
                                    .unwrap_or_else(|e| e.into_inner())
                                    .line(&format!("ERROR {msg}"));
                                shared.lock().error = Some(msg);
                                shared.cv.notify_all();
                                return;
                            }
                        }
                    }
                })?
        };
        Ok(Uart {
            wake: Some(wake_w),
            writer: port,
            shared,
            log,
            stop,
            reader: Some(reader),
        })
    }

    pub fn send(&mut self, data: &[u8]) -> Result<(), String> {
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .bytes("TX", data);
        {
            let mut b = self.shared.lock();
            b.mark = b.end();
        }
        self.writer
            .write_all_bytes(data)
            .map_err(|e| format!("write failed: {e}"))
    }

    /// Waits until `m` matches, `within` passes or `cancel` fires.
    pub fn expect(
        &self,
        m: &Matcher,
        since_mark: bool,
        within: Duration,
        cancel: &CancelToken,
    ) -> Result<String, ExpectMiss> {
        let start = if since_mark {
            self.shared.lock().mark
        } else {
            0
        };
        self.expect_since(m, start, since_mark, within, cancel)
    }

    /// Stream offset of the next byte to arrive: text received from now on starts here.
    pub fn end_offset(&self) -> u64 {
        self.shared.lock().end()
    }

    /// Like [`Uart::expect`], searching only text received from stream offset `start` on
    /// (a fuzz case's output, a recovery oracle's answers). `within` zero checks once.
    pub fn expect_from(
        &self,
        m: &Matcher,
        start: u64,
        within: Duration,
        cancel: &CancelToken,
    ) -> Result<String, ExpectMiss> {
        self.expect_since(m, start, true, within, cancel)
    }

    fn expect_since(
        &self,
        m: &Matcher,
        start: u64,
        since_mark: bool,
        within: Duration,
        cancel: &CancelToken,
    ) -> Result<String, ExpectMiss> {
        let deadline = Instant::now() + within;
        let mut b = self.shared.lock();
        // Stream offset up to which `contains` has already searched.
        let mut searched = start;
        let mut searched_end = u64::MAX;
        loop {
            if b.end() != searched_end {
                searched_end = b.end();
                let found = match m {
                    Matcher::Contains(needle) => {
                        let from = searched
                            .saturating_sub(needle.len().saturating_sub(1) as u64)
                            .max(start);
                        let i = b.index_of(from);
                        find(&b.data[i..], needle).map(|p| (i + p, i + p + needle.len()))
                    }
                    Matcher::Regex(re) => {
                        let i = b.index_of(start);
                        re.find(&b.data[i..]).map(|x| (i + x.start(), i + x.end()))
                    }
                };
                searched = b.end();
                if let Some((s, e)) = found {
                    let text = String::from_utf8_lossy(&b.data[s..e]).into_owned();
                    b.mark = b.base + e as u64;
                    return Ok(text);
                }
            }
            if let Some(err) = &b.error {
                return Err(ExpectMiss::Io(err.clone()));
            }
            if cancel.is_cancelled() {
                return Err(ExpectMiss::Cancelled);
            }
            let now = Instant::now();
            if now >= deadline {
                let from = if since_mark { b.index_of(start) } else { 0 };
                return Err(ExpectMiss::Timeout {
                    received_total: b.end(),
                    tail: tail_lines(&b.data[from..]),
                });
            }
            let wait = (deadline - now).min(READ_SLICE);
            b = self
                .shared
                .cv
                .wait_timeout(b, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// The last lines received from stream offset `start` on, escaped, for messages.
    pub fn tail_from(&self, start: u64) -> String {
        let b = self.shared.lock();
        let i = b.index_of(start);
        tail_lines(&b.data[i..])
    }

    /// Reads one line starting with `prefix` received since the last send, within `within`.
    pub fn read_line_with_prefix(
        &self,
        prefix: &str,
        within: Duration,
        cancel: &CancelToken,
    ) -> Option<String> {
        let pattern = format!(r"(?m){}[^\r\n]*\r?\n", regex::escape(prefix));
        let re = regex::bytes::Regex::new(&pattern).ok()?;
        self.expect(&Matcher::Regex(re), true, within, cancel)
            .ok()
            .map(|s| s.trim_end().to_string())
    }

    pub fn log_path(&self) -> String {
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .path_string()
    }

    /// A line of the bench's own in the transport log (`<timestamp> <text>`).
    pub fn note(&self, text: &str) {
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .line(text);
    }

    /// Stops the reader and flushes the log.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(w) = self.wake.take() {
            let _ = nix::unistd::write(&w, b"x");
        }
        if let Some(t) = self.reader.take() {
            let _ = t.join();
        }
        self.log.lock().unwrap_or_else(|e| e.into_inner()).flush();
    }
}

impl Drop for Uart {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The last few lines of `data` (at most 3 lines, 160 bytes), escaped, for messages.
fn tail_lines(data: &[u8]) -> String {
    let start = data.len().saturating_sub(160);
    let mut cut = start;
    let mut newlines = 0;
    for i in (start..data.len().saturating_sub(1)).rev() {
        if data[i] == b'\n' {
            newlines += 1;
            if newlines == 3 {
                cut = i + 1;
                break;
            }
        }
    }
    if newlines < 3 && start == 0 {
        cut = 0;
    }
    crate::logfile::escape(&data[cut..])
}

enum Readable {
    Port,
    Wake,
    Nothing,
}

/// Waits (at most 100 ms) until the port has data or the wake pipe is written.
fn wait_readable(port: BorrowedFd<'_>, wake: BorrowedFd<'_>) -> Readable {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let mut fds = [
        PollFd::new(port, PollFlags::POLLIN),
        PollFd::new(wake, PollFlags::POLLIN),
    ];
    match poll(&mut fds, PollTimeout::from(100u16)) {
        Ok(n) if n > 0 => {
            if fds[1].revents().is_some_and(|r| !r.is_empty()) {
                Readable::Wake
            } else if fds[0].revents().is_some_and(|r| !r.is_empty()) {
                Readable::Port
            } else {
                Readable::Nothing
            }
        }
        _ => Readable::Nothing,
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    let first = needle[0];
    let mut i = 0;
    while i + needle.len() <= hay.len() {
        match hay[i..=hay.len() - needle.len()]
            .iter()
            .position(|&b| b == first)
        {
            None => return None,
            Some(p) => {
                i += p;
                if &hay[i..i + needle.len()] == needle {
                    return Some(i);
                }
                i += 1;
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_is_the_last_three_lines() {
        assert_eq!(tail_lines(b"a\r\nb\r\nc\r\nd\r\n"), "b\\r\\nc\\r\\nd\\r\\n");
        assert_eq!(tail_lines(b"x"), "x");
        assert_eq!(tail_lines(b""), "");
    }

    #[test]
    fn find_works() {
        assert_eq!(find(b"hello world", b"world"), Some(6));
        assert_eq!(find(b"aaab", b"aab"), Some(1));
        assert_eq!(find(b"abc", b"abcd"), None);
    }

    #[test]
    fn buffer_trims_at_char_boundary() {
        let mut b = Buffer::default();
        let chunk = "é".repeat(50_000);
        for _ in 0..5 {
            b.push(chunk.as_bytes());
        }
        assert!(std::str::from_utf8(&b.data).is_ok());
        assert!(b.data.len() <= 2 * BUFFER_BYTES);
        assert_eq!(b.end(), 500_000);
    }
}

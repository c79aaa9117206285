//! The DUT's transmit path: time-stamped chunks on their way to the wire, with reply
//! latency, jitter, line noise and the `silent` fault applied when a line is queued.

use std::collections::VecDeque;
use std::time::Duration;

use crate::rng::XorShift64;

/// Beyond this many queued-but-unsent bytes new output is dropped, like a UART overrun.
pub const MAX_QUEUED_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug)]
pub struct OutputQueue {
    /// Chunks in non-decreasing `due` order: the wire never reorders.
    chunks: VecDeque<(Duration, Vec<u8>)>,
    queued: usize,
    last_due: Duration,
    latency: Duration,
    jitter_us: u64,
    /// Probability per line of one inserted garbage byte.
    pub noise: f64,
    /// Drops everything (the `silent` fault).
    pub silent: bool,
    rng: XorShift64,
}

impl OutputQueue {
    pub fn new(latency_ms: u64, jitter_ms: u64, noise: f64, seed: u64) -> Self {
        OutputQueue {
            chunks: VecDeque::new(),
            queued: 0,
            last_due: Duration::ZERO,
            latency: Duration::from_millis(latency_ms),
            jitter_us: jitter_ms.saturating_mul(1000),
            noise,
            silent: false,
            rng: XorShift64::new(seed),
        }
    }

    /// When a reply to a command received at `now` goes out: latency plus random jitter.
    pub fn reply_due(&mut self, now: Duration) -> Duration {
        let jitter = if self.jitter_us > 0 {
            Duration::from_micros(self.rng.up_to(self.jitter_us))
        } else {
            Duration::ZERO
        };
        now + self.latency + jitter
    }

    /// Queues one line (without terminator); `\r\n` is appended.
    pub fn line(&mut self, due: Duration, text: &str) {
        if self.silent {
            return;
        }
        let mut buf = Vec::with_capacity(text.len() + 3);
        self.encode_line(&mut buf, text.as_bytes());
        self.push(due, buf);
    }

    /// Queues many lines as one chunk (one allocation, one write when the time comes).
    pub fn lines<'a>(&mut self, due: Duration, lines: impl IntoIterator<Item = &'a str>) {
        if self.silent {
            return;
        }
        let mut buf = Vec::new();
        for text in lines {
            self.encode_line(&mut buf, text.as_bytes());
        }
        self.push(due, buf);
    }

    /// Queues `count` generated lines as one chunk: `text_of(i, buf)` appends the text of
    /// line `i`. Noise applies per line; generation stops at the overrun limit.
    pub fn bulk(&mut self, due: Duration, count: u64, mut text_of: impl FnMut(u64, &mut Vec<u8>)) {
        if self.silent || count == 0 {
            return;
        }
        let mut buf = Vec::new();
        let mut scratch = Vec::with_capacity(64);
        for i in 0..count {
            scratch.clear();
            text_of(i, &mut scratch);
            self.encode_line(&mut buf, &scratch);
            if self.queued + buf.len() > MAX_QUEUED_BYTES {
                break;
            }
        }
        self.push(due, buf);
    }

    fn encode_line(&mut self, buf: &mut Vec<u8>, text: &[u8]) {
        if self.noise > 0.0 && self.rng.chance(self.noise) {
            let pos = self.rng.up_to(text.len() as u64) as usize;
            let garbage = loop {
                let b = self.rng.next_u64() as u8;
                if b != b'\r' && b != b'\n' {
                    break b;
                }
            };
            buf.extend_from_slice(&text[..pos]);
            buf.push(garbage);
            buf.extend_from_slice(&text[pos..]);
        } else {
            buf.extend_from_slice(text);
        }
        buf.extend_from_slice(b"\r\n");
    }

    fn push(&mut self, due: Duration, bytes: Vec<u8>) {
        if bytes.is_empty() || self.queued + bytes.len() > MAX_QUEUED_BYTES {
            return;
        }
        let due = due.max(self.last_due);
        self.last_due = due;
        self.queued += bytes.len();
        match self.chunks.back_mut() {
            Some((last, tail)) if *last == due && tail.len() < 64 * 1024 => {
                tail.extend_from_slice(&bytes)
            }
            _ => self.chunks.push_back((due, bytes)),
        }
    }

    /// Moves every chunk due at `now` into `out`.
    pub fn take_due(&mut self, now: Duration, out: &mut Vec<u8>) {
        while let Some((due, _)) = self.chunks.front() {
            if *due > now {
                break;
            }
            let (_, bytes) = self.chunks.pop_front().expect("front exists");
            self.queued -= bytes.len();
            if out.is_empty() {
                *out = bytes;
            } else {
                out.extend_from_slice(&bytes);
            }
        }
    }

    /// When the next chunk becomes due.
    pub fn next_due(&self) -> Option<Duration> {
        self.chunks.front().map(|(due, _)| *due)
    }

    /// Drops output not yet on the wire (the device lost power or went into reset).
    pub fn discard(&mut self) {
        self.chunks.clear();
        self.queued = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn lines_come_out_in_order_when_due() {
        let mut q = OutputQueue::new(0, 0, 0.0, 1);
        q.line(ms(10), "b");
        q.line(ms(5), "c"); // earlier due must not overtake
        let mut out = Vec::new();
        q.take_due(ms(9), &mut out);
        assert!(out.is_empty());
        assert_eq!(q.next_due(), Some(ms(10)));
        q.take_due(ms(10), &mut out);
        assert_eq!(out, b"b\r\nc\r\n");
        assert_eq!(q.next_due(), None);
    }

    #[test]
    fn latency_and_jitter_bounds() {
        let mut q = OutputQueue::new(5, 3, 0.0, 9);
        for _ in 0..200 {
            let due = q.reply_due(ms(100));
            assert!(due >= ms(105) && due <= ms(108), "{due:?}");
        }
    }

    #[test]
    fn silent_and_discard() {
        let mut q = OutputQueue::new(0, 0, 0.0, 1);
        q.silent = true;
        q.line(ms(0), "x");
        assert_eq!(q.next_due(), None);
        q.silent = false;
        q.line(ms(1), "y");
        q.discard();
        let mut out = Vec::new();
        q.take_due(ms(100), &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn full_noise_inserts_one_byte_per_line() {
        let mut q = OutputQueue::new(0, 0, 1.0, 3);
        q.lines(ms(0), ["hello", "world"]);
        let mut out = Vec::new();
        q.take_due(ms(0), &mut out);
        let lines: Vec<&[u8]> = out.split(|&b| b == b'\n').collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].len(), "hello\r".len() + 1);
        assert_eq!(lines[1].len(), "world\r".len() + 1);
    }

    #[test]
    fn bulk_builds_all_lines() {
        let mut q = OutputQueue::new(0, 0, 0.0, 1);
        q.bulk(ms(0), 3, |i, buf| {
            buf.extend_from_slice(format!("l{i}").as_bytes())
        });
        let mut out = Vec::new();
        q.take_due(ms(0), &mut out);
        assert_eq!(out, b"l0\r\nl1\r\nl2\r\n");
    }
}

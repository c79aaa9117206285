//! `slcan-throughput`: CAN frames received through hilt's `slcan` driver (the link a run
//! opens, decoding, filters and queue included) over a real pty, against the pty's raw
//! byte throughput measured in the same run on the same stream (issue 13: within 80%).
//!
//! One pty pair; a feeder thread owns the master. For the raw case a reader opens the
//! slave with hilt's serial driver and reads 4 KiB at a time until every byte arrived; for
//! the slcan case the feeder first acknowledges the driver's `C`/`S6`/`O`, then writes the
//! same stream of classic frames (`t…` with 8 data bytes, 22 bytes each) and the driver's
//! `recv` takes them one by one. The master blocks when the slave's buffer is full, so
//! both figures are the reader's own pace.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hilt_hw::CancelToken;
use hilt_hw::can::Frame;
use hilt_hw::can::slcan::encode_frame;
use hilt_hw::drivers::{OpenedTransport, transport_driver};
use hilt_hw::serial::SerialSettings;
use hilt_model::bench::{Parity, Transport};
use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};

use crate::stats::median;
use crate::table::{Table, ratio};

pub struct Args {
    pub frames: usize,
    pub trials: usize,
}

struct Pty {
    master: File,
    _slave: OwnedFd,
    path: PathBuf,
}

fn pty() -> anyhow::Result<Pty> {
    let pair = nix::pty::openpty(None, None)?;
    let mut t = tcgetattr(&pair.slave)?;
    cfmakeraw(&mut t);
    tcsetattr(&pair.slave, SetArg::TCSANOW, &t)?;
    let path = nix::unistd::ttyname(&pair.slave)?;
    Ok(Pty {
        master: File::from(pair.master),
        _slave: pair.slave,
        path,
    })
}

fn stream(frames: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(frames * 22);
    for i in 0..frames {
        let f = Frame::classic((i % 0x7FF) as u32, false, &(i as u64).to_le_bytes());
        out.extend_from_slice(&encode_frame(&f).unwrap_or_default());
    }
    out
}

/// Raw: bytes/s of a 4 KiB read loop on the slave.
fn raw(data: &[u8]) -> anyhow::Result<f64> {
    let mut p = pty()?;
    let mut port = hilt_hw::serial::open(&SerialSettings {
        port: p.path.display().to_string(),
        baud: 115200,
        bytesize: 8,
        parity: Parity::N,
        stopbits: 1.0,
    })?;
    let owned = data.to_vec();
    // The feeder hands the pty back instead of dropping it: closing the master hangs the
    // slave up, and the kernel discards what the reader has not read yet.
    let feeder = std::thread::spawn(move || {
        let r = p.master.write_all(&owned);
        (r, p)
    });
    let start = Instant::now();
    let mut got = 0usize;
    let mut buf = [0u8; 4096];
    // A read may find nothing although poll said readable (the port is non-blocking and
    // answers 0 then): only five seconds without a byte is a stall.
    let mut last = Instant::now();
    while got < data.len() {
        let n = port.read_timeout(&mut buf, Duration::from_secs(5))?;
        if n > 0 {
            got += n;
            last = Instant::now();
        } else if last.elapsed() >= Duration::from_secs(5) {
            bail!("raw read stalled at {got} of {} bytes", data.len());
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let (written, _pty) = feeder
        .join()
        .map_err(|_| anyhow::anyhow!("feeder panicked"))?;
    written?;
    Ok(data.len() as f64 / secs)
}

/// slcan: bytes/s (frames × 22) received through the driver's link.
fn slcan(data: &[u8], frames: usize) -> anyhow::Result<f64> {
    let p = pty()?;
    let path = p.path.display().to_string();
    let mut master = p.master;
    let owned = data.to_vec();
    let feeder = std::thread::spawn(move || -> std::io::Result<()> {
        // Acknowledge the driver's commands up to `O`, then stream.
        let mut seen = Vec::new();
        let mut b = [0u8; 64];
        while !seen.ends_with(b"O\r") {
            let n = master.read(&mut b)?;
            for &c in &b[..n] {
                seen.push(c);
                if c == b'\r' {
                    master.write_all(b"\r")?;
                }
            }
        }
        master.write_all(&owned)?;
        // Hold the master until the driver closes (its `C`).
        let _ = master.read(&mut b);
        Ok(())
    });
    let transport = Transport::Slcan {
        port: path,
        baud: 115200,
        bitrate: 500_000,
        timeout_ms: 2000,
        fd: false,
        data_bitrate: None,
        filters: Vec::new(),
    };
    let driver = transport_driver("slcan").context("slcan driver")?;
    let OpenedTransport::Can(mut link) = driver.open("bench", "bus", &transport)? else {
        bail!("the slcan driver did not open a CAN link");
    };
    let cancel = CancelToken::new();
    let start = Instant::now();
    for i in 0..frames {
        let f = link
            .recv(Instant::now() + Duration::from_secs(5), &cancel)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        match f {
            Some(f) if f.id == (i % 0x7FF) as u32 && f.data.len() == 8 => {}
            other => bail!("frame {i}: {other:?}"),
        }
    }
    let secs = start.elapsed().as_secs_f64();
    drop(link);
    feeder
        .join()
        .map_err(|_| anyhow::anyhow!("feeder panicked"))??;
    Ok(data.len() as f64 / secs)
}

pub fn run(_env: &crate::env::Env, a: &Args) -> anyhow::Result<Table> {
    let data = stream(a.frames);
    let mut t = Table::new(
        format!(
            "slcan-throughput: {} classic frames ({} bytes) over a pty, {} trials",
            a.frames,
            data.len(),
            a.trials
        ),
        "raw pty read",
    );
    let mut raws = Vec::new();
    let mut slcans = Vec::new();
    for _ in 0..a.trials {
        raws.push(raw(&data)?);
        slcans.push(slcan(&data, a.frames)?);
    }
    let (r, s) = (median(&raws), median(&slcans));
    let fps = |bps: f64| bps / 22.0;
    t.row(
        "frames/s received (median)",
        format!("{:.0}", fps(s)),
        format!("{:.0}", fps(r)),
        ratio(s, Some(r)),
        "≥ 0.8×",
        Some(s >= 0.8 * r),
    );
    t.row(
        "MB/s (median)",
        format!("{:.1}", s / 1e6),
        format!("{:.1}", r / 1e6),
        ratio(s, Some(r)),
        "",
        None,
    );
    t.note("hilt = the slcan driver's CanLink::recv (decode, filters, queue); baseline = a 4 KiB read loop on the same pty with hilt's serial driver; same stream, same run");
    Ok(t)
}

//! Modbus TCP and SCPI round trips against hilt's simulated devices (issue 13 "Speed"):
//!
//! - `modbus`: sequential reads of 10 holding registers through hilt's `modbus_tcp`
//!   driver, against the same sim with pymodbus's own synchronous client (from the peers
//!   venv, `$HILT_PY_VENV`, default `$HOME/.cache/hilt-venv`), and with a bare socket
//!   loop (the floor). Targets: ≥ 5,000 transactions/s and ≥ 3× pymodbus.
//! - `scpi`: `MEAS:VOLT?` through hilt's SCPI link against a bare socket write/read-line
//!   loop on the same sim instrument. Target: p50 overhead ≤ 50 µs.
//!
//! The sims run in this process (their own threads); every client is measured against
//! the same sim in the same run.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hilt_hw::CancelToken;
use hilt_hw::drivers::{OpenedTransport, transport_driver};
use hilt_hw::modbus::frame::{self, Request};
use hilt_hw::scpi::{ScpiLink, ScpiSettings, parse_address};
use hilt_model::bench::{Parity, Transport};
use hilt_sim::{ModbusBind, ModbusSim, ModbusSimConfig, RegisterMap, ScpiSim};

use crate::stats::{median, micros, percentile};
use crate::table::{Table, ratio};

pub struct Args {
    pub transactions: usize,
}

const MAP: &str = "slaves:\n  1:\n    holding_registers: {0: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}\n";
const READ10: Request = Request::ReadHoldingRegisters {
    address: 0,
    count: 10,
};

const PY_CLIENT: &str = r#"
import sys, time
from pymodbus.client import ModbusTcpClient
c = ModbusTcpClient(sys.argv[1], port=int(sys.argv[2]))
c.connect()
n = int(sys.argv[3])
for _ in range(50):
    c.read_holding_registers(0, count=10, device_id=1)
t = time.perf_counter()
for _ in range(n):
    r = c.read_holding_registers(0, count=10, device_id=1)
    assert not r.isError() and r.registers[9] == 10
print(time.perf_counter() - t)
"#;

fn peers_python() -> Option<PathBuf> {
    let venv = std::env::var_os("HILT_PY_VENV")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/hilt-venv")))?;
    let py = venv.join("bin/python");
    Command::new(&py)
        .args(["-c", "import pymodbus"])
        .status()
        .is_ok_and(|s| s.success())
        .then_some(py)
}

pub fn run(env: &crate::env::Env, a: &Args) -> anyhow::Result<Table> {
    let n = a.transactions;
    let mut t = Table::new(
        format!("modbus-scpi: {n} sequential transactions against the sims"),
        "pymodbus / raw socket",
    );
    let map = RegisterMap::parse(MAP, "bench map").map_err(|e| anyhow::anyhow!("{e}"))?;
    let sim = ModbusSim::start(
        ModbusBind::Tcp("127.0.0.1:0".into()),
        map,
        ModbusSimConfig::default(),
    )?;
    let (host, port) = sim.address().rsplit_once(':').context("sim address")?;
    let port: u32 = port.parse()?;

    // hilt's driver, exactly as a run opens it.
    let transport = Transport::ModbusTcp {
        host: host.into(),
        port,
        timeout_ms: 1000,
        default_slave: 1,
    };
    let driver = transport_driver("modbus_tcp").context("modbus_tcp driver")?;
    let OpenedTransport::Modbus(mut link) = driver.open("bench", "field", &transport)? else {
        bail!("the modbus_tcp driver did not open a Modbus link");
    };
    let cancel = CancelToken::new();
    let mut lat = Vec::with_capacity(n);
    for _ in 0..50 {
        link.call(1, &READ10, &cancel)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let start = Instant::now();
    for _ in 0..n {
        let t0 = Instant::now();
        link.call(1, &READ10, &cancel)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        lat.push(micros(t0.elapsed()));
    }
    let hilt_tps = n as f64 / start.elapsed().as_secs_f64();

    // The floor: a bare socket writing the same frame and reading the 29-byte reply.
    let mut s = TcpStream::connect(sim.address())?;
    s.set_nodelay(true)?;
    let req = frame::tcp_frame(1, 1, &READ10.encode());
    let mut buf = [0u8; 29];
    let mut raw_lat = Vec::with_capacity(n);
    let start = Instant::now();
    for _ in 0..n {
        let t0 = Instant::now();
        s.write_all(&req)?;
        s.read_exact(&mut buf)?;
        raw_lat.push(micros(t0.elapsed()));
    }
    let raw_tps = n as f64 / start.elapsed().as_secs_f64();

    let py_tps = match peers_python() {
        Some(py) => {
            let script = env.scratch("modbus-bench")?.join("client.py");
            std::fs::write(&script, PY_CLIENT)?;
            let out = Command::new(py)
                .arg(&script)
                .args([host, &port.to_string(), &n.to_string()])
                .output()?;
            if !out.status.success() {
                bail!(
                    "pymodbus client failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            let secs: f64 = String::from_utf8_lossy(&out.stdout).trim().parse()?;
            Some(n as f64 / secs)
        }
        None => {
            t.note("pymodbus not in the peers venv (scripts/peers.sh): no pymodbus baseline");
            None
        }
    };
    t.row(
        "Modbus TCP read 10 holding registers, transactions/s (vs pymodbus)",
        format!("{hilt_tps:.0}"),
        py_tps.map_or("-".into(), |p| format!("{p:.0}")),
        ratio(hilt_tps, py_tps),
        "≥ 5,000/s and ≥ 3×",
        Some(hilt_tps >= 5000.0 && py_tps.is_none_or(|p| hilt_tps >= 3.0 * p)),
    );
    t.row(
        "  same, p50 / p99 µs (vs bare socket p50 / p99)",
        format!("{:.1} / {:.1}", median(&lat), percentile(&lat, 99.0)),
        format!(
            "{:.1} / {:.1}",
            median(&raw_lat),
            percentile(&raw_lat, 99.0)
        ),
        format!("{:.0}/s bare", raw_tps),
        "",
        None,
    );
    drop(link);
    drop(sim);

    // SCPI: hilt's link vs a bare socket, same instrument.
    let scpi = ScpiSim::start("127.0.0.1:0")?;
    let settings = ScpiSettings {
        address: parse_address(&scpi.address()).map_err(|e| anyhow::anyhow!(e))?,
        timeout: Duration::from_secs(1),
        write_termination: "\n".into(),
        read_termination: "\n".into(),
        baud: 9600,
        bytesize: 8,
        parity: Parity::N,
        stopbits: 1.0,
    };
    let mut link = ScpiLink::open(&settings, hilt_hw::ResourceKind::Measurement)?;
    let mut hilt_lat = Vec::with_capacity(n);
    for i in 0..n + 50 {
        let t0 = Instant::now();
        link.query_number("MEAS:VOLT?")?;
        if i >= 50 {
            hilt_lat.push(micros(t0.elapsed()));
        }
    }
    let s = TcpStream::connect(scpi.addr().context("the SCPI sim listens on TCP")?)?;
    s.set_nodelay(true)?;
    let mut w = s.try_clone()?;
    let mut r = BufReader::new(s);
    let mut line = String::new();
    let mut raw = Vec::with_capacity(n);
    for i in 0..n + 50 {
        let t0 = Instant::now();
        w.write_all(b"MEAS:VOLT?\n")?;
        line.clear();
        r.read_line(&mut line)?;
        if i >= 50 {
            raw.push(micros(t0.elapsed()));
        }
    }
    let overhead = median(&hilt_lat) - median(&raw);
    t.row(
        "SCPI MEAS:VOLT? round trip p50 µs (vs bare socket)",
        format!("{:.1}", median(&hilt_lat)),
        format!("{:.1}", median(&raw)),
        format!("+{overhead:.1} µs"),
        "overhead ≤ 50 µs",
        Some(overhead <= 50.0),
    );
    t.note("all clients are sequential (one request in flight) on one loopback connection");
    Ok(t)
}

//! A simulated I2C bus and SPI bus behind one TCP port (`hilt sim bus --listen ADDR`),
//! for the `i2c` and `spi` transports and `i2c_power_monitor` (hilt extension `sim:
//! host:port`). Frames are [`hilt_hw::simbus::wire`]'s.
//!
//! I2C devices: TMP102 temperature sensor at 0x48 (25.0 °C), 24C02 EEPROM at 0x50 and
//! 24C32 at 0x57 (5 ms write cycle, no acknowledge while writing), INA226 at 0x40 and
//! INA260 at 0x41 on a 5.0 V / 0.5 A supply. Any other address is not acknowledged.
//! SPI chip selects: 0 a W25Q-style NOR flash (JEDEC ID `EF 40 18`), 1 an ADXL345-style
//! register sensor (DEVID 0xE5); other chip selects do not exist (as a missing
//! `/dev/spidevB.D`). Modes 1 and 2 read every bit one edge late, as a mode-0 part does.
//!
//! Faults on demand ([`BusSim::control`], one command per line on stdin of `hilt sim
//! bus`): `nack ADDR [N]` (the next N transfers to ADDR are not acknowledged), `remove
//! ADDR` / `attach ADDR`, `stretch MS` (every I2C transfer holds the clock MS ms),
//! `arbitration [N]` (the next N I2C transfers lose arbitration), `temp C`, `supply V A`,
//! `status`.

mod devices;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hilt_hw::simbus::wire::{Reply, Request};

pub use devices::{Eeprom, I2cDevice, Ina, NorFlash, RegisterSensor, SpiPeer, Tmp102};

/// Connections served at once; more are closed at accept.
pub const MAX_CONNECTIONS: usize = 16;
/// A connection that sends nothing for this long is closed.
const IDLE: Duration = Duration::from_secs(60);
/// The longest clock stretch accepted (a test of a hung bus needs no more).
const MAX_STRETCH_MS: u64 = 60_000;

#[derive(Default)]
struct Faults {
    nack: BTreeMap<u8, u32>,
    absent: BTreeSet<u8>,
    stretch_ms: u64,
    arbitration: u32,
}

struct State {
    i2c: BTreeMap<u8, Box<dyn I2cDevice>>,
    spi: BTreeMap<u8, Box<dyn SpiPeer>>,
    faults: Faults,
    /// Transfers served, for `status`.
    transfers: u64,
}

impl State {
    fn new() -> State {
        let cycle = Duration::from_millis(5);
        let mut i2c: BTreeMap<u8, Box<dyn I2cDevice>> = BTreeMap::new();
        i2c.insert(0x40, Box::new(Ina::ina226(5.0, 0.5)));
        i2c.insert(0x41, Box::new(Ina::ina260(5.0, 0.5)));
        i2c.insert(0x48, Box::new(Tmp102::new(25.0)));
        i2c.insert(0x50, Box::new(Eeprom::c02(cycle)));
        i2c.insert(0x57, Box::new(Eeprom::c32(cycle)));
        let mut spi: BTreeMap<u8, Box<dyn SpiPeer>> = BTreeMap::new();
        spi.insert(0, Box::new(NorFlash::new()));
        spi.insert(1, Box::new(RegisterSensor::new()));
        State {
            i2c,
            spi,
            faults: Faults::default(),
            transfers: 0,
        }
    }

    /// The answer to one request, and how long the clock is held before it.
    fn serve(&mut self, req: &Request, now: Instant) -> (Reply, Duration) {
        self.transfers += 1;
        let (addr, write, read) = match req {
            Request::Spi { cs, mode, tx, .. } => {
                let Some(dev) = self.spi.get_mut(cs) else {
                    return (
                        Reply::NoDevice(format!(
                            "the simulated bus has no SPI device at chip select {cs}"
                        )),
                        Duration::ZERO,
                    );
                };
                let rx = dev.transfer(tx);
                let rx = if matches!(mode, 1 | 2) {
                    devices::wrong_edge(&rx)
                } else {
                    rx
                };
                return (Reply::Data(rx), Duration::ZERO);
            }
            Request::Probe { addr } => (*addr, None, None),
            Request::Write { addr, data } => (*addr, Some(data.as_slice()), None),
            Request::WriteRead { addr, len, data } => {
                (*addr, Some(data.as_slice()), Some(*len as usize))
            }
        };
        let stretch = Duration::from_millis(self.faults.stretch_ms);
        if addr > 0x7f {
            return (
                Reply::BadRequest(format!("0x{addr:02x} is not a 7-bit address")),
                stretch,
            );
        }
        if self.faults.arbitration > 0 {
            self.faults.arbitration -= 1;
            return (Reply::BusError("arbitration lost".into()), stretch);
        }
        if let Some(n) = self.faults.nack.get_mut(&addr) {
            *n -= 1;
            if *n == 0 {
                self.faults.nack.remove(&addr);
            }
            return (Reply::Nack { addr }, stretch);
        }
        let nack = (Reply::Nack { addr }, stretch);
        if self.faults.absent.contains(&addr) {
            return nack;
        }
        let Some(dev) = self.i2c.get_mut(&addr) else {
            return nack;
        };
        if !dev.acks(now) {
            return nack;
        }
        if let Some(data) = write
            && !data.is_empty()
            && dev.write(now, data).is_err()
        {
            return nack;
        }
        let out = read.map(|n| dev.read(now, n)).unwrap_or_default();
        (Reply::Data(out), stretch)
    }

    fn control(&mut self, line: &str) -> Result<String, String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let addr = |w: Option<&&str>| -> Result<u8, String> {
            let w = w.ok_or("an address is needed (0x48)")?;
            let n = match w.strip_prefix("0x") {
                Some(h) => u8::from_str_radix(h, 16),
                None => w.parse(),
            };
            n.ok()
                .filter(|a| *a <= 0x7f)
                .ok_or_else(|| format!("`{w}` is not a 7-bit address"))
        };
        let num = |w: Option<&&str>, what: &str| -> Result<f64, String> {
            w.and_then(|w| w.parse::<f64>().ok())
                .filter(|v| v.is_finite())
                .ok_or_else(|| format!("{what} must be a number"))
        };
        let count = |w: Option<&&str>| -> Result<u32, String> {
            w.map_or(Ok(1), |w| {
                w.parse().map_err(|_| format!("`{w}` is not a count"))
            })
        };
        match words.first().copied() {
            Some("nack") => {
                let a = addr(words.get(1))?;
                let n = count(words.get(2))?;
                self.faults.nack.insert(a, n);
                Ok(format!(
                    "ok: the next {n} transfers to 0x{a:02x} are not acknowledged"
                ))
            }
            Some("remove") => {
                let a = addr(words.get(1))?;
                self.faults.absent.insert(a);
                Ok(format!("ok: 0x{a:02x} removed"))
            }
            Some("attach") => {
                let a = addr(words.get(1))?;
                self.faults.absent.remove(&a);
                Ok(format!("ok: 0x{a:02x} attached"))
            }
            Some("stretch") => {
                let ms = num(words.get(1), "stretch")?;
                if !(0.0..=MAX_STRETCH_MS as f64).contains(&ms) {
                    return Err(format!("stretch must be 0..{MAX_STRETCH_MS} ms"));
                }
                self.faults.stretch_ms = ms as u64;
                Ok(format!("ok: I2C transfers hold the clock {} ms", ms as u64))
            }
            Some("arbitration") => {
                let n = count(words.get(1))?;
                self.faults.arbitration = n;
                Ok(format!("ok: the next {n} I2C transfers lose arbitration"))
            }
            Some("temp") => {
                let t = num(words.get(1), "temp")?;
                self.set_all("temp", t);
                Ok(format!("ok: temperature {t} °C"))
            }
            Some("supply") => {
                let v = num(words.get(1), "supply volts")?;
                let a = num(words.get(2), "supply amps")?;
                self.set_all("volts", v);
                self.set_all("amps", a);
                Ok(format!("ok: supply {v} V {a} A"))
            }
            Some("status") => Ok(self.status()),
            _ => Err(format!(
                "unknown command `{line}` (nack, remove, attach, stretch, arbitration, temp, supply, status)"
            )),
        }
    }

    fn set_all(&mut self, key: &str, value: f64) {
        for d in self.i2c.values_mut() {
            d.set(key, value);
        }
    }

    fn status(&self) -> String {
        let i2c: Vec<String> = self
            .i2c
            .iter()
            .filter(|(a, _)| !self.faults.absent.contains(a))
            .map(|(a, d)| format!("0x{a:02x}={}", d.name()))
            .collect();
        let spi: Vec<String> = self
            .spi
            .iter()
            .map(|(c, d)| format!("cs{c}={}", d.name()))
            .collect();
        format!(
            "i2c {} spi {} stretch_ms {} transfers {}",
            i2c.join(","),
            spi.join(","),
            self.faults.stretch_ms,
            self.transfers
        )
    }
}

/// A running simulated bus; stops when dropped.
pub struct BusSim {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

fn lock(s: &Mutex<State>) -> MutexGuard<'_, State> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

impl BusSim {
    /// Listens on `bind` (`127.0.0.1:0` for any free port).
    pub fn start(bind: &str) -> io::Result<BusSim> {
        let listener = TcpListener::bind(bind)?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        let active = Arc::new(AtomicUsize::new(0));
        let thread = std::thread::Builder::new()
            .name("bus-sim".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if sp.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    if active.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
                        drop(conn);
                        continue;
                    }
                    active.fetch_add(1, Ordering::SeqCst);
                    let (st, sp, count) = (st.clone(), sp.clone(), active.clone());
                    let spawned = std::thread::Builder::new()
                        .name("bus-sim-conn".into())
                        .spawn(move || {
                            let _ = serve(conn, &st, &sp);
                            count.fetch_sub(1, Ordering::SeqCst);
                        });
                    if spawned.is_err() {
                        active.fetch_sub(1, Ordering::SeqCst);
                    }
                }
            })?;
        Ok(BusSim {
            addr,
            state,
            stop,
            thread: Some(thread),
        })
    }

    /// `host:port`, what a bench file's `sim:` takes.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// One control command (see the module documentation); the answer starts with `ok`
    /// or `error`.
    pub fn control(&self, line: &str) -> String {
        match lock(&self.state).control(line) {
            Ok(s) => s,
            Err(e) => format!("error: {e}"),
        }
    }
}

impl Drop for BusSim {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(mut conn: TcpStream, state: &Mutex<State>, stop: &AtomicBool) -> io::Result<()> {
    conn.set_read_timeout(Some(IDLE))?;
    let _ = conn.set_nodelay(true);
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        match Request::decode(&buf) {
            Ok(Some((req, used))) => {
                buf.drain(..used);
                // The bus is held for the transfer, as one master holds a real bus.
                let reply = {
                    let mut st = lock(state);
                    let (reply, stretch) = st.serve(&req, Instant::now());
                    if !stretch.is_zero() {
                        std::thread::sleep(stretch);
                    }
                    reply
                };
                conn.write_all(&reply.encode())?;
                continue;
            }
            Ok(None) => {}
            Err(e) => {
                let _ = conn.write_all(&Reply::BadRequest(e.to_string()).encode());
                return Ok(());
            }
        }
        let n = conn.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hilt_hw::i2c::{I2cBus, I2cError, read_register, scan, write_register};
    use hilt_hw::simbus::{SimI2c, SimSpi};
    use hilt_hw::spi::{SpiConfig, SpiDevice, SpiError};

    const MODE0: SpiConfig = SpiConfig {
        mode: 0,
        bits_per_word: 8,
        max_speed_hz: 1_000_000,
    };

    #[test]
    fn the_bus_answers_through_the_real_client() {
        let sim = BusSim::start("127.0.0.1:0").unwrap();
        let mut bus = SimI2c::open(&sim.address(), 500).unwrap();
        assert_eq!(
            scan(&mut bus, 0x03, 0x77).unwrap(),
            [0x40, 0x41, 0x48, 0x50, 0x57]
        );
        assert_eq!(read_register(&mut bus, 0x48, 0, 2).unwrap(), [0x19, 0x00]);
        write_register(&mut bus, 0x50, 0x10, &[1, 2]).unwrap();
        // The EEPROM is writing: not acknowledged for 5 ms.
        assert_eq!(
            read_register(&mut bus, 0x50, 0x10, 2),
            Err(I2cError::Nack { addr: 0x50 })
        );
        std::thread::sleep(Duration::from_millis(6));
        assert_eq!(read_register(&mut bus, 0x50, 0x10, 2).unwrap(), [1, 2]);
        assert_eq!(
            read_register(&mut bus, 0x49, 0, 1),
            Err(I2cError::Nack { addr: 0x49 })
        );
    }

    #[test]
    fn faults_on_demand() {
        let sim = BusSim::start("127.0.0.1:0").unwrap();
        let mut bus = SimI2c::open(&sim.address(), 100).unwrap();
        assert!(sim.control("nack 0x48 2").starts_with("ok"));
        assert_eq!(bus.probe(0x48), Ok(false));
        assert_eq!(
            read_register(&mut bus, 0x48, 0, 2),
            Err(I2cError::Nack { addr: 0x48 })
        );
        assert!(bus.probe(0x48).unwrap());
        sim.control("arbitration");
        assert!(matches!(bus.probe(0x48), Err(I2cError::Bus { .. })));
        sim.control("remove 0x48");
        assert!(!bus.probe(0x48).unwrap());
        sim.control("attach 0x48");
        sim.control("temp -10");
        assert_eq!(read_register(&mut bus, 0x48, 0, 2).unwrap(), [0xf6, 0x00]);
        sim.control("stretch 300");
        assert_eq!(
            read_register(&mut bus, 0x48, 0, 2),
            Err(I2cError::Timeout {
                addr: 0x48,
                ms: 100
            })
        );
        sim.control("stretch 0");
        // The late answer is not taken for the next one.
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(read_register(&mut bus, 0x48, 0, 2).unwrap(), [0xf6, 0x00]);
        assert!(sim.control("nack 0x99").starts_with("error"));
        assert!(sim.control("stretch lots").starts_with("error"));
        assert!(sim.control("dance").starts_with("error"));
        assert!(sim.control("status").contains("0x48=tmp102"));
    }

    #[test]
    fn spi_devices_modes_and_missing_chip_selects() {
        let sim = BusSim::start("127.0.0.1:0").unwrap();
        let mut flash = SimSpi::open(&sim.address(), 0, MODE0, 500).unwrap();
        assert_eq!(
            flash.transfer(&[0x9f, 0, 0, 0]).unwrap(),
            [0xff, 0xef, 0x40, 0x18]
        );
        let mut wrong =
            SimSpi::open(&sim.address(), 0, SpiConfig { mode: 1, ..MODE0 }, 500).unwrap();
        assert_ne!(
            wrong.transfer(&[0x9f, 0, 0, 0]).unwrap(),
            [0xff, 0xef, 0x40, 0x18]
        );
        assert!(matches!(
            SimSpi::open(&sim.address(), 5, MODE0, 500),
            Err(SpiError::NoDevice(m)) if m.contains("chip select 5")
        ));
    }

    #[test]
    fn garbage_is_refused_and_the_connection_closed() {
        let sim = BusSim::start("127.0.0.1:0").unwrap();
        let mut s = TcpStream::connect(sim.address()).unwrap();
        s.write_all(&[0x77, 0, 0]).unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        assert!(matches!(
            Reply::decode(&out),
            Ok(Some((Reply::BadRequest(_), _)))
        ));
    }
}

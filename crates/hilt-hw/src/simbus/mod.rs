//! Clients of a simulated bus (`hilt sim bus`): [`SimI2c`] is an [`I2cBus`], [`SimSpi`]
//! one chip select as an [`SpiDevice`]. Bench files reach one with the hilt extension
//! `sim: host:port` on an `i2c` or `spi` transport or an `i2c_power_monitor`. Each request
//! waits at most the transport's `timeout_ms`; after a timeout the connection is dropped
//! (its late answer must not be read as the next one) and made again on the next request.

pub mod wire;

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::i2c::{I2cBus, I2cError};
use crate::spi::{SpiConfig, SpiDevice, SpiError};
use wire::{Reply, Request};

/// How a request to the simulator failed before it had an answer.
enum LinkError {
    Timeout,
    Io(String),
}

/// One connection to a simulator, made on first use and after every failure.
struct Link {
    addr: String,
    timeout: Duration,
    stream: Option<TcpStream>,
}

/// `host:port`, also accepted as `tcp://host:port`.
pub fn sim_address(s: &str) -> Result<String, String> {
    let a = s.trim().strip_prefix("tcp://").unwrap_or(s.trim());
    match a.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0) => Ok(a.to_string()),
        _ => Err(format!(
            "`{s}` is not the address of a `hilt sim bus` (`host:port`, e.g. 127.0.0.1:4100)"
        )),
    }
}

impl Link {
    fn new(addr: &str, timeout_ms: u64) -> Result<Link, String> {
        Ok(Link {
            addr: sim_address(addr)?,
            timeout: Duration::from_millis(timeout_ms.max(1)),
            stream: None,
        })
    }

    fn connect(&mut self) -> Result<&mut TcpStream, LinkError> {
        if self.stream.is_none() {
            let sa = self
                .addr
                .to_socket_addrs()
                .map_err(|e| LinkError::Io(format!("simulated bus {}: {e}", self.addr)))?
                .next()
                .ok_or_else(|| LinkError::Io(format!("simulated bus {}: no address", self.addr)))?;
            let s = TcpStream::connect_timeout(&sa, self.timeout).map_err(|e| {
                LinkError::Io(format!(
                    "cannot reach the simulated bus at {}: {e}",
                    self.addr
                ))
            })?;
            let _ = s.set_nodelay(true);
            self.stream = Some(s);
        }
        self.stream
            .as_mut()
            .ok_or_else(|| LinkError::Io("not connected".into()))
    }

    /// Opens the connection now (a transport's open).
    fn open(&mut self) -> Result<(), String> {
        match self.connect() {
            Ok(_) => Ok(()),
            Err(LinkError::Io(m)) => Err(m),
            Err(LinkError::Timeout) => Err(format!("simulated bus {}: timed out", self.addr)),
        }
    }

    fn call(&mut self, req: &Request) -> Result<Reply, LinkError> {
        let deadline = Instant::now() + self.timeout;
        let addr = self.addr.clone();
        let result = (|| {
            let s = self.connect()?;
            s.write_all(&req.encode())
                .map_err(|e| LinkError::Io(format!("simulated bus {addr}: {e}")))?;
            let mut buf = Vec::with_capacity(64);
            let mut chunk = [0u8; 4096];
            loop {
                match Reply::decode(&buf) {
                    Ok(Some((r, _))) => return Ok(r),
                    Ok(None) => {}
                    Err(e) => {
                        return Err(LinkError::Io(format!("simulated bus {addr}: {e}")));
                    }
                }
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(LinkError::Timeout);
                }
                let _ = s.set_read_timeout(Some(left));
                match s.read(&mut chunk) {
                    Ok(0) => {
                        return Err(LinkError::Io(format!(
                            "simulated bus {addr} closed the connection"
                        )));
                    }
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        return Err(LinkError::Timeout);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(LinkError::Io(format!("simulated bus {addr}: {e}"))),
                }
            }
        })();
        if result.is_err() {
            self.stream = None;
        }
        result
    }
}

/// The I2C bus of a `hilt sim bus`.
pub struct SimI2c {
    link: Link,
}

impl SimI2c {
    /// Connects to the simulator at `addr` (`host:port`).
    pub fn open(addr: &str, timeout_ms: u64) -> Result<SimI2c, I2cError> {
        let mut link = Link::new(addr, timeout_ms).map_err(I2cError::Unsupported)?;
        link.open().map_err(I2cError::Io)?;
        Ok(SimI2c { link })
    }

    fn call(&mut self, addr: u8, req: Request) -> Result<Vec<u8>, I2cError> {
        match self.link.call(&req) {
            Ok(Reply::Data(d)) => Ok(d),
            Ok(Reply::Nack { addr }) => Err(I2cError::Nack { addr }),
            Ok(Reply::BusError(reason)) => Err(I2cError::Bus { addr, reason }),
            Ok(Reply::NoDevice(m)) => Err(I2cError::Io(m)),
            Ok(Reply::BadRequest(m)) => Err(I2cError::Unsupported(m)),
            Err(LinkError::Timeout) => Err(I2cError::Timeout {
                addr,
                ms: self.link.timeout.as_millis() as u64,
            }),
            Err(LinkError::Io(m)) => Err(I2cError::Io(m)),
        }
    }
}

impl I2cBus for SimI2c {
    fn describe(&self) -> String {
        format!("sim {}", self.link.addr)
    }

    fn probe(&mut self, addr: u8) -> Result<bool, I2cError> {
        match self.call(addr, Request::Probe { addr }) {
            Ok(_) => Ok(true),
            Err(I2cError::Nack { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn write(&mut self, addr: u8, data: &[u8]) -> Result<(), I2cError> {
        self.call(
            addr,
            Request::Write {
                addr,
                data: data.to_vec(),
            },
        )
        .map(drop)
    }

    fn write_read(&mut self, addr: u8, data: &[u8], len: usize) -> Result<Vec<u8>, I2cError> {
        let len16 = u16::try_from(len)
            .map_err(|_| I2cError::Unsupported(format!("a read of {len} bytes is too long")))?;
        self.call(
            addr,
            Request::WriteRead {
                addr,
                len: len16,
                data: data.to_vec(),
            },
        )
    }
}

/// One chip select of a `hilt sim bus`'s SPI bus; opening fails when it has no device.
pub struct SimSpi {
    link: Link,
    cs: u8,
    cfg: SpiConfig,
}

impl SimSpi {
    /// Connects to the simulator at `addr`; `device` is the chip select.
    pub fn open(
        addr: &str,
        device: u32,
        cfg: SpiConfig,
        timeout_ms: u64,
    ) -> Result<SimSpi, SpiError> {
        let cs = u8::try_from(device).map_err(|_| {
            SpiError::NoDevice(format!("the simulated bus has no chip select {device}"))
        })?;
        let mut link = Link::new(addr, timeout_ms).map_err(SpiError::Unsupported)?;
        link.open().map_err(SpiError::Io)?;
        let mut dev = SimSpi { link, cs, cfg };
        // An empty transfer clocks nothing: it only asks whether the chip select exists,
        // so a missing one fails at open, as a missing /dev/spidevB.D does.
        dev.transfer(&[])?;
        Ok(dev)
    }
}

impl SpiDevice for SimSpi {
    fn describe(&self) -> String {
        format!("sim {} cs {}", self.link.addr, self.cs)
    }

    fn transfer(&mut self, tx: &[u8]) -> Result<Vec<u8>, SpiError> {
        let req = Request::Spi {
            cs: self.cs,
            mode: self.cfg.mode,
            bits: self.cfg.bits_per_word,
            speed_hz: self.cfg.max_speed_hz,
            tx: tx.to_vec(),
        };
        match self.link.call(&req) {
            Ok(Reply::Data(d)) => Ok(d),
            Ok(Reply::NoDevice(m)) => Err(SpiError::NoDevice(m)),
            Ok(Reply::BadRequest(m)) => Err(SpiError::Unsupported(m)),
            Ok(Reply::Nack { .. }) | Ok(Reply::BusError(_)) => Err(SpiError::Io(format!(
                "simulated bus {} answered an SPI transfer with an I2C reply",
                self.link.addr
            ))),
            Err(LinkError::Timeout) => Err(SpiError::Timeout {
                ms: self.link.timeout.as_millis() as u64,
            }),
            Err(LinkError::Io(m)) => Err(SpiError::Io(m)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sim_addresses() {
        assert_eq!(sim_address("127.0.0.1:4100").unwrap(), "127.0.0.1:4100");
        assert_eq!(sim_address("tcp://localhost:1").unwrap(), "localhost:1");
        assert!(sim_address("localhost").is_err());
        assert!(sim_address(":80").is_err());
        assert!(sim_address("h:0").is_err());
    }

    #[test]
    fn an_unreachable_simulator_is_an_io_error() {
        // A port nobody listens on: bind one and drop it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        assert!(matches!(SimI2c::open(&addr, 200), Err(I2cError::Io(m)) if m.contains(&addr)));
    }

    #[test]
    fn a_silent_simulator_times_out_and_the_link_is_remade() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let mut bus = SimI2c::open(&addr, 50).unwrap();
        let started = Instant::now();
        assert_eq!(
            bus.probe(0x48),
            Err(I2cError::Timeout { addr: 0x48, ms: 50 })
        );
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(bus.link.stream.is_none());
    }
}

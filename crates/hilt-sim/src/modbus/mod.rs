//! A simulated Modbus slave bus, over TCP (`hilt sim modbus --tcp ADDR`) or RTU on a
//! pseudo-terminal (`--rtu LINK`), answering from a register map ([`RegisterMap`]).
//!
//! It behaves like field devices do: each answer takes `latency_ms`; unmapped addresses
//! answer exception 2; an unknown slave id, or an RTU request with a bad CRC, gets no
//! answer at all. Faults on demand ([`ModbusSim::inject`], or the control socket of the
//! command): the next answers can be an exception of a given code, silence, or garbled
//! (an RTU frame with a wrong CRC; on TCP a reply cut off after its header).

mod map;
mod rtu;
mod tcp;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

pub use map::{MapError, RegisterMap, SlaveTables};

use crate::error::SimError;

/// One answer the sim gets wrong on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModbusFault {
    /// Answer with this exception code instead.
    Exception(u8),
    /// Do not answer.
    Silence,
    /// Answer with a damaged frame (RTU: wrong CRC; TCP: cut off after the header).
    Garble,
}

impl ModbusFault {
    /// `exception:<code>`, `silence`, `garble` (the control socket's words).
    pub fn parse(s: &str) -> Option<ModbusFault> {
        match s {
            "silence" => Some(ModbusFault::Silence),
            "garble" | "crc" => Some(ModbusFault::Garble),
            _ => s
                .strip_prefix("exception:")
                .and_then(|c| c.parse::<u8>().ok())
                .filter(|c| *c > 0 && *c < 0x80)
                .map(ModbusFault::Exception),
        }
    }
}

/// Where the simulated bus is reached.
#[derive(Debug, Clone)]
pub enum ModbusBind {
    /// Listen on this TCP address (`127.0.0.1:0` picks a free port).
    Tcp(String),
    /// A pty; its slave path is linked from this path when given.
    Rtu(Option<PathBuf>),
}

#[derive(Debug, Clone, Default)]
pub struct ModbusSimConfig {
    /// Delay before each answer, in ms.
    pub latency_ms: u64,
}

pub(crate) struct State {
    pub map: RegisterMap,
    pub latency_ms: u64,
    pub faults: VecDeque<ModbusFault>,
    /// Requests answered or refused, in arrival order: (slave, function).
    pub requests: Vec<(u8, u8)>,
}

pub(crate) struct Shared {
    state: Mutex<State>,
    stop: AtomicBool,
    /// Wakes latency waits when the sim stops.
    stopped: Condvar,
}

/// What the sim decided to send back for one request.
pub(crate) enum Answer {
    Pdu(Vec<u8>),
    Garbled(Vec<u8>),
    Silence,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Handles one request: the map answers, then the next queued fault (if any) spoils
    /// it, then the latency passes (cut short when the sim stops).
    pub fn answer(&self, slave: u8, pdu: &[u8]) -> Answer {
        let (answer, latency) = {
            let mut s = self.lock();
            s.requests.push((slave, pdu.first().copied().unwrap_or(0)));
            // A faulted request never reaches the tables (a busy or deaf slave does not
            // apply the write); a garbled answer is spoilt on the line, after the slave
            // acted on the request.
            let function = pdu.first().copied().unwrap_or(0);
            let answer = if !s.map.slaves.contains_key(&slave) {
                Answer::Silence
            } else {
                match s.faults.pop_front() {
                    Some(ModbusFault::Silence) => Answer::Silence,
                    Some(ModbusFault::Exception(code)) => {
                        Answer::Pdu(hilt_hw::modbus::frame::exception_pdu(function, code))
                    }
                    Some(ModbusFault::Garble) => match s.map.handle(slave, pdu) {
                        Some(p) => Answer::Garbled(p),
                        None => Answer::Silence,
                    },
                    None => match s.map.handle(slave, pdu) {
                        Some(p) => Answer::Pdu(p),
                        None => Answer::Silence,
                    },
                }
            };
            (answer, s.latency_ms)
        };
        if latency > 0 {
            let guard = self.lock();
            let _ = self
                .stopped
                .wait_timeout_while(guard, Duration::from_millis(latency), |_| !self.stopping());
        }
        answer
    }
}

/// A running simulated Modbus bus; stops when dropped.
pub struct ModbusSim {
    shared: Arc<Shared>,
    /// `127.0.0.1:5020` for TCP, the pty slave path for RTU.
    address: String,
    link: Option<PathBuf>,
    threads: Vec<JoinHandle<()>>,
    /// Wakes the serving thread to stop (TCP: a connection to itself; RTU: a pipe).
    waker: Box<dyn Fn() + Send + Sync>,
    /// RTU: the pty, held open so it never hangs up between clients.
    _keep: Option<Box<dyn Send + Sync>>,
}

impl ModbusSim {
    pub fn start(
        bind: ModbusBind,
        map: RegisterMap,
        cfg: ModbusSimConfig,
    ) -> Result<ModbusSim, SimError> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                map,
                latency_ms: cfg.latency_ms,
                faults: VecDeque::new(),
                requests: Vec::new(),
            }),
            stop: AtomicBool::new(false),
            stopped: Condvar::new(),
        });
        match bind {
            ModbusBind::Tcp(addr) => tcp::start(shared, &addr),
            ModbusBind::Rtu(link) => rtu::start(shared, link),
        }
    }

    /// `host:port` (TCP) or the pty path (RTU).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The stable link to the pty (RTU with a link).
    pub fn link_path(&self) -> Option<&Path> {
        self.link.as_deref()
    }

    /// Queues faults for the next answers, in order.
    pub fn inject(&self, fault: ModbusFault, times: u32) {
        let mut s = self.shared.lock();
        for _ in 0..times {
            s.faults.push_back(fault);
        }
    }

    pub fn set_latency(&self, ms: u64) {
        self.shared.lock().latency_ms = ms;
    }

    /// A holding register's current value (`None` when unmapped).
    pub fn holding_register(&self, slave: u8, address: u16) -> Option<u16> {
        self.shared
            .lock()
            .map
            .slaves
            .get(&slave)
            .and_then(|t| t.holding_registers.get(&address).copied())
    }

    /// A coil's current state (`None` when unmapped).
    pub fn coil(&self, slave: u8, address: u16) -> Option<bool> {
        self.shared
            .lock()
            .map
            .slaves
            .get(&slave)
            .and_then(|t| t.coils.get(&address).copied())
    }

    /// Every request seen, as (slave, function code).
    pub fn requests(&self) -> Vec<(u8, u8)> {
        self.shared.lock().requests.clone()
    }

    /// Runs one control command (`latency <ms>`, `fault <exception:N|silence|garble>
    /// [times]`, `get <slave> <hr|coil> <address>`) and returns its answer line.
    pub fn control(&self, line: &str) -> String {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["latency", ms] => match ms.parse() {
                Ok(ms) => {
                    self.set_latency(ms);
                    "ok".into()
                }
                Err(_) => format!("error: `{ms}` is not a number of milliseconds"),
            },
            ["fault", f, rest @ ..] => {
                let Some(fault) = ModbusFault::parse(f) else {
                    return format!("error: unknown fault `{f}` (exception:N, silence, garble)");
                };
                let times = match rest {
                    [] => Ok(1),
                    [n] => n.parse::<u32>().map_err(|_| ()),
                    _ => Err(()),
                };
                match times {
                    Ok(n) => {
                        self.inject(fault, n);
                        "ok".into()
                    }
                    Err(()) => "error: usage: fault <kind> [times]".into(),
                }
            }
            ["get", slave, table, addr] => {
                let (Ok(s), Ok(a)) = (slave.parse::<u8>(), addr.parse::<u16>()) else {
                    return "error: usage: get <slave> <hr|coil> <address>".into();
                };
                let v = match *table {
                    "hr" => self.holding_register(s, a).map(|v| v.to_string()),
                    "coil" => self.coil(s, a).map(|v| v.to_string()),
                    _ => return "error: table is `hr` or `coil`".into(),
                };
                v.unwrap_or_else(|| "unmapped".into())
            }
            _ => format!("error: unknown command `{line}`"),
        }
    }

    pub fn stop(self) {}
}

impl Drop for ModbusSim {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.stopped.notify_all();
        (self.waker)();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        if let Some(l) = &self.link {
            crate::link::remove(l, Path::new(&self.address));
        }
    }
}

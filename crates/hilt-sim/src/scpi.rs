//! A simulated SCPI instrument on a raw TCP socket (`hilt sim scpi --tcp ADDR`): a
//! three-channel bench power supply that is also a voltmeter, with the IEEE 488.2 common
//! commands and an error queue.
//!
//! Commands (case-insensitive, long or short forms, `;` separates several):
//! `*IDN?`, `*OPC?`, `*RST`, `*CLS`, `SYST:ERR?`, `INST:NSEL <1-3>` / `?`,
//! `VOLT <V>` / `VOLT?` (0..=30), `CURR <A>` / `CURR?` (0..=5), `OUTP ON|OFF` / `OUTP?`,
//! `MEAS:VOLT[:DC]? [CHn]`, `MEAS:CURR[:DC]? [CHn]`, `READ?` (channel 1's voltage).
//! Output current is the set voltage over the load (100 Ω unless changed), capped at the
//! current limit. Unknown headers queue `-113,"Undefined header"`, bad values
//! `-222,"Data out of range"` or `-224,"Illegal parameter value"`; the queue holds 20
//! entries and then reports `-350,"Queue overflow"`.
//!
//! Faults on demand ([`ScpiSim::control`]): `fault garbage` (the next answer is not a
//! number), `fault silence` (the next query gets no answer), `latency <ms>`,
//! `load <ohms>`, `get` (the state as one line).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

pub const ERROR_QUEUE: usize = 20;
const CHANNELS: usize = 3;
const IDLE_CHECK: Duration = Duration::from_millis(100);
/// Longest command line accepted; a longer one closes the connection.
const MAX_LINE: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq)]
struct Channel {
    volt: f64,
    curr: f64,
    on: bool,
}

const RESET: Channel = Channel {
    volt: 5.0,
    curr: 1.0,
    on: true,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScpiFault {
    Garbage,
    Silence,
}

struct State {
    ch: [Channel; CHANNELS],
    selected: usize,
    load_ohms: f64,
    errors: VecDeque<String>,
    faults: VecDeque<ScpiFault>,
    latency_ms: u64,
    /// Every command line received, in order.
    log: Vec<String>,
}

impl State {
    fn new() -> State {
        State {
            ch: [RESET; CHANNELS],
            selected: 0,
            load_ohms: 100.0,
            errors: VecDeque::new(),
            faults: VecDeque::new(),
            latency_ms: 0,
            log: Vec::new(),
        }
    }

    fn error(&mut self, e: &str) {
        if self.errors.len() >= ERROR_QUEUE {
            if let Some(last) = self.errors.back_mut() {
                *last = "-350,\"Queue overflow\"".into();
            }
        } else {
            self.errors.push_back(e.into());
        }
    }

    fn current(&self, c: usize) -> f64 {
        let ch = self.ch[c];
        if !ch.on {
            return 0.0;
        }
        (ch.volt / self.load_ohms).min(ch.curr)
    }

    fn voltage(&self, c: usize) -> f64 {
        let ch = self.ch[c];
        if !ch.on {
            0.0
        } else if ch.volt / self.load_ohms > ch.curr {
            // Current limited: the supply drops its voltage (constant-current mode).
            ch.curr * self.load_ohms
        } else {
            ch.volt
        }
    }

    /// One command; `Some` answer for a query.
    fn command(&mut self, cmd: &str) -> Option<String> {
        let cmd = cmd.trim();
        let (header, arg) = match cmd.split_once(char::is_whitespace) {
            Some((h, a)) => (h, a.trim()),
            None => (cmd, ""),
        };
        let header = normalize(header);
        let num = |s: &mut State, lo: f64, hi: f64| -> Option<f64> {
            match arg.parse::<f64>() {
                Ok(v) if (lo..=hi).contains(&v) => Some(v),
                Ok(_) => {
                    s.error("-222,\"Data out of range\"");
                    None
                }
                Err(_) if arg.is_empty() => {
                    s.error("-109,\"Missing parameter\"");
                    None
                }
                Err(_) => {
                    s.error("-224,\"Illegal parameter value\"");
                    None
                }
            }
        };
        // `CH2` / `2` / `(@2)` after a measurement query; none = the selected channel.
        let channel = |s: &mut State| -> Option<usize> {
            if arg.is_empty() {
                return Some(s.selected);
            }
            let digits = arg
                .trim_start_matches("(@")
                .trim_end_matches(')')
                .trim_start_matches(['C', 'c', 'H', 'h']);
            match digits.parse::<usize>() {
                Ok(n) if (1..=CHANNELS).contains(&n) => Some(n - 1),
                _ => {
                    s.error("-224,\"Illegal parameter value\"");
                    None
                }
            }
        };
        let fmt = |v: f64| format!("{v:+.6E}");
        let sel = self.selected;
        match header.as_str() {
            "*IDN?" => Some("hilt,SIM-PSU-3CH,HILT0001,1.0".into()),
            "*OPC?" => Some("1".into()),
            "*RST" => {
                self.ch = [RESET; CHANNELS];
                self.selected = 0;
                None
            }
            "*CLS" => {
                self.errors.clear();
                None
            }
            "SYST:ERR?" | "SYST:ERR:NEXT?" => Some(
                self.errors
                    .pop_front()
                    .unwrap_or_else(|| "0,\"No error\"".into()),
            ),
            "INST:NSEL" => {
                if let Some(n) = num(self, 1.0, CHANNELS as f64) {
                    if n.fract() == 0.0 {
                        self.selected = n as usize - 1;
                    } else {
                        self.error("-224,\"Illegal parameter value\"");
                    }
                }
                None
            }
            "INST:NSEL?" => Some((sel + 1).to_string()),
            "VOLT" => {
                if let Some(v) = num(self, 0.0, 30.0) {
                    self.ch[sel].volt = v;
                }
                None
            }
            "VOLT?" => Some(fmt(self.ch[sel].volt)),
            "CURR" => {
                if let Some(v) = num(self, 0.0, 5.0) {
                    self.ch[sel].curr = v;
                }
                None
            }
            "CURR?" => Some(fmt(self.ch[sel].curr)),
            "OUTP" => {
                match arg.to_ascii_uppercase().as_str() {
                    "ON" | "1" => self.ch[sel].on = true,
                    "OFF" | "0" => self.ch[sel].on = false,
                    _ => self.error("-224,\"Illegal parameter value\""),
                }
                None
            }
            "OUTP?" => Some(if self.ch[sel].on { "1" } else { "0" }.into()),
            "MEAS:VOLT?" | "MEAS:VOLT:DC?" => channel(self).map(|c| fmt(self.voltage(c))),
            "MEAS:CURR?" | "MEAS:CURR:DC?" => channel(self).map(|c| fmt(self.current(c))),
            "READ?" => Some(fmt(self.voltage(0))),
            _ => {
                self.error("-113,\"Undefined header\"");
                // A query still gets nothing back: the client times out, as on hardware.
                None
            }
        }
    }
}

/// `:meas:voltage:dc?` → `MEAS:VOLT:DC?` (long forms to short, leading colon dropped).
fn normalize(header: &str) -> String {
    let h = header.trim_start_matches(':').to_ascii_uppercase();
    let query = h.ends_with('?');
    let body = h.trim_end_matches('?');
    if body.starts_with('*') {
        return h;
    }
    let short: Vec<&str> = body
        .split(':')
        .map(|t| match t {
            "MEASURE" | "MEAS" => "MEAS",
            "VOLTAGE" | "VOLT" => "VOLT",
            "CURRENT" | "CURR" => "CURR",
            "SYSTEM" | "SYST" => "SYST",
            "ERROR" | "ERR" => "ERR",
            "OUTPUT" | "OUTP" => "OUTP",
            "INSTRUMENT" | "INST" => "INST",
            "NSELECT" | "NSEL" => "NSEL",
            "SOURCE" | "SOUR" => "",
            other => other,
        })
        .filter(|t| !t.is_empty())
        .collect();
    let mut out = short.join(":");
    if query {
        out.push('?');
    }
    out
}

/// Where the simulated instrument is reached.
enum Endpoint {
    Tcp(SocketAddr),
    /// A pty: its slave path, the optional link to it, and the slave held open.
    Serial {
        path: PathBuf,
        link: Option<PathBuf>,
        _slave: std::os::fd::OwnedFd,
    },
}

/// A running simulated instrument; stops when dropped.
pub struct ScpiSim {
    endpoint: Endpoint,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ScpiSim {
    /// Listens on `bind` (`127.0.0.1:0` for any free port).
    pub fn start(bind: &str) -> std::io::Result<ScpiSim> {
        let listener = TcpListener::bind(bind)?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("scpi-sim".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if sp.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let (st, sp) = (st.clone(), sp.clone());
                    let _ = std::thread::Builder::new()
                        .name("scpi-sim-conn".into())
                        .spawn(move || serve(&st, &sp, conn));
                }
            })?;
        Ok(ScpiSim {
            endpoint: Endpoint::Tcp(addr),
            state,
            stop,
            thread: Some(thread),
        })
    }

    /// The same instrument on a serial line: a pty, linked from `link` when given.
    pub fn start_serial(link: Option<PathBuf>) -> Result<ScpiSim, crate::SimError> {
        let pty = crate::pty::open()?;
        if let Some(l) = &link {
            crate::link::create(l, &pty.path)?;
        }
        let state = Arc::new(Mutex::new(State::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        let master = pty.master;
        let thread = std::thread::Builder::new()
            .name("scpi-sim-serial".into())
            .spawn(move || serve_pty(&st, &sp, master))
            .map_err(crate::SimError::Thread)?;
        Ok(ScpiSim {
            endpoint: Endpoint::Serial {
                path: pty.path,
                link,
                _slave: pty.slave,
            },
            state,
            stop,
            thread: Some(thread),
        })
    }

    /// The TCP address (`None` on a serial line).
    pub fn addr(&self) -> Option<SocketAddr> {
        match &self.endpoint {
            Endpoint::Tcp(a) => Some(*a),
            Endpoint::Serial { .. } => None,
        }
    }

    /// `tcp://127.0.0.1:<port>` or `serial://<pty>`, as a bench writes the address.
    pub fn address(&self) -> String {
        match &self.endpoint {
            Endpoint::Tcp(a) => format!("tcp://{a}"),
            Endpoint::Serial { path, link, .. } => {
                format!("serial://{}", link.as_ref().unwrap_or(path).display())
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    pub fn inject(&self, fault: ScpiFault) {
        self.lock().faults.push_back(fault);
    }

    /// Every command line received.
    pub fn commands(&self) -> Vec<String> {
        self.lock().log.clone()
    }

    /// The set voltage and current limit of channel `n` (1-based).
    pub fn setpoints(&self, n: usize) -> (f64, f64) {
        let ch = self.lock().ch[n.clamp(1, CHANNELS) - 1];
        (ch.volt, ch.curr)
    }

    /// Runs one control command and returns its answer line.
    pub fn control(&self, line: &str) -> String {
        let words: Vec<&str> = line.split_whitespace().collect();
        let mut s = self.lock();
        match words.as_slice() {
            ["fault", "garbage"] => s.faults.push_back(ScpiFault::Garbage),
            ["fault", "silence"] => s.faults.push_back(ScpiFault::Silence),
            ["latency", ms] => match ms.parse() {
                Ok(ms) => s.latency_ms = ms,
                Err(_) => return format!("error: `{ms}` is not a number of milliseconds"),
            },
            ["load", ohms] => match ohms.parse::<f64>() {
                Ok(o) if o > 0.0 && o.is_finite() => s.load_ohms = o,
                _ => return format!("error: `{ohms}` is not a load in ohms > 0"),
            },
            ["get"] => {
                return s
                    .ch
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        format!(
                            "ch{}={}V/{}A/{}",
                            i + 1,
                            c.volt,
                            c.curr,
                            if c.on { "on" } else { "off" }
                        )
                    })
                    .chain([format!("errors={}", s.errors.len())])
                    .collect::<Vec<_>>()
                    .join(" ");
            }
            _ => return format!("error: unknown command `{line}`"),
        }
        "ok".into()
    }
}

impl Drop for ScpiSim {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Endpoint::Tcp(a) = &self.endpoint {
            let _ = TcpStream::connect_timeout(a, Duration::from_secs(1));
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Endpoint::Serial {
            path,
            link: Some(l),
            ..
        } = &self.endpoint
        {
            crate::link::remove(l, path);
        }
    }
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs one command line; the answer line to send, if any (after the latency).
fn respond(state: &Mutex<State>, text: &str) -> Option<String> {
    if text.is_empty() {
        return None;
    }
    let (answers, latency, fault) = {
        let mut s = lock(state);
        s.log.push(text.to_string());
        let answers: Vec<String> = text.split(';').filter_map(|c| s.command(c)).collect();
        let fault = if answers.is_empty() {
            None
        } else {
            s.faults.pop_front()
        };
        (answers, s.latency_ms, fault)
    };
    if answers.is_empty() {
        return None;
    }
    if latency > 0 {
        std::thread::sleep(Duration::from_millis(latency));
    }
    match fault {
        None => Some(answers.join(";")),
        Some(ScpiFault::Garbage) => Some("#@!ERR".into()),
        Some(ScpiFault::Silence) => None,
    }
}

/// The serial side: bytes from the pty master, one command per line.
fn serve_pty(state: &Mutex<State>, stop: &AtomicBool, mut master: std::fs::File) {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::io::Read;
    use std::os::fd::AsFd;
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = [0u8; 1024];
    while !stop.load(Ordering::SeqCst) {
        let ready = {
            let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
            matches!(poll(&mut fds, PollTimeout::from(100u16)), Ok(n) if n > 0)
        };
        if !ready {
            continue;
        }
        match master.read(&mut buf) {
            Ok(n) => pending.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
            Err(_) => std::thread::sleep(IDLE_CHECK),
        }
        while let Some(i) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=i).collect();
            let text = String::from_utf8_lossy(&line).trim().to_string();
            if let Some(out) = respond(state, &text) {
                let _ = master.write_all(format!("{out}\n").as_bytes());
            }
        }
        if pending.len() > MAX_LINE {
            pending.clear();
        }
    }
}

fn serve(state: &Mutex<State>, stop: &AtomicBool, conn: TcpStream) {
    let _ = conn.set_read_timeout(Some(IDLE_CHECK));
    let _ = conn.set_nodelay(true);
    let Ok(mut writer) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(conn);
    let mut line = Vec::new();
    loop {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => return,
            Ok(_) if line.ends_with(b"\n") => {}
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) =>
            {
                if line.len() > MAX_LINE {
                    return;
                }
                continue;
            }
            Err(_) => return,
        }
        let text = String::from_utf8_lossy(&line).trim().to_string();
        line.clear();
        let Some(out) = respond(state, &text) else {
            continue;
        };
        if writer.write_all(format!("{out}\n").as_bytes()).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_supply_and_its_error_queue() {
        let mut s = State::new();
        assert_eq!(s.command("*IDN?").unwrap(), "hilt,SIM-PSU-3CH,HILT0001,1.0");
        assert_eq!(s.command(":SOUR:VOLTAGE 3.3"), None);
        assert_eq!(s.command("meas:volt?").unwrap(), "+3.300000E0");
        assert_eq!(s.command("MEAS:CURR:DC?").unwrap(), "+3.300000E-2");
        s.command("CURR 0.01");
        // Current limited: 10 mA into 100 Ω is 1 V.
        assert_eq!(s.command("MEAS:VOLT? CH1").unwrap(), "+1.000000E0");
        s.command("VOLT 99");
        s.command("BOGUS");
        assert_eq!(
            s.command("SYST:ERR?").unwrap(),
            "-222,\"Data out of range\""
        );
        assert_eq!(s.command("SYST:ERR?").unwrap(), "-113,\"Undefined header\"");
        assert_eq!(s.command("SYST:ERR?").unwrap(), "0,\"No error\"");
        for _ in 0..30 {
            s.command("NOPE");
        }
        assert_eq!(s.errors.len(), ERROR_QUEUE);
        assert_eq!(s.errors.back().unwrap(), "-350,\"Queue overflow\"");
        s.command("*CLS");
        s.command("INST:NSEL 2");
        s.command("OUTP OFF");
        assert_eq!(s.command("MEAS:VOLT? CH2").unwrap(), "+0.000000E0");
        assert_eq!(s.command("MEAS:VOLT? CH3").unwrap(), "+5.000000E0");
        assert_eq!(s.command("*OPC?").unwrap(), "1");
        assert!(s.errors.is_empty());
    }
}

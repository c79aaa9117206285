//! The hardware a run holds: only the transports, GPIO lines, power switches and
//! instruments the suite references (plus self-identification transports).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use hilt_hw::ResourceKind;
use hilt_hw::board::Board;
use hilt_hw::can::CanLink;
use hilt_hw::drivers::{
    Opened, OpenedTransport, open_gpio, open_resource, resource_driver, transport_driver,
};
use hilt_hw::gpio::NodeLines;
use hilt_hw::i2c::I2cBus;
use hilt_hw::measurement::Instrument;
use hilt_hw::modbus::ModbusLink;
use hilt_hw::power::PowerSwitch;
use hilt_hw::serial::SerialSettings;
use hilt_hw::spi::{SpiConfig, SpiDevice};
use hilt_model::bench::{Bench, FlashBackend, Transport};
use hilt_model::run::{EventKind, Failure};

use crate::classify::hw_failure;
use crate::data;
use crate::events::Events;
use crate::logfile::LogFile;
use crate::plan::Uses;
use crate::uart::Uart;

pub struct NodeGpio {
    pub lines: NodeLines,
    pub log: LogFile,
}

pub struct PowerRes {
    pub switch: Box<dyn PowerSwitch>,
    pub log: LogFile,
}

pub struct InstrumentRes {
    pub inst: Box<dyn Instrument>,
    pub log: LogFile,
}

pub struct ModbusRes {
    pub link: Box<dyn ModbusLink>,
    pub log: LogFile,
    pub log_path: String,
    /// The transport's `default_slave`, for steps that name none.
    pub default_slave: u32,
}

pub struct I2cRes {
    pub bus: Box<dyn I2cBus>,
    pub log: LogFile,
    pub log_path: String,
}

pub struct SpiRes {
    pub dev: Box<dyn SpiDevice>,
    /// The transport's mode, word size and clock; transfers are checked against it.
    pub cfg: SpiConfig,
    pub log: LogFile,
    pub log_path: String,
}

pub struct CanRes {
    pub link: Box<dyn CanLink>,
    pub log: LogFile,
    pub log_path: String,
}

#[derive(Default)]
pub struct Session {
    pub uarts: BTreeMap<(String, String), Uart>,
    pub modbus: BTreeMap<(String, String), ModbusRes>,
    pub i2c: BTreeMap<(String, String), I2cRes>,
    pub spi: BTreeMap<(String, String), SpiRes>,
    pub can: BTreeMap<(String, String), CanRes>,
    pub gpio: BTreeMap<String, NodeGpio>,
    pub power: BTreeMap<String, PowerRes>,
    pub instruments: BTreeMap<String, InstrumentRes>,
}

/// The kind of a bench resource, from its driver (`None` when not in this build).
pub fn resource_kind(bench: &Bench, name: &str) -> Option<ResourceKind> {
    bench
        .resources
        .get(name)
        .and_then(|r| resource_driver(r.driver.type_name()))
        .map(|d| d.kind())
}

/// The log file of a resource, named after its kind.
pub fn resource_log(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::Power => "power.log",
        ResourceKind::Measurement => "measurement.log",
        ResourceKind::Serial => "serial.log",
        ResourceKind::Modbus => "modbus.log",
        ResourceKind::Can => "can.log",
        ResourceKind::Gpio => "gpio.log",
        ResourceKind::I2c => "i2c.log",
        ResourceKind::Spi => "spi.log",
    }
}

/// Opens one UART transport and starts its reader (`None`: not a UART transport). A port
/// `qemu:<board>` is that emulated board's pty (`board_uart` finds it).
fn open_uart(
    bench: &Bench,
    node: &str,
    name: &str,
    logs: &Path,
    ev: &mut Events,
    board_uart: &mut dyn FnMut(&str) -> Option<String>,
) -> Result<Option<Uart>, Failure> {
    let Some(
        t @ Transport::Uart {
            port,
            baud,
            bytesize,
            parity,
            stopbits,
            ..
        },
    ) = bench.nodes.get(node).and_then(|n| n.transports.get(name))
    else {
        return Ok(None);
    };
    let log_path = logs
        .join("nodes")
        .join(node)
        .join(format!("transport-{name}.log"));
    let d = data!("node_name" => node, "transport_name" => name, "transport_backend" => "uart", "log_path" => log_path.display().to_string());
    ev.emit(EventKind::TRANSPORT_STARTING, None, d.clone());
    let fail = |e: &hilt_hw::HwError| {
        hw_failure(e)
            .with_detail("node", node.to_string())
            .with_detail("transport", name.to_string())
            .with_detail("port", port.clone())
    };
    let device = match t.qemu_board() {
        Some(board) => board_uart(board).ok_or_else(|| {
            fail(&hilt_hw::HwError::open(
                ResourceKind::Serial,
                "serial port",
                port.clone(),
                format!("resource `{board}` is not an emulated board"),
            ))
        })?,
        None => port.clone(),
    };
    let settings = SerialSettings {
        port: device.clone(),
        baud: *baud,
        bytesize: *bytesize,
        parity: *parity,
        stopbits: *stopbits,
    };
    let port_handle = hilt_hw::serial::open(&settings).map_err(|e| fail(&e))?;
    let mut log = LogFile::open(&log_path).map_err(|e| io_failure(&log_path, e))?;
    if device == *port {
        log.line(&format!("OPEN {port} baud={baud}"));
    } else {
        log.line(&format!("OPEN {port} ({device}) baud={baud}"));
    }
    let uart = Uart::start(port_handle, log, &format!("{node}.{name}")).map_err(|e| {
        fail(&hilt_hw::HwError::io(
            ResourceKind::Serial,
            "serial port",
            e,
        ))
    })?;
    ev.emit(EventKind::TRANSPORT_STARTED, None, d);
    Ok(Some(uart))
}

impl Session {
    /// Opens everything the suite uses. On failure, what was opened is closed by Drop.
    pub fn open(
        bench: &Bench,
        uses: &Uses,
        dir: &Path,
        ev: &mut Events,
    ) -> Result<Session, Failure> {
        let mut s = Session::default();
        let logs = dir.join("logs");
        // Emulated boards first: their UART (a pty) exists once the board is open.
        let boards = boards(bench, uses);
        for res in uses
            .resources
            .iter()
            .filter(|r| boards.contains(r.as_str()))
        {
            s.open_resource(bench, res, &logs, ev)?;
        }
        for (node, name) in &uses.transports {
            let Some(t) = bench.nodes.get(node).and_then(|n| n.transports.get(name)) else {
                continue;
            };
            if let Some(driver) = transport_driver(t.backend()) {
                s.open_transport(driver, node, name, t, &logs, ev)?;
                continue;
            }
            if let Some(uart) = open_uart(bench, node, name, &logs, ev, &mut |b| s.board_uart(b))? {
                s.uarts.insert((node.clone(), name.clone()), uart);
            }
        }
        for node in &uses.gpio_nodes {
            let log_path = logs.join("nodes").join(node).join("gpio.log");
            ev.emit(
                EventKind::GPIO_STARTING,
                None,
                data!("node_name" => node, "gpio_log_path" => log_path.display().to_string()),
            );
            let mut log = LogFile::open(&log_path).map_err(|e| io_failure(&log_path, e))?;
            let lines = open_gpio(node, &bench.nodes[node].gpio, true)
                .map_err(|e| hw_failure(&e).with_detail("node", node.clone()))?;
            log.line("START");
            s.gpio.insert(node.clone(), NodeGpio { lines, log });
            ev.emit(
                EventKind::GPIO_STARTED,
                None,
                data!("node_name" => node, "gpio_log_path" => log_path.display().to_string()),
            );
        }
        for res in uses
            .resources
            .iter()
            .filter(|r| !boards.contains(r.as_str()))
        {
            s.open_resource(bench, res, &logs, ev)?;
        }
        // With the UARTs listening, boards with configured firmware boot.
        for (res, p) in &mut s.power {
            if let Some(board) = p.switch.board() {
                match board.boot() {
                    Ok(true) => p.log.line("BOOT configured firmware"),
                    Ok(false) => p.log.line("OFF until flashed"),
                    Err(e) => return Err(hw_failure(&e).with_detail("resource", res.clone())),
                }
            }
        }
        Ok(s)
    }

    /// Closes the UART transports of `node` on serial port `port` (a flash tool is about to
    /// use it: esptool programs through the console's own adapter) and returns their names
    /// for [`Session::reopen_uarts`].
    pub fn release_port(
        &mut self,
        node: &str,
        port: &str,
        bench: &Bench,
        ev: &mut Events,
    ) -> Vec<String> {
        let same = |p: &str| {
            p == port
                || matches!((std::fs::canonicalize(p), std::fs::canonicalize(port)), (Ok(a), Ok(b)) if a == b)
        };
        let names: Vec<String> = self
            .uarts
            .keys()
            .filter(|(n, t)| {
                n == node
                    && matches!(bench.nodes[node].transports.get(t), Some(Transport::Uart { port: p, .. }) if same(p))
            })
            .map(|(_, t)| t.clone())
            .collect();
        for t in &names {
            if let Some(mut u) = self.uarts.remove(&(node.to_string(), t.clone())) {
                u.note("CLOSE for the flash tool");
                u.stop();
                ev.emit(
                    EventKind::TRANSPORT_STOPPED,
                    Some("port handed to the flash tool".into()),
                    data!("node_name" => node, "transport_name" => t),
                );
            }
        }
        names
    }

    /// Opens again the transports [`Session::release_port`] closed (logs are appended to).
    pub fn reopen_uarts(
        &mut self,
        node: &str,
        names: Vec<String>,
        bench: &Bench,
        dir: &Path,
        ev: &mut Events,
    ) -> Result<(), Failure> {
        for t in names {
            let logs = dir.join("logs");
            if let Some(uart) = open_uart(bench, node, &t, &logs, ev, &mut |b| self.board_uart(b))?
            {
                self.uarts.insert((node.to_string(), t), uart);
            }
        }
        Ok(())
    }

    /// Opens a transport through its driver (Modbus RTU/TCP, I2C, SPI).
    fn open_transport(
        &mut self,
        driver: &dyn hilt_hw::drivers::TransportDriver,
        node: &str,
        name: &str,
        t: &Transport,
        logs: &Path,
        ev: &mut Events,
    ) -> Result<(), Failure> {
        let log_path = logs
            .join("nodes")
            .join(node)
            .join(format!("transport-{name}.log"));
        let path = log_path.display().to_string();
        let d = data!("node_name" => node, "transport_name" => name, "transport_backend" => t.backend(), "log_path" => path.clone());
        ev.emit(EventKind::TRANSPORT_STARTING, None, d.clone());
        let mut log = LogFile::open(&log_path).map_err(|e| io_failure(&log_path, e))?;
        let opened = driver.open(node, name, t).map_err(|e| {
            log.line(&format!("OPEN FAILED {e}"));
            log.flush();
            hw_failure(&e)
                .with_detail("node", node.to_string())
                .with_detail("transport", name.to_string())
                .with_artifact("transport_log", path.clone())
        })?;
        match opened {
            OpenedTransport::Modbus(link) => {
                log.line(&format!("OPEN {}", link.describe()));
                let default_slave = match t {
                    Transport::ModbusRtu { default_slave, .. }
                    | Transport::ModbusTcp { default_slave, .. } => *default_slave,
                    _ => 1,
                };
                self.modbus.insert(
                    (node.to_string(), name.to_string()),
                    ModbusRes {
                        link,
                        log,
                        log_path: path,
                        default_slave,
                    },
                );
            }
            OpenedTransport::I2c(bus) => {
                log.line(&format!("OPEN {}", bus.describe()));
                self.i2c.insert(
                    (node.to_string(), name.to_string()),
                    I2cRes {
                        bus,
                        log,
                        log_path: path,
                    },
                );
            }
            OpenedTransport::Spi(dev, cfg) => {
                log.line(&format!(
                    "OPEN {} mode={} bits_per_word={} speed={}",
                    dev.describe(),
                    cfg.mode,
                    cfg.bits_per_word,
                    cfg.max_speed_hz
                ));
                self.spi.insert(
                    (node.to_string(), name.to_string()),
                    SpiRes {
                        dev,
                        cfg,
                        log,
                        log_path: path,
                    },
                );
            }
            OpenedTransport::Can(link) => {
                log.line(&format!("START {}", link.describe()));
                self.can.insert(
                    (node.to_string(), name.to_string()),
                    CanRes {
                        link,
                        log,
                        log_path: path,
                    },
                );
            }
        }
        ev.emit(EventKind::TRANSPORT_STARTED, None, d);
        Ok(())
    }

    fn open_resource(
        &mut self,
        bench: &Bench,
        res: &str,
        logs: &Path,
        ev: &mut Events,
    ) -> Result<(), Failure> {
        let Some(kind) = resource_kind(bench, res) else {
            return Ok(());
        };
        let log_path = logs.join("resources").join(res).join(resource_log(kind));
        let mut log = LogFile::open(&log_path).map_err(|e| io_failure(&log_path, e))?;
        let opened = open_resource(res, &bench.resources[res].driver)
            .map_err(|e| hw_failure(&e).with_detail("resource", res.to_string()))?;
        log.line("START");
        let path = log_path.display().to_string();
        match opened {
            Opened::Power(mut switch) => {
                if let Some(board) = switch.board() {
                    board.set_log(log_path.with_file_name("emulator.log"));
                    log.line(&format!("UART {}", board.uart_path().display()));
                }
                self.power.insert(res.to_string(), PowerRes { switch, log });
                ev.emit(
                    EventKind::POWER_STARTED,
                    None,
                    data!("resource_name" => res, "power_log_path" => path),
                );
            }
            Opened::Instrument(inst) => {
                self.instruments
                    .insert(res.to_string(), InstrumentRes { inst, log });
                ev.emit(
                    EventKind::MEASUREMENT_STARTED,
                    None,
                    data!("resource_name" => res, "measurement_log_path" => path),
                );
            }
        }
        Ok(())
    }

    /// The pty of an opened emulated board's UART.
    fn board_uart(&mut self, board: &str) -> Option<String> {
        let p = self.power.get_mut(board)?;
        Some(p.switch.board()?.uart_path().display().to_string())
    }

    /// The emulated board behind a node's `flash: {backend: qemu, board}`.
    pub fn board(&mut self, name: &str) -> Option<&mut dyn Board> {
        self.power.get_mut(name)?.switch.board()
    }

    /// Stops readers and flushes logs, emitting the matching events.
    pub fn close(&mut self, ev: &mut Events) {
        for ((node, name), mut c) in std::mem::take(&mut self.can) {
            for n in c.link.take_notes() {
                c.log.line(&n);
            }
            c.log.line("STOP");
            c.log.flush();
            ev.emit(
                EventKind::TRANSPORT_STOPPED,
                None,
                data!("node_name" => node, "transport_name" => name),
            );
        }
        let mut logs: Vec<((String, String), LogFile)> = Vec::new();
        logs.extend(
            std::mem::take(&mut self.modbus)
                .into_iter()
                .map(|(k, m)| (k, m.log)),
        );
        logs.extend(
            std::mem::take(&mut self.i2c)
                .into_iter()
                .map(|(k, b)| (k, b.log)),
        );
        logs.extend(
            std::mem::take(&mut self.spi)
                .into_iter()
                .map(|(k, d)| (k, d.log)),
        );
        for ((node, name), mut log) in logs {
            log.line("STOP");
            log.flush();
            ev.emit(
                EventKind::TRANSPORT_STOPPED,
                None,
                data!("node_name" => node, "transport_name" => name),
            );
        }
        for ((node, name), mut u) in std::mem::take(&mut self.uarts) {
            u.stop();
            ev.emit(
                EventKind::TRANSPORT_STOPPED,
                None,
                data!("node_name" => node, "transport_name" => name),
            );
        }
        for (node, mut g) in std::mem::take(&mut self.gpio) {
            g.log.line("STOP");
            g.log.flush();
            ev.emit(EventKind::GPIO_STOPPED, None, data!("node_name" => node));
        }
        for (res, mut p) in std::mem::take(&mut self.power) {
            p.log.line("STOP");
            p.log.flush();
            ev.emit(
                EventKind::POWER_STOPPED,
                None,
                data!("resource_name" => res),
            );
        }
        for (res, mut m) in std::mem::take(&mut self.instruments) {
            m.log.line("STOP");
            m.log.flush();
            ev.emit(
                EventKind::MEASUREMENT_STOPPED,
                None,
                data!("resource_name" => res),
            );
        }
    }
}

/// The `qemu` resources the used nodes reach: by a UART port or a flash block.
fn boards<'b>(bench: &'b Bench, uses: &Uses) -> BTreeSet<&'b str> {
    let mut out = BTreeSet::new();
    for (node, name) in &uses.transports {
        if let Some(b) = bench
            .nodes
            .get(node)
            .and_then(|n| n.transports.get(name))
            .and_then(Transport::qemu_board)
        {
            out.insert(b);
        }
    }
    for node in &uses.nodes {
        if let Some(FlashBackend::Qemu { board }) = bench
            .nodes
            .get(node)
            .and_then(|n| n.flash.as_ref())
            .map(|f| &f.backend)
        {
            out.insert(board.as_str());
        }
    }
    out
}

fn io_failure(path: &Path, e: std::io::Error) -> Failure {
    Failure::new(
        hilt_model::run::Category::UnknownError,
        format!("cannot write {}: {e}", path.display()),
    )
    .with_source(hilt_model::run::Source::BenchInfrastructure)
}

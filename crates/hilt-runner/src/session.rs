//! The hardware a run holds: only the transports, GPIO lines, power switches and
//! instruments the suite references (plus self-identification transports).

use std::collections::BTreeMap;
use std::path::Path;

use hilt_hw::ResourceKind;
use hilt_hw::drivers::{Opened, open_gpio, open_resource, resource_driver};
use hilt_hw::gpio::NodeLines;
use hilt_hw::measurement::Instrument;
use hilt_hw::power::PowerSwitch;
use hilt_hw::serial::SerialSettings;
use hilt_model::bench::{Bench, Transport};
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

#[derive(Default)]
pub struct Session {
    pub uarts: BTreeMap<(String, String), Uart>,
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
        ResourceKind::Gpio => "gpio.log",
    }
}

/// Opens one UART transport and starts its reader (`None`: not a UART transport).
fn open_uart(
    bench: &Bench,
    node: &str,
    name: &str,
    logs: &Path,
    ev: &mut Events,
) -> Result<Option<Uart>, Failure> {
    let Some(Transport::Uart {
        port,
        baud,
        bytesize,
        parity,
        stopbits,
        ..
    }) = bench.nodes.get(node).and_then(|n| n.transports.get(name))
    else {
        return Ok(None);
    };
    let log_path = logs
        .join("nodes")
        .join(node)
        .join(format!("transport-{name}.log"));
    let d = data!("node_name" => node, "transport_name" => name, "transport_backend" => "uart", "log_path" => log_path.display().to_string());
    ev.emit(EventKind::TRANSPORT_STARTING, None, d.clone());
    let settings = SerialSettings {
        port: port.clone(),
        baud: *baud,
        bytesize: *bytesize,
        parity: *parity,
        stopbits: *stopbits,
    };
    let fail = |e: &hilt_hw::HwError| {
        hw_failure(e)
            .with_detail("node", node.to_string())
            .with_detail("transport", name.to_string())
            .with_detail("port", port.clone())
    };
    let port_handle = hilt_hw::serial::open(&settings).map_err(|e| fail(&e))?;
    let mut log = LogFile::open(&log_path).map_err(|e| io_failure(&log_path, e))?;
    log.line(&format!("OPEN {port} baud={baud}"));
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
        for (node, name) in &uses.transports {
            if let Some(uart) = open_uart(bench, node, name, &logs, ev)? {
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
        for res in &uses.resources {
            let Some(kind) = resource_kind(bench, res) else {
                continue;
            };
            let log_path = logs.join("resources").join(res).join(resource_log(kind));
            let mut log = LogFile::open(&log_path).map_err(|e| io_failure(&log_path, e))?;
            let opened = open_resource(res, &bench.resources[res].driver)
                .map_err(|e| hw_failure(&e).with_detail("resource", res.clone()))?;
            log.line("START");
            let path = log_path.display().to_string();
            match opened {
                Opened::Power(switch) => {
                    s.power.insert(res.clone(), PowerRes { switch, log });
                    ev.emit(
                        EventKind::POWER_STARTED,
                        None,
                        data!("resource_name" => res, "power_log_path" => path),
                    );
                }
                Opened::Instrument(inst) => {
                    s.instruments
                        .insert(res.clone(), InstrumentRes { inst, log });
                    ev.emit(
                        EventKind::MEASUREMENT_STARTED,
                        None,
                        data!("resource_name" => res, "measurement_log_path" => path),
                    );
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
            if let Some(uart) = open_uart(bench, node, &t, &dir.join("logs"), ev)? {
                self.uarts.insert((node.to_string(), t), uart);
            }
        }
        Ok(())
    }

    /// Stops readers and flushes logs, emitting the matching events.
    pub fn close(&mut self, ev: &mut Events) {
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

fn io_failure(path: &Path, e: std::io::Error) -> Failure {
    Failure::new(
        hilt_model::run::Category::UnknownError,
        format!("cannot write {}: {e}", path.display()),
    )
    .with_source(hilt_model::run::Source::BenchInfrastructure)
}

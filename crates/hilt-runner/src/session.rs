//! The hardware a run holds: only the transports, GPIO lines, power switches and
//! instruments the suite references (plus self-identification transports).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use hilt_hw::gpio::GpioLines;
use hilt_hw::measurement::Instrument;
use hilt_hw::power::PowerSwitch;
use hilt_hw::serial::SerialSettings;
use hilt_model::bench::{Bench, Transport};
use hilt_model::run::{EventKind, Failure};
use hilt_model::suite::{Step, Suite};

use crate::classify::hw_failure;
use crate::data;
use crate::events::Events;
use crate::logfile::LogFile;
use crate::uart::Uart;

pub struct NodeGpio {
    pub lines: Box<dyn GpioLines>,
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

/// What the suite touches.
pub struct Needs {
    pub transports: BTreeSet<(String, String)>,
    pub gpio_nodes: BTreeSet<String>,
    pub power: BTreeSet<String>,
    pub measurement: BTreeSet<String>,
    pub nodes: BTreeSet<String>,
}

pub fn needs(bench: &Bench, suite: &Suite) -> Needs {
    let mut n = Needs {
        transports: BTreeSet::new(),
        gpio_nodes: BTreeSet::new(),
        power: BTreeSet::new(),
        measurement: BTreeSet::new(),
        nodes: BTreeSet::new(),
    };
    for step in suite.tests.iter().flat_map(|t| &t.steps) {
        if let Some(node) = step.node() {
            n.nodes.insert(node.to_string());
            if bench.nodes.get(node).is_some_and(|x| !x.gpio.is_empty()) {
                n.gpio_nodes.insert(node.to_string());
            }
            if let Some(t) = step.transport() {
                n.transports.insert((node.to_string(), t.to_string()));
            }
        }
        match step {
            Step::PowerSet(s) | Step::PowerExpect(s) => {
                n.power.insert(s.resource.clone());
            }
            Step::PowerCycle(s) => {
                n.power.insert(s.resource.clone());
            }
            Step::Measure(m) => {
                n.measurement.insert(m.resource.clone());
            }
            _ => {}
        }
    }
    for node in n.nodes.clone() {
        if let Some(si) = bench.nodes[&node]
            .dut
            .as_ref()
            .and_then(|d| d.self_identification.as_ref())
        {
            n.transports.insert((node.clone(), si.transport.clone()));
        }
    }
    n
}

impl Session {
    /// Opens everything the suite needs. On failure, what was opened is closed by Drop.
    pub fn open(
        bench: &Bench,
        needs: &Needs,
        dir: &Path,
        ev: &mut Events,
    ) -> Result<Session, Failure> {
        let mut s = Session::default();
        let logs = dir.join("logs");
        for (node, name) in &needs.transports {
            let Some(Transport::Uart {
                port,
                baud,
                bytesize,
                parity,
                stopbits,
                ..
            }) = bench.nodes.get(node).and_then(|n| n.transports.get(name))
            else {
                continue;
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
                hw_failure(e, "uart")
                    .with_detail("node", node.clone())
                    .with_detail("transport", name.clone())
                    .with_detail("port", port.clone())
            };
            let port_handle = hilt_hw::serial::open(&settings).map_err(|e| fail(&e))?;
            let mut log = LogFile::open(&log_path).map_err(|e| io_failure(&log_path, e))?;
            log.line(&format!("OPEN {port} baud={baud}"));
            let uart = Uart::start(port_handle, log, &format!("{node}.{name}"))
                .map_err(|e| fail(&hilt_hw::HwError::io("serial port", e)))?;
            s.uarts.insert((node.clone(), name.clone()), uart);
            ev.emit(EventKind::TRANSPORT_STARTED, None, d);
        }
        for node in &needs.gpio_nodes {
            let log_path = logs.join("nodes").join(node).join("gpio.log");
            ev.emit(
                EventKind::GPIO_STARTING,
                None,
                data!("node_name" => node, "gpio_log_path" => log_path.display().to_string()),
            );
            let mut log = LogFile::open(&log_path).map_err(|e| io_failure(&log_path, e))?;
            let lines = hilt_hw::gpio::open(node, &bench.nodes[node].gpio, true)
                .map_err(|e| hw_failure(&e, "gpio").with_detail("node", node.clone()))?;
            log.line("START");
            s.gpio.insert(node.clone(), NodeGpio { lines, log });
            ev.emit(
                EventKind::GPIO_STARTED,
                None,
                data!("node_name" => node, "gpio_log_path" => log_path.display().to_string()),
            );
        }
        for res in &needs.power {
            let log_path = logs.join("resources").join(res).join("power.log");
            let mut log = LogFile::open(&log_path).map_err(|e| io_failure(&log_path, e))?;
            let switch = hilt_hw::power::open(res, &bench.resources[res].driver)
                .map_err(|e| hw_failure(&e, "power").with_detail("resource", res.clone()))?;
            log.line("START");
            s.power.insert(res.clone(), PowerRes { switch, log });
            ev.emit(
                EventKind::POWER_STARTED,
                None,
                data!("resource_name" => res, "power_log_path" => log_path.display().to_string()),
            );
        }
        for res in &needs.measurement {
            let log_path = logs.join("resources").join(res).join("measurement.log");
            let mut log = LogFile::open(&log_path).map_err(|e| io_failure(&log_path, e))?;
            let inst = hilt_hw::measurement::open(res, &bench.resources[res].driver)
                .map_err(|e| hw_failure(&e, "measurement").with_detail("resource", res.clone()))?;
            log.line("START");
            s.instruments
                .insert(res.clone(), InstrumentRes { inst, log });
            ev.emit(EventKind::MEASUREMENT_STARTED, None, data!("resource_name" => res, "measurement_log_path" => log_path.display().to_string()));
        }
        Ok(s)
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

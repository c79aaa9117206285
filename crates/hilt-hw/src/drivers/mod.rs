//! Drivers as plug-ins: one file per driver and one registry list.
//!
//! A driver names the tag a bench file selects it by (`driver: {type: …}` for resources,
//! `backend: …` for GPIO lines) and its [`ResourceKind`]; it checks its own parameters
//! (each problem names the field, so the loader can point at `file:line:column`), and owns
//! its lock specs, how it opens, and its non-destructive self-test. The rest of hilt never
//! names a concrete driver: "supported by this build" means "in [`RESOURCE_DRIVERS`] or
//! [`GPIO_DRIVERS`]".
//!
//! Parameters are decoded by `hilt-model` into its typed structs (every BenchCI field of
//! every driver, so `hilt schema bench` documents them all and files written for drivers
//! this build lacks still load); a driver matches its own variant and adds the checks it
//! needs to run. See ARCHITECTURE.md, "How to add a driver, in five steps".

mod gpio_power;
mod http_measurement;
mod http_relay;
mod i2c;
mod i2c_power_monitor;
mod local_gpio;
mod mock_gpio;
mod mock_measurement;
mod mock_power;
mod modbus_rtu;
mod modbus_tcp;
mod qemu;
mod remote_gpio;
mod scpi_measurement;
mod scpi_power_supply;
mod script_measurement;
mod serial_measurement;
mod slcan;
mod socketcan;
mod spi;
mod usb_relay_serial;

use std::collections::BTreeMap;

use hilt_model::bench::{Direction, GpioLine, ResourceDriver as Params, Transport};

use crate::can::CanLink;
use crate::gpio::NodeLines;
use crate::i2c::I2cBus;
use crate::locks::LockSpec;
use crate::measurement::Instrument;
use crate::modbus::ModbusLink;
use crate::power::PowerSwitch;
use crate::spi::{SpiConfig, SpiDevice};
use crate::{HwError, ResourceKind};

/// Every resource driver of this build (`resources.<r>.driver.type`).
pub static RESOURCE_DRIVERS: &[&dyn ResourceDriver] = &[
    &mock_power::MockPower,
    &mock_measurement::MockMeasurement,
    &http_relay::HttpRelay,
    &scpi_measurement::ScpiMeasurement,
    &scpi_power_supply::ScpiPowerSupply,
    &http_measurement::HttpMeasurement,
    &script_measurement::ScriptMeasurement,
    &serial_measurement::SerialMeasurement,
    &usb_relay_serial::UsbRelaySerial,
    &qemu::Qemu,
    &gpio_power::GpioPower,
    &i2c_power_monitor::I2cPowerMonitor,
];

/// Every GPIO backend of this build (`nodes.<n>.gpio.<line>.backend`).
pub static GPIO_DRIVERS: &[&dyn GpioDriver] = &[
    &mock_gpio::MockGpio,
    &local_gpio::LocalGpio,
    &remote_gpio::RemoteGpio,
];

/// Every transport driver of this build beyond the UART, which the runner owns
/// (`nodes.<n>.transports.<t>.backend`).
pub static TRANSPORT_DRIVERS: &[&dyn TransportDriver] = &[
    &modbus_rtu::ModbusRtu,
    &modbus_tcp::ModbusTcp,
    &i2c::I2c,
    &spi::Spi,
    &slcan::Slcan,
    &socketcan::SocketCan,
];

/// The transport driver for a `backend` tag, when this build has it.
pub fn transport_driver(tag: &str) -> Option<&'static dyn TransportDriver> {
    TRANSPORT_DRIVERS.iter().copied().find(|d| d.tag() == tag)
}

/// An opened transport.
pub enum OpenedTransport {
    Modbus(Box<dyn ModbusLink>),
    I2c(Box<dyn I2cBus>),
    /// A chip select and the settings its transfers are checked against.
    Spi(Box<dyn SpiDevice>, SpiConfig),
    Can(Box<dyn CanLink>),
}

/// A transport of a node beyond the UART (Modbus RTU/TCP, I2C, SPI, CAN through slcan or
/// SocketCAN). Its lock specs are the transport's
/// (self-test-and-locks spec §3.2), derived by the runner's plan from the transport.
pub trait TransportDriver: Sync {
    /// The `backend` that selects this driver.
    fn tag(&self) -> &'static str;
    /// Checks what this build needs beyond the format's own rules.
    fn check(&self, _transport: &Transport) -> Vec<Problem> {
        Vec::new()
    }
    /// Opens (connects) the transport without sending anything to the device.
    fn open(
        &self,
        node: &str,
        name: &str,
        transport: &Transport,
    ) -> Result<OpenedTransport, HwError>;
    /// Non-destructive self-test: by default, open and close (connects a TCP transport,
    /// opens a serial port; nothing is sent to the device). Ids are relative to the
    /// transport (`start`, `version`).
    fn self_test(&self, node: &str, name: &str, transport: &Transport) -> Vec<SelfCheck> {
        let outcome = match self.open(node, name, transport) {
            Ok(opened) => {
                drop(opened);
                Probe::Pass(format!("opened the {} transport", transport.backend()))
            }
            Err(e) => Probe::Failed(e),
        };
        vec![SelfCheck {
            id: "start".into(),
            title: format!("open {node}.{name}"),
            outcome,
        }]
    }
}

/// The resource driver for a `driver.type` tag, when this build has it.
pub fn resource_driver(tag: &str) -> Option<&'static dyn ResourceDriver> {
    RESOURCE_DRIVERS.iter().copied().find(|d| d.tag() == tag)
}

/// The GPIO driver for a `backend` tag, when this build has it.
pub fn gpio_driver(tag: &str) -> Option<&'static dyn GpioDriver> {
    GPIO_DRIVERS.iter().copied().find(|d| d.tag() == tag)
}

/// A parameter problem found by a driver; `field` is relative to the driver block
/// (`on_url`, `outlets.dut`) or empty for the block itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub field: String,
    pub message: String,
    pub help: Option<String>,
}

impl Problem {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            field: field.into(),
            message: message.into(),
            help: None,
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Problem {
        self.help = Some(help.into());
        self
    }
}

/// An opened resource.
pub enum Opened {
    Power(Box<dyn PowerSwitch>),
    Instrument(Box<dyn Instrument>),
}

/// One self-test probe: `id` is relative to the resource (`power.start`,
/// `power.dut.read`, `gpio.led.read`); the runner prefixes it and turns the outcome
/// into a check record.
#[derive(Debug)]
pub struct SelfCheck {
    pub id: String,
    pub title: String,
    pub outcome: Probe,
}

#[derive(Debug)]
pub enum Probe {
    Pass(String),
    Skip(String),
    /// Works, but cannot report its state.
    NoReadback(String),
    Failed(HwError),
}

/// A bench-level resource driver (power switch or instrument).
pub trait ResourceDriver: Sync {
    /// The `driver.type` that selects this driver.
    fn tag(&self) -> &'static str;
    fn kind(&self) -> ResourceKind;
    /// Checks what this build needs beyond the format's own rules (hilt-model checks those).
    fn check(&self, _params: &Params) -> Vec<Problem> {
        Vec::new()
    }
    /// The physical things this resource occupies while a run holds it.
    fn lock_specs(&self, resource: &str, params: &Params) -> Vec<LockSpec>;
    /// Opens the resource without switching or driving anything.
    fn open(&self, resource: &str, params: &Params) -> Result<Opened, HwError>;
    /// Non-destructive self-test: open, and with `read` read back what can be read
    /// (outlet states, one reading). Never switches an outlet.
    fn self_test(&self, resource: &str, params: &Params, read: bool) -> Vec<SelfCheck> {
        let kind = self.kind().as_str();
        let start = |outcome| SelfCheck {
            id: format!("{kind}.start"),
            title: format!("start {resource}"),
            outcome,
        };
        let opened = match self.open(resource, params) {
            Ok(o) => o,
            Err(e) => return vec![start(Probe::Failed(e))],
        };
        let mut out = vec![start(Probe::Pass(format!(
            "{} {} started",
            self.tag(),
            kind
        )))];
        if !read {
            return out;
        }
        match opened {
            Opened::Power(mut sw) => {
                for outlet in params.outlet_names() {
                    let outcome = match sw.get(&outlet) {
                        Ok(Some(on)) => Probe::Pass(if on { "on" } else { "off" }.into()),
                        Ok(None) => Probe::NoReadback("no readback".into()),
                        Err(HwError::NoReadback { reason, .. }) => Probe::NoReadback(reason),
                        Err(e) => Probe::Failed(e),
                    };
                    out.push(SelfCheck {
                        id: format!("power.{outlet}.read"),
                        title: format!("read {resource}.{outlet}"),
                        outcome,
                    });
                }
            }
            Opened::Instrument(mut inst) => out.push(SelfCheck {
                id: "measurement.read".into(),
                title: format!("read {resource}"),
                outcome: match inst.read() {
                    Ok(r) => Probe::Pass(format!("{} {}", r.value, r.unit.unwrap_or_default())),
                    Err(e) => Probe::Failed(e),
                },
            }),
        }
        out
    }
}

/// A GPIO backend: opens the lines of one node (a node uses one backend).
pub trait GpioDriver: Sync {
    /// The `backend` that selects this driver.
    fn tag(&self) -> &'static str;
    fn check(&self, _line: &GpioLine) -> Vec<Problem> {
        Vec::new()
    }
    /// The lock spec of one line.
    fn lock_spec(&self, node: &str, name: &str, line: &GpioLine) -> LockSpec;
    /// Opens the lines. With `drive_outputs`, outputs start at their logical-inactive
    /// level; without it (self-test) nothing is driven.
    fn open(
        &self,
        node: &str,
        lines: &BTreeMap<String, GpioLine>,
        drive_outputs: bool,
    ) -> Result<NodeLines, HwError>;
}

/// Opens the GPIO lines of a node through its backend's driver.
pub fn open_gpio(
    node: &str,
    lines: &BTreeMap<String, GpioLine>,
    drive_outputs: bool,
) -> Result<NodeLines, HwError> {
    let driver = node_gpio_driver(node, lines)?;
    driver.open(node, lines, drive_outputs)
}

/// The one driver serving every line of a node.
fn node_gpio_driver(
    node: &str,
    lines: &BTreeMap<String, GpioLine>,
) -> Result<&'static dyn GpioDriver, HwError> {
    let mut tags: Vec<&str> = lines.values().map(|l| l.backend.name()).collect();
    tags.sort_unstable();
    tags.dedup();
    let tag = match tags.as_slice() {
        [] => "mock_gpio",
        [one] => one,
        _ => {
            return Err(HwError::open(
                ResourceKind::Gpio,
                "GPIO lines of node",
                node,
                format!(
                    "the node mixes GPIO backends ({}); a node uses one backend",
                    tags.join(", ")
                ),
            ));
        }
    };
    gpio_driver(tag).ok_or_else(|| {
        HwError::open(
            ResourceKind::Gpio,
            "GPIO lines of node",
            node,
            format!("backend `{tag}` is not supported by this build"),
        )
    })
}

/// Non-destructive GPIO self-test of a node: open without driving outputs, and with
/// `read` read every input line.
pub fn gpio_self_test(
    node: &str,
    lines: &BTreeMap<String, GpioLine>,
    read: bool,
) -> Vec<SelfCheck> {
    let mut opened = match open_gpio(node, lines, false) {
        Ok(l) => l,
        Err(e) => {
            return vec![SelfCheck {
                id: "gpio.start".into(),
                title: format!("{node} GPIO"),
                outcome: Probe::Failed(e),
            }];
        }
    };
    let mut out = vec![SelfCheck {
        id: "gpio.start".into(),
        title: format!("{node} GPIO"),
        outcome: Probe::Pass("lines opened without driving outputs".into()),
    }];
    if read {
        for (name, line) in lines {
            let outcome = if line.direction == Direction::Output {
                Probe::Skip("output line".into())
            } else {
                match opened.get(name) {
                    Ok(v) => Probe::Pass(format!("physical level {}", v as u8)),
                    Err(e) => Probe::Failed(e),
                }
            };
            out.push(SelfCheck {
                id: format!("gpio.{name}.read"),
                title: format!("read {node}.{name}"),
                outcome,
            });
        }
    }
    out
}

/// Opens a resource through its driver.
pub fn open_resource(resource: &str, params: &Params) -> Result<Opened, HwError> {
    match resource_driver(params.type_name()) {
        Some(d) => d.open(resource, params),
        None => Err(HwError::open(
            if params.is_measurement() {
                ResourceKind::Measurement
            } else {
                ResourceKind::Power
            },
            "resource",
            resource,
            format!(
                "driver `{}` is not supported by this build",
                params.type_name()
            ),
        )),
    }
}

/// The error for a driver handed another driver's parameters (a registry bug).
pub(crate) fn wrong_params(kind: ResourceKind, tag: &str, params: &Params) -> HwError {
    HwError::unsupported(
        kind,
        format!(
            "driver `{tag}` cannot use `{}` parameters",
            params.type_name()
        ),
    )
}

/// The common details of a resource's lock spec.
pub(crate) fn resource_lock(
    resource: &str,
    params: &Params,
    key: String,
    display: String,
    category: &str,
) -> LockSpec {
    LockSpec::new(key, display, category)
        .with_detail("resource", resource.to_string())
        .with_detail("driver_type", params.type_name())
}

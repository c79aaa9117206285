//! Executes steps against the opened session. Each step either succeeds with event data,
//! fails its test (the run goes on with the next test), or aborts the run.

mod can;
mod control;
mod external;
mod fault;
pub mod fuzz;
mod gpio;
mod i2c;
mod measure;
mod modbus;
mod power;
mod remote;
mod spi;
pub mod stage;
mod uart;

pub(crate) use external::paths::slug;
pub use remote::Hosts;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};

use hilt_hw::CancelToken;
use hilt_model::bench::Bench;
use hilt_model::run::{Failure, Metric};
use hilt_model::suite::Step;

use crate::events::Events;
use crate::plan::Resolved;
use crate::rundir::Ledger;
use crate::session::Session;

/// How a step ended when it did not succeed.
pub enum StepError {
    /// The test fails; the run continues with the next test.
    Test(Failure),
    /// The run aborts with status `error`.
    Run(Failure),
    Cancelled,
}

pub type StepResult = Result<Map<String, Value>, StepError>;

/// Options the executor needs from the run.
pub struct ExecOptions {
    pub skip_flash: bool,
    pub artifact: Option<PathBuf>,
    /// Base directory for relative artifact paths in the bench/suite.
    pub suite_dir: PathBuf,
    pub bench_dir: PathBuf,
}

pub struct Exec<'a> {
    pub bench: &'a Bench,
    pub session: Session,
    pub cancel: CancelToken,
    pub dir: PathBuf,
    pub opts: ExecOptions,
    pub commands: Ledger,
    pub measurements: Vec<Metric>,
    pub metrics: Map<String, Value>,
    /// Test-local readings, moved into the test result when it ends.
    pub test_measurements: Vec<Metric>,
    /// Test-local fuzz campaign and fault-injection records, moved into the test result.
    pub test_fuzz: Vec<Value>,
    pub test_faults: Vec<Value>,
    /// Name and 1-based index of the test being run, and the 1-based index of its step.
    pub current_test: String,
    pub current_test_index: usize,
    pub current_step: usize,
    /// Remote hosts opened by `ssh_exec` / `upload` / `download`.
    pub hosts: Hosts,
    /// The workflow journal of this attempt (steps, tests, stages, hosts).
    pub journal: crate::workflow::Journal,
    /// Where an earlier attempt left the workflow (a resumed run).
    pub resume: Option<crate::workflow::WorkflowState>,
    /// Hosts probed by the stage phase in this attempt.
    pub probes: std::collections::BTreeMap<String, stage::Probe>,
    /// Remote path of each bundle (`HILT_BUNDLE` of the steps naming it).
    pub bundle_dests: std::collections::BTreeMap<String, String>,
}

impl<'a> Exec<'a> {
    pub fn step(&mut self, step: &Step, resolved: &Resolved, ev: &mut Events) -> StepResult {
        if self.cancel.is_cancelled() {
            return Err(StepError::Cancelled);
        }
        self.mark_can()?;
        match step {
            Step::SleepMs(ms) => self.sleep(Duration::from_millis(*ms)).map(|_| Map::new()),
            Step::Reset(r) => self.reset(&r.node, ev),
            Step::Flash(f) => self.flash(f, ev),
            Step::SendUart(s) => self.send_uart(s),
            Step::ExpectUart(s) => self.expect_uart(s, resolved),
            Step::GpioSet(s) => self.gpio_set(s),
            Step::GpioGet(s) => self.gpio_get(s),
            Step::GpioExpect(s) => self.gpio_expect(s, resolved.within),
            Step::GpioWaitEdge(s) => self.gpio_wait_edge(s, resolved.within),
            Step::PowerSet(s) => self.power_set(s),
            Step::PowerCycle(s) => self.power_cycle(s),
            Step::PowerExpect(s) => self.power_expect(s),
            Step::Measure(m) => self.measure(m),
            Step::AssertMetric(m) => self.assert_metric(m),
            Step::RunExternal(r) => external::run(self, r, ev),
            Step::ModbusReadHoldingRegisters(_)
            | Step::ModbusReadInputRegisters(_)
            | Step::ModbusReadCoils(_)
            | Step::ModbusReadDiscreteInputs(_)
            | Step::ModbusWriteSingleRegister(_)
            | Step::ModbusWriteSingleCoil(_)
            | Step::ModbusWriteMultipleRegisters(_)
            | Step::ModbusWriteMultipleCoils(_) => self.modbus(step),
            Step::SendCan(s) => self.send_can(s),
            Step::ExpectCan(s) => self.expect_can(s, resolved),
            Step::SshExec(s) => self.ssh_exec(s, resolved),
            Step::Upload(s) => self.upload(s),
            Step::Download(s) => self.download(s),
            Step::I2cScan(_)
            | Step::I2cWriteRegister(_)
            | Step::I2cReadRegister(_)
            | Step::I2cExpect(_) => self.i2c(step, resolved.within),
            Step::SpiTransfer(s) | Step::SpiExpect(s) => self.spi(s),
            Step::FuzzUart(f) => self.fuzz_uart(step, f),
            Step::FuzzModbus(f) => self.fuzz_modbus(step, f),
            Step::FuzzCan(f) => self.fuzz_can(step, f),
            Step::FaultInjectPowerGlitch(f) => self.fault_power_glitch(f),
            Step::FaultInjectGpioGlitch(f) => self.fault_gpio_glitch(f),
            Step::FaultInjectUartNoise(f) => self.fault_uart_noise(f),
        }
    }

    /// Marks every CAN link at the start of a step (frames from before the previous step
    /// began are dropped): a CAN link that fails here fails the step.
    fn mark_can(&mut self) -> Result<(), StepError> {
        for ((node, name), c) in &mut self.session.can {
            if let Err(e) = c.link.mark() {
                c.log.line(&format!("FAILED {e}"));
                return Err(
                    match crate::classify::can_failure(&e, &format!("CAN transport {node}.{name}"))
                    {
                        Some(f) => {
                            StepError::Run(f.with_artifact("transport_log", c.log_path.clone()))
                        }
                        None => StepError::Cancelled,
                    },
                );
            }
        }
        Ok(())
    }

    /// Sleeps unless cancelled.
    pub fn sleep(&self, d: Duration) -> Result<(), StepError> {
        if self.cancel.wait_timeout(d) {
            Err(StepError::Cancelled)
        } else {
            Ok(())
        }
    }

    pub fn logs_dir(&self) -> PathBuf {
        self.dir.join("logs")
    }

    pub fn node_log(&self, node: &str, file: &str) -> PathBuf {
        self.logs_dir().join("nodes").join(node).join(file)
    }

    /// Resolves a path from a bench or suite file relative to that file's directory.
    pub fn resolve(base: &Path, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        }
    }
}

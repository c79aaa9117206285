//! `qemu`: an emulated microcontroller board (hilt extension). The resource is the
//! board's power (the emulator process); its UART, flash and reset are reached through
//! [`crate::board::Board`]. The implementation lives in `crate::qemu`.

use std::time::Duration;

use hilt_model::bench::ResourceDriver as Params;

use super::{Opened, Probe, Problem, ResourceDriver, SelfCheck, resource_lock, wrong_params};
use crate::locks::LockSpec;
use crate::process::which;
use crate::qemu::{BoardConfig, INSTALL_QEMU, QemuBoard};
use crate::{HwError, ResourceKind};

const KIND: ResourceKind = ResourceKind::Power;

pub struct Qemu;

impl Qemu {
    fn config(&self, resource: &str, params: &Params) -> Result<BoardConfig, HwError> {
        let Params::Qemu {
            machine,
            binary,
            firmware,
            outlet,
            extra_args,
            start_timeout_ms,
            on_settle_ms,
            off_settle_ms,
        } = params
        else {
            return Err(wrong_params(KIND, self.tag(), params));
        };
        let Some(binary) = which(binary) else {
            return Err(missing_emulator(resource, binary));
        };
        Ok(BoardConfig {
            name: resource.to_string(),
            binary,
            machine: machine.clone(),
            firmware: firmware
                .as_ref()
                .map(|f| std::path::absolute(f).unwrap_or(f.into())),
            outlet: outlet.clone(),
            extra_args: extra_args.clone(),
            start_timeout: Duration::from_millis(*start_timeout_ms),
            settle_ms: (*on_settle_ms, *off_settle_ms),
        })
    }
}

/// The emulator is not installed: says so with the install line.
fn missing_emulator(resource: &str, binary: &str) -> HwError {
    HwError::open(
        KIND,
        "emulated board",
        resource,
        format!("the emulator `{binary}` is not on PATH; install it with: {INSTALL_QEMU}"),
    )
}

impl ResourceDriver for Qemu {
    fn tag(&self) -> &'static str {
        "qemu"
    }

    fn kind(&self) -> ResourceKind {
        KIND
    }

    fn check(&self, params: &Params) -> Vec<Problem> {
        let Params::Qemu {
            machine,
            binary,
            start_timeout_ms,
            ..
        } = params
        else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if machine.trim().is_empty() || machine.starts_with('-') || machine.contains(',') {
            out.push(
                Problem::new("machine", format!("`{machine}` is not a QEMU machine name"))
                    .with_help("list them with `qemu-system-arm -machine help`"),
            );
        }
        if binary.trim().is_empty() {
            out.push(Problem::new("binary", "must name the emulator executable"));
        }
        if *start_timeout_ms == 0 {
            out.push(Problem::new("start_timeout_ms", "must be positive"));
        }
        out
    }

    fn lock_specs(&self, resource: &str, params: &Params) -> Vec<LockSpec> {
        // The emulator is private to the run; the lock keeps two runs of one bench from
        // sharing a board name the way they would share a real board.
        vec![resource_lock(
            resource,
            params,
            format!("qemu:{resource}"),
            format!("emulated board {resource}"),
            "power_resource",
        )]
    }

    fn open(&self, resource: &str, params: &Params) -> Result<Opened, HwError> {
        let cfg = self.config(resource, params)?;
        Ok(Opened::Power(Box::new(QemuBoard::open(cfg)?)))
    }

    /// Checks the emulator is installed and emulates the machine, and that the configured
    /// firmware exists. Starts nothing.
    fn self_test(&self, resource: &str, params: &Params, _read: bool) -> Vec<SelfCheck> {
        let check = |outcome| SelfCheck {
            id: "power.start".into(),
            title: format!("emulator for {resource}"),
            outcome,
        };
        let cfg = match self.config(resource, params) {
            Ok(c) => c,
            Err(e) => return vec![check(Probe::Failed(e))],
        };
        let mut out = vec![check(machine_probe(resource, &cfg))];
        if let Some(fw) = &cfg.firmware {
            out.push(SelfCheck {
                id: "power.firmware".into(),
                title: format!("firmware for {resource}"),
                outcome: if fw.is_file() {
                    Probe::Pass(fw.display().to_string())
                } else {
                    Probe::Failed(HwError::open(
                        KIND,
                        "firmware image",
                        fw.display().to_string(),
                        "no such file",
                    ))
                },
            });
        }
        out
    }
}

/// Asks the emulator for its machines (`-machine help`).
fn machine_probe(resource: &str, cfg: &BoardConfig) -> Probe {
    let out = std::process::Command::new(&cfg.binary)
        .args(["-machine", "help"])
        .stdin(std::process::Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout);
            let known = text
                .lines()
                .any(|l| l.split_whitespace().next() == Some(cfg.machine.as_str()));
            if known {
                Probe::Pass(format!("{} emulates {}", cfg.binary.display(), cfg.machine))
            } else {
                Probe::Failed(HwError::open(
                    KIND,
                    "emulated board",
                    resource,
                    format!(
                        "{} does not emulate machine `{}`",
                        cfg.binary.display(),
                        cfg.machine
                    ),
                ))
            }
        }
        Ok(o) => Probe::Failed(HwError::open(
            KIND,
            "emulated board",
            resource,
            format!(
                "`{} -machine help` failed: {}",
                cfg.binary.display(),
                o.status
            ),
        )),
        Err(e) => Probe::Failed(missing_emulator(
            resource,
            &format!("{} ({e})", cfg.binary.display()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(yaml: &str) -> Params {
        serde_json::from_value(serde_json::from_str(yaml).unwrap()).unwrap()
    }

    #[test]
    fn defaults_target_the_lm3s6965evb() {
        let p = params(r#"{"type": "qemu"}"#);
        let Params::Qemu {
            machine,
            binary,
            outlet,
            ..
        } = &p
        else {
            panic!("not qemu")
        };
        assert_eq!(machine, "lm3s6965evb");
        assert_eq!(binary, "qemu-system-arm");
        assert_eq!(outlet, "dut");
        assert!(Qemu.check(&p).is_empty());
    }

    #[test]
    fn bad_parameters_name_their_field() {
        let p = params(r#"{"type": "qemu", "machine": "-x", "start_timeout_ms": 0}"#);
        let fields: Vec<_> = Qemu.check(&p).into_iter().map(|p| p.field).collect();
        assert_eq!(fields, ["machine", "start_timeout_ms"]);
    }

    #[test]
    fn a_missing_emulator_gives_the_install_line() {
        let p = params(r#"{"type": "qemu", "binary": "no-such-qemu-binary"}"#);
        let checks = Qemu.self_test("board", &p, true);
        let Probe::Failed(e) = &checks[0].outcome else {
            panic!("expected a failure: {checks:?}")
        };
        assert!(e.to_string().contains(INSTALL_QEMU), "{e}");
    }
}

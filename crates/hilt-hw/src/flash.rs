//! Flash and reset tools: each backend is an external program run with argv only (never a
//! shell). This module builds the argv; `process::run` executes it.

use std::path::Path;

use hilt_model::bench::{Flash, FlashBackend, ResetMethod};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FlashError {
    #[error("unsupported artifact `{0}`: use an .elf, .hex or .bin file")]
    Suffix(String),
    #[error("artifact `{0}` is a .bin file; set `address` in the node's flash block")]
    NeedsAddress(String),
    #[error("esptool flashes only .bin files, got `{0}`")]
    EsptoolNeedsBin(String),
    #[error("reset method `esptool` is not implemented; use `none` or `gpio`")]
    EsptoolReset,
    #[error("reset method `{0}` needs the node's `flash` block for its connection settings")]
    NoFlashBlock(&'static str),
    #[error("backend `qemu` flashes an emulated board by restarting it; it runs no tool")]
    Emulated,
}

/// A command to run, plus an optional script file the command reads (J-Link).
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCommand {
    pub argv: Vec<String>,
    pub script: Option<(String, String)>,
}

fn s(x: &str) -> String {
    x.to_string()
}

/// `.elf`, `.hex` or `.bin` (case-insensitive).
pub fn artifact_kind(artifact: &Path) -> Result<&'static str, FlashError> {
    let name = artifact.display().to_string();
    match artifact
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .as_deref()
    {
        Some("elf") => Ok("elf"),
        Some("hex") => Ok("hex"),
        Some("bin") => Ok("bin"),
        _ => Err(FlashError::Suffix(name)),
    }
}

fn openocd_prefix(backend: &FlashBackend) -> Vec<String> {
    let FlashBackend::Openocd {
        interface_cfg,
        target_cfg,
        extra_args,
        adapter_speed_khz,
        probe_serial,
        probe_serial_cmd,
    } = backend
    else {
        return Vec::new();
    };
    let mut argv = vec![s("openocd"), s("-f"), interface_cfg.clone()];
    if let Some(cmd) = probe_serial_cmd {
        argv.extend([s("-c"), cmd.clone()]);
    } else if let Some(sn) = probe_serial {
        argv.extend([s("-c"), format!("hla_serial {sn}")]);
    }
    argv.extend([s("-f"), target_cfg.clone()]);
    if let Some(k) = adapter_speed_khz {
        argv.extend([s("-c"), format!("adapter speed {k}")]);
    }
    argv.extend(extra_args.iter().cloned());
    argv
}

fn cubeprog_connect(port: &str, serial: &Option<String>) -> Vec<String> {
    let mut argv = vec![s("STM32_Programmer_CLI"), s("-c"), format!("port={port}")];
    if let Some(sn) = serial {
        argv.push(format!("sn={sn}"));
    }
    argv
}

fn jlink_prefix(device: &str, interface: &str, speed: u32, serial: &Option<String>) -> Vec<String> {
    let mut argv = vec![
        s("JLinkExe"),
        s("-device"),
        device.to_string(),
        s("-if"),
        interface.to_string(),
        s("-speed"),
        speed.to_string(),
    ];
    if let Some(sn) = serial {
        argv.extend([s("-SelectEmuBySN"), sn.clone()]);
    }
    argv.extend([s("-autoconnect"), s("1"), s("-ExitOnError"), s("1")]);
    argv
}

/// The command that programs `artifact` with the node's flash backend.
pub fn flash_command(
    flash: &Flash,
    artifact: &Path,
    script_path: &Path,
) -> Result<ToolCommand, FlashError> {
    let kind = artifact_kind(artifact)?;
    let file = artifact.display().to_string();
    let address = flash.address.clone();
    if kind == "bin" && address.is_none() {
        return Err(FlashError::NeedsAddress(file));
    }
    let addr = if kind == "bin" { address.clone() } else { None };
    let mut script = None;
    let argv = match &flash.backend {
        FlashBackend::Openocd { .. } => {
            let mut argv = openocd_prefix(&flash.backend);
            let program = match &addr {
                Some(a) => format!("program {file} {a} verify"),
                None => format!("program {file} verify"),
            };
            argv.extend([
                s("-c"),
                s("init"),
                s("-c"),
                s("reset halt"),
                s("-c"),
                program,
                s("-c"),
                s("reset run"),
                s("-c"),
                s("shutdown"),
            ]);
            argv
        }
        FlashBackend::Cubeprog { port, serial } => {
            let mut argv = cubeprog_connect(port, serial);
            argv.extend([s("-w"), file.clone()]);
            argv.extend(addr.clone());
            argv.extend([s("-v"), s("-rst")]);
            argv
        }
        FlashBackend::Jlink {
            device,
            interface,
            speed_khz,
            serial,
        } => {
            let load = match &addr {
                Some(a) => format!("loadbin {file} {a}"),
                None => format!("loadfile {file}"),
            };
            let path = script_path.display().to_string();
            script = Some((path.clone(), format!("r\nh\n{load}\nr\ng\nexit\n")));
            let mut argv = jlink_prefix(device, interface, *speed_khz, serial);
            argv.extend([s("-CommanderScript"), path]);
            argv
        }
        FlashBackend::Esptool {
            port,
            baud,
            chip,
            extra_args,
        } => {
            if kind != "bin" {
                return Err(FlashError::EsptoolNeedsBin(file));
            }
            let mut argv = vec![
                s("esptool.py"),
                s("--port"),
                port.clone(),
                s("--baud"),
                baud.to_string(),
            ];
            if let Some(c) = chip {
                argv.extend([s("--chip"), c.clone()]);
            }
            argv.extend(extra_args.iter().cloned());
            argv.extend([s("write_flash"), address.unwrap_or_default(), file]);
            argv
        }
        FlashBackend::Qemu { .. } => return Err(FlashError::Emulated),
    };
    Ok(ToolCommand { argv, script })
}

/// The command that resets the node with `method`, reusing the flash block's connection.
/// `Ok(None)` for methods that need no external tool (`none`, `gpio`).
pub fn reset_command(
    method: ResetMethod,
    flash: Option<&Flash>,
    script_path: &Path,
) -> Result<Option<ToolCommand>, FlashError> {
    let need = |name| flash.ok_or(FlashError::NoFlashBlock(name));
    let cmd = match method {
        ResetMethod::None | ResetMethod::Gpio | ResetMethod::Qemu => return Ok(None),
        ResetMethod::Esptool => return Err(FlashError::EsptoolReset),
        ResetMethod::Openocd => {
            let f = need("openocd")?;
            let mut argv = openocd_prefix(&f.backend);
            if argv.is_empty() {
                argv = vec![s("openocd")];
            }
            argv.extend([
                s("-c"),
                s("init"),
                s("-c"),
                s("reset halt"),
                s("-c"),
                s("reset run"),
                s("-c"),
                s("shutdown"),
            ]);
            ToolCommand { argv, script: None }
        }
        ResetMethod::Cubeprog => {
            let f = need("cubeprog")?;
            let (port, serial) = match &f.backend {
                FlashBackend::Cubeprog { port, serial } => (port.clone(), serial.clone()),
                _ => (s("SWD"), None),
            };
            let mut argv = cubeprog_connect(&port, &serial);
            argv.push(s("-rst"));
            ToolCommand { argv, script: None }
        }
        ResetMethod::Jlink => {
            let f = need("jlink")?;
            let FlashBackend::Jlink {
                device,
                interface,
                speed_khz,
                serial,
            } = &f.backend
            else {
                return Err(FlashError::NoFlashBlock("jlink"));
            };
            let path = script_path.display().to_string();
            let mut argv = jlink_prefix(device, interface, *speed_khz, serial);
            argv.extend([s("-CommanderScript"), path.clone()]);
            ToolCommand {
                argv,
                script: Some((path, s("r\ng\nexit\n"))),
            }
        }
    };
    Ok(Some(cmd))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flash(yaml_backend: FlashBackend, address: Option<&str>) -> Flash {
        Flash {
            backend: yaml_backend,
            artifact: None,
            address: address.map(str::to_string),
        }
    }

    #[test]
    fn openocd_program_with_probe_serial() {
        let f = flash(
            FlashBackend::Openocd {
                interface_cfg: "interface/stlink.cfg".into(),
                target_cfg: "target/stm32l4x.cfg".into(),
                extra_args: vec![],
                adapter_speed_khz: None,
                probe_serial: Some("066DFF".into()),
                probe_serial_cmd: None,
            },
            None,
        );
        let c = flash_command(&f, Path::new("fw.elf"), Path::new("x")).unwrap();
        assert_eq!(
            c.argv,
            [
                "openocd",
                "-f",
                "interface/stlink.cfg",
                "-c",
                "hla_serial 066DFF",
                "-f",
                "target/stm32l4x.cfg",
                "-c",
                "init",
                "-c",
                "reset halt",
                "-c",
                "program fw.elf verify",
                "-c",
                "reset run",
                "-c",
                "shutdown"
            ]
        );
    }

    #[test]
    fn bin_needs_address_and_suffix_is_checked() {
        let f = flash(
            FlashBackend::Cubeprog {
                port: "SWD".into(),
                serial: None,
            },
            None,
        );
        assert_eq!(
            flash_command(&f, Path::new("fw.bin"), Path::new("x")),
            Err(FlashError::NeedsAddress("fw.bin".into()))
        );
        assert!(matches!(
            flash_command(&f, Path::new("fw.txt"), Path::new("x")),
            Err(FlashError::Suffix(_))
        ));
        let f = flash(
            FlashBackend::Cubeprog {
                port: "SWD".into(),
                serial: Some("SN1".into()),
            },
            Some("0x08000000"),
        );
        let c = flash_command(&f, Path::new("fw.BIN"), Path::new("x")).unwrap();
        assert_eq!(
            c.argv,
            [
                "STM32_Programmer_CLI",
                "-c",
                "port=SWD",
                "sn=SN1",
                "-w",
                "fw.BIN",
                "0x08000000",
                "-v",
                "-rst"
            ]
        );
    }

    #[test]
    fn jlink_writes_a_commander_script() {
        let f = flash(
            FlashBackend::Jlink {
                device: "STM32F407VG".into(),
                interface: "SWD".into(),
                speed_khz: 4000,
                serial: None,
            },
            None,
        );
        let c = flash_command(&f, Path::new("fw.hex"), Path::new("/r/flash.jlink")).unwrap();
        assert_eq!(c.script.unwrap().1, "r\nh\nloadfile fw.hex\nr\ng\nexit\n");
        let r = reset_command(ResetMethod::Jlink, Some(&f), Path::new("/r/reset.jlink"))
            .unwrap()
            .unwrap();
        assert!(r.argv.contains(&"-CommanderScript".to_string()));
        assert_eq!(r.script.unwrap().1, "r\ng\nexit\n");
    }

    #[test]
    fn esptool_rules() {
        let f = flash(
            FlashBackend::Esptool {
                port: "/dev/ttyUSB0".into(),
                baud: 921600,
                chip: Some("esp32".into()),
                extra_args: vec![],
            },
            Some("0x1000"),
        );
        let c = flash_command(&f, Path::new("fw.bin"), Path::new("x")).unwrap();
        assert_eq!(
            c.argv,
            [
                "esptool.py",
                "--port",
                "/dev/ttyUSB0",
                "--baud",
                "921600",
                "--chip",
                "esp32",
                "write_flash",
                "0x1000",
                "fw.bin"
            ]
        );
        assert_eq!(
            flash_command(&f, Path::new("fw.elf"), Path::new("x")),
            Err(FlashError::EsptoolNeedsBin("fw.elf".into()))
        );
        assert_eq!(
            reset_command(ResetMethod::Esptool, Some(&f), Path::new("x")),
            Err(FlashError::EsptoolReset)
        );
        assert_eq!(
            reset_command(ResetMethod::None, None, Path::new("x")),
            Ok(None)
        );
        assert_eq!(
            reset_command(ResetMethod::Openocd, None, Path::new("x")),
            Err(FlashError::NoFlashBlock("openocd"))
        );
    }
}

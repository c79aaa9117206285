//! `hilt init --preset NAME [--dir D]`: a starter bench.yaml and suite.yaml for a common
//! board, with every line a user must adapt marked `EDIT`. Never overwrites a file
//! unless `--force`.

use std::path::PathBuf;

use clap::Args;
use hilt_runner::classify::exit;

#[derive(Args)]
pub struct InitArgs {
    /// The starting point: nucleo, esp32, modbus-plc or linux-gpio.
    #[arg(long)]
    pub preset: String,
    /// Where bench.yaml and suite.yaml are written.
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// Overwrite existing bench.yaml / suite.yaml.
    #[arg(long)]
    pub force: bool,
}

pub struct Preset {
    pub name: &'static str,
    pub about: &'static str,
    pub bench: &'static str,
    pub suite: &'static str,
}

pub const PRESETS: &[Preset] = &[
    Preset {
        name: "nucleo",
        about: "STM32 Nucleo over its ST-Link: OpenOCD flash and reset, console on the virtual COM port",
        bench: include_str!("../presets/nucleo.bench.yaml"),
        suite: include_str!("../presets/nucleo.suite.yaml"),
    },
    Preset {
        name: "esp32",
        about: "ESP32 dev board: esptool flash and console on one USB-UART",
        bench: include_str!("../presets/esp32.bench.yaml"),
        suite: include_str!("../presets/esp32.suite.yaml"),
    },
    Preset {
        name: "modbus-plc",
        about: "a PLC on RS-485 (Modbus RTU) with a service console",
        bench: include_str!("../presets/modbus-plc.bench.yaml"),
        suite: include_str!("../presets/modbus-plc.suite.yaml"),
    },
    Preset {
        name: "linux-gpio",
        about: "a device wired to a Linux board's UART and GPIO character device",
        bench: include_str!("../presets/linux-gpio.bench.yaml"),
        suite: include_str!("../presets/linux-gpio.suite.yaml"),
    },
];

pub fn init(a: InitArgs) -> anyhow::Result<i32> {
    let Some(p) = PRESETS.iter().find(|p| p.name == a.preset) else {
        eprintln!("error: no preset `{}`; the presets are:", a.preset);
        for p in PRESETS {
            eprintln!("  {:<12} {}", p.name, p.about);
        }
        return Ok(exit::USAGE);
    };
    let bench = a.dir.join("bench.yaml");
    let suite = a.dir.join("suite.yaml");
    if !a.force {
        for f in [&bench, &suite] {
            if f.exists() {
                eprintln!(
                    "error: {} already exists; keep it, choose another --dir, or pass --force",
                    f.display()
                );
                return Ok(exit::USAGE);
            }
        }
    }
    std::fs::create_dir_all(&a.dir)?;
    std::fs::write(&bench, p.bench)?;
    std::fs::write(&suite, p.suite)?;
    println!(
        "wrote {} and {} ({})",
        bench.display(),
        suite.display(),
        p.about
    );
    println!("next: edit the lines marked EDIT, then");
    println!("  hilt doctor --ports                      # which serial port is your board");
    println!(
        "  hilt validate --bench {} --suite {}",
        bench.display(),
        suite.display()
    );
    println!(
        "  hilt doctor --bench {}         # every resource checked, nothing driven",
        bench.display()
    );
    println!(
        "  hilt run --bench {} --suite {} --artifact FIRMWARE",
        bench.display(),
        suite.display()
    );
    Ok(exit::PASSED)
}

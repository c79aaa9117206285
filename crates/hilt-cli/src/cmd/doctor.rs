//! `hilt doctor`: what a bench needs from this machine. `--ports` lists serial devices with
//! their USB ids, `--tools` the flash and bench tools found and their versions, `--bench B`
//! checks every resource of a bench without touching the device (the self-test with
//! hardware opened and read, never driven), each problem with its fix.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use hilt_hw::CancelToken;
use hilt_hw::process::{self, CommandSpec};
use hilt_runner::classify::exit;
use hilt_runner::selftest::{SelfTestOptions, self_test};
use serde_json::{Value, json};

#[derive(Args)]
pub struct DoctorArgs {
    /// Serial devices, with USB vendor/product/serial.
    #[arg(long)]
    pub ports: bool,
    /// Flash and bench tools found on PATH, with their versions.
    #[arg(long)]
    pub tools: bool,
    /// Check every resource of this bench (non-destructive: nothing is flashed, reset,
    /// switched or driven).
    #[arg(long, short = 'b')]
    pub bench: Option<PathBuf>,
    /// One JSON document on stdout.
    #[arg(long)]
    pub json: bool,
}

/// A tool a bench may name, how to ask its version, and what it is for.
struct Tool {
    names: &'static [&'static str],
    version_args: &'static [&'static str],
    used_for: &'static str,
    install: &'static str,
}

const TOOLS: &[Tool] = &[
    Tool {
        names: &["openocd"],
        version_args: &["--version"],
        used_for: "flash/reset backend `openocd`",
        install: "apt-get install openocd",
    },
    Tool {
        names: &["STM32_Programmer_CLI"],
        version_args: &["--version"],
        used_for: "flash/reset backend `cubeprog`",
        install: "install STM32CubeProgrammer from ST and put its bin directory on PATH",
    },
    Tool {
        names: &["JLinkExe"],
        version_args: &[],
        used_for: "flash/reset backend `jlink`",
        install: "install the SEGGER J-Link Software Pack",
    },
    Tool {
        names: &["esptool.py", "esptool"],
        version_args: &["version"],
        used_for: "flash backend `esptool`",
        install: "pip install esptool",
    },
    Tool {
        names: &["probe-rs"],
        version_args: &["--version"],
        used_for: "debug probes (run_external / custom flows)",
        install: "cargo install probe-rs-tools",
    },
    Tool {
        names: &["st-flash"],
        version_args: &["--version"],
        used_for: "ST-Link (custom flows)",
        install: "apt-get install stlink-tools",
    },
    Tool {
        names: &["qemu-system-arm"],
        version_args: &["--version"],
        used_for: "emulated Cortex-M boards",
        install: "apt-get install --no-install-recommends qemu-system-arm",
    },
    Tool {
        names: &["arm-none-eabi-gcc"],
        version_args: &["--version"],
        used_for: "building the emulated board's firmware",
        install: "apt-get install --no-install-recommends gcc-arm-none-eabi libnewlib-arm-none-eabi",
    },
    Tool {
        names: &["ssh"],
        version_args: &["-V"],
        used_for: "remote hosts over SSH",
        install: "apt-get install openssh-client",
    },
    Tool {
        names: &["socat"],
        version_args: &["-V"],
        used_for: "serial bridges and pty pairs",
        install: "apt-get install socat",
    },
];

pub fn doctor(a: DoctorArgs) -> anyhow::Result<i32> {
    let all = !a.ports && !a.tools && a.bench.is_none();
    let mut doc = serde_json::Map::new();
    let mut failing = false;
    if a.ports || all {
        let ports = hilt_hw::ports::list(Path::new("/sys"), Path::new("/dev"));
        if !a.json {
            print_ports(&ports);
        }
        doc.insert("ports".into(), serde_json::to_value(&ports)?);
    }
    if a.tools || all {
        let tools: Vec<Value> = TOOLS.iter().map(probe_tool).collect();
        if !a.json {
            print_tools(&tools);
        }
        doc.insert("tools".into(), Value::Array(tools));
    }
    if let Some(bench) = &a.bench {
        let logs = tempfile::tempdir()?;
        let opts = SelfTestOptions {
            open_hardware: true,
            read_inputs: true,
            read_measurements: true,
            log_dir: logs.path().to_path_buf(),
        };
        let report = self_test(bench, &opts);
        let status = report["health_status"].as_str().unwrap_or("unknown");
        failing = !matches!(status, "healthy" | "degraded");
        if !a.json {
            println!("bench {}:", bench.display());
            super::bench::print_checks(&report);
        }
        doc.insert("bench".into(), report);
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&Value::Object(doc))?);
    }
    Ok(if failing {
        exit::TESTS_FAILED
    } else {
        exit::PASSED
    })
}

fn print_ports(ports: &[hilt_hw::ports::Port]) {
    println!("serial ports:");
    if ports.is_empty() {
        println!(
            "  none found (a USB adapter shows up as /dev/ttyUSB* or /dev/ttyACM*; check the cable and `dmesg`)"
        );
    }
    for p in ports {
        let usb = p
            .usb
            .as_ref()
            .map(|u| {
                let mut s = format!("USB {}:{}", u.vendor_id, u.product_id);
                for x in [&u.manufacturer, &u.product].into_iter().flatten() {
                    s.push_str(&format!(" {x}"));
                }
                if let Some(sn) = &u.serial {
                    s.push_str(&format!(" serial {sn}"));
                }
                s
            })
            .unwrap_or_else(|| "on-board UART".into());
        println!(
            "  {:<16} {usb}{}{}",
            p.path,
            p.driver
                .as_deref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default(),
            p.by_id
                .as_deref()
                .map(|b| format!("\n  {:<16} stable name: {b}", ""))
                .unwrap_or_default()
        );
    }
    println!();
}

fn print_tools(tools: &[Value]) {
    println!("tools:");
    for t in tools {
        let name = t["name"].as_str().unwrap_or("");
        match t["path"].as_str() {
            Some(path) => println!(
                "  ok   {name:<22} {} ({path})",
                t["version"].as_str().unwrap_or("version unknown")
            ),
            None => println!(
                "  --   {name:<22} not found; for {}: {}",
                t["used_for"].as_str().unwrap_or(""),
                t["install"].as_str().unwrap_or("")
            ),
        }
    }
    println!();
}

fn probe_tool(t: &Tool) -> Value {
    let found = t
        .names
        .iter()
        .find_map(|n| process::which(n).map(|p| (*n, p)));
    let Some((name, path)) = found else {
        return json!({"name": t.names[0], "path": null, "version": null, "used_for": t.used_for, "install": t.install});
    };
    let version = (!t.version_args.is_empty())
        .then(|| first_line_of(&path, t.version_args))
        .flatten();
    json!({"name": name, "path": path.display().to_string(), "version": version, "used_for": t.used_for, "install": t.install})
}

/// The first non-empty line a tool prints for its version, waiting at most 3 s (a tool
/// that wants a probe attached must not hang the doctor): run like every tool hilt runs,
/// in its own process group, killed on timeout, output capped.
fn first_line_of(path: &Path, args: &[&str]) -> Option<String> {
    let scratch = tempfile::tempdir().ok()?;
    let mut spec = CommandSpec::new(
        std::iter::once(path.display().to_string()).chain(args.iter().map(|a| a.to_string())),
        scratch.path().join("version.out"),
    );
    spec.timeout = Duration::from_secs(3);
    spec.grace = Duration::from_millis(200);
    spec.max_output_bytes = 16 * 1024;
    let outcome = process::run(&spec, &CancelToken::new()).ok()?;
    if outcome.timed_out {
        return None;
    }
    let text = std::fs::read_to_string(&outcome.output_path).ok()?;
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(|l| l.chars().take(120).collect())
}

//! `hilt demo`: zero-hardware tour. Writes a bench and suite into a directory, starts a
//! simulated device on a pty (wired to a simulated relay and GPIO lines), runs the suite.

use std::path::Path;

use anyhow::Context;
use hilt_hw::process::which;
use hilt_runner::RunOptions;
use hilt_runner::classify::exit;
use hilt_sim::{DutConfig, SimDut};

use crate::cli::DemoArgs;
use crate::demo;
use crate::demo::qemu;

pub fn demo(a: DemoArgs) -> anyhow::Result<i32> {
    std::fs::create_dir_all(&a.dir).with_context(|| format!("creating {}", a.dir.display()))?;
    let dir = std::path::absolute(&a.dir)?;
    if a.qemu {
        return qemu(&dir);
    }
    let port = dir.join("dut.tty");
    let control = dir.join("dut.sock");
    let dut = SimDut::start(DutConfig {
        link: Some(port.clone()),
        control: Some(control.clone()),
        ..DutConfig::default()
    })
    .map_err(|e| anyhow::anyhow!("cannot start the simulated device: {e}"))?;
    // A bench device is normally up before a run starts: wait for the sim's first boot.
    // If it does not, the run itself explains what the device failed to do.
    dut.wait_ready(std::time::Duration::from_secs(2));
    let bench = dir.join("bench.yaml");
    let suite = dir.join("suite.yaml");
    std::fs::write(&bench, demo::bench(&port, &control))
        .with_context(|| format!("writing {}", bench.display()))?;
    std::fs::write(&suite, demo::suite(a.fail))
        .with_context(|| format!("writing {}", suite.display()))?;
    eprintln!("demo bench: {}", bench.display());
    eprintln!("demo suite: {}", suite.display());
    eprintln!(
        "simulated device on {} (control socket {})",
        dut.port_path().display(),
        control.display()
    );
    let opts = RunOptions {
        bench,
        suite,
        results_root: Some(dir.join("results")),
        // The demo's simulated devices belong to this directory alone, so its locks do
        // too: two demos on one machine never hold each other's (same-named) mock lines.
        lock_config: Some(hilt_hw::locks::LockConfig {
            dir: dir.join("locks"),
            enabled: true,
        }),
        ..RunOptions::default()
    };
    let code = super::run::execute(&opts, false, true);
    dut.stop();
    code
}

/// `hilt demo --qemu`: builds the firmware (or finds it built), writes the emulated
/// bench and suite, and runs them.
fn qemu(dir: &Path) -> anyhow::Result<i32> {
    let fw_dir = dir.join("firmware");
    let (v1, v2) = qemu::images(&fw_dir);
    let missing: Vec<_> = qemu::TOOLS
        .iter()
        .filter(|(tool, _)| which(tool).is_none())
        .collect();
    let emulator_missing = missing.iter().any(|(t, _)| *t == "qemu-system-arm");
    let built = v1.is_file() && v2.is_file();
    if emulator_missing || (!missing.is_empty() && !built) {
        for (tool, install) in &missing {
            eprintln!(
                "error: `{tool}` is not installed (needed by `hilt demo --qemu`); install it with:"
            );
            eprintln!("  {install}");
        }
        return Ok(exit::BENCH_ERROR);
    }
    if missing.is_empty() {
        build_firmware(&fw_dir)?;
    } else {
        eprintln!(
            "note: no cross compiler; using the firmware already built in {}",
            fw_dir.display()
        );
    }
    let bench = dir.join("bench.yaml");
    let suite = dir.join("suite.yaml");
    std::fs::write(&bench, qemu::bench(&v1))
        .with_context(|| format!("writing {}", bench.display()))?;
    std::fs::write(&suite, qemu::suite(&v2))
        .with_context(|| format!("writing {}", suite.display()))?;
    eprintln!("demo bench: {}", bench.display());
    eprintln!("demo suite: {}", suite.display());
    eprintln!("firmware:   {} and {}", v1.display(), v2.display());
    let opts = RunOptions {
        bench,
        suite,
        results_root: Some(dir.join("results")),
        ..RunOptions::default()
    };
    super::run::execute(&opts, false, true)
}

/// Writes the embedded firmware sources into `dir` and runs their build script there.
fn build_firmware(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (name, text) in qemu::FIRMWARE {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    let out = std::process::Command::new("bash")
        .arg(dir.join("build.sh"))
        .arg(dir)
        .stdin(std::process::Stdio::null())
        .output()
        .context("running the firmware build (bash)")?;
    if !out.status.success() {
        anyhow::bail!(
            "building the firmware failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    eprintln!("firmware built in {}", dir.display());
    Ok(())
}

//! `hilt demo`: zero-hardware tour. Writes a bench and suite into a directory, starts a
//! simulated device on a pty (wired to a simulated relay and GPIO lines), runs the suite.

use anyhow::Context;
use hilt_runner::RunOptions;
use hilt_sim::{DutConfig, SimDut};

use crate::cli::DemoArgs;
use crate::demo;

pub fn demo(a: DemoArgs) -> anyhow::Result<i32> {
    std::fs::create_dir_all(&a.dir).with_context(|| format!("creating {}", a.dir.display()))?;
    let dir = std::path::absolute(&a.dir)?;
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
    let code = super::run::execute(&opts, false);
    dut.stop();
    code
}

//! Runs one case under one tool, each tool against its own freshly booted simulated device.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hilt_sim::{DutConfig, SimDut};
use serde_json::Value;

use super::case::{Case, Mode};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Tool {
    Benchci,
    Hilt,
}

impl Tool {
    pub fn label(self) -> &'static str {
        match self {
            Tool::Benchci => "BenchCI",
            Tool::Hilt => "hilt",
        }
    }
}

/// What one tool did with one case.
pub struct Outcome {
    pub exit: i32,
    /// results.json of the run directory, when the tool wrote one.
    pub results: Option<Value>,
    /// Where its files are, for the failure message.
    pub dir: PathBuf,
}

const TOOL_TIMEOUT: Duration = Duration::from_secs(90);

/// `benchci` from PATH or `$HILT_PY_VENV/bin` (where scripts/test installs it).
pub use hilt_testkit::peers::find_benchci;

/// Runs `case` under `tool` in `dir` (created), with its own device, locks and results.
pub fn run(tool: Tool, benchci: &Path, case: &Case, dir: &Path) -> Outcome {
    std::fs::create_dir_all(dir).unwrap();
    let link = dir.join("dut.tty");
    let control = dir.join("dut.sock");
    let d = &case.device;
    let dut = (case.mode == Mode::Run).then(|| {
        let defaults = DutConfig::default();
        let dut = SimDut::start(DutConfig {
            link: Some(link.clone()),
            control: Some(control.clone()),
            boot_ms: d.boot_ms.unwrap_or(defaults.boot_ms),
            latency_ms: d.latency_ms.unwrap_or(defaults.latency_ms),
            powered: d.powered.unwrap_or(true),
            crash_on_line_over: d.crash_on_line_over,
            ..defaults
        })
        .unwrap();
        if d.powered != Some(false) {
            assert!(
                dut.wait_ready(Duration::from_secs(10)),
                "{}: device did not boot",
                case.name
            );
        }
        if let Some(fault) = &d.fault {
            dut.controls().fault(fault).unwrap();
        }
        dut
    });
    let rtu_link = dir.join("plc.tty");
    let modbus = case.modbus.as_ref().map(|text| {
        let map = hilt_sim::RegisterMap::parse(text, "case.yaml modbus")
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let start = |bind| {
            hilt_sim::ModbusSim::start(bind, map.clone(), hilt_sim::ModbusSimConfig::default())
                .unwrap()
        };
        (
            start(hilt_sim::ModbusBind::Tcp("127.0.0.1:0".into())),
            start(hilt_sim::ModbusBind::Rtu(Some(rtu_link.clone()))),
        )
    });
    let (mb_host, mb_port) = modbus
        .as_ref()
        .and_then(|(tcp, _)| tcp.address().rsplit_once(':'))
        .map(|(h, p)| (h.to_string(), p.to_string()))
        .unwrap_or_default();
    let scpi = case
        .scpi
        .then(|| hilt_sim::ScpiSim::start("127.0.0.1:0").unwrap());
    let scpi_address = scpi.as_ref().map(|s| s.address()).unwrap_or_default();
    // A QEMU board instead: its pty is the port, it boots before the tool starts, and
    // it is stopped (emulator killed) when this function returns.
    let mut board = d.qemu.as_deref().map(|v| qemu_board(&case.name, v));
    let port = match &mut board {
        Some(b) => b.board().unwrap().uart_path().to_path_buf(),
        None => link.clone(),
    };
    let fill = |text: &str| {
        text.replace("{{SCPI}}", &scpi_address)
            .replace("{{MODBUS_HOST}}", &mb_host)
            .replace("{{MODBUS_PORT}}", &mb_port)
            .replace("{{MODBUS_RTU}}", &rtu_link.display().to_string())
            .replace("{{PORT}}", &port.display().to_string())
            .replace("{{CONTROL}}", &control.display().to_string())
            .replace("{{DIR}}", &dir.display().to_string())
    };
    for (name, text) in &case.files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let bench = dir.join("bench.yaml");
    std::fs::write(&bench, fill(&case.bench)).unwrap();
    let suite = case.suite.as_ref().map(|s| {
        let p = dir.join("suite.yaml");
        std::fs::write(&p, fill(s)).unwrap();
        p
    });
    let results_dir = dir.join("out");
    let mut cmd = match tool {
        Tool::Benchci => Command::new(benchci),
        Tool::Hilt => Command::new(assert_cmd::cargo::cargo_bin("hilt")),
    };
    cmd.current_dir(dir)
        .env_remove("HILT_LOCK_DIR")
        .env_remove("BENCHCI_LOCK_DIR")
        .env("HILT_LOCK_DIR", dir.join("locks"))
        .env("BENCHCI_LOCK_DIR", dir.join("locks"))
        .env("NO_COLOR", "1")
        .env("TMPDIR", dir)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.join("stdout.log")).unwrap())
        .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap());
    match case.mode {
        Mode::Run => cmd.arg("run"),
        Mode::Validate => cmd.arg("validate"),
    };
    cmd.arg("--bench").arg(&bench);
    if let Some(s) = &suite {
        cmd.arg("--suite").arg(s);
    }
    if case.mode == Mode::Run {
        cmd.arg("--results-dir").arg(&results_dir);
    }
    cmd.args(case.args.iter().map(|a| fill(a)));
    let exit = wait(cmd, &case.name, tool);
    drop(dut);
    drop(modbus);
    drop(scpi);
    drop(board);
    Outcome {
        exit,
        results: results_json(&results_dir),
        dir: dir.to_path_buf(),
    }
}

fn wait(mut cmd: Command, case: &str, tool: Tool) -> i32 {
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("{case}: cannot start {}: {e}", tool.label()));
    let deadline = Instant::now() + TOOL_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{case}: {} did not finish within {TOOL_TIMEOUT:?}",
                tool.label()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The results.json of the only run directory under `root`, if any.
fn results_json(root: &Path) -> Option<Value> {
    let run = std::fs::read_dir(root)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.join("results.json").is_file())?;
    let text = std::fs::read_to_string(run.join("results.json")).unwrap();
    Some(serde_json::from_str(&text).unwrap())
}

/// Whether the QEMU cases can run here (emulator and cross compiler installed).
pub fn qemu_available() -> bool {
    ["qemu-system-arm", "arm-none-eabi-gcc"]
        .iter()
        .all(|t| hilt_hw::process::which(t).is_some())
}

/// hilt's firmware, built once per test binary into the cargo temp dir.
fn firmware_dir() -> &'static Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("differential-firmware");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../firmware/build.sh");
        let status = Command::new("bash")
            .arg(script)
            .arg(&out)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "firmware/build.sh failed: {status}");
        out
    })
}

/// A booted QEMU board running firmware `version` (`v1`, `v2`).
fn qemu_board(case: &str, version: &str) -> Box<dyn hilt_hw::power::PowerSwitch> {
    let image = firmware_dir().join(format!("hilt-fw-{version}.elf"));
    assert!(image.is_file(), "{case}: no firmware {}", image.display());
    let params: hilt_model::bench::ResourceDriver = serde_json::from_value(
        serde_json::json!({"type": "qemu", "firmware": image.display().to_string()}),
    )
    .unwrap();
    let hilt_hw::drivers::Opened::Power(mut switch) =
        hilt_hw::drivers::open_resource("board", &params).unwrap()
    else {
        panic!("{case}: the qemu driver did not open a board");
    };
    assert!(
        switch.board().unwrap().boot().unwrap(),
        "{case}: board did not boot"
    );
    switch
}

//! `qemu`: the emulated board's timings. Boot → banner (power on), reset → banner (QMP
//! `system_reset`) and flash → banner (restart with the other image), each timed from the
//! call on the board to the firmware's `ready` line on the board's pty; then the UART
//! round trip (send_uart ping → expect_uart pong through the whole runner) against the
//! QEMU board and against the pty sim device.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::fcntl::{OFlag, open};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::stat::Mode;

use hilt_hw::drivers::{Opened, open_resource};
use hilt_hw::power::PowerSwitch;
use hilt_model::bench::ResourceDriver;

use crate::env::Env;
use crate::roundtrip::{hilt_round, suite_yaml};
use crate::stats::{median, percentile};
use crate::table::Table;

pub struct Args {
    /// Samples per lifecycle measurement.
    pub runs: usize,
    /// ping → pong exchanges per round trip run.
    pub iterations: usize,
}

/// Builds both firmware images with `firmware/build.sh` into `dir`.
fn build_firmware(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../firmware/build.sh");
    let status = std::process::Command::new("bash")
        .arg(&script)
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .status()
        .context("running firmware/build.sh")?;
    if !status.success() {
        bail!("firmware/build.sh failed ({status}); is gcc-arm-none-eabi installed?");
    }
    Ok((dir.join("hilt-fw-v1.elf"), dir.join("hilt-fw-v2.elf")))
}

/// The board's pty, read until a needle appears.
struct Console {
    fd: OwnedFd,
    seen: Vec<u8>,
}

impl Console {
    fn open(path: &Path) -> anyhow::Result<Console> {
        let fd = open(
            path,
            OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_NONBLOCK,
            Mode::empty(),
        )
        .with_context(|| format!("opening {}", path.display()))?;
        Ok(Console {
            fd,
            seen: Vec::new(),
        })
    }

    /// Forgets what was read so far (and drains what is pending).
    fn clear(&mut self) {
        let mut buf = [0u8; 4096];
        while matches!(nix::unistd::read(&self.fd, &mut buf), Ok(n) if n > 0) {}
        self.seen.clear();
    }

    fn wait_for(&mut self, needle: &[u8], within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        let mut buf = [0u8; 4096];
        loop {
            if self.seen.windows(needle.len()).any(|w| w == needle) {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!(
                    "no {:?} within {within:?}; got {:?}",
                    String::from_utf8_lossy(needle),
                    String::from_utf8_lossy(&self.seen)
                );
            }
            let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
            if poll(&mut fds, PollTimeout::from(ms))? == 0 {
                continue;
            }
            match nix::unistd::read(&self.fd, &mut buf) {
                Ok(n) => self.seen.extend_from_slice(&buf[..n]),
                Err(nix::Error::EAGAIN | nix::Error::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub fn run(env: &Env, a: &Args) -> anyhow::Result<Table> {
    for tool in ["qemu-system-arm", "arm-none-eabi-gcc"] {
        if hilt_hw::process::which(tool).is_none() {
            bail!("{tool} is not installed (scripts/peers.sh installs it)");
        }
    }
    let dir = env.scratch("qemu")?;
    let (v1, v2) = build_firmware(&dir.join("firmware"))?;
    let params: ResourceDriver = serde_json::from_value(serde_json::json!({
        "type": "qemu",
        "firmware": v1.display().to_string(),
    }))?;
    let Opened::Power(mut switch) = open_resource("board", &params)? else {
        bail!("the qemu driver did not open a power switch");
    };
    let pty = switch
        .board()
        .context("the qemu switch has no board")?
        .uart_path()
        .to_path_buf();
    let mut console = Console::open(&pty)?;
    let within = Duration::from_secs(10);

    // Boot → banner: power off, then on.
    let mut boot = Vec::new();
    for _ in 0..a.runs {
        switch.set("dut", false)?;
        console.clear();
        let t0 = Instant::now();
        switch.set("dut", true)?;
        console.wait_for(b"ready", within)?;
        boot.push(ms(t0.elapsed()));
    }
    // Reset → banner.
    let mut reset = Vec::new();
    for _ in 0..a.runs {
        console.clear();
        let t0 = Instant::now();
        board(&mut switch)?.reset()?;
        console.wait_for(b"ready", within)?;
        reset.push(ms(t0.elapsed()));
    }
    // Flash → banner, alternating images.
    let mut flash = Vec::new();
    for i in 0..a.runs {
        let (image, banner): (&Path, &[u8]) = if i % 2 == 0 {
            (&v2, b"v2.0.0")
        } else {
            (&v1, b"v1.0.0")
        };
        console.clear();
        let t0 = Instant::now();
        board(&mut switch)?.flash(image)?;
        console.wait_for(banner, within)?;
        console.wait_for(b"ready", within)?;
        flash.push(ms(t0.elapsed()));
    }
    drop(console);
    drop(switch);

    // UART round trip through the runner: QEMU board vs the pty sim device.
    let suite = dir.join("pingpong.yaml");
    std::fs::write(&suite, suite_yaml(a.iterations))?;
    let qemu_bench = dir.join("qemu-bench.yaml");
    std::fs::write(
        &qemu_bench,
        format!(
            "version: 1\nbench: {{name: qemu bench}}\nnodes:\n  dut:\n    kind: mcu\n    transports:\n      console: {{backend: uart, port: \"qemu:board\"}}\nresources:\n  board:\n    kind: emulator\n    driver: {{type: qemu, firmware: \"{}\"}}\n",
            v1.display()
        ),
    )?;
    let sim = hilt_sim::SimDut::start(hilt_sim::DutConfig::default())
        .map_err(|e| anyhow::anyhow!("starting the simulated DUT: {e}"))?;
    if !sim.wait_ready(Duration::from_secs(2)) {
        bail!("the simulated DUT did not boot");
    }
    let sim_bench = dir.join("sim-bench.yaml");
    std::fs::write(
        &sim_bench,
        crate::uart_throughput::bench_yaml(&sim.port_path().display().to_string()),
    )?;
    let mut on_qemu = Vec::new();
    let mut on_sim = Vec::new();
    for r in 0..3 {
        on_qemu.extend(hilt_round(&qemu_bench, &suite, &dir.join(format!("q{r}")))?);
        on_sim.extend(hilt_round(&sim_bench, &suite, &dir.join(format!("s{r}")))?);
    }
    sim.stop();

    let mut t = Table::new(
        format!(
            "qemu: hilt's firmware on QEMU lm3s6965evb ({} runs per lifecycle row, {} ping→pong per board)",
            a.runs,
            on_qemu.len()
        ),
        "pty sim device",
    );
    for (name, v) in [
        ("boot → banner (power on)", &boot),
        ("reset → banner (QMP system_reset)", &reset),
        ("flash → banner (restart with the other ELF)", &flash),
    ] {
        t.row(
            format!("{name} median / p99 ms"),
            format!("{:.1} / {:.1}", median(v), percentile(v, 99.0)),
            "—",
            "",
            "",
            None,
        );
    }
    for (name, p) in [("ping → pong p50 µs", 50.0), ("ping → pong p99 µs", 99.0)] {
        let (q, s) = (percentile(&on_qemu, p), percentile(&on_sim, p));
        t.row(
            name,
            format!("{q:.0}"),
            format!("{s:.0}"),
            format!("{:.1}×", q / s),
            "",
            None,
        );
    }
    t.note("Lifecycle rows: QemuBoard driven directly (the `qemu` driver's open), timed from the call to the firmware's `ready` line read on the board's pty. Every start is a new qemu-system-arm process started paused, its UART and QMP sockets accepted, then `cont`.");
    t.note("ping → pong: hilt_runner::run in-process, send_uart + expect_uart (contains, since_mark), timed from the send's step.started to the expect's step.finished; QEMU path = pty → relay thread → unix socket → emulated PL011 → firmware (interrupt + WFI) and back.");
    Ok(t)
}

fn board(switch: &mut Box<dyn PowerSwitch>) -> anyhow::Result<&mut dyn hilt_hw::board::Board> {
    switch.board().context("the qemu switch has no board")
}

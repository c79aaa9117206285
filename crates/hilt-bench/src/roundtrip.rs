//! `roundtrip`: `send_uart "ping\n"` → `expect_uart "pong"` against the simulated DUT through
//! the whole runner, vs the same exchange as raw `write`/`poll`/`read` on the pty.
//!
//! hilt: `hilt_runner::run` in this process on a suite of N send/expect pairs; each pair is
//! timed from the send step's `step.started` to the expect step's `step.finished`, as seen by
//! an [`Observer`] (so event emission, the reader thread hand-off and the matcher are all
//! inside). Raw: open the same pty, write `ping\n`, read until `pong`. Rounds alternate.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::fcntl::{OFlag, open};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::stat::Mode;
use nix::sys::termios::{FlushArg, SetArg, cfmakeraw, tcflush, tcgetattr, tcsetattr};

use hilt_model::run::Event;
use hilt_runner::Observer;

use crate::env::{Env, run_in_process};
use crate::stats::{micros, percentile};
use crate::table::Table;

pub struct Args {
    pub iterations: usize,
    pub rounds: usize,
}

/// Times send→expect pairs: step `2k-1` is a send, step `2k` its expect.
#[derive(Default)]
struct PairClock {
    started: HashMap<u64, Instant>,
    samples: Vec<f64>,
}

impl Observer for PairClock {
    fn event(&mut self, e: &Event) {
        let now = Instant::now();
        let Some(i) = e.data.get("step_index").and_then(|v| v.as_u64()) else {
            return;
        };
        match e.event_type.as_str() {
            "step.started" if i % 2 == 1 => {
                self.started.insert(i, now);
            }
            "step.finished" if i % 2 == 0 => {
                if let Some(t) = self.started.remove(&(i - 1)) {
                    self.samples.push(micros(now - t));
                }
            }
            _ => {}
        }
    }
}

pub fn run(env: &Env, a: &Args) -> anyhow::Result<Table> {
    let dut = hilt_sim::SimDut::start(hilt_sim::DutConfig::default())
        .map_err(|e| anyhow::anyhow!("starting the simulated DUT: {e}"))?;
    if !dut.wait_ready(Duration::from_secs(2)) {
        bail!("the simulated DUT did not boot");
    }
    let port = dut.port_path().to_path_buf();
    let dir = env.scratch("roundtrip")?;
    let bench = dir.join("bench.yaml");
    let suite = dir.join("suite.yaml");
    std::fs::write(
        &bench,
        crate::uart_throughput::bench_yaml(&port.display().to_string()),
    )?;
    std::fs::write(&suite, suite_yaml(a.iterations))?;

    // Warm-up of both paths, not counted.
    hilt_round(&bench, &suite, &dir.join("warmup"))?;
    raw_round(&port, 50)?;
    let mut hilt = Vec::new();
    let mut raw = Vec::new();
    for r in 0..a.rounds {
        hilt.extend(hilt_round(&bench, &suite, &dir.join(format!("round-{r}")))?);
        raw.extend(raw_round(&port, a.iterations)?);
    }
    dut.stop();

    let mut t = Table::new(
        format!(
            "roundtrip: send \"ping\\n\" → expect \"pong\" on the simulated DUT ({} exchanges)",
            hilt.len()
        ),
        "raw pty write/poll/read",
    );
    for (name, p) in [("p50 µs", 50.0), ("p99 µs", 99.0)] {
        let (h, b) = (percentile(&hilt, p), percentile(&raw, p));
        let over = h - b;
        t.row(
            name,
            format!("{h:.0}"),
            format!("{b:.0}"),
            format!("{over:+.0} µs"),
            if p == 50.0 {
                "overhead ≤ 100 µs"
            } else {
                ""
            },
            (p == 50.0).then_some(over <= 100.0),
        );
    }
    t.note("hilt = hilt_runner::run in-process, steps send_uart + expect_uart (contains, scope: since_mark); timed from the send's step.started to the expect's step.finished (events and ledgers on). The simulated DUT answers with zero latency from its own thread in this process.");
    Ok(t)
}

pub(crate) fn suite_yaml(n: usize) -> String {
    let mut s = String::from(
        "version: 1\nsuite: {name: roundtrip}\ntests:\n  - name: ping pong\n    steps:\n",
    );
    for _ in 0..n {
        s.push_str("      - send_uart: {node: dut, transport: console, data: \"ping\\n\"}\n");
        s.push_str("      - expect_uart: {node: dut, transport: console, contains: pong, scope: since_mark, within_ms: 2000}\n");
    }
    s
}

pub(crate) fn hilt_round(bench: &Path, suite: &Path, results: &Path) -> anyhow::Result<Vec<f64>> {
    let mut clock = PairClock::default();
    let out = run_in_process(bench, suite, results, &mut clock)?;
    if out.exit_code != 0 {
        bail!(
            "the roundtrip run did not pass (exit code {}); see {}",
            out.exit_code,
            out.results_dir.display()
        );
    }
    Ok(clock.samples)
}

fn raw_round(port: &Path, n: usize) -> anyhow::Result<Vec<f64>> {
    let fd: OwnedFd = open(
        port,
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_NONBLOCK,
        Mode::empty(),
    )
    .with_context(|| format!("opening {}", port.display()))?;
    let mut t = tcgetattr(&fd)?;
    cfmakeraw(&mut t);
    tcsetattr(&fd, SetArg::TCSANOW, &t)?;
    tcflush(&fd, FlushArg::TCIFLUSH)?;
    let mut samples = Vec::with_capacity(n);
    let mut buf = [0u8; 4096];
    let mut acc = Vec::new();
    for _ in 0..n {
        acc.clear();
        let t0 = Instant::now();
        let mut out: &[u8] = b"ping\n";
        while !out.is_empty() {
            match nix::unistd::write(&fd, out) {
                Ok(k) => out = &out[k..],
                Err(nix::Error::EAGAIN | nix::Error::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        loop {
            let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
            if poll(&mut fds, PollTimeout::from(2000u16))? == 0 {
                bail!("no pong within 2 s on {}", port.display());
            }
            match nix::unistd::read(&fd, &mut buf) {
                Ok(k) => acc.extend_from_slice(&buf[..k]),
                Err(nix::Error::EAGAIN | nix::Error::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
            if acc.windows(4).any(|w| w == b"pong") {
                break;
            }
        }
        samples.push(micros(t0.elapsed()));
    }
    Ok(samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_paths_time_every_exchange() {
        let dut = hilt_sim::SimDut::start(hilt_sim::DutConfig::default()).unwrap();
        assert!(dut.wait_ready(Duration::from_secs(10)));
        let dir = tempfile::tempdir().unwrap();
        let bench = dir.path().join("bench.yaml");
        let suite = dir.path().join("suite.yaml");
        let port = dut.port_path().display().to_string();
        std::fs::write(&bench, crate::uart_throughput::bench_yaml(&port)).unwrap();
        std::fs::write(&suite, suite_yaml(5)).unwrap();
        assert_eq!(
            hilt_round(&bench, &suite, &dir.path().join("r"))
                .unwrap()
                .len(),
            5
        );
        assert_eq!(raw_round(dut.port_path(), 5).unwrap().len(), 5);
        dut.stop();
    }
}

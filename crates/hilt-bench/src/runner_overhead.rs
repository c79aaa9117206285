//! `runner-overhead`: the per-step cost of the runner on steps that touch no hardware, with
//! events, ledgers and results on, vs BenchCI on the same files.
//!
//! Each tool runs the suite with N steps and with 1 step as child processes; the marginal
//! rate is `(N - 1) / (wall(N) - wall(1))`, so start-up and finalisation cancel out. hilt's
//! execute-phase rate (first `step.started` to last `step.finished`, in-process) is shown
//! too.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::bail;

use hilt_model::run::Event;
use hilt_runner::Observer;

use crate::child;
use crate::env::{Env, run_args, run_in_process};
use crate::stats::median;
use crate::table::{Table, ratio};

pub struct Args {
    pub steps: usize,
    pub runs: usize,
}

const BENCH: &str = "version: 1
bench: {name: overhead bench}
nodes:
  dut:
    kind: simulator
    gpio:
      spare: {backend: mock_gpio, channel: 0, direction: output}
resources:
  shunt:
    kind: measurement
    driver: {type: mock_measurement, value: 0.012, quantity: current, unit: A}
";

#[derive(Clone, Copy)]
enum Kind {
    Sleep0,
    AssertMetric,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Sleep0 => "sleep_ms: 0",
            Kind::AssertMetric => "assert_metric",
        }
    }

    fn suite(self, n: usize) -> String {
        let mut s = String::from(
            "version: 1\nsuite: {name: overhead}\ntests:\n  - name: many steps\n    steps:\n",
        );
        match self {
            Kind::Sleep0 => {
                for _ in 0..n {
                    s.push_str("      - sleep_ms: 0\n");
                }
            }
            Kind::AssertMetric => {
                s.push_str("      - measure: {resource: shunt, record_as: idle, unit: A}\n");
                for _ in 1..n {
                    s.push_str("      - assert_metric: {name: idle, expect_less_than: 0.015}\n");
                }
            }
        }
        s
    }
}

#[derive(Default)]
struct StepSpan {
    first: Option<Instant>,
    last: Option<Instant>,
    steps: u64,
}

impl Observer for StepSpan {
    fn event(&mut self, e: &Event) {
        match e.event_type.as_str() {
            "step.started" if self.first.is_none() => self.first = Some(Instant::now()),
            "step.finished" => {
                self.last = Some(Instant::now());
                self.steps += 1;
            }
            _ => {}
        }
    }
}

pub fn run(env: &Env, a: &Args) -> anyhow::Result<Table> {
    let dir = env.scratch("runner-overhead")?;
    let bench = dir.join("bench.yaml");
    std::fs::write(&bench, BENCH)?;
    let mut t = Table::new(
        format!(
            "runner-overhead: {} trivial steps in one test, steps/s (median of {})",
            a.steps, a.runs
        ),
        "BenchCI 2.0.1",
    );
    for kind in [Kind::Sleep0, Kind::AssertMetric] {
        let tag = if matches!(kind, Kind::Sleep0) {
            "sleep"
        } else {
            "metric"
        };
        let big = dir.join(format!("{tag}-{}.yaml", a.steps));
        let one = dir.join(format!("{tag}-1.yaml"));
        std::fs::write(&big, kind.suite(a.steps))?;
        std::fs::write(&one, kind.suite(1))?;

        let exec_rate = in_process(&bench, &big, &dir.join(format!("{tag}-inproc")), a.steps)?;
        let mut walls: [[Vec<f64>; 2]; 2] = Default::default();
        for r in 0..a.runs {
            for (ti, tool) in ["hilt", "benchci"].into_iter().enumerate() {
                if tool == "benchci" && env.benchci.is_none() {
                    continue;
                }
                for (si, suite) in [&big, &one].into_iter().enumerate() {
                    let d = dir.join(format!("{tag}-{tool}-{si}-{r}"));
                    walls[ti][si].push(run_tool(env, tool, &bench, suite, &d)?);
                    let _ = std::fs::remove_dir_all(&d);
                }
            }
        }
        // A difference lost in the noise (too few steps) gives no rate.
        let rate = |w: &[Vec<f64>; 2]| {
            let d = median(&w[0]) - median(&w[1]);
            (!w[0].is_empty() && d > 0.0).then(|| (a.steps - 1) as f64 / d)
        };
        let h = rate(&walls[0]);
        let b = rate(&walls[1]);
        t.row(
            format!("{} marginal steps/s", kind.name()),
            h.map_or("lost in noise".into(), |v| format!("{v:.0}")),
            b.map_or("n/a".into(), |v| format!("{v:.0}")),
            h.map_or("-".into(), |h| ratio(h, b)),
            "≥ 20000/s",
            h.map(|h| h >= 20_000.0),
        );
        t.row(
            format!("{} whole run, s", kind.name()),
            format!("{:.3}", median(&walls[0][0])),
            if walls[1][0].is_empty() {
                "n/a".into()
            } else {
                format!("{:.3}", median(&walls[1][0]))
            },
            if walls[1][0].is_empty() {
                "-".into()
            } else {
                format!("{:.1}×", median(&walls[1][0]) / median(&walls[0][0]))
            },
            "",
            None,
        );
        t.row(
            format!("{} hilt execute phase steps/s", kind.name()),
            format!("{exec_rate:.0}"),
            "",
            "",
            "",
            None,
        );
    }
    t.note("marginal = (N − 1) / (wall(N steps) − wall(1 step)) of `hilt run` / `benchci run` child processes, so start-up cancels out; whole run = wall time of the N-step run; execute phase = in-process, first step.started to last step.finished.");
    Ok(t)
}

fn run_tool(env: &Env, tool: &str, bench: &Path, suite: &Path, dir: &Path) -> anyhow::Result<f64> {
    std::fs::create_dir_all(dir)?;
    let mut cmd = match tool {
        "hilt" => {
            let mut c = env.hilt();
            c.env("HILT_LOCK_DIR", dir.join("locks"));
            c
        }
        _ => {
            let mut c = Command::new(env.benchci.as_ref().expect("checked"));
            c.env("BENCHCI_LOCK_DIR", dir.join("locks"));
            c
        }
    };
    run_args(&mut cmd, bench, suite, &dir.join("results")).env("TMPDIR", dir);
    let f = child::run(&cmd, &dir.join(tool))?;
    if f.code != 0 {
        bail!(
            "{tool} run of {} failed with code {}",
            suite.display(),
            f.code
        );
    }
    Ok(f.wall.as_secs_f64())
}

fn in_process(bench: &Path, suite: &Path, results: &Path, n: usize) -> anyhow::Result<f64> {
    let mut span = StepSpan::default();
    let out = run_in_process(bench, suite, results, &mut span)?;
    if out.exit_code != 0 || span.steps != n as u64 {
        bail!(
            "in-process run failed (exit code {}, {} steps finished)",
            out.exit_code,
            span.steps
        );
    }
    let secs = match (span.first, span.last) {
        (Some(a), Some(b)) => (b - a).as_secs_f64(),
        _ => f64::NAN,
    };
    Ok(n as f64 / secs)
}

//! `suite-load`: `hilt validate` on a generated 20,000-step suite (CPU time, wall time and
//! peak RSS), against `benchci validate` on the same files, runs interleaved. A 1-step suite
//! is measured the same way, so the cost of loading the big file shows apart from process
//! start-up.

use std::path::Path;
use std::process::Command;

use anyhow::bail;

use crate::child;
use crate::env::Env;
use crate::stats::median;
use crate::table::Table;

#[derive(clap::Args, Debug, Default)]
pub struct Args {
    /// Steps in the generated suite [default: 20000, quick: 5000].
    #[arg(long)]
    steps: Option<usize>,
    /// Runs per tool and suite [default: 5, quick: 1].
    #[arg(long)]
    runs: Option<usize>,
}

const BENCH: &str = "version: 1
bench: {name: load bench}
nodes:
  dut:
    kind: mcu
    transports:
      console: {backend: uart, port: /dev/null, baud: 115200}
    gpio:
      led: {backend: mock_gpio, channel: 0, direction: output}
resources:
  shunt:
    kind: measurement
    driver: {type: mock_measurement, value: 0.012, quantity: current, unit: A}
";

/// `n` steps in tests of 100 steps, cycling through five step kinds with options, so the
/// file exercises maps, flow mappings, strings, numbers and booleans (about 60 bytes a step).
pub fn suite(n: usize) -> String {
    let mut s = String::with_capacity(n * 64 + 64);
    s.push_str("version: 1\nsuite: {name: load, version: \"1.0\"}\ntests:\n");
    for i in 0..n {
        if i % 100 == 0 {
            s.push_str(&format!("  - name: test {}\n    steps:\n", i / 100));
            s.push_str("      - measure: {resource: shunt, record_as: idle, unit: A}\n");
            continue;
        }
        let step = match i % 5 {
            0 => format!("      - send_uart: {{node: dut, transport: console, data: \"cmd {i}\\n\"}}\n"),
            1 => "      - expect_uart: {node: dut, transport: console, contains: \"ok\", within_ms: 500}\n".to_string(),
            2 => "      - assert_metric: {name: idle, expect_less_than: 0.015}\n".to_string(),
            3 => "      - gpio_set: {node: dut, line: led, value: true}\n".to_string(),
            _ => "      - sleep_ms: 0\n".to_string(),
        };
        s.push_str(&step);
    }
    s
}

struct M {
    wall: f64,
    cpu: f64,
    rss: f64,
}

fn validate(env: &Env, tool: &str, bench: &Path, suite: &Path, stem: &Path) -> anyhow::Result<M> {
    let mut cmd = match tool {
        "hilt" => env.hilt(),
        _ => Command::new(env.benchci.as_ref().expect("checked")),
    };
    cmd.arg("validate")
        .arg("--bench")
        .arg(bench)
        .arg("--suite")
        .arg(suite);
    let f = child::run(&cmd, stem)?;
    if f.code != 0 {
        bail!(
            "{tool} validate of {} exited {}; see {}",
            suite.display(),
            f.code,
            stem.with_extension("out").display()
        );
    }
    Ok(M {
        wall: f.wall.as_secs_f64(),
        cpu: f.cpu.as_secs_f64(),
        rss: f.rss_mb(),
    })
}

pub fn run(env: &Env, a: &Args, quick: bool) -> anyhow::Result<Table> {
    let n = a.steps.unwrap_or(if quick { 5000 } else { 20_000 }).max(1);
    let runs = a.runs.unwrap_or(if quick { 1 } else { 5 }).max(1);
    let dir = env.scratch("suite-load")?;
    let bench = dir.join("bench.yaml");
    std::fs::write(&bench, BENCH)?;
    let big = dir.join("big.yaml");
    let text = suite(n);
    std::fs::write(&big, &text)?;
    let one = dir.join("one.yaml");
    std::fs::write(&one, suite(1))?;
    let tools: Vec<&str> = if env.benchci.is_some() {
        vec!["hilt", "benchci"]
    } else {
        vec!["hilt"]
    };
    // [tool][suite: 0 big, 1 one]
    let mut m: Vec<[Vec<M>; 2]> = tools.iter().map(|_| [Vec::new(), Vec::new()]).collect();
    // Warm-up (page cache, Python bytecode), not counted.
    for t in &tools {
        validate(env, t, &bench, &big, &dir.join(format!("warm-{t}")))?;
    }
    for r in 0..runs {
        for (si, s) in [&big, &one].iter().enumerate() {
            let order: Vec<usize> = if r % 2 == 0 {
                (0..tools.len()).collect()
            } else {
                (0..tools.len()).rev().collect()
            };
            for ti in order {
                let stem = dir.join(format!("{}-{si}-{r}", tools[ti]));
                m[ti][si].push(validate(env, tools[ti], &bench, s, &stem)?);
            }
        }
    }
    let med = |v: &[M], f: fn(&M) -> f64| median(&v.iter().map(f).collect::<Vec<_>>());
    let mut t = Table::new(
        format!(
            "suite-load: `validate` of a {n}-step suite ({:.2} MB), median of {runs}, runs interleaved",
            text.len() as f64 / 1e6
        ),
        "BenchCI 2.0.1 (`benchci validate`)",
    );
    let b = |si: usize, f: fn(&M) -> f64| (tools.len() > 1).then(|| med(&m[1][si], f));
    let (hw, hr) = (med(&m[0][0], |x| x.wall), med(&m[0][0], |x| x.rss));
    let hc = med(&m[0][0], |x| x.cpu);
    let bc = b(0, |x| x.cpu);
    t.row(
        format!("{n}-step suite: CPU ms (user + sys)"),
        format!("{:.1}", hc * 1e3),
        bc.map_or("n/a".into(), |v| format!("{:.1}", v * 1e3)),
        bc.map_or(String::new(), |v| format!("{:.1}× less", v / hc)),
        "≤ 50 ms",
        Some(hc <= 0.050),
    );
    let bw = b(0, |x| x.wall);
    t.row(
        format!("{n}-step suite: wall ms"),
        format!("{:.1}", hw * 1e3),
        bw.map_or("n/a".into(), |v| format!("{:.1}", v * 1e3)),
        bw.map_or(String::new(), |v| format!("{:.1}× faster", v / hw)),
        "",
        None,
    );
    let br = b(0, |x| x.rss);
    t.row(
        format!("{n}-step suite: peak RSS MB"),
        format!("{hr:.1}"),
        br.map_or("n/a".into(), |v| format!("{v:.1}")),
        br.map_or(String::new(), |v| format!("{:.2} of BenchCI", hr / v)),
        "≤ 20 MB",
        Some(hr <= 20.0),
    );
    let (ow, or) = (med(&m[0][1], |x| x.wall), med(&m[0][1], |x| x.rss));
    let oc = med(&m[0][1], |x| x.cpu);
    t.row(
        "1-step suite: CPU ms / wall ms / peak RSS MB (process floor)",
        format!("{:.1} / {:.1} / {or:.1}", oc * 1e3, ow * 1e3),
        match (b(1, |x| x.cpu), b(1, |x| x.wall), b(1, |x| x.rss)) {
            (Some(c), Some(w), Some(r)) => format!("{:.1} / {:.1} / {r:.1}", c * 1e3, w * 1e3),
            _ => "n/a".into(),
        },
        "",
        "",
        None,
    );
    t.row(
        "diagnostic: the big file's own cost, ms / MB (big − 1-step)",
        format!("{:.1} / {:.1}", (hw - ow) * 1e3, hr - or),
        match (bw, br, b(1, |x| x.wall), b(1, |x| x.rss)) {
            (Some(w), Some(r), Some(w1), Some(r1)) => {
                format!("{:.1} / {:.1}", (w - w1) * 1e3, r - r1)
            }
            _ => "n/a".into(),
        },
        "",
        "",
        None,
    );
    let all = |v: &[M]| {
        v.iter()
            .map(|x| format!("{:.1}", x.wall * 1e3))
            .collect::<Vec<_>>()
            .join(" ")
    };
    t.note(format!("hilt wall per run, ms: {}", all(&m[0][0])));
    t.note("Both tools run as child processes through `hilt-bench measure-child` (wall from spawn to exit, CPU time and peak RSS from getrusage of the reaped child; on a shared machine wall time measures the neighbours, CPU time does not). The suite has tests of 100 steps cycling through measure, send_uart, expect_uart, assert_metric, gpio_set and sleep_ms with options; the bench names a uart, a mock GPIO line and a mock instrument (validation touches no hardware).");
    Ok(t)
}

#[cfg(test)]
mod tests {
    #[test]
    fn generated_suite_loads_and_has_every_step() {
        let text = super::suite(250);
        let s = hilt_model::load::parse_suite(&text, "s.yaml", Default::default()).unwrap();
        let steps: usize = s.value.tests.iter().map(|t| t.steps.len()).sum();
        assert_eq!(steps, 250);
        assert_eq!(s.value.tests.len(), 3);
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    }
}

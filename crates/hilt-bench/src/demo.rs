//! `demo`: wall time of `hilt demo --dir <tmp>` (sim start, bench/suite written, 6 tests
//! run), vs `benchci demo` (BenchCI's own zero-hardware demo: different tests, so the ratio
//! is only indicative).

use std::process::Command;

use crate::child;
use crate::env::Env;
use crate::stats::median;
use crate::table::{Table, ratio};

pub struct Args {
    pub runs: usize,
}

pub fn run(env: &Env, a: &Args) -> anyhow::Result<Table> {
    let dir = env.scratch("demo")?;
    let mut h = Vec::new();
    let mut hr = 0f64;
    let mut b = Vec::new();
    let mut br = 0f64;
    for r in 0..a.runs {
        let d = dir.join(format!("hilt-{r}"));
        let mut cmd = env.hilt();
        cmd.arg("demo").arg("--dir").arg(&d);
        let f = child::run(&cmd, &dir.join(format!("hilt-{r}")))?;
        anyhow::ensure!(f.code == 0, "hilt demo failed with code {}", f.code);
        h.push(f.wall.as_secs_f64());
        hr = hr.max(f.rss_mb());
        if let Some(bc) = &env.benchci {
            let d = dir.join(format!("benchci-{r}"));
            std::fs::create_dir_all(&d)?;
            let mut cmd = Command::new(bc);
            cmd.arg("demo")
                .current_dir(&d)
                .env("TMPDIR", &d)
                .env("BENCHCI_LOCK_DIR", d.join("locks"));
            let f = child::run(&cmd, &dir.join(format!("benchci-{r}")))?;
            anyhow::ensure!(f.code == 0, "benchci demo failed with code {}", f.code);
            b.push(f.wall.as_secs_f64());
            br = br.max(f.rss_mb());
        }
    }
    let hm = median(&h);
    let bm = (!b.is_empty()).then(|| median(&b));
    let mut t = Table::new(
        format!("demo: zero-hardware demo, wall time (median of {})", a.runs),
        "`benchci demo`",
    );
    t.row(
        "wall s",
        format!("{hm:.3}"),
        bm.map_or("n/a".into(), |v| format!("{v:.3}")),
        // Speed-up: baseline time over hilt time.
        bm.map_or("-".into(), |v| ratio(v, Some(hm))),
        "well under 2 s",
        Some(hm < 1.0),
    );
    t.row(
        "peak RSS MB",
        format!("{hr:.1}"),
        if b.is_empty() {
            "n/a".into()
        } else {
            format!("{br:.1}")
        },
        if b.is_empty() {
            "-".into()
        } else {
            format!("{:.2}×", hr / br)
        },
        "",
        None,
    );
    t.note("ratio = baseline time / hilt time (speed-up). The demos differ: hilt's runs 6 tests on a simulated DUT over a real pty; BenchCI's runs its own 8 simulated tests.");
    Ok(t)
}

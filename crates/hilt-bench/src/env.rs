//! Where the tools under test are: the `hilt` binary, and the venv with the baselines.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

pub struct Env {
    pub hilt: PathBuf,
    /// Python of the baseline venv, when it has pexpect.
    pub python: Option<PathBuf>,
    /// `benchci` of the baseline venv, when installed.
    pub benchci: Option<PathBuf>,
    work: tempfile::TempDir,
}

impl Env {
    pub fn discover(
        hilt: Option<PathBuf>,
        venv: Option<PathBuf>,
        work_root: Option<PathBuf>,
        keep: bool,
    ) -> anyhow::Result<Env> {
        let hilt = match hilt {
            Some(h) => h,
            None => {
                let exe = std::env::current_exe().context("locating hilt-bench")?;
                exe.with_file_name("hilt")
            }
        };
        if !hilt.is_file() {
            bail!(
                "hilt binary not found at {}; help: run `cargo build --release -p hilt-cli` with the same CARGO_TARGET_DIR, or pass --hilt PATH",
                hilt.display()
            );
        }
        if hilt.components().any(|c| c.as_os_str() == "debug") {
            eprintln!(
                "warning: {} looks like a debug build; figures are only meaningful for --release",
                hilt.display()
            );
        }
        let venv = venv.or_else(|| {
            std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/hilt-bench-venv"))
        });
        let (python, benchci) = match venv {
            Some(v) => {
                let py = v.join("bin/python");
                let has_pexpect = Command::new(&py)
                    .args(["-c", "import pexpect.fdpexpect"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                let bc = v.join("bin/benchci");
                (has_pexpect.then_some(py), bc.is_file().then_some(bc))
            }
            None => (None, None),
        };
        if python.is_none() || benchci.is_none() {
            eprintln!(
                "warning: baseline venv incomplete (pexpect: {}, benchci: {}); baselines are skipped. help: run scripts/bench/venv.sh",
                python.is_some(),
                benchci.is_some()
            );
        }
        let mut b = tempfile::Builder::new();
        b.prefix("hilt-bench-");
        let work = match work_root {
            Some(r) => {
                std::fs::create_dir_all(&r)?;
                b.tempdir_in(r)?
            }
            None => b.tempdir()?,
        };
        let mut env = Env {
            hilt,
            python,
            benchci,
            work,
        };
        if keep {
            env.work.disable_cleanup(true);
            eprintln!("keeping scratch files in {}", env.work.path().display());
        }
        Ok(env)
    }

    /// A fresh, empty scratch directory.
    pub fn scratch(&self, name: &str) -> anyhow::Result<PathBuf> {
        let d = self.work.path().join(name);
        if d.exists() {
            std::fs::remove_dir_all(&d)?;
        }
        std::fs::create_dir_all(&d)?;
        Ok(d)
    }

    pub fn hilt(&self) -> Command {
        Command::new(&self.hilt)
    }

    /// `hilt sim dut --link <link>`: a simulated DUT on a pty (add `--control` for its
    /// wiring socket).
    pub fn sim_dut(&self, link: &Path) -> Command {
        let mut c = self.hilt();
        c.arg("sim").arg("dut").arg("--link").arg(link);
        c
    }
}

/// Adds `run --bench <bench> --suite <suite> --results-dir <results>` (the same for hilt
/// and BenchCI).
pub fn run_args<'a>(
    cmd: &'a mut Command,
    bench: &Path,
    suite: &Path,
    results: &Path,
) -> &'a mut Command {
    cmd.arg("run")
        .arg("--bench")
        .arg(bench)
        .arg("--suite")
        .arg(suite)
        .arg("--results-dir")
        .arg(results)
}

/// Runs `suite` on `bench` in this process (resource locks in `<results>/locks`),
/// reporting to `observer`.
pub fn run_in_process(
    bench: &Path,
    suite: &Path,
    results: &Path,
    observer: &mut dyn hilt_runner::Observer,
) -> anyhow::Result<hilt_runner::RunOutcome> {
    Ok(hilt_runner::run(
        &hilt_runner::RunOptions {
            bench: bench.to_path_buf(),
            suite: suite.to_path_buf(),
            results_dir: Some(results.to_path_buf()),
            lock_config: Some(hilt_hw::locks::LockConfig {
                dir: results.join("locks"),
                enabled: true,
            }),
            ..Default::default()
        },
        observer,
        &hilt_hw::CancelToken::new(),
    )?)
}

/// The one run directory a tool created below `root` (both tools add a timestamped level).
pub fn run_dir(root: &Path) -> anyhow::Result<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .with_context(|| format!("reading {}", root.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("results.json").is_file())
        .collect();
    dirs.sort();
    dirs.pop().with_context(|| {
        format!(
            "no run directory with results.json under {}",
            root.display()
        )
    })
}

pub fn read_json(path: &Path) -> anyhow::Result<serde_json::Value> {
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&text).with_context(|| format!("parsing {}", path.display()))
}

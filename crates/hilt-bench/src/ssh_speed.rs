//! SSH through a two-hop jump chain on loopback sshd (`hilt_testkit::sshd`): hilt's
//! `SystemSsh` (one ControlMaster connection, every command multiplexed over it — what
//! `ssh_exec` steps use) against a fresh `ssh -J` per command, and hilt's verified upload
//! (SHA-256 on both ends) against `scp -O -J`, measured side by side. Both sides use the
//! same keys, known_hosts and ciphers (OpenSSH defaults).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use hilt_hw::CancelToken;
use hilt_hw::ssh::{self, RemoteCommand, RemoteProgram};
use hilt_testkit::sshd::{Lab, USER};

use crate::env::Env;
use crate::stats::{median, percentile};
use crate::table::Table;

pub struct Args {
    /// Sequential `true` commands per side.
    pub commands: usize,
    /// Upload size in MB.
    pub mb: u64,
    /// Uploads per side (alternating).
    pub uploads: usize,
}

/// ssh_config for the baseline: the same credentials and strict host keys hilt uses,
/// for every hop (`-J` hops read `-F`, not `-o`).
fn baseline_config(lab: &Lab) -> anyhow::Result<PathBuf> {
    let cfg = lab.path("baseline_ssh_config");
    std::fs::write(
        &cfg,
        format!(
            "Host *\n  IdentityFile {}\n  IdentitiesOnly yes\n  IdentityAgent none\n  BatchMode yes\n  StrictHostKeyChecking yes\n  UserKnownHostsFile {}\n  GlobalKnownHostsFile /dev/null\n  ControlMaster no\n  ControlPath none\n  LogLevel ERROR\n",
            lab.path("client_ed25519").display(),
            lab.path("known_hosts").display()
        ),
    )?;
    Ok(cfg)
}

fn ok(cmd: &mut Command, what: &str) -> anyhow::Result<Duration> {
    let t = Instant::now();
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {what}"))?;
    let d = t.elapsed();
    if !out.status.success() {
        bail!("{what} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(d)
}

pub fn run(env: &Env, a: &Args) -> anyhow::Result<Table> {
    if !hilt_testkit::sshd::peers() {
        bail!(
            "sshd peers missing (openssh-server, user hilt-test, root): run scripts/peers.sh as root"
        );
    }
    let mut lab = Lab::new();
    let j1 = lab.sshd("PasswordAuthentication no");
    let j2 = lab.sshd("PasswordAuthentication no");
    let target = lab.sshd("PasswordAuthentication no");
    lab.known_hosts(&[j1, j2, target]);
    let bench_file = lab.chain_bench(j1, j2, target, "");
    let bench = hilt_model::load_bench(&bench_file, Default::default())
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .value;
    let cfg = baseline_config(&lab)?;
    let jumps = format!("{USER}@127.0.0.1:{j1},{USER}@127.0.0.1:{j2}");
    let fresh = |remote: &[&str]| {
        let mut c = Command::new("ssh");
        c.arg("-F")
            .arg(&cfg)
            .args(["-J", &jumps, "-p", &target.to_string()])
            .arg(format!("{USER}@127.0.0.1"))
            .args(remote);
        c
    };
    let cancel = CancelToken::new();
    let scratch = env.scratch("ssh-speed")?;

    // (a) set-up and per-command cost.
    let mut host =
        ssh::open(&bench, "gateway", lab.dir.path()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let t = Instant::now();
    host.connect(&cancel).map_err(|e| anyhow::anyhow!("{e}"))?;
    let setup = t.elapsed();
    let mut hilt_cmd = Vec::with_capacity(a.commands);
    let started = Instant::now();
    for i in 0..a.commands {
        let cmd = RemoteCommand {
            what: RemoteProgram::Argv(vec!["true".into()]),
            cwd: None,
            env: Vec::new(),
            timeout: Duration::from_secs(30),
            stdout: scratch.join(format!("c{i}.out")),
            stderr: scratch.join(format!("c{i}.err")),
            max_output_bytes: 4096,
        };
        let t = Instant::now();
        let out = host
            .exec(&cmd, &cancel)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        hilt_cmd.push(t.elapsed().as_secs_f64() * 1e3);
        if out.exit_code != Some(0) {
            bail!("`true` through hilt ended with {:?}", out.exit_code);
        }
    }
    let hilt_total = setup + started.elapsed();
    let mut base_cmd = Vec::with_capacity(a.commands);
    let started = Instant::now();
    for _ in 0..a.commands {
        base_cmd.push(ok(&mut fresh(&["true"]), "ssh -J … true")?.as_secs_f64() * 1e3);
    }
    let base_total = started.elapsed();

    let mut t = Table::new(
        format!(
            "ssh: 2-hop jump chain on loopback sshd — {} sequential `true`, {} MB upload",
            a.commands, a.mb
        ),
        "fresh `ssh -J` / `scp -O -J`",
    );
    let (hm, bm) = (median(&hilt_cmd), median(&base_cmd));
    t.row(
        "chain set-up (hilt: ControlMaster through 2 hops; ssh -J: one command)",
        format!("{:.0} ms", setup.as_secs_f64() * 1e3),
        format!("{bm:.0} ms"),
        format!("{:.2}×", bm / (setup.as_secs_f64() * 1e3)),
        "-",
        None,
    );
    let ratio = bm / hm;
    t.row(
        "per-command cost, median",
        format!("{hm:.1} ms"),
        format!("{bm:.1} ms"),
        format!("{ratio:.1}× lower"),
        "≥ 10× lower",
        Some(ratio >= 10.0),
    );
    t.row(
        "per-command cost, p99",
        format!("{:.1} ms", percentile(&hilt_cmd, 99.0)),
        format!("{:.1} ms", percentile(&base_cmd, 99.0)),
        format!(
            "{:.1}×",
            percentile(&base_cmd, 99.0) / percentile(&hilt_cmd, 99.0)
        ),
        "-",
        None,
    );
    t.row(
        format!("set-up + {} commands, total", a.commands),
        format!("{:.2} s", hilt_total.as_secs_f64()),
        format!("{:.2} s", base_total.as_secs_f64()),
        format!(
            "{:.1}×",
            base_total.as_secs_f64() / hilt_total.as_secs_f64()
        ),
        "-",
        None,
    );

    // (b) upload through the chain.
    let file = scratch.join("bundle.bin");
    write_file(&file, a.mb * 1_000_000)?;
    let remote = format!("/tmp/hilt-bench-upload-{}.bin", std::process::id());
    let mut hilt_mbs = Vec::new();
    let mut base_mbs = Vec::new();
    let mb = a.mb as f64;
    for _ in 0..a.uploads {
        let t = Instant::now();
        host.upload(&file, &remote, Duration::from_secs(600), &cancel)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        hilt_mbs.push(mb / t.elapsed().as_secs_f64());
        let mut scp = Command::new("scp");
        // `-O`: the scp protocol; the lab's sshd has no sftp subsystem.
        scp.args(["-q", "-O"])
            .arg("-F")
            .arg(&cfg)
            .args(["-J", &jumps, "-P", &target.to_string()])
            .arg(&file)
            .arg(format!("{USER}@127.0.0.1:{remote}"));
        let d = ok(&mut scp, "scp -O -J")?;
        base_mbs.push(mb / d.as_secs_f64());
    }
    let _ = ok(&mut fresh(&["rm", "-f", &remote]), "ssh rm");
    host.close();
    let (hu, bu) = (median(&hilt_mbs), median(&base_mbs));
    t.row(
        format!(
            "upload {} MB, median (hilt verifies SHA-256 on both ends)",
            a.mb
        ),
        format!("{hu:.0} MB/s"),
        format!("{bu:.0} MB/s"),
        format!("{:.0}%", hu / bu * 100.0),
        "≥ 70%",
        Some(hu >= 0.7 * bu),
    );
    t.note(format!(
        "hilt: hilt_hw::ssh::SystemSsh in-process (the code `ssh_exec`/`upload` steps run); {} uploads per side, alternating; file on {}",
        a.uploads,
        file.display()
    ));
    Ok(t)
}

/// A file of `bytes` pseudo-random bytes (not compressible, not all zeros).
fn write_file(path: &Path, bytes: u64) -> anyhow::Result<()> {
    use std::io::Write;
    let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut left = bytes;
    let mut buf = vec![0u8; 1 << 16];
    while left > 0 {
        for chunk in buf.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let b = x.to_le_bytes();
            chunk.copy_from_slice(&b[..chunk.len()]);
        }
        let n = left.min(buf.len() as u64) as usize;
        f.write_all(&buf[..n])?;
        left -= n as u64;
    }
    f.flush()?;
    Ok(())
}

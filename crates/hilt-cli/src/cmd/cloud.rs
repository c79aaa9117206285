//! `hilt agent cloud`: the cloud agent (hilt-agent's `cloud` module) with its settings
//! resolved here (flag > HILT_ variable > BENCHCI_ variable > default). SIGINT/SIGTERM
//! cancel executing runs, complete them and exit 130/143.

use std::path::Path;
use std::time::Duration;

use hilt_agent::AgentSettings;
use hilt_agent::cloud::{BenchSource, CloudSettings, Identity, Stop};
use hilt_runner::classify::exit;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::cli::AgentCloudArgs;

pub fn run(a: AgentCloudArgs) -> anyhow::Result<i32> {
    super::agent::init_logging();
    let Some(server) = a
        .server
        .clone()
        .or_else(|| var("HILT_SERVER"))
        .or_else(|| var("BENCHCI_API_URL"))
    else {
        eprintln!("error: no server: pass --server URL or set HILT_SERVER (or BENCHCI_API_URL)");
        return Ok(exit::USAGE);
    };
    let token = match a.token.clone() {
        Some(t) => Some(t),
        None => match hilt_agent::settings::token_from_env() {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(exit::USAGE);
            }
        },
    };
    let Some(token) = token
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
    else {
        eprintln!(
            "error: no agent token: pass --token or set HILT_AGENT_TOKEN (or BENCHCI_AGENT_TOKEN); create one with `hilt tokens create --kind agent`"
        );
        return Ok(exit::USAGE);
    };
    for (name, v) in [
        ("--poll-interval-s", a.poll_interval_s),
        ("--heartbeat-s", a.heartbeat_s),
        ("--retest-s", a.retest_s),
    ] {
        if !v.is_finite() || v <= 0.0 || v > 3600.0 {
            eprintln!("error: {name} must be a number of seconds between 0 and 3600, got {v}");
            return Ok(exit::USAGE);
        }
    }
    let agent = AgentSettings::resolve(a.work_dir.clone(), None);
    if let Err(e) = std::fs::create_dir_all(&agent.work_dir) {
        eprintln!(
            "error: cannot create the work dir {}: {e}",
            agent.work_dir.display()
        );
        return Ok(exit::CONFIG_ERROR);
    }
    let machine_id = match a
        .machine_id
        .clone()
        .or_else(|| hilt_agent::settings::env("MACHINE_ID"))
    {
        Some(id) => id,
        None => match persisted_machine_id(&agent.work_dir) {
            Ok(id) => id,
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(exit::CONFIG_ERROR);
            }
        },
    };
    let machine_name = a
        .machine_name
        .clone()
        .or_else(|| hilt_agent::settings::env("MACHINE_NAME"))
        .or_else(|| {
            nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
        })
        .unwrap_or_else(|| "hilt-agent".into());
    let source = match (&a.bench, &a.config) {
        (Some(bench), _) => BenchSource::Single {
            bench: bench.clone(),
            bench_id: a.bench_id.clone(),
            tags: a.tags.clone(),
            hardware_profile: a.hardware_profile.clone(),
            hardware_revision: a.hardware_revision.clone(),
        },
        (None, Some(path)) => BenchSource::Config {
            path: path.clone(),
            tags: a.tags.clone(),
        },
        (None, None) => unreachable!("clap requires --bench or --config"),
    };
    let settings = CloudSettings {
        server,
        identity: Identity {
            token,
            machine_id,
            machine_name,
        },
        agent_name: a.agent_name.clone(),
        region: a.region.clone(),
        source,
        agent,
        heartbeat: Duration::from_secs_f64(a.heartbeat_s),
        poll_interval: Duration::from_secs_f64(a.poll_interval_s),
        report_timeout: Duration::from_secs(a.report_timeout_s),
        retest: Duration::from_secs_f64(a.retest_s),
    };
    let stop = Stop::new();
    if let Ok(mut signals) = Signals::new([SIGINT, SIGTERM]) {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut seen = 0;
            for sig in signals.forever() {
                seen += 1;
                if seen == 1 {
                    tracing::info!(
                        "signal {sig}: cancelling executing runs and completing them (again to exit at once)"
                    );
                    stop.signal(sig);
                } else {
                    std::process::exit(128 + sig);
                }
            }
        });
    }
    Ok(hilt_agent::cloud::run(settings, stop))
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// `<work-dir>/machine_id`, created once (`hilt_machine_<32 hex>`).
fn persisted_machine_id(work_dir: &Path) -> Result<String, String> {
    let p = work_dir.join("machine_id");
    if let Ok(t) = std::fs::read_to_string(&p) {
        let t = t.trim();
        if !t.is_empty() {
            return Ok(t.to_string());
        }
    }
    let id = format!("hilt_machine_{}", uuid_hex());
    std::fs::write(&p, format!("{id}\n"))
        .map_err(|e| format!("cannot keep the machine id in {}: {e}", p.display()))?;
    Ok(id)
}

fn uuid_hex() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::new();
    for i in 0..2u8 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u8(i);
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

//! One run, start to finish: discover → preflight → stage → execute → collect → publish →
//! finalize. Every exit path — pass, failure, run error, configuration error, cancel — ends
//! with a complete run directory and released locks.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{Map, Value, json};

use hilt_hw::CancelToken;
use hilt_hw::locks::{self, LockConfig, LockError, LockSet};
use hilt_model::Diagnostic;
use hilt_model::bench::Bench;
use hilt_model::run::{
    Category, EventKind, Failure, Phase, RunResults, RunStatus, Summary, now, round3,
};
use hilt_model::suite::Suite;

use crate::classify::exit_code;
use crate::data;
use crate::events::{Events, Observer};
use crate::exec::{Exec, ExecOptions};
use crate::plan::{Plan, PlanError, PlanOptions, Uses};
use crate::rundir::{
    Ledger, StatusBoard, absolute, create_timestamped, write_atomic, write_json_atomic,
};
use crate::session::Session;
use crate::testcase::{TestsOutcome, run_tests};

/// The documents every run directory ends with: on disk when `run` returns (synced
/// together, once), and linked from evidence.html before some of them are written.
pub(crate) const FINAL_DOCUMENTS: &[&str] = &[
    "results.json",
    "events.jsonl",
    "status.json",
    "command_ledger.jsonl",
    "evidence.json",
    "metadata.json",
    "evidence.html",
    "recovery_summary.md",
    "workflow_journal.jsonl",
    "workflow_state.json",
    "run_manifest.json",
    "artifact_manifest.json",
    "manifest.json",
];

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub bench: PathBuf,
    pub suite: PathBuf,
    pub artifact: Option<PathBuf>,
    pub skip_flash: bool,
    pub verbose: bool,
    /// Root under which `<YYYYmmdd-HHMMSS>/` is created; default the bench's
    /// `artifacts.root_dir` (itself defaulting to `benchci-results`).
    pub results_root: Option<PathBuf>,
    /// Use exactly this directory (the agent passes one per run).
    pub results_dir: Option<PathBuf>,
    pub run_id: Option<String>,
    pub strict: bool,
    pub junit: Option<PathBuf>,
    pub ctrf: Option<PathBuf>,
    /// Lock settings; `None` reads `HILT_LOCK_DIR` / `BENCHCI_LOCK_DIR` and the opt-out.
    pub lock_config: Option<LockConfig>,
    /// Return without syncing the run directory: the caller makes [`RunOutcome::unsynced`]
    /// durable together with its own record (the agent, in one batch with the run's
    /// terminal record). By default `run` syncs before it returns.
    pub defer_sync: bool,
    /// Continue the run in `results_dir` from where its journal says it stopped
    /// ([`crate::workflow::resume`] sets this).
    pub resume: Option<crate::workflow::WorkflowState>,
}

pub struct RunOutcome {
    pub results: RunResults,
    pub results_dir: PathBuf,
    pub exit_code: i32,
    pub warnings: Vec<Diagnostic>,
    /// Load/validation errors, when the run ended with a configuration error.
    pub diagnostics: Vec<Diagnostic>,
    /// Files written but not yet synced (with `defer_sync`; empty otherwise): sync them,
    /// and their directory, before telling anyone the run has finished.
    pub unsynced: Vec<PathBuf>,
    /// The publish targets that publish by themselves (`when: always|passed`), published
    /// once the run directory was complete; `None` when there were none.
    pub published: Option<Result<crate::publish::PublishLedger, String>>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(
        "cannot create the results directory under {path}: {source}; help: pass --results-dir to a writable directory"
    )]
    ResultsDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Loads, validates and runs a bench and suite from their paths. Invalid files still leave
/// a run directory with a configuration error.
pub fn run(
    opts: &RunOptions,
    observer: &mut dyn Observer,
    cancel: &CancelToken,
) -> Result<RunOutcome, RunError> {
    let plan = Plan::load(
        &opts.bench,
        &opts.suite,
        &PlanOptions {
            strict: opts.strict,
            skip_flash: opts.skip_flash,
        },
    );
    run_planned(plan, opts, observer, cancel)
}

/// Runs a plan built earlier (the agent builds it at submission). The plan's files and
/// skip-flash setting win over `opts.bench`, `opts.suite`, `opts.strict` and
/// `opts.skip_flash`.
pub fn run_plan(
    plan: Plan,
    opts: &RunOptions,
    observer: &mut dyn Observer,
    cancel: &CancelToken,
) -> Result<RunOutcome, RunError> {
    run_planned(Ok(plan), opts, observer, cancel)
}

fn run_planned(
    plan: Result<Plan, PlanError>,
    opts: &RunOptions,
    observer: &mut dyn Observer,
    cancel: &CancelToken,
) -> Result<RunOutcome, RunError> {
    let started_at = opts
        .resume
        .as_ref()
        .and_then(|r| r.attempts.first())
        .map(|a| a.started_at.clone())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(now);
    let attempt = opts
        .resume
        .as_ref()
        .map(crate::workflow::WorkflowState::next_attempt)
        .unwrap_or(1);
    let clock = Instant::now();
    let mut opts = opts.clone();
    let (bench_file, suite_file) = match &plan {
        Ok(p) => {
            opts.bench.clone_from(&p.bench_file().path);
            opts.suite.clone_from(&p.suite_file().path);
            opts.skip_flash = p.skip_flash();
            (Some(p.bench_file()), Some(p.suite_file()))
        }
        Err(e) => (e.bench.as_deref(), e.suite.as_deref()),
    };
    let opts = &opts;
    // Git facts for the evidence take a few subprocesses: gather them while the suite runs.
    let suite_dir = absolute(&opts.suite)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let git = std::thread::spawn(move || crate::evidence::git_info(&suite_dir));

    // Discover: where the results go, then everything else is recorded there.
    let dir = match &opts.results_dir {
        Some(d) => std::fs::create_dir_all(d).map(|_| d.clone()),
        None => {
            let root = opts.results_root.clone().unwrap_or_else(|| {
                PathBuf::from(
                    bench_file
                        .map(|b| b.value.artifacts.root_dir.clone())
                        .unwrap_or_else(|| "benchci-results".into()),
                )
            });
            create_timestamped(&root)
        }
    }
    .map_err(|source| RunError::ResultsDir {
        path: opts
            .results_root
            .clone()
            .or(opts.results_dir.clone())
            .unwrap_or_default()
            .display()
            .to_string(),
        source,
    })?;
    let dir = absolute(&dir);
    let io_err = |source| RunError::ResultsDir {
        path: dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir.join("inputs")).map_err(io_err)?;
    let run_id = opts.run_id.clone().unwrap_or_else(|| {
        dir.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    let tests_total = suite_file.map(|s| s.value.tests.len()).unwrap_or(0);
    let status = StatusBoard::start(&dir, &run_id, tests_total);
    let mut journal = crate::workflow::Journal::open(&dir, attempt);
    journal.record(
        "run",
        data!("kind" => if attempt > 1 { "resume" } else { "run" }, "pid" => std::process::id(),
              "inputs" => inputs_record(opts, bench_file.map(|b| b.text.as_str()), suite_file.map(|s| s.text.as_str()))),
    );
    let mut events = Events::new(
        Ledger::open(&dir.join("events.jsonl")).map_err(io_err)?,
        observer,
    );
    if opts.resume.is_some() {
        events.continue_after(crate::workflow::last_event_seq(&dir.join("events.jsonl")));
    }
    let commands = Ledger::open(&dir.join("command_ledger.jsonl")).map_err(io_err)?;
    // A resumed run read the same files (checked by their sha256): its copies stay.
    if opts.resume.is_none() {
        copy_input(
            &opts.bench,
            bench_file.map(|b| b.text.as_str()),
            &dir.join("inputs/bench.yaml"),
        );
        copy_input(
            &opts.suite,
            suite_file.map(|s| s.text.as_str()),
            &dir.join("inputs/suite.yaml"),
        );
    }
    if let Some(b) = bench_file {
        let _ = write_json_atomic(
            &dir.join("host_inventory_snapshot.json"),
            &crate::workflow::backfill::host_inventory(
                &b.value,
                &absolute(&b.path).display().to_string(),
            ),
        );
    }

    let mut warnings: Vec<Diagnostic> = Vec::new();
    for f in [
        bench_file.map(|b| &b.warnings),
        suite_file.map(|s| &s.warnings),
    ]
    .into_iter()
    .flatten()
    {
        warnings.extend(f.iter().cloned());
    }
    let mut rec = Record::new(opts, tests_total);
    rec.bench_name = bench_file
        .map(|b| b.value.bench.name.clone())
        .unwrap_or_default();
    rec.suite_name = suite_file
        .map(|s| s.value.suite.name.clone())
        .unwrap_or_default();
    let plan = match plan {
        Ok(p) => Some(p),
        Err(e) => {
            rec.config_error(e.diagnostics);
            None
        }
    };

    let mut locks: Option<LockSet> = None;
    if let Some(plan) = &plan {
        execute(
            opts,
            plan,
            &dir,
            &mut rec,
            &mut events,
            commands,
            &status,
            &mut locks,
            cancel,
            attempt,
        );
    } else if let Some(f) = &rec.failure {
        status.phase_failed(&f.summary());
        events.emit(
            EventKind::RUN_FAILED,
            Some(f.summary()),
            data!("error" => f.summary(), "failure" => f),
        );
    }

    // Finalize: release locks, then write the documents in order, manifests last.
    status.phase(Phase::Collect);
    journal.record("phase", data!("phase" => "collect"));
    if rec.status.is_none() && cancel.is_cancelled() {
        rec.cancelled();
    }
    let mut results = rec.results(
        &dir,
        &started_at,
        clock.elapsed().as_secs_f64(),
        locks.as_ref().map(LockSet::metadata),
    );
    let code = exit_code(results.status, results.failure.as_ref());

    let source = git.join().unwrap_or(Value::Null);
    write_documents(&dir, &mut results, opts, plan.as_ref(), source);
    status.phase(Phase::Publish);
    publish(opts, &results, &mut events);
    status.phase(Phase::Finalize);
    if let Some(set) = locks.take() {
        let meta = set.metadata();
        set.release();
        events.emit(EventKind::LOCKS_RELEASED, None, data!("lock_count" => meta["locks"].as_array().map(Vec::len).unwrap_or(0), "lock_dir" => meta["lock_dir"], "enabled" => meta["enabled"]));
    }
    finish_events(&mut events, &results, &dir);
    journal.record(
        "end",
        data!("status" => results.status.as_str(), "exit_code" => code),
    );
    let wf = crate::workflow::WorkflowState::load(&dir).unwrap_or_default();
    let _ = wf.write_snapshot(&dir);
    let alerts = crate::summary::alerts(
        &results,
        &dir,
        &crate::summary::AlertContext {
            bench: Some(absolute(&opts.bench).display().to_string()),
            host_package_managers: wf.package_managers(),
        },
    );
    status.finish(results.status.as_str(), code, alerts.clone());
    let _ = write_atomic(
        &dir.join("recovery_summary.md"),
        crate::summary::recovery_markdown(&results, &alerts, &rec.diagnostics).as_bytes(),
        false,
    );
    let mut manifest = crate::summary::run_manifest(results.status.as_str(), &dir, &run_id);
    manifest["staging"] = Value::Array(wf.staging());
    manifest["attempts"] = serde_json::to_value(&wf.attempts).unwrap_or_default();
    if let Some(old) = std::fs::read(dir.join("run_manifest.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .filter(|m| m["backfilled"].is_array())
    {
        manifest["backfilled"] = old["backfilled"].clone();
    }
    let _ = write_json_atomic(&dir.join("run_manifest.json"), &manifest);
    let _ = crate::rundir::write_manifests(&dir);
    // The one durability point of the run: every document, both ledgers, the directory.
    events.flush();
    let unsynced = if opts.defer_sync {
        FINAL_DOCUMENTS
            .iter()
            .map(|f| dir.join(f))
            .filter(|p| p.is_file())
            .collect()
    } else {
        crate::rundir::sync_files(&dir, FINAL_DOCUMENTS);
        Vec::new()
    };
    // Publish targets copy the complete run directory, so they run after it is written;
    // their record is publish_ledger.json, outside the manifests.
    let published = plan.as_ref().and_then(|p| {
        crate::publish::after_run(
            &dir,
            (p.bench(), &p.bench_file().path),
            (p.suite(), &p.suite_file().path),
            results.status,
            cancel,
        )
        .map(|r| r.map_err(|e| e.to_string()))
    });
    Ok(RunOutcome {
        results,
        results_dir: dir,
        exit_code: code,
        warnings,
        diagnostics: rec.diagnostics,
        unsynced,
        published,
    })
}

#[allow(clippy::too_many_arguments)]
fn execute(
    opts: &RunOptions,
    plan: &Plan,
    dir: &Path,
    rec: &mut Record,
    events: &mut Events,
    commands: Ledger,
    status: &StatusBoard,
    locks: &mut Option<LockSet>,
    cancel: &CancelToken,
    attempt: u32,
) {
    let (bench, s) = (plan.bench(), plan.suite());
    let mut journal = crate::workflow::Journal::open(dir, attempt);
    events.emit(
        if attempt > 1 {
            "run.resumed"
        } else {
            EventKind::RUN_STARTED
        },
        None,
        data!("bench_name" => bench.bench.name, "suite_name" => s.suite.name, "results_dir" => dir.display().to_string(),
              "tests_total" => s.tests.len(), "skip_flash" => opts.skip_flash, "verbose" => opts.verbose,
              "artifact" => opts.artifact.as_ref().map(|a| absolute(a).display().to_string()),
              "attempt" => attempt),
    );
    // Preflight: locks before any hardware is touched.
    status.phase(Phase::Preflight);
    journal.record("phase", data!("phase" => "preflight"));
    let specs = plan.lock_specs().to_vec();
    let cfg = match opts
        .lock_config
        .clone()
        .map(Ok)
        .unwrap_or_else(LockConfig::from_env)
    {
        Ok(c) => c,
        Err(e) => return rec.run_error(status, events, lock_failure(&e)),
    };
    match locks::acquire(&cfg, specs, opts.run_id.as_deref()) {
        Ok(set) => {
            let meta = set.metadata();
            events.emit(
                EventKind::LOCKS_ACQUIRED,
                None,
                meta.as_object().cloned().unwrap_or_default(),
            );
            rec.locks_meta = Some(meta);
            *locks = Some(set);
        }
        Err(e) => return rec.run_error(status, events, lock_failure(&e)),
    }
    let uses = plan.uses();
    let session = match Session::open(bench, uses, dir, events) {
        Ok(session) => session,
        Err(f) => return rec.run_error(status, events, f),
    };
    // Stage: the firmware is checked, and bundles staged to hosts, before any test runs.
    status.phase(Phase::Stage);
    journal.record("phase", data!("phase" => "stage"));
    if opts.skip_flash {
        events.emit(EventKind::RUN_SKIP_FLASH, None, Map::new());
    }
    if let Some(a) = &opts.artifact {
        // A device or FIFO given as the artifact would be hashed forever (or block).
        let hashed = hilt_model::load::ensure_regular_file(a)
            .and_then(|()| crate::rundir::manifest::hash_file(a));
        match hashed {
            Ok((sha, size)) => {
                rec.firmware = json!({"filename": a.file_name().map(|n| n.to_string_lossy()), "path": absolute(a).display().to_string(), "sha256": sha, "size_bytes": size});
            }
            Err(e) => {
                let f = Failure::new(
                    Category::ArtifactError,
                    format!("artifact not found or unreadable: {}: {e}", a.display()),
                );
                let mut session = session;
                session.close(events);
                return rec.run_error(status, events, f);
            }
        }
    }
    let base = |p: &Path| {
        absolute(p)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    };
    let mut exec = Exec {
        bench,
        session,
        cancel: cancel.clone(),
        dir: dir.to_path_buf(),
        opts: ExecOptions {
            skip_flash: opts.skip_flash,
            artifact: opts.artifact.as_ref().map(|a| absolute(a)),
            suite_dir: base(&opts.suite),
            bench_dir: base(&opts.bench),
        },
        commands,
        measurements: Vec::new(),
        metrics: Map::new(),
        test_measurements: Vec::new(),
        test_fuzz: Vec::new(),
        test_faults: Vec::new(),
        current_test: String::new(),
        current_test_index: 0,
        current_step: 0,
        hosts: Default::default(),
        journal,
        resume: opts.resume.clone(),
        probes: Default::default(),
        bundle_dests: s
            .bundles
            .iter()
            .map(|(k, b)| (k.clone(), b.dest.clone()))
            .collect(),
    };
    match exec.stage_bundles(s, events) {
        Ok(()) => {}
        Err(e) => {
            exec.session.close(events);
            exec.hosts.close();
            let _ = exec.commands.flush_buffer();
            match e {
                crate::exec::StepError::Cancelled => rec.cancelled(),
                crate::exec::StepError::Test(f) | crate::exec::StepError::Run(f) => {
                    rec.run_error(status, events, f)
                }
            }
            events.flush();
            return;
        }
    }
    events.flush();
    status.phase(Phase::Execute);
    exec.journal.record("phase", data!("phase" => "execute"));
    let (duts, id_failure) =
        crate::identity::identify(bench, &uses.nodes, &mut exec.session, events, cancel);
    rec.duts = duts;
    rec.nodes = node_logs(bench, uses, dir);
    rec.resources = resource_logs(bench, uses, dir);
    let outcome = match id_failure {
        Some(f) => TestsOutcome {
            tests: Vec::new(),
            run_failure: Some(f),
            cancelled: false,
        },
        None => run_tests(&mut exec, plan, events, status),
    };
    exec.session.close(events);
    exec.hosts.close();
    // To the file now; to disk with the rest of the run directory at the end.
    let _ = exec.commands.flush_buffer();
    rec.tests = outcome.tests;
    rec.measurements = std::mem::take(&mut exec.measurements);
    rec.metrics = std::mem::take(&mut exec.metrics);
    if outcome.cancelled {
        rec.cancelled();
    } else if let Some(f) = outcome.run_failure {
        rec.run_error(status, events, f);
    }
    events.flush();
}

/// The `external_results` aggregate (run-results spec §6.3) from every test's records.
fn external_aggregate(tests: &[hilt_model::run::TestResult]) -> Value {
    let steps: Vec<Value> = tests
        .iter()
        .flat_map(|t| t.external_results.iter().cloned())
        .collect();
    let collect = |k: &str| -> Vec<Value> {
        steps
            .iter()
            .flat_map(|s| s[k].as_array().cloned().unwrap_or_default())
            .collect()
    };
    let first = |k: &str| steps.iter().find_map(|s| s[k].as_str().map(str::to_string));
    json!({"schema_version": "benchci.external_results.v1", "source": first("source"), "framework": first("framework"),
           "tests": collect("tests"), "logs": collect("logs"), "artifacts": collect("artifacts"), "steps": steps})
}

/// What a run was started with, for the journal (a resume starts from exactly this).
fn inputs_record(opts: &RunOptions, bench: Option<&str>, suite: Option<&str>) -> Value {
    let sha = |t: Option<&str>| {
        t.map(|t| hex::encode(<sha2::Sha256 as sha2::Digest>::digest(t.as_bytes())))
    };
    let abs = |p: &Option<PathBuf>| p.as_ref().map(|p| absolute(p).display().to_string());
    serde_json::to_value(crate::workflow::Inputs {
        bench: absolute(&opts.bench).display().to_string(),
        suite: absolute(&opts.suite).display().to_string(),
        bench_sha256: sha(bench),
        suite_sha256: sha(suite),
        artifact: abs(&opts.artifact),
        skip_flash: opts.skip_flash,
        verbose: opts.verbose,
        strict: opts.strict,
        run_id: opts.run_id.clone(),
        junit: abs(&opts.junit),
        ctrf: abs(&opts.ctrf),
    })
    .unwrap_or_default()
}

fn lock_failure(e: &LockError) -> Failure {
    let f = Failure::new(Category::ResourceLocked, e.to_string());
    match e {
        LockError::Busy {
            display_name,
            category,
            key,
            lock_path,
            holder,
        } => f
            .with_detail("resource", display_name.clone())
            .with_detail("lock_category", category.clone())
            .with_detail("key", key.clone())
            .with_detail("lock_path", lock_path.display().to_string())
            .with_detail("holder_pid", holder.as_ref().and_then(|h| h.pid))
            .with_detail(
                "holder_run_id",
                holder.as_ref().and_then(|h| h.run_id.clone()),
            )
            .with_detail(
                "holder_since",
                holder.as_ref().and_then(|h| h.since.clone()),
            ),
        LockError::Dir { .. } | LockError::Io { .. } => Failure::new(
            Category::BenchSelfTestFailed,
            e.to_string(),
        )
        .with_explanation(
            "The resource-lock directory could not be used, so the run did not touch any hardware.",
        ),
    }
}

fn node_logs(bench: &Bench, uses: &Uses, dir: &Path) -> Map<String, Value> {
    let mut nodes = Map::new();
    for n in &uses.nodes {
        let node = &bench.nodes[n];
        let p = |f: &str| dir.join("logs/nodes").join(n).join(f).display().to_string();
        let transports: Map<String, Value> = uses
            .transports
            .iter()
            .filter(|(nn, _)| nn == n)
            .map(|(_, t)| (t.clone(), Value::String(p(&format!("transport-{t}.log")))))
            .collect();
        nodes.insert(
            n.clone(),
            json!({"flash_log": node.flash.as_ref().map(|_| p("flash.log")), "gpio_log": (!node.gpio.is_empty()).then(|| p("gpio.log")), "transport_logs": transports}),
        );
    }
    nodes
}

fn resource_logs(bench: &Bench, uses: &Uses, dir: &Path) -> Map<String, Value> {
    let mut m = Map::new();
    for r in &uses.resources {
        let Some(kind) = crate::session::resource_kind(bench, r) else {
            continue;
        };
        let log = crate::session::resource_log(kind);
        let path = dir.join("logs/resources").join(r).join(log);
        m.insert(
            r.clone(),
            json!({ log.replace('.', "_"): path.display().to_string() }),
        );
    }
    m
}

fn copy_input(src: &Path, text: Option<&str>, dst: &Path) {
    let bytes = match text {
        Some(t) => t.as_bytes().to_vec(),
        // Invalid files are copied too when readable, so the evidence shows what was run.
        None => match hilt_model::load::read_capped(src, hilt_model::load::MAX_FILE_BYTES) {
            Ok(bytes) => bytes,
            Err(_) => return,
        },
    };
    let _ = write_atomic(dst, &bytes, false);
}

/// Writes results.json (first, so a crash right after still leaves the verdict),
/// external-results.json, evidence.json, metadata.json and evidence.html; `r` ends up
/// carrying the full evidence object as results.json does.
fn write_documents(
    dir: &Path,
    r: &mut RunResults,
    opts: &RunOptions,
    plan: Option<&Plan>,
    source: Value,
) {
    // BenchCI always names the file; it exists only when run_external steps ran.
    let path = dir.join("external-results.json");
    if r.external_results["steps"]
        .as_array()
        .is_some_and(|s| !s.is_empty())
    {
        let _ = write_json_atomic(&path, &r.external_results);
    }
    r.artifacts.insert(
        "external_results_json".into(),
        Value::String(path.display().to_string()),
    );
    let empty = Suite {
        version: None,
        suite: hilt_model::suite::SuiteInfo {
            name: r.suite.clone(),
            description: None,
            version: None,
            release_id: None,
            requirement_ids: vec![],
            risk_ids: vec![],
            tags: vec![],
        },
        tests: vec![],
        publish: Default::default(),
        bundles: Default::default(),
    };
    let sha = |t: Option<&str>| {
        t.map(|t| hex::encode(<sha2::Sha256 as sha2::Digest>::digest(t.as_bytes())))
    };
    let inputs = crate::evidence::EvidenceInputs {
        suite: plan.map(Plan::suite).unwrap_or(&empty),
        bench_path: absolute(&opts.bench).display().to_string(),
        bench_sha256: sha(plan.map(|p| p.bench_file().text.as_str())),
        suite_path: absolute(&opts.suite).display().to_string(),
        suite_sha256: sha(plan.map(|p| p.suite_file().text.as_str())),
        firmware: r.evidence.get("firmware").cloned().unwrap_or(Value::Null),
        source,
    };
    let ev = crate::evidence::evidence(r, &inputs);
    let _ = write_json_atomic(
        &dir.join("evidence.json"),
        &crate::evidence::sort_keys(ev.clone()),
    );
    let _ = write_json_atomic(&dir.join("metadata.json"), &crate::evidence::metadata(&ev));
    // results.json carries the full evidence object too (spec §2).
    r.evidence = ev;
    let _ = write_atomic(
        &dir.join("evidence.html"),
        crate::report::evidence_html(r, dir).as_bytes(),
        false,
    );
    let _ = write_json_atomic(&dir.join("results.json"), &*r);
}

fn publish(opts: &RunOptions, r: &RunResults, events: &mut Events) {
    let doc = serde_json::to_value(r).unwrap_or_default();
    if let Some(p) = &opts.junit
        && let Err(e) = write_atomic(p, crate::report::junit_xml(&doc).as_bytes(), true)
    {
        events.emit(
            "publish.failed",
            Some(format!("cannot write JUnit report {}: {e}", p.display())),
            Map::new(),
        );
    }
    if let Some(p) = &opts.ctrf {
        let text = serde_json::to_vec_pretty(&crate::report::ctrf_json(&doc)).unwrap_or_default();
        if let Err(e) = write_atomic(p, &text, true) {
            events.emit(
                "publish.failed",
                Some(format!("cannot write CTRF report {}: {e}", p.display())),
                Map::new(),
            );
        }
    }
}

fn finish_events(events: &mut Events, r: &RunResults, dir: &Path) {
    let results_json = dir.join("results.json").display().to_string();
    let evidence_json = dir.join("evidence.json").display().to_string();
    match r.status {
        RunStatus::Passed | RunStatus::Failed => events.emit(
            EventKind::RUN_FINISHED,
            None,
            data!("status" => r.status.as_str(), "passed" => r.summary.passed, "failed" => r.summary.failed, "tests_total" => r.summary.total,
                  "duration_s" => r.duration_s, "results_json_path" => results_json, "evidence_json_path" => evidence_json, "failure" => r.failure),
        ),
        RunStatus::Cancelled => events.emit(
            EventKind::RUN_CANCELLED,
            Some("run cancelled".into()),
            data!("status" => "cancelled", "results_json_path" => results_json, "duration_s" => r.duration_s),
        ),
        RunStatus::Error => events.emit(
            EventKind::RUN_FAILED,
            r.error.clone(),
            data!("error" => r.error, "failure" => r.failure, "results_json_path" => results_json, "evidence_json_path" => evidence_json),
        ),
    }
    events.flush();
}

/// What the run has found so far.
struct Record {
    skip_flash: bool,
    verbose: bool,
    artifact: Option<String>,
    run_id: Option<String>,
    bench_name: String,
    suite_name: String,
    tests_total: usize,
    tests: Vec<hilt_model::run::TestResult>,
    failure: Option<Failure>,
    status: Option<RunStatus>,
    duts: Vec<Value>,
    nodes: Map<String, Value>,
    resources: Map<String, Value>,
    measurements: Vec<hilt_model::run::Metric>,
    metrics: Map<String, Value>,
    firmware: Value,
    locks_meta: Option<Value>,
    diagnostics: Vec<Diagnostic>,
}

impl Record {
    fn new(opts: &RunOptions, tests_total: usize) -> Record {
        Record {
            skip_flash: opts.skip_flash,
            verbose: opts.verbose,
            artifact: opts
                .artifact
                .as_ref()
                .map(|a| absolute(a).display().to_string()),
            run_id: opts.run_id.clone(),
            bench_name: String::new(),
            suite_name: String::new(),
            tests_total,
            tests: Vec::new(),
            failure: None,
            status: None,
            duts: Vec::new(),
            nodes: Map::new(),
            resources: Map::new(),
            measurements: Vec::new(),
            metrics: Map::new(),
            firmware: json!({"filename": null, "path": null, "sha256": null, "size_bytes": null}),
            locks_meta: None,
            diagnostics: Vec::new(),
        }
    }

    fn config_error(&mut self, diags: Vec<Diagnostic>) {
        let first = diags
            .first()
            .map(|d| d.to_string())
            .unwrap_or_else(|| "invalid configuration".into());
        let more = if diags.len() > 1 {
            format!(" (and {} more)", diags.len() - 1)
        } else {
            String::new()
        };
        let f = Failure::new(Category::ConfigError, format!("{first}{more}")).with_detail(
            "diagnostics",
            serde_json::to_value(&diags).unwrap_or_default(),
        );
        self.diagnostics = diags;
        self.failure = Some(f);
        self.status = Some(RunStatus::Error);
    }

    fn run_error(&mut self, status: &StatusBoard, events: &mut Events, f: Failure) {
        status.phase_failed(&f.summary());
        events.emit(
            EventKind::RUN_FAILED,
            Some(f.summary()),
            data!("error" => f.summary(), "failure" => f),
        );
        if self.failure.is_none() || self.status != Some(RunStatus::Error) {
            self.failure = Some(f);
        }
        self.status = Some(RunStatus::Error);
    }

    fn cancelled(&mut self) {
        self.status = Some(RunStatus::Cancelled);
        if self.failure.is_none() {
            self.failure = Some(Failure::new(
                Category::Cancelled,
                "the run was interrupted (Ctrl-C, SIGTERM or cancel request)",
            ));
        }
    }

    fn results(
        &mut self,
        dir: &Path,
        started_at: &str,
        elapsed: f64,
        locks: Option<Value>,
    ) -> RunResults {
        let passed = self.tests.iter().filter(|t| t.passed).count();
        let failed = self.tests.len() - passed;
        let first_test_failure = self.tests.iter().find_map(|t| t.failure.clone());
        let status = self.status.unwrap_or(if failed > 0 {
            RunStatus::Failed
        } else {
            RunStatus::Passed
        });
        let p = |f: &str| Value::String(dir.join(f).display().to_string());
        let failure = match status {
            // As BenchCI: a run error with no log of its own points at results.json.
            RunStatus::Error => self.failure.clone().map(|mut f| {
                if f.artifacts.is_empty() {
                    f.artifacts.insert("results_json".into(), p("results.json"));
                }
                f
            }),
            RunStatus::Cancelled => self.failure.clone(),
            _ => first_test_failure,
        };
        let mut artifacts = Map::new();
        for (k, f) in [
            ("results_json", "results.json"),
            ("evidence_json", "evidence.json"),
            ("metadata_json", "metadata.json"),
            ("evidence_html", "evidence.html"),
            ("manifest_json", "manifest.json"),
        ] {
            artifacts.insert(k.into(), p(f));
        }
        RunResults {
            tool: "hilt".into(),
            command: "run_local".into(),
            run_id: self.run_id.clone(),
            run_mode: "local".into(),
            bench: self.bench_name.clone(),
            suite: self.suite_name.clone(),
            status,
            skip_flash: self.skip_flash,
            verbose: self.verbose,
            artifact: self.artifact.clone(),
            results_dir: dir.display().to_string(),
            started_at: started_at.to_string(),
            finished_at: now(),
            duration_s: round3(elapsed),
            summary: Summary {
                total: self.tests_total,
                passed,
                failed,
            },
            artifacts,
            evidence: json!({"firmware": self.firmware}),
            error: matches!(status, RunStatus::Error)
                .then(|| failure.as_ref().map(|f| f.summary()).unwrap_or_default()),
            failure,
            duts: std::mem::take(&mut self.duts),
            nodes: std::mem::take(&mut self.nodes),
            resources: std::mem::take(&mut self.resources),
            measurements: std::mem::take(&mut self.measurements),
            metrics: std::mem::take(&mut self.metrics),
            fuzz: {
                let campaigns: Vec<Value> = self
                    .tests
                    .iter()
                    .flat_map(|t| t.fuzz.iter().cloned())
                    .collect();
                json!({"summary": crate::exec::fuzz::fuzz_summary(&campaigns), "campaigns": campaigns})
            },
            fault_injections: self
                .tests
                .iter()
                .flat_map(|t| t.fault_injections.iter().cloned())
                .collect(),
            external_results: external_aggregate(&self.tests),
            tests: std::mem::take(&mut self.tests),
            resource_locks: locks.or(self.locks_meta.clone()),
        }
    }
}

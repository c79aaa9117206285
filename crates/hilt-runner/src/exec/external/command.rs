//! Command mode: `argv_prefix + args` in the target's work tree, never through a shell.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use hilt_hw::process::{self, CommandSpec, ProcessError};
use hilt_model::run::{Category, Failure, Source, checks, now, round3};

use super::{Ctx, Trigger};
use crate::exec::Exec;

/// Runs the command with its output in the step log (capped at the target's
/// `max_log_bytes`), records it in the command ledger and classifies how it ended.
pub fn run(exec: &mut Exec, ctx: &Ctx, cwd: &Path) -> Trigger {
    let argv: Vec<String> = ctx
        .t
        .argv_prefix
        .iter()
        .chain(ctx.r.args.iter())
        .cloned()
        .collect();
    let log = ctx.log_path();
    let results_dir = ctx.run_dir.display().to_string();
    let step_index = ctx.step_index.to_string();
    let mut spec = CommandSpec::new(argv.clone(), &log);
    spec.cwd = Some(cwd.to_path_buf());
    spec.timeout = Duration::from_millis(ctx.r.timeout_ms);
    spec.max_output_bytes = ctx.t.max_log_bytes;
    for prefix in ["HILT", "BENCHCI"] {
        spec.env
            .push((format!("{prefix}_RESULTS_DIR"), results_dir.clone()));
        spec.env
            .push((format!("{prefix}_TEST_NAME"), ctx.test_name.clone()));
        spec.env
            .push((format!("{prefix}_STEP_INDEX"), step_index.clone()));
    }
    let mut record = json!({
        "type": "command",
        "argv": argv,
        "cwd": cwd.display().to_string(),
        "timeout_ms": ctx.r.timeout_ms,
        "output_log": ctx.log_rel,
    });
    let program = argv.first().cloned().unwrap_or_default();
    let annotate = |mut entry: Value| {
        if let Some(o) = entry.as_object_mut() {
            o.insert("step_type".into(), "run_external".into());
            o.insert("target".into(), ctx.target.into());
            o.insert("test_name".into(), ctx.test_name.clone().into());
            o.insert("step_index".into(), ctx.step_index.into());
        }
        entry
    };
    let outcome = match process::run(&spec, &exec.cancel) {
        Ok(o) => o,
        Err(ProcessError::Cancelled) => {
            return Trigger {
                record,
                failure: None,
                timed_out: false,
                cancelled: true,
            };
        }
        Err(e) => {
            let _ = exec.commands.append(&annotate(json!({
                "argv": argv, "cwd": cwd.display().to_string(), "started_at": now(),
                "error": e.to_string(),
            })));
            let _ = exec.commands.flush();
            record["error"] = e.to_string().into();
            let f = Failure::new(
                Category::ExternalRunFailed,
                format!(
                    "cannot start external command `{program}` of target `{}`: {e}",
                    ctx.target
                ),
            )
            .with_source(Source::BenchInfrastructure)
            .with_suggestions([checks::EXTERNAL_PROGRAM]);
            return Trigger::failed(record, f);
        }
    };
    let _ = exec.commands.append(&annotate(outcome.ledger_entry()));
    let _ = exec.commands.flush();
    if let Some(o) = record.as_object_mut() {
        o.insert("exit_code".into(), outcome.exit_code.into());
        o.insert("signal".into(), json!(outcome.signal));
        o.insert("timed_out".into(), outcome.timed_out.into());
        o.insert("started_at".into(), outcome.started_at.clone().into());
        o.insert("finished_at".into(), outcome.finished_at.clone().into());
        o.insert("duration_s".into(), round3(outcome.duration_s).into());
        o.insert("output_bytes".into(), outcome.output_bytes.into());
        o.insert("output_truncated".into(), outcome.output_truncated.into());
    }
    let log_shown = log.display().to_string();
    if outcome.cancelled {
        return Trigger {
            record,
            failure: None,
            timed_out: false,
            cancelled: true,
        };
    }
    if outcome.timed_out {
        let f = Failure::new(
            Category::ExternalRunTimeout,
            format!(
                "external command `{program}` of target `{}` timed out after {} ms and was stopped",
                ctx.target, ctx.r.timeout_ms
            ),
        )
        .with_detail("argv", outcome.argv.clone())
        .with_detail("timeout_ms", ctx.r.timeout_ms)
        .with_detail("output_log", log_shown);
        return Trigger {
            record,
            failure: Some(f),
            timed_out: true,
            cancelled: false,
        };
    }
    if outcome.exit_code != 0 {
        let how = match outcome.signal {
            Some(s) => format!("was killed by signal {s}"),
            None => format!("exited with code {}", outcome.exit_code),
        };
        let f = Failure::new(
            Category::ExternalRunFailed,
            format!(
                "external command `{program}` of target `{}` {how}",
                ctx.target
            ),
        )
        .with_detail("argv", outcome.argv.clone())
        .with_detail("exit_code", outcome.exit_code)
        .with_detail("output_log", log_shown)
        .with_suggestions([checks::EXTERNAL_COMMAND_LOG]);
        return Trigger::failed(record, f);
    }
    Trigger {
        record,
        failure: None,
        timed_out: false,
        cancelled: false,
    }
}

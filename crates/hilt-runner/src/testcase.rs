//! The execute phase: tests in order, steps in order. The first failing step ends its test;
//! a run error or cancellation ends the run.

use std::collections::HashSet;
use std::time::Instant;

use hilt_model::run::{EventKind, FailedStep, Failure, TestResult, round3};

use crate::data;
use crate::events::Events;
use crate::exec::{Exec, StepError};
use crate::plan::Plan;
use crate::rundir::StatusBoard;

pub struct TestsOutcome {
    pub tests: Vec<TestResult>,
    pub run_failure: Option<Failure>,
    pub cancelled: bool,
}

pub fn run_tests(
    exec: &mut Exec,
    plan: &Plan,
    ev: &mut Events,
    status: &StatusBoard,
) -> TestsOutcome {
    let total = plan.suite().tests.len();
    let mut out = TestsOutcome {
        tests: Vec::new(),
        run_failure: None,
        cancelled: false,
    };
    let (mut passed, mut failed) = (0, 0);
    // A resumed run: what earlier attempts finished, and the copies they verified.
    let kept = exec.resume.take();
    let copied = match &kept {
        Some(_) => verified_transfers(&exec.dir, exec.journal.attempt),
        None => HashSet::new(),
    };
    for (ti, (test, steps)) in plan.tests().enumerate() {
        let test_index = ti + 1;
        let progress = kept
            .as_ref()
            .and_then(|k| k.tests.get(&test_index))
            .filter(|p| p.name == test.name);
        if let Some(r) = progress.and_then(|p| p.result.as_ref()) {
            if r.passed {
                passed += 1
            } else {
                failed += 1
            }
            keep_measurements(exec, &r.measurements);
            ev.emit(
                "test.kept",
                Some("finished by an earlier attempt".into()),
                data!("test_name" => test.name, "test_index" => test_index, "passed" => r.passed),
            );
            out.tests.push(r.clone());
            continue;
        }
        if exec.cancel.is_cancelled() {
            out.cancelled = true;
            break;
        }
        let steps_done = progress.map(|p| p.steps_done).unwrap_or(0);
        let mut external = Vec::new();
        if let Some(p) = progress.filter(|p| p.steps_done > 0) {
            keep_measurements(exec, &p.measurements);
            exec.test_measurements = p.measurements.clone();
            external.clone_from(&p.external_results);
        }
        status.progress(Some(&test.name), None, passed, failed);
        ev.emit(
            EventKind::TEST_STARTED,
            None,
            data!("test_name" => test.name, "test_index" => test_index, "tests_total" => total),
        );
        let started = Instant::now();
        let steps_total = test.steps.len();
        let mut failure: Option<Failure> = None;
        let mut abort = false;
        for (si, (step, resolved)) in steps.into_iter().enumerate() {
            let step_index = si + 1;
            let step_type = step.type_name();
            let copied_before = matches!(
                step,
                hilt_model::suite::Step::Upload(_) | hilt_model::suite::Step::Download(_)
            ) && copied.contains(&(test.name.clone(), step_index));
            if step_index <= steps_done || copied_before {
                let why = if step_index <= steps_done {
                    "done by an earlier attempt"
                } else {
                    "copied and verified by an earlier attempt (transfer_ledger.jsonl)"
                };
                ev.emit(EventKind::STEP_SKIPPED, Some(why.into()), data!("test_name" => test.name, "step_index" => step_index, "step_type" => step_type, "node_name" => step.node(), "kept" => true));
                if step_index > steps_done {
                    exec.journal.record("step", data!("test" => test_index, "name" => test.name, "step" => step_index, "type" => step_type, "reconciled" => "transfer_ledger"));
                }
                continue;
            }
            status.progress(
                Some(&test.name),
                Some(&step_index.to_string()),
                passed,
                failed,
            );
            ev.emit(
                EventKind::STEP_STARTED,
                None,
                data!("test_name" => test.name, "test_index" => test_index, "tests_total" => total, "step_index" => step_index,
                      "steps_total" => steps_total, "step_type" => step_type, "node_name" => step.node()),
            );
            if matches!(step, hilt_model::suite::Step::Flash(_)) && exec.opts.skip_flash {
                ev.emit(EventKind::STEP_SKIPPED, Some("skip-flash".into()), data!("test_name" => test.name, "step_index" => step_index, "step_type" => step_type, "node_name" => step.node()));
                exec.journal.record("step", data!("test" => test_index, "name" => test.name, "step" => step_index, "type" => step_type));
                continue;
            }
            exec.current_test.clone_from(&test.name);
            exec.current_test_index = test_index;
            exec.current_step = step_index;
            let readings_before = exec.test_measurements.len();
            let result = exec.step(step, resolved, ev);
            let locate = |mut f: Failure| {
                f.failed_step = FailedStep {
                    test_name: Some(test.name.clone()),
                    test_index: Some(test_index),
                    step_index: Some(step_index),
                    steps_total: Some(steps_total),
                    step_type: Some(step_type.to_string()),
                    // A step without a node or transport of its own (a power glitch) may
                    // name where it saw the failure (its recovery oracle's transport).
                    node_name: step
                        .node()
                        .map(str::to_string)
                        .or(f.failed_step.node_name.take()),
                    transport_name: step
                        .transport()
                        .map(str::to_string)
                        .or(f.failed_step.transport_name.take()),
                };
                f
            };
            match result {
                Ok(mut d) => {
                    let record = d.remove("external_record");
                    // The step's ledger lines reach the file before the journal says it is
                    // done (a no-op when it wrote none), and both before the next step: a
                    // resume starts after this one and finds its record.
                    let _ = exec.commands.flush_buffer();
                    let readings = &exec.test_measurements[readings_before..];
                    exec.journal.record(
                        "step",
                        data!("test" => test_index, "name" => test.name, "step" => step_index, "type" => step_type,
                              "measurements" => (!readings.is_empty()).then_some(readings), "external_record" => record),
                    );
                    if let Some(r) = record {
                        external.push(r);
                    }
                    d.insert("test_name".into(), test.name.clone().into());
                    d.insert("step_index".into(), step_index.into());
                    d.insert("step_type".into(), step_type.into());
                    ev.emit(EventKind::STEP_FINISHED, None, d);
                    continue;
                }
                Err(StepError::Test(f)) => failure = Some(locate(f)),
                Err(StepError::Run(f)) => {
                    failure = Some(locate(f));
                    abort = true;
                }
                Err(StepError::Cancelled) => {
                    failure = Some(locate(Failure::new(
                        hilt_model::run::Category::Cancelled,
                        "the run was interrupted during this step",
                    )));
                    out.cancelled = true;
                }
            }
            if let Some(r) = failure
                .as_ref()
                .and_then(|f| f.details.get("external_record"))
            {
                external.push(r.clone());
            }
            let _ = exec.commands.flush_buffer();
            if let Some(f) = &failure {
                ev.emit(
                    EventKind::STEP_FAILED,
                    Some(f.summary()),
                    data!("test_name" => test.name, "step_index" => step_index, "step_type" => step_type, "node_name" => step.node(),
                          "transport_name" => step.transport(), "failure" => f),
                );
            }
            break;
        }
        let ok = failure.is_none();
        if ok {
            passed += 1
        } else {
            failed += 1
        }
        let duration_s = round3(started.elapsed().as_secs_f64());
        let measurements = std::mem::take(&mut exec.test_measurements);
        let metrics = measurements
            .iter()
            .filter_map(|m| serde_json::to_value(m).ok().map(|v| (m.name.clone(), v)))
            .collect();
        ev.emit(
            EventKind::TEST_FINISHED,
            None,
            data!("test_name" => test.name, "test_index" => test_index, "passed" => ok, "duration_s" => duration_s,
                  "failure_reason" => failure.as_ref().map(|f| f.message.clone()), "failure" => failure),
        );
        ev.flush();
        let result = TestResult {
            name: test.name.clone(),
            test_case_id: test.test_case_id.clone(),
            requirement_ids: test.requirement_ids.clone(),
            risk_ids: test.risk_ids.clone(),
            tags: test.tags.clone(),
            passed: ok,
            duration_s,
            failure_reason: failure.as_ref().map(|f| f.message.clone()),
            failure: failure.clone(),
            metrics,
            measurements,
            fuzz: std::mem::take(&mut exec.test_fuzz),
            fault_injections: std::mem::take(&mut exec.test_faults),
            external_results: external,
        };
        // A test stopped by a run error or a cancel is not finished: a resume runs it on
        // from the step that stopped it.
        if !abort && !out.cancelled {
            exec.journal.record(
                "test",
                data!("test" => test_index, "name" => test.name, "result" => result),
            );
        }
        out.tests.push(result);
        status.progress(Some(&test.name), None, passed, failed);
        if abort {
            out.run_failure = failure;
            break;
        }
        if out.cancelled {
            break;
        }
    }
    out
}

/// Readings kept from an earlier attempt count for the run as if made now.
fn keep_measurements(exec: &mut Exec, readings: &[hilt_model::run::Metric]) {
    for m in readings {
        exec.measurements.push(m.clone());
        if let Ok(v) = serde_json::to_value(m) {
            exec.metrics.insert(m.name.clone(), v);
        }
    }
}

/// `(test name, step index)` of every copy an earlier attempt verified on both ends
/// (a kill between the transfer ledger line and the journal line leaves only the former).
fn verified_transfers(dir: &std::path::Path, attempt: u32) -> HashSet<(String, usize)> {
    let text = std::fs::read_to_string(dir.join("transfer_ledger.jsonl")).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| {
            v["verified"] == true && v["attempt"].as_u64().is_some_and(|a| a < attempt as u64)
        })
        .filter_map(|v| {
            Some((
                v["test_name"].as_str()?.to_string(),
                v["step_index"].as_u64()? as usize,
            ))
        })
        .collect()
}

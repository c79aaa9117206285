//! The execute phase: tests in order, steps in order. The first failing step ends its test;
//! a run error or cancellation ends the run.

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
    for (ti, (test, steps)) in plan.tests().enumerate() {
        let test_index = ti + 1;
        if exec.cancel.is_cancelled() {
            out.cancelled = true;
            break;
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
        let mut external = Vec::new();
        for (si, (step, resolved)) in steps.into_iter().enumerate() {
            let step_index = si + 1;
            let step_type = step.type_name();
            ev.emit(
                EventKind::STEP_STARTED,
                None,
                data!("test_name" => test.name, "test_index" => test_index, "tests_total" => total, "step_index" => step_index,
                      "steps_total" => steps_total, "step_type" => step_type, "node_name" => step.node()),
            );
            if matches!(step, hilt_model::suite::Step::Flash(_)) && exec.opts.skip_flash {
                ev.emit(EventKind::STEP_SKIPPED, Some("skip-flash".into()), data!("test_name" => test.name, "step_index" => step_index, "step_type" => step_type, "node_name" => step.node()));
                continue;
            }
            exec.current_test.clone_from(&test.name);
            exec.current_test_index = test_index;
            exec.current_step = step_index;
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
                    if let Some(r) = d.remove("external_record") {
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
        out.tests.push(TestResult {
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
        });
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

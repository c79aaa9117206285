//! The fold of a run's journal: where the workflow stands, per attempt, host, bundle stage,
//! test and step. `workflow_state.json` is this, written atomically at phase and test
//! boundaries, at the end of every attempt and by `hilt runs recover`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use hilt_model::run::{Metric, TestResult};

pub const SNAPSHOT: &str = "workflow_state.json";

/// What a run was started with; a resume starts from exactly this.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Inputs {
    /// Absolute paths of the bench and suite files the run read, and their SHA-256.
    pub bench: String,
    pub suite: String,
    #[serde(default)]
    pub bench_sha256: Option<String>,
    #[serde(default)]
    pub suite_sha256: Option<String>,
    #[serde(default)]
    pub artifact: Option<String>,
    #[serde(default)]
    pub skip_flash: bool,
    #[serde(default)]
    pub verbose: bool,
    #[serde(default)]
    pub strict: bool,
    #[serde(default)]
    pub run_id: Option<String>,
    #[serde(default)]
    pub junit: Option<String>,
    #[serde(default)]
    pub ctrf: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub attempt: u32,
    /// `run` or `resume`.
    pub kind: String,
    pub pid: u32,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// The run status this attempt ended with (`None`: it did not end — killed or still running).
    pub status: Option<String>,
    pub last_phase: Option<String>,
}

/// One test's progress: the steps done (1-based, contiguous from the first) and, once the
/// test has ended, its result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TestProgress {
    pub name: String,
    /// `running` (some steps done) or `done`.
    pub state: String,
    pub steps_done: usize,
    /// Readings and external records of the steps done, for a test resumed midway.
    pub measurements: Vec<Metric>,
    pub external_results: Vec<Value>,
    pub result: Option<TestResult>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkflowState {
    pub schema_version: String,
    pub inputs: Option<Inputs>,
    pub attempts: Vec<Attempt>,
    /// Per host: platform, uname, package manager (from the stage phase's probe).
    pub hosts: BTreeMap<String, Value>,
    /// Per `host/bundle`: the last staging decision and its outcome.
    pub stages: BTreeMap<String, Value>,
    /// Per test index (1-based).
    pub tests: BTreeMap<usize, TestProgress>,
    /// Journal lines that could not be read (a torn last line).
    pub damaged_lines: bool,
}

impl WorkflowState {
    /// Folds journal lines, in order.
    pub fn fold(lines: &[Value], damaged: bool) -> WorkflowState {
        let mut s = WorkflowState {
            schema_version: "hilt.workflow_state.v1".into(),
            damaged_lines: damaged,
            ..WorkflowState::default()
        };
        for l in lines {
            let attempt = l["attempt"].as_u64().unwrap_or(0) as u32;
            let at = l["at"].as_str().map(str::to_string);
            match l["t"].as_str().unwrap_or("") {
                "run" => {
                    if let Ok(i) = serde_json::from_value::<Inputs>(l["inputs"].clone()) {
                        s.inputs = Some(i);
                    }
                    s.attempts.push(Attempt {
                        attempt,
                        kind: l["kind"].as_str().unwrap_or("run").into(),
                        pid: l["pid"].as_u64().unwrap_or(0) as u32,
                        started_at: at.unwrap_or_default(),
                        finished_at: None,
                        status: None,
                        last_phase: None,
                    });
                }
                "phase" => {
                    if let Some(a) = s.attempts.iter_mut().rev().find(|a| a.attempt == attempt) {
                        a.last_phase = l["phase"].as_str().map(str::to_string);
                    }
                }
                "end" => {
                    if let Some(a) = s.attempts.iter_mut().rev().find(|a| a.attempt == attempt) {
                        a.finished_at = at;
                        a.status = l["status"].as_str().map(str::to_string);
                    }
                }
                "host" => {
                    if let Some(h) = l["host"].as_str() {
                        s.hosts.insert(h.to_string(), l.clone());
                    }
                }
                "stage" => {
                    let key = format!(
                        "{}/{}",
                        l["host"].as_str().unwrap_or(""),
                        l["bundle"].as_str().unwrap_or("")
                    );
                    s.stages.insert(key, l.clone());
                }
                "step" => {
                    let (Some(ti), Some(si)) = (l["test"].as_u64(), l["step"].as_u64()) else {
                        continue;
                    };
                    let t = s.tests.entry(ti as usize).or_default();
                    if t.state == "done" {
                        continue;
                    }
                    t.name = l["name"].as_str().unwrap_or("").into();
                    t.state = "running".into();
                    if si as usize == t.steps_done + 1 {
                        t.steps_done = si as usize;
                        if let Ok(m) =
                            serde_json::from_value::<Vec<Metric>>(l["measurements"].clone())
                        {
                            t.measurements.extend(m);
                        }
                        if !l["external_record"].is_null() {
                            t.external_results.push(l["external_record"].clone());
                        }
                    }
                }
                "test" => {
                    let Some(ti) = l["test"].as_u64() else {
                        continue;
                    };
                    if let Some(r) = lenient_result(&l["result"]) {
                        let t = s.tests.entry(ti as usize).or_default();
                        t.name.clone_from(&r.name);
                        t.state = "done".into();
                        t.result = Some(r);
                    }
                }
                _ => {}
            }
        }
        s
    }

    /// Reads and folds the journal of `dir`.
    pub fn load(dir: &Path) -> std::io::Result<WorkflowState> {
        let (lines, damaged) = super::journal::read(dir)?;
        Ok(WorkflowState::fold(&lines, damaged))
    }

    /// The next attempt's number.
    pub fn next_attempt(&self) -> u32 {
        self.attempts.iter().map(|a| a.attempt).max().unwrap_or(0) + 1
    }

    /// Tests that ended, in order.
    pub fn done_tests(&self) -> impl Iterator<Item = (usize, &TestResult)> {
        self.tests
            .iter()
            .filter_map(|(i, t)| t.result.as_ref().map(|r| (*i, r)))
    }

    /// Whether the stage of `bundle` on `host` ended verified.
    pub fn stage_verified(&self, host: &str, bundle: &str) -> Option<&Value> {
        self.stages
            .get(&format!("{host}/{bundle}"))
            .filter(|v| v["state"] == "done" && v["verified"] == true)
    }

    /// The staging decisions, for run_manifest.json.
    pub fn staging(&self) -> Vec<Value> {
        self.stages.values().cloned().collect()
    }

    /// The package manager each probed host has.
    pub fn package_managers(&self) -> BTreeMap<String, String> {
        self.hosts
            .iter()
            .filter_map(|(h, v)| {
                v["package_manager"]
                    .as_str()
                    .map(|p| (h.clone(), p.to_string()))
            })
            .collect()
    }

    /// Writes `workflow_state.json` atomically.
    pub fn write_snapshot(&self, dir: &Path) -> std::io::Result<()> {
        crate::rundir::write_json_atomic(&dir.join(SNAPSHOT), self)
    }
}

/// A test result as an older layout may have written it: the whole document when it
/// parses, else its verdict and names with what parses of the rest.
fn lenient_result(v: &Value) -> Option<TestResult> {
    if let Ok(r) = serde_json::from_value::<TestResult>(v.clone()) {
        return Some(r);
    }
    let strings = |k: &str| -> Vec<String> {
        v[k].as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    Some(TestResult {
        name: v["name"].as_str()?.to_string(),
        test_case_id: v["test_case_id"].as_str().map(str::to_string),
        requirement_ids: strings("requirement_ids"),
        risk_ids: strings("risk_ids"),
        tags: strings("tags"),
        passed: v["passed"].as_bool()?,
        duration_s: v["duration_s"].as_f64().unwrap_or(0.0),
        failure_reason: v["failure_reason"].as_str().map(str::to_string),
        failure: serde_json::from_value(v["failure"].clone()).ok(),
        metrics: v["metrics"].as_object().cloned().unwrap_or_default(),
        measurements: serde_json::from_value(v["measurements"].clone()).unwrap_or_default(),
        fuzz: v["fuzz"].as_array().cloned().unwrap_or_default(),
        fault_injections: v["fault_injections"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
        external_results: v["external_results"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
    })
}

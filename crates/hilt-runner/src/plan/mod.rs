//! The resolved plan of a run: loading and validation produce it once, and every later
//! stage reads it — nothing downstream re-parses a file, re-walks the suite or recompiles
//! a pattern.
//!
//! ```no_run
//! use hilt_runner::{Plan, PlanOptions, RunOptions, Quiet};
//! use hilt_hw::CancelToken;
//!
//! let plan = Plan::load("bench.yaml".as_ref(), "suite.yaml".as_ref(), &PlanOptions::default())
//!     .map_err(|e| e.to_string())?;
//! println!("locks: {:?}", plan.lock_keys());
//! let out = hilt_runner::run_plan(plan, &RunOptions::default(), &mut Quiet, &CancelToken::new())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod checks;
mod locks;
mod uses;

use std::path::Path;
use std::time::Duration;

use hilt_hw::locks::LockSpec;
use hilt_model::bench::Bench;
use hilt_model::suite::{Step, Suite, Test};
use hilt_model::{Diagnostic, LoadError, LoadOptions, Loaded};

use crate::uart::Matcher;

pub use checks::{Supported, driver_errors};
pub use uses::Uses;

/// When a step with a time limit has none and the bench has no default (validation
/// refuses that for the steps that need one, so this only fills the other steps).
const FALLBACK_WITHIN: Duration = Duration::from_millis(1000);

#[derive(Debug, Clone, Copy, Default)]
pub struct PlanOptions {
    /// Unknown keys are errors.
    pub strict: bool,
    /// `flash` steps are skipped, so their probes are not locked.
    pub skip_flash: bool,
}

/// A validated bench + suite, resolved for execution.
pub struct Plan {
    bench: Loaded<Bench>,
    suite: Loaded<Suite>,
    steps: Vec<Vec<Resolved>>,
    uses: Uses,
    locks: Vec<LockSpec>,
    skip_flash: bool,
}

/// A step's values resolved at load time.
pub struct Resolved {
    /// The step's `within_ms`, else the bench default.
    pub within: Duration,
    /// `expect_uart`'s `contains` / compiled `regex`, with its rule text.
    pub matcher: Option<(Matcher, String)>,
}

/// Why a plan could not be built: located diagnostics, plus whatever did load (a run
/// records the inputs it was given even when they are invalid).
#[derive(Debug)]
pub struct PlanError {
    pub diagnostics: Vec<Diagnostic>,
    pub bench: Option<Box<Loaded<Bench>>>,
    pub suite: Option<Box<Loaded<Suite>>>,
}

impl std::fmt::Display for PlanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lines: Vec<String> = self.diagnostics.iter().map(|d| d.to_string()).collect();
        f.write_str(&lines.join("\n"))
    }
}

impl std::error::Error for PlanError {}

fn load_diagnostics(e: LoadError) -> Vec<Diagnostic> {
    match e {
        LoadError::Io { .. } => vec![Diagnostic {
            file: String::new(),
            line: 0,
            col: 0,
            message: e.to_string(),
            help: None,
        }],
        LoadError::Invalid { diagnostics } => diagnostics,
    }
}

impl Plan {
    /// Loads, validates and resolves a bench and a suite.
    pub fn load(bench: &Path, suite: &Path, opts: &PlanOptions) -> Result<Plan, PlanError> {
        let lo = LoadOptions {
            strict: opts.strict,
        };
        match (
            hilt_model::load_bench(bench, lo),
            hilt_model::load_suite(suite, lo),
        ) {
            (Ok(b), Ok(s)) => Plan::from_loaded(b, s, opts.skip_flash),
            (b, s) => {
                let mut diagnostics = Vec::new();
                let (bench, suite) = (
                    b.map_err(|e| diagnostics.extend(load_diagnostics(e))).ok(),
                    s.map_err(|e| diagnostics.extend(load_diagnostics(e))).ok(),
                );
                Err(PlanError {
                    diagnostics,
                    bench: bench.map(Box::new),
                    suite: suite.map(Box::new),
                })
            }
        }
    }

    /// Validates loaded files against each other and this build's drivers, and resolves.
    pub fn from_loaded(
        bench: Loaded<Bench>,
        suite: Loaded<Suite>,
        skip_flash: bool,
    ) -> Result<Plan, PlanError> {
        let mut diagnostics = driver_errors(&bench);
        let supported = Supported::of_build();
        if let Err(e) = hilt_model::check_against(&bench, &suite, &supported.cross_options()) {
            diagnostics.extend(load_diagnostics(e));
        }
        let steps = match resolve(&bench.value, &suite) {
            Ok(steps) => steps,
            Err(d) => {
                diagnostics.extend(d);
                Vec::new()
            }
        };
        if !diagnostics.is_empty() {
            return Err(PlanError {
                diagnostics,
                bench: Some(Box::new(bench)),
                suite: Some(Box::new(suite)),
            });
        }
        let uses = Uses::of(&bench.value, &suite.value, skip_flash);
        let locks = locks::specs(&bench.value, &uses);
        Ok(Plan {
            bench,
            suite,
            steps,
            uses,
            locks,
            skip_flash,
        })
    }

    pub fn bench(&self) -> &Bench {
        &self.bench.value
    }

    pub fn suite(&self) -> &Suite {
        &self.suite.value
    }

    pub fn bench_file(&self) -> &Loaded<Bench> {
        &self.bench
    }

    pub fn suite_file(&self) -> &Loaded<Suite> {
        &self.suite
    }

    /// Unknown-key and other warnings of both files.
    pub fn warnings(&self) -> Vec<Diagnostic> {
        let mut w = self.bench.warnings.clone();
        w.extend(self.suite.warnings.iter().cloned());
        w
    }

    pub fn skip_flash(&self) -> bool {
        self.skip_flash
    }

    pub fn uses(&self) -> &Uses {
        &self.uses
    }

    /// What a run of this plan locks.
    pub fn lock_specs(&self) -> &[LockSpec] {
        &self.locks
    }

    /// The resource-lock keys, sorted and unique: a scheduler keeps runs that share
    /// hardware apart with them instead of letting the second fail.
    pub fn lock_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.locks.iter().map(|s| s.key.clone()).collect();
        keys.sort();
        keys.dedup();
        keys
    }

    /// Each test with its steps and their resolved values.
    pub fn tests(&self) -> impl Iterator<Item = (&Test, Vec<(&Step, &Resolved)>)> {
        self.suite
            .value
            .tests
            .iter()
            .zip(&self.steps)
            .map(|(t, r)| (t, t.steps.iter().zip(r).collect()))
    }
}

/// Resolves every step once: time limits, and compiled `expect_uart` patterns.
fn resolve(bench: &Bench, suite: &Loaded<Suite>) -> Result<Vec<Vec<Resolved>>, Vec<Diagnostic>> {
    let default = bench
        .defaults
        .as_ref()
        .and_then(|d| d.timeouts.as_ref())
        .and_then(|t| t.within_ms);
    let file = suite.path.display().to_string();
    let mut d = hilt_model::diag::Diags::new(&file, &suite.doc);
    let mut out = Vec::with_capacity(suite.value.tests.len());
    for (ti, test) in suite.value.tests.iter().enumerate() {
        let mut steps = Vec::with_capacity(test.steps.len());
        for (si, step) in test.steps.iter().enumerate() {
            let within_ms = match step {
                Step::ExpectUart(s) => s.within_ms,
                Step::GpioExpect(s) => s.within_ms,
                Step::GpioWaitEdge(s) => s.within_ms,
                Step::I2cExpect(s) => s.within_ms,
                Step::ExpectCan(s) => s.within_ms,
                _ => None,
            };
            let within = within_ms
                .or(default)
                .map(Duration::from_millis)
                .unwrap_or(FALLBACK_WITHIN);
            let matcher = match step {
                Step::ExpectUart(s) => match (&s.contains, &s.regex) {
                    (Some(c), _) => Some((
                        Matcher::Contains(c.as_bytes().to_vec()),
                        format!("contains {c:?}"),
                    )),
                    (None, Some(r)) => match regex::bytes::Regex::new(r) {
                        Ok(re) => Some((Matcher::Regex(re), format!("regex {r:?}"))),
                        Err(e) => {
                            d.error(
                                &format!("tests[{ti}].steps[{si}].expect_uart.regex"),
                                format!("invalid regex: {e}"),
                            );
                            None
                        }
                    },
                    (None, None) => None,
                },
                Step::SshExec(s) => match &s.expect_regex {
                    Some(r) => match regex::bytes::Regex::new(r) {
                        Ok(re) => Some((Matcher::Regex(re), format!("regex {r:?}"))),
                        Err(e) => {
                            d.error(
                                &format!("tests[{ti}].steps[{si}].ssh_exec.expect_regex"),
                                format!("invalid regex: {e}"),
                            );
                            None
                        }
                    },
                    None => None,
                },
                _ => None,
            };
            steps.push(Resolved { within, matcher });
        }
        out.push(steps);
    }
    if d.errors.is_empty() {
        Ok(out)
    } else {
        Err(d.errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BENCH: &str = r#"version: 1
bench: {name: rig}
defaults: {timeouts: {within_ms: 700}}
nodes:
  dut:
    kind: mcu
    transports:
      console: {backend: uart, port: /dev/hilt-plan-test}
    gpio:
      led: {backend: mock_gpio, channel: 2, direction: input, edge: both}
      btn: {backend: mock_gpio, channel: 3, direction: output}
resources:
  mains: {kind: power_controller, driver: {type: mock_power, outlets: {dut: true}}}
  relay: {kind: power_controller, driver: {type: http_relay, outlets: {a: "1"}, on_url: "http://r/{channel}/on", off_url: "http://r/{channel}/off"}}
  pdu: {kind: power_controller, driver: {type: gpio, chip: /dev/gpiochip0}}
"#;

    fn plan(bench: &str, steps: &str) -> Result<Plan, PlanError> {
        let lo = LoadOptions::default();
        let mut b = hilt_model::parse_bench(bench, "bench.yaml", lo).unwrap();
        b.path = "bench.yaml".into();
        let text =
            format!("version: 1\nsuite: {{name: s}}\ntests:\n  - name: t\n    steps:\n{steps}");
        let mut s = hilt_model::parse_suite(&text, "suite.yaml", lo).unwrap();
        s.path = "suite.yaml".into();
        Plan::from_loaded(b, s, false)
    }

    #[test]
    fn one_uses_set_gives_locks_and_resolved_steps() {
        let p = plan(
            BENCH,
            "      - expect_uart: {node: dut, transport: console, regex: 'v\\d+'}
      - gpio_expect: {node: dut, line: led, value: true, within_ms: 50}
      - power_cycle: {resource: relay, outlet: a}
",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            p.lock_keys(),
            [
                "gpio:mock:dut:2",
                "gpio:mock:dut:3",
                "http_relay:http://r/{channel}/on:http://r/{channel}/off",
                "serial:/dev/hilt-plan-test",
            ]
        );
        assert_eq!(p.uses().resources.iter().collect::<Vec<_>>(), ["relay"]);
        let (_, steps) = p.tests().next().unwrap();
        assert_eq!(
            steps[0].1.within,
            Duration::from_millis(700),
            "the bench default"
        );
        assert!(
            matches!(&steps[0].1.matcher, Some((Matcher::Regex(_), rule)) if rule == "regex \"v\\\\d+\"")
        );
        assert_eq!(
            steps[1].1.within,
            Duration::from_millis(50),
            "the step's own"
        );
    }

    #[test]
    fn problems_are_located_and_unsupported_drivers_refused() {
        let e = plan(
            BENCH,
            "      - expect_uart: {node: dut, transport: console, regex: 'v(('}
      - power_set: {resource: pdu, outlet: dut, state: true}
",
        )
        .err()
        .unwrap();
        let text = e.to_string();
        assert!(
            text.contains("suite.yaml:6:") && text.contains("invalid regex"),
            "{text}"
        );
        assert!(
            text.contains("resource `pdu` (driver `gpio`) cannot switch power"),
            "{text}"
        );
        let bad = BENCH.replace("http://r/{channel}/off", "http://r/{chan}/off");
        let e = plan(&bad, "      - sleep_ms: 1\n").err().unwrap();
        assert_eq!(e.diagnostics.len(), 1, "{e}");
        let d = &e.diagnostics[0];
        assert_eq!((d.file.as_str(), d.line), ("bench.yaml", 14));
        assert!(
            d.message
                .contains("resources.relay.driver.off_url: unknown placeholder `{chan}`"),
            "{d}"
        );
    }
}

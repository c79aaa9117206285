//! Live progress on stderr from the run's events: a status line on a terminal (current
//! test and step, elapsed time, pass/fail counts), plain lines otherwise.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hilt_model::run::{Event, EventKind};
use serde_json::Value;

#[derive(Default)]
struct State {
    test: String,
    test_index: u64,
    tests_total: u64,
    step: String,
    step_index: u64,
    steps_total: u64,
    passed: u64,
    failed: u64,
    done: bool,
}

pub struct Progress {
    tty: bool,
    verbose: bool,
    start: Instant,
    state: Arc<Mutex<State>>,
    ticker: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    pub fn new(verbose: bool) -> Progress {
        let tty = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        let state = Arc::new(Mutex::new(State::default()));
        let start = Instant::now();
        let ticker = tty.then(|| {
            let state = state.clone();
            std::thread::spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_millis(200));
                    let s = state.lock().unwrap_or_else(|e| e.into_inner());
                    if s.done {
                        break;
                    }
                    draw(&s, start);
                }
            })
        });
        Progress {
            tty,
            verbose,
            start,
            state,
            ticker,
        }
    }

    /// Clears the status line and stops the ticker.
    pub fn finish(&mut self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).done = true;
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
        if self.tty {
            eprint!("\r\x1b[2K");
        }
    }

    fn line(&self, text: &str) {
        if self.tty {
            eprint!("\r\x1b[2K");
        }
        eprintln!("{text}");
        if self.tty {
            draw(
                &self.state.lock().unwrap_or_else(|e| e.into_inner()),
                self.start,
            );
        }
    }
}

fn draw(s: &State, start: Instant) {
    if s.test.is_empty() {
        return;
    }
    let mut err = std::io::stderr().lock();
    let _ = write!(
        err,
        "\r\x1b[2K[{}/{}] {} · step {}/{} {} · {:.1} s · {} passed, {} failed",
        s.test_index,
        s.tests_total,
        truncate(&s.test, 40),
        s.step_index,
        s.steps_total,
        s.step,
        start.elapsed().as_secs_f64(),
        s.passed,
        s.failed
    );
    let _ = err.flush();
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

fn num(d: &serde_json::Map<String, Value>, k: &str) -> u64 {
    d.get(k).and_then(Value::as_u64).unwrap_or(0)
}

fn text<'a>(d: &'a serde_json::Map<String, Value>, k: &str) -> &'a str {
    d.get(k).and_then(Value::as_str).unwrap_or("")
}

impl hilt_runner::Observer for Progress {
    fn event(&mut self, e: &Event) {
        let d = &e.data;
        match e.event_type.as_str() {
            EventKind::RUN_STARTED => {
                self.state
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .tests_total = num(d, "tests_total");
                self.line(&format!(
                    "running {} on {} ({} tests)",
                    text(d, "suite_name"),
                    text(d, "bench_name"),
                    num(d, "tests_total")
                ));
            }
            EventKind::TEST_STARTED => {
                let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
                s.test = text(d, "test_name").to_string();
                s.test_index = num(d, "test_index");
                s.step.clear();
                s.step_index = 0;
            }
            EventKind::STEP_STARTED => {
                {
                    let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
                    s.step = text(d, "step_type").to_string();
                    s.step_index = num(d, "step_index");
                    s.steps_total = num(d, "steps_total");
                }
                if self.tty && !self.verbose {
                    draw(
                        &self.state.lock().unwrap_or_else(|e| e.into_inner()),
                        self.start,
                    );
                }
            }
            EventKind::STEP_FINISHED if self.verbose => {
                self.line(&format!(
                    "    ok   step {} {}",
                    num(d, "step_index"),
                    text(d, "step_type")
                ));
            }
            EventKind::STEP_SKIPPED => self.line(&format!(
                "    skip step {} {} ({})",
                num(d, "step_index"),
                text(d, "step_type"),
                e.message.as_deref().unwrap_or("")
            )),
            EventKind::STEP_FAILED => {
                // The full explanation comes with the verdict; here only what failed.
                let title = d.get("failure").and_then(|f| f["title"].as_str());
                self.line(&format!(
                    "    FAIL step {} {}: {}",
                    num(d, "step_index"),
                    text(d, "step_type"),
                    title.or(e.message.as_deref()).unwrap_or("failed")
                ));
            }
            EventKind::TEST_FINISHED => {
                let passed = d.get("passed").and_then(Value::as_bool).unwrap_or(false);
                {
                    let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
                    if passed { s.passed += 1 } else { s.failed += 1 }
                }
                let dur = d.get("duration_s").and_then(Value::as_f64).unwrap_or(0.0);
                let mark = if passed { "pass" } else { "FAIL" };
                self.line(&format!("  {mark} {} ({dur:.3} s)", text(d, "test_name")));
            }
            EventKind::LOCKS_ACQUIRED if self.verbose => {
                let n = d
                    .get("locks")
                    .and_then(Value::as_array)
                    .map(Vec::len)
                    .unwrap_or(0);
                self.line(&format!(
                    "  locked {n} resources in {}",
                    text(d, "lock_dir")
                ));
            }
            EventKind::DUT_ID_FINISHED | EventKind::DUT_ID_WARNING => {
                self.line(&format!(
                    "  identity of {}: {}",
                    text(d, "node_name"),
                    text(d, "verification_status")
                ));
            }
            _ => {}
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

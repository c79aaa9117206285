//! `http_measurement` and `script_measurement` through the real `hilt` binary: a small
//! HTTP instrument on loopback answering from a script of responses, and commands run
//! without a shell. Readings carry their units into results.json; a bad answer, an
//! HTTP error, a failing or hanging script are measurement failures of the bench.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use common::hw::{metric, run_results, validate_error, write_suite_steps};

/// Answers each connection with the next `(status, body)`; records request paths.
struct HttpInstrument {
    url: String,
    paths: Arc<Mutex<Vec<String>>>,
}

impl HttpInstrument {
    fn start(answers: Vec<(u16, &'static str)>) -> HttpInstrument {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let paths = Arc::new(Mutex::new(Vec::new()));
        let seen = paths.clone();
        std::thread::spawn(move || {
            for (status, body) in answers {
                let Ok((conn, _)) = l.accept() else { return };
                let mut r = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                seen.lock()
                    .unwrap()
                    .push(line.split_whitespace().nth(1).unwrap_or("").to_string());
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                }
                let mut w = conn;
                let _ = write!(
                    w,
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        HttpInstrument { url, paths }
    }
}

fn write_files(dir: &Path, resources: &str, steps: &[&str]) -> (PathBuf, PathBuf) {
    let bench = dir.join("bench.yaml");
    std::fs::write(
        &bench,
        format!(
            "version: 1\nbench: {{name: meters}}\nnodes:\n  dut:\n    kind: mcu\n    gpio: {{led: {{backend: mock_gpio, channel: 1, direction: input}}}}\nresources:\n{resources}"
        ),
    )
    .unwrap();
    let suite = write_suite_steps(dir, "m", "read", steps);
    (bench, suite)
}

#[test]
fn http_measurement_reads_numbers_and_json_and_reports_errors() {
    let dir = tempfile::tempdir().unwrap();
    let inst = HttpInstrument::start(vec![
        (200, r#"{"current": "0.012", "unit": "A"}"#),
        (200, "3.30\n"),
        (503, "calibrating"),
    ]);
    let resources = format!(
        "  shunt:\n    kind: measurement\n    driver: {{type: http_measurement, url: \"{}/read\", value_field: current, timeout_ms: 2000}}\n  rail:\n    kind: measurement\n    driver: {{type: http_measurement, url: \"{}/rail\", quantity: voltage, unit: V}}\n",
        inst.url, inst.url
    );
    let (bench, suite) = write_files(
        dir.path(),
        &resources,
        &[
            "measure: {resource: shunt, unit: A, expect_less_than: 0.015}",
            "measure: {resource: rail, unit: V, expect_equal: 3.3, tolerance: 0.05}",
        ],
    );
    let (code, _, r) = run_results(dir.path(), &bench, &suite);
    assert_eq!(code, 0, "{r:#}");
    let shunt = metric(&r, "shunt");
    assert_eq!(shunt["value"], 0.012);
    assert_eq!(shunt["unit"], "A", "the body's unit");
    assert_eq!(shunt["backend"], "http_measurement");
    assert_eq!(metric(&r, "rail")["unit"], "V", "the bench's unit");
    assert_eq!(*inst.paths.lock().unwrap(), ["/read", "/rail"]);

    let (_, suite) = write_files(dir.path(), &resources, &["measure: {resource: shunt}"]);
    let (code, _, r) = run_results(dir.path(), &bench, &suite);
    assert_eq!(code, 4, "{r:#}");
    assert_eq!(r["failure"]["category"], "MEASUREMENT_FAILED");
    let msg = r["failure"]["message"].as_str().unwrap();
    assert!(msg.contains("HTTP 503 calibrating"), "{msg}");
}

#[test]
fn script_measurement_runs_a_command_without_a_shell() {
    let dir = tempfile::tempdir().unwrap();
    let resources = r#"  probe:
    kind: measurement
    driver:
      type: script_measurement
      command: >-
        printf 'settling\n{"reading": {"mv": 1250}, "unit": "mV"}\n'
      value_json_path: reading.mv
      quantity: voltage
  literal:
    kind: measurement
    driver: {type: script_measurement, command: "echo '$HOME;' 2.5", unit: V}
  broken:
    kind: measurement
    driver: {type: script_measurement, command: "false"}
  hang:
    kind: measurement
    driver: {type: script_measurement, command: "sleep 5", timeout_ms: 200}
"#;
    let (bench, suite) = write_files(
        dir.path(),
        resources,
        &[
            "measure: {resource: probe, unit: mV, expect_greater_than: 1200}",
            "measure: {resource: literal, expect_equal: 2.5}",
        ],
    );
    let (code, _, r) = run_results(dir.path(), &bench, &suite);
    assert_eq!(code, 0, "{r:#}");
    let probe = metric(&r, "probe");
    assert_eq!(probe["value"], 1250.0);
    assert_eq!(probe["unit"], "mV");
    assert_eq!(probe["assertion"], "> 1200");
    // No shell: `$HOME;` reached echo as written, and the first number in its output wins.
    assert!(
        metric(&r, "literal")["raw_response"]
            .as_str()
            .unwrap()
            .starts_with("$HOME; 2.5")
    );

    for (res, want) in [
        ("broken", "exited with code 1"),
        ("hang", "timed out after 200 ms"),
    ] {
        let (_, suite) = write_files(
            dir.path(),
            resources,
            &[&format!("measure: {{resource: {res}}}")],
        );
        let started = std::time::Instant::now();
        let (code, _, r) = run_results(dir.path(), &bench, &suite);
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        assert_eq!(code, 4, "{r:#}");
        assert_eq!(r["failure"]["category"], "MEASUREMENT_FAILED");
        let msg = r["failure"]["message"].as_str().unwrap();
        assert!(msg.contains(want), "{msg}");
    }
}

#[test]
fn an_unsplittable_command_is_located() {
    let dir = tempfile::tempdir().unwrap();
    let (bench, suite) = write_files(
        dir.path(),
        "  probe:\n    kind: measurement\n    driver: {type: script_measurement, command: \"read 'half\"}\n",
        &["measure: {resource: probe}"],
    );
    let err = validate_error(&bench, &suite);
    assert!(
        err.contains("bench.yaml:10:49: resources.probe.driver.command: cannot be split into words: unterminated single quote"),
        "{err}"
    );
}

#[test]
fn serial_measurement_asks_the_simulated_device() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttySENSOR");
    let dut = hilt_sim::SimDut::start(hilt_sim::DutConfig {
        link: Some(link.clone()),
        ..hilt_sim::DutConfig::default()
    })
    .unwrap();
    let resources = format!(
        "  adder:\n    kind: measurement\n    driver: {{type: serial_measurement, port: \"{p}\", command: \"add 40 2\\n\", response_regex: \"= (?P<value>\\\\d+)\", quantity: count}}\n  pinger:\n    kind: measurement\n    driver: {{type: serial_measurement, port: \"{p}\", command: \"ping\\n\", response_regex: \"= (\\\\d+)\", timeout_ms: 500}}\n",
        p = link.display()
    );
    let (bench, suite) = write_files(
        dir.path(),
        &resources,
        &["measure: {resource: adder, expect_equal: 42}"],
    );
    // The banner the device prints at boot is not a reading.
    std::thread::sleep(std::time::Duration::from_millis(100));
    let (code, _, r) = run_results(dir.path(), &bench, &suite);
    assert_eq!(code, 0, "{r:#}");
    let m = metric(&r, "adder");
    assert_eq!(m["value"], 42.0);
    assert_eq!(m["raw_response"], "= 42");
    assert_eq!(m["query"], "add 40 2\n");
    assert_eq!(m["quantity"], "count");

    let (_, suite) = write_files(dir.path(), &resources, &["measure: {resource: pinger}"]);
    let (code, _, r) = run_results(dir.path(), &bench, &suite);
    assert_eq!(code, 4, "{r:#}");
    let msg = r["failure"]["message"].as_str().unwrap();
    assert!(msg.contains("response \"pong\" does not match"), "{msg}");
    drop(dut);
}

//! The commands people expect of a bench tool, through the real binary: `hilt init
//! --preset`, `hilt doctor` (ports, tools, a bench's resources) and `hilt measure`.

use std::path::Path;
use std::process::{Command, Output};

use assert_cmd::cargo::cargo_bin;
use serde_json::Value;

fn hilt(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut c = Command::new(cargo_bin("hilt"));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn every_preset_writes_files_that_load_and_never_overwrites() {
    let t = tempfile::tempdir().unwrap();
    for preset in ["nucleo", "esp32", "modbus-plc", "linux-gpio"] {
        let dir = t.path().join(preset);
        let d = dir.to_str().unwrap();
        let o = hilt(&["init", "--preset", preset, "--dir", d], &[]);
        assert!(o.status.success(), "{}", text(&o));
        assert!(text(&o).contains("edit the lines marked EDIT"));
        let bench = dir.join("bench.yaml");
        let suite = dir.join("suite.yaml");
        let v = hilt(
            &[
                "validate",
                "--bench",
                bench.to_str().unwrap(),
                "--suite",
                suite.to_str().unwrap(),
            ],
            &[],
        );
        // Valid, or refused only for drivers this build does not have yet.
        if !v.status.success() {
            let out = text(&v);
            for line in out.lines().filter(|l| l.starts_with("error:")) {
                assert!(
                    line.contains("not supported by this build"),
                    "{preset}: {out}"
                );
            }
        }
        if matches!(preset, "nucleo" | "esp32") {
            assert!(v.status.success(), "{preset}: {}", text(&v));
        }
        // A second init keeps the user's edits.
        std::fs::write(&bench, "# mine\n").unwrap();
        let again = hilt(&["init", "--preset", preset, "--dir", d], &[]);
        assert_eq!(again.status.code(), Some(2));
        assert!(text(&again).contains("already exists"));
        assert_eq!(std::fs::read_to_string(&bench).unwrap(), "# mine\n");
        let forced = hilt(&["init", "--preset", preset, "--dir", d, "--force"], &[]);
        assert!(forced.status.success());
        assert_ne!(std::fs::read_to_string(&bench).unwrap(), "# mine\n");
    }
    let unknown = hilt(&["init", "--preset", "arduino"], &[]);
    assert_eq!(unknown.status.code(), Some(2));
    let out = text(&unknown);
    assert!(out.contains("no preset `arduino`") && out.contains("nucleo") && out.contains("esp32"));
}

const MOCK_BENCH: &str = "version: 1
bench: {name: tools}
nodes:
  dut:
    kind: mcu
    transports:
      console: {backend: uart, port: PORT, baud: 115200}
resources:
  mains:
    kind: power_controller
    driver: {type: mock_power, outlets: {dut: true}}
  shunt:
    kind: measurement
    driver: {type: mock_measurement, value: 0.25, quantity: current, unit: A, noise: 0.01}
";

#[test]
fn doctor_checks_a_bench_and_names_the_fix() {
    let t = tempfile::tempdir().unwrap();
    let locks = t.path().join("locks");
    let bench = t.path().join("bench.yaml");
    // A port that is not there: the bench is failing and the doctor says what to do.
    let missing = t.path().join("ttyMISSING");
    std::fs::write(
        &bench,
        MOCK_BENCH.replace("PORT", missing.to_str().unwrap()),
    )
    .unwrap();
    let o = hilt(
        &["doctor", "--bench", bench.to_str().unwrap()],
        &[("HILT_LOCK_DIR", &locks)],
    );
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("FAIL") && out.contains("fix:"), "{out}");
    assert!(out.contains("ttyMISSING"), "{out}");
    // The mock instrument was read (non-destructively) and passed.
    assert!(out.contains("0.2") && out.contains(" A"), "{out}");

    let j = hilt(
        &["doctor", "--bench", bench.to_str().unwrap(), "--json"],
        &[("HILT_LOCK_DIR", &locks)],
    );
    let doc: Value = serde_json::from_slice(&j.stdout).unwrap();
    assert_eq!(doc["bench"]["health_status"], "failing");
    assert!(doc.get("tools").is_none(), "only what was asked");
}

#[test]
fn doctor_lists_ports_and_tools() {
    let o = hilt(&["doctor", "--ports", "--tools", "--json"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(doc["ports"].is_array());
    let tools = doc["tools"].as_array().unwrap();
    let names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
    for n in ["openocd", "STM32_Programmer_CLI", "JLinkExe", "esptool.py"] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    // Every tool missing here says how to install it; a found one names its path.
    for t in tools {
        if t["path"].is_null() {
            assert!(t["install"].as_str().is_some_and(|s| !s.is_empty()), "{t}");
        } else {
            assert!(Path::new(t["path"].as_str().unwrap()).is_file());
        }
    }
    // `sh` is everywhere; a fake tool on PATH is found with its version line.
    let t = tempfile::tempdir().unwrap();
    let fake = t.path().join("openocd");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'Open On-Chip Debugger 0.12.0' >&2\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", t.path().display(), std::env::var("PATH").unwrap());
    let o = Command::new(cargo_bin("hilt"))
        .args(["doctor", "--tools"])
        .env("PATH", path)
        .output()
        .unwrap();
    let out = text(&o);
    assert!(out.contains("Open On-Chip Debugger 0.12.0"), "{out}");
}

#[test]
fn measure_reads_an_instrument_under_its_lock() {
    let t = tempfile::tempdir().unwrap();
    let locks = t.path().join("locks");
    let bench = t.path().join("bench.yaml");
    std::fs::write(&bench, MOCK_BENCH.replace("PORT", "/dev/null")).unwrap();
    let b = bench.to_str().unwrap();
    let o = hilt(
        &["measure", "shunt", "--bench", b, "--repeat", "5", "--json"],
        &[("HILT_LOCK_DIR", &locks)],
    );
    assert!(o.status.success(), "{}", text(&o));
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["count"], 5);
    assert_eq!(doc["unit"], "A");
    let (min, max) = (doc["min"].as_f64().unwrap(), doc["max"].as_f64().unwrap());
    assert!(0.2 < min && min <= max && max < 0.3, "{doc}");
    let plain = hilt(
        &["measure", "shunt", "--bench", b],
        &[("HILT_LOCK_DIR", &locks)],
    );
    assert!(text(&plain).trim().ends_with(" A"), "{}", text(&plain));

    let unknown = hilt(
        &["measure", "nope", "--bench", b],
        &[("HILT_LOCK_DIR", &locks)],
    );
    assert_eq!(unknown.status.code(), Some(3));
    assert!(text(&unknown).contains("no resource `nope` (it has: mains, shunt)"));
    let power = hilt(
        &["measure", "mains", "--bench", b],
        &[("HILT_LOCK_DIR", &locks)],
    );
    assert_eq!(power.status.code(), Some(3));
    assert!(text(&power).contains("not a measurement instrument"));
    let zero = hilt(&["measure", "shunt", "--bench", b, "--repeat", "0"], &[]);
    assert_eq!(zero.status.code(), Some(2));
}

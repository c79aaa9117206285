//! Lock behaviour against real files, real `flock`s and real processes.

use super::*;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

fn config(dir: &Path) -> LockConfig {
    LockConfig {
        dir: dir.to_path_buf(),
        enabled: true,
    }
}

fn serial(port: &str) -> LockSpec {
    LockSpec::new(format!("serial:{port}"), port, "serial_transport")
        .with_detail("node", "dut")
        .with_detail("transport", "console")
}

/// A python3 child that flocks `path` (the way BenchCI does), writes an owner record and
/// sleeps. Returns once the lock is held; `None` when python3 is missing.
fn python_holder(path: &Path) -> Option<Child> {
    let script = r#"
import fcntl, json, os, sys, time
f = open(sys.argv[1], "a+")
fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
f.truncate(0)
f.write(json.dumps({"schema_version": "benchci.resource_locks.v1", "run_id": "r-py",
                    "pid": os.getpid(), "hostname": "peer", "created_at": "2025-01-01T00:00:00.000000Z"}))
f.flush()
print("locked", flush=True)
time.sleep(60)
"#;
    let mut child = match Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(path)
        .stdout(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("skipping: python3 not runnable: {e}");
            return None;
        }
    };
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "locked");
    Some(child)
}

#[test]
fn same_key_twice_in_one_process_conflicts() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path());
    let first = acquire(&cfg, vec![serial("/dev/ttyUSB0")], Some("r-1")).unwrap();
    let err = acquire(&cfg, vec![serial("/dev/ttyUSB0")], Some("r-2")).unwrap_err();
    match &err {
        LockError::Busy {
            display_name,
            category,
            key,
            lock_path,
            holder,
        } => {
            assert_eq!(display_name, "/dev/ttyUSB0");
            assert_eq!(category, "serial_transport");
            assert_eq!(key, "serial:/dev/ttyUSB0");
            assert_eq!(
                lock_path,
                &tmp.path()
                    .join("serial_transport-dev-ttyusb0-02009e55b2512ba0.lock")
            );
            let holder = holder.as_ref().unwrap();
            assert_eq!(holder.pid, Some(std::process::id()));
            assert_eq!(holder.run_id.as_deref(), Some("r-1"));
            assert!(holder.since.as_deref().unwrap().ends_with('Z'));
        }
        other => panic!("expected Busy, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.starts_with("resource is locked: /dev/ttyUSB0 (serial_transport)"));
    assert!(msg.contains("(run r-1)"), "{msg}");
    drop(first);
    acquire(&cfg, vec![serial("/dev/ttyUSB0")], None).unwrap();
}

#[test]
fn lock_identity_is_the_file_name_not_the_key() {
    // BenchCI derives the file from category + display name + key, so across runs the same
    // key under another category or display name is another file and does NOT conflict.
    // hilt matches that on purpose (compatibility); within one run specs are de-duplicated.
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path());
    let _uart = acquire(&cfg, vec![serial("/dev/ttyUSB0")], None).unwrap();
    let relay = LockSpec::new("serial:/dev/ttyUSB0", "/dev/ttyUSB0", "power_serial_relay");
    acquire(&cfg, vec![relay], None).unwrap();
    let same = LockSpec::new("serial:/dev/ttyUSB0", "/dev/ttyUSB0", "serial_transport");
    assert!(matches!(
        acquire(&cfg, vec![same], None),
        Err(LockError::Busy { .. })
    ));
}

#[test]
fn owner_record_written_and_release_truncates() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path());
    let specs = vec![
        serial("/dev/ttyUSB0"),
        LockSpec::new(
            "debugger:openocd:066DFF515049",
            "OpenOCD probe 066DFF515049",
            "debug_probe",
        ),
    ];
    let set = acquire(&cfg, specs, Some("r-9")).unwrap();
    let path = tmp
        .path()
        .join("serial_transport-dev-ttyusb0-02009e55b2512ba0.lock");
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(record["schema_version"], "benchci.resource_locks.v1");
    assert_eq!(record["run_id"], "r-9");
    assert_eq!(record["pid"], std::process::id());
    assert_eq!(record["lock_count"], 2);
    assert!(record["platform"].as_str().unwrap().len() > 2);
    assert!(record["hostname"].is_string());
    assert_eq!(record["resource"]["key"], "serial:/dev/ttyUSB0");
    assert_eq!(record["resource"]["details"]["node"], "dut");

    let meta = set.metadata();
    assert_eq!(meta["enabled"], true);
    assert_eq!(meta["lock_dir"], tmp.path().to_str().unwrap());
    let locks = meta["locks"].as_array().unwrap();
    assert_eq!(locks[0]["key"], "debugger:openocd:066DFF515049");
    assert_eq!(
        locks[1]["lock_path"],
        path.to_str().unwrap(),
        "sorted by key, with lock_path"
    );
    let names: Vec<&str> = locks[1]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        names,
        ["key", "display_name", "category", "details", "lock_path"]
    );

    set.release();
    assert!(path.exists(), "lock files are not deleted");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    acquire(&cfg, vec![serial("/dev/ttyUSB0")], None).unwrap();
}

#[test]
fn busy_lock_releases_the_ones_taken_before() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path());
    let _b = acquire(&cfg, vec![serial("b")], None).unwrap();
    let err = acquire(&cfg, vec![serial("c"), serial("a"), serial("b")], None).unwrap_err();
    assert!(matches!(err, LockError::Busy { ref key, .. } if key == "serial:b"));
    // `a` was taken before `b` failed and must be free again; `c` was never tried.
    acquire(&cfg, vec![serial("a"), serial("c")], None).unwrap();
}

#[test]
fn lock_of_a_killed_process_is_free() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path());
    let spec = serial("/dev/ttyACM0");
    let path = tmp.path().join(lock_file_name(
        &spec.category,
        &spec.display_name,
        &spec.key,
    ));
    let Some(mut child) = python_holder(&path) else {
        return;
    };
    // python's fcntl.flock is flock(2): a conflict proves File::try_lock is flock too.
    match acquire(&cfg, vec![spec.clone()], None) {
        Err(LockError::Busy {
            holder: Some(h), ..
        }) => {
            assert_eq!(h.pid, Some(child.id()));
            assert_eq!(h.run_id.as_deref(), Some("r-py"));
            assert_eq!(h.hostname.as_deref(), Some("peer"));
        }
        other => panic!("expected Busy with a holder, got {other:?}"),
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let set = acquire(&cfg, vec![spec], Some("after")).unwrap();
    assert_eq!(read_holder(&path).unwrap().run_id.as_deref(), Some("after"));
    drop(set);
}

#[test]
fn disabled_config_locks_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("never-created");
    let cfg = LockConfig {
        dir: dir.clone(),
        enabled: false,
    };
    let set = acquire(&cfg, vec![serial("x"), serial("x")], None).unwrap();
    assert!(!set.enabled());
    assert!(!dir.exists());
    let meta = set.metadata();
    assert_eq!(meta["enabled"], false);
    assert_eq!(meta["lock_dir"], dir.to_str().unwrap());
    let locks = meta["locks"].as_array().unwrap();
    assert_eq!(locks.len(), 1);
    assert!(locks[0].get("lock_path").is_none());
    assert_eq!(locks[0]["key"], "serial:x");
}

#[test]
fn bad_lock_dir_is_a_dir_error() {
    let tmp = tempfile::tempdir().unwrap();
    let real = tmp.path().join("real");
    std::fs::create_dir(&real).unwrap();
    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let file = tmp.path().join("file");
    std::fs::write(&file, b"").unwrap();
    for dir in [&link, &file] {
        let err = acquire(&config(dir), vec![serial("x")], None).unwrap_err();
        assert!(matches!(err, LockError::Dir { .. }), "{err:?}");
        assert!(err.to_string().contains("help:"));
    }
}

#[test]
fn lock_file_symlink_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = serial("/dev/ttyUSB0");
    let victim = tmp.path().join("victim");
    std::fs::write(&victim, b"keep").unwrap();
    std::os::unix::fs::symlink(
        &victim,
        tmp.path()
            .join("serial_transport-dev-ttyusb0-02009e55b2512ba0.lock"),
    )
    .unwrap();
    let err = acquire(&config(tmp.path()), vec![spec], None).unwrap_err();
    assert!(matches!(err, LockError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("symlink"), "{err}");
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
}

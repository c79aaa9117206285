//! One differential case: a bench, a suite (optional for `validate`), how the simulated
//! device behaves, and the extra arguments both tools get.

use std::path::Path;

use serde_json::Value;

/// Which command both tools run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    /// `run --bench B --suite S --results-dir D [args]` against a simulated device.
    Run,
    /// `validate --bench B [--suite S]`: for benches whose hardware cannot be simulated.
    Validate,
}

/// How the simulated device behaves during the run.
#[derive(Clone, Debug, Default)]
pub struct Device {
    pub boot_ms: Option<u64>,
    pub latency_ms: Option<u64>,
    /// `false`: the device is unpowered for the whole run (it never answers).
    pub powered: Option<bool>,
    /// A fault injected once the device has booted (`silent`, `hang`).
    pub fault: Option<String>,
    /// The planted fuzzing bug: a command line longer than this crashes the firmware.
    pub crash_on_line_over: Option<usize>,
    /// `v1` or `v2`: instead of the simulated device, hilt's firmware of that version on a
    /// QEMU board (`{{PORT}}` is the board's pty).
    pub qemu: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Case {
    pub name: String,
    pub about: String,
    pub mode: Mode,
    pub bench: String,
    pub suite: Option<String>,
    /// `{{PORT}}`, `{{CONTROL}}` and `{{DIR}}` are replaced in bench, suite and args.
    pub args: Vec<String>,
    pub device: Device,
    /// Files written into the case directory before the run (name → text), e.g. firmware.
    pub files: Vec<(String, String)>,
    /// A register map: each tool gets its own simulated Modbus slaves from it, over TCP
    /// (`{{MODBUS_HOST}}`, `{{MODBUS_PORT}}`) and RTU on a pty (`{{MODBUS_RTU}}`).
    pub modbus: Option<String>,
    /// `scpi: true`: each tool gets its own simulated SCPI instrument at `{{SCPI}}`
    /// (`tcp://127.0.0.1:<port>`).
    pub scpi: bool,
}

impl Case {
    /// Reads `<dir>/{case.yaml,bench.yaml,suite.yaml}`.
    pub fn load(dir: &Path) -> Case {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let read = |f: &str| std::fs::read_to_string(dir.join(f));
        let meta = read("case.yaml").unwrap_or_else(|e| panic!("{name}/case.yaml: {e}"));
        let meta = hilt_model::yaml::parse(&meta)
            .unwrap_or_else(|e| panic!("{name}/case.yaml: {e:?}"))
            .to_value();
        let mut case = Case::from_meta(&name, &meta);
        case.bench = read("bench.yaml").unwrap_or_else(|e| panic!("{name}/bench.yaml: {e}"));
        case.suite = read("suite.yaml").ok();
        case
    }

    /// A case from its `case.yaml` object; bench and suite are filled in by the caller.
    pub fn from_meta(name: &str, meta: &Value) -> Case {
        let known = ["about", "mode", "args", "device", "files", "modbus", "scpi"];
        for k in meta.as_object().map(|m| m.keys()).into_iter().flatten() {
            assert!(
                known.contains(&k.as_str()),
                "{name}/case.yaml: unknown key {k}"
            );
        }
        let mode = match meta["mode"].as_str().unwrap_or("run") {
            "run" => Mode::Run,
            "validate" => Mode::Validate,
            m => panic!("{name}/case.yaml: mode must be run or validate, not {m}"),
        };
        let d = &meta["device"];
        Case {
            name: name.to_string(),
            about: meta["about"]
                .as_str()
                .unwrap_or_else(|| panic!("{name}/case.yaml: `about` is required"))
                .to_string(),
            mode,
            bench: String::new(),
            suite: None,
            args: meta["args"]
                .as_array()
                .map(|a| a.iter().map(|x| x.as_str().unwrap().to_string()).collect())
                .unwrap_or_default(),
            device: Device {
                boot_ms: d["boot_ms"].as_u64(),
                latency_ms: d["latency_ms"].as_u64(),
                powered: d["powered"].as_bool(),
                fault: d["fault"].as_str().map(str::to_string),
                crash_on_line_over: d["crash_on_line_over"].as_u64().map(|n| n as usize),
                qemu: d["qemu"].as_str().map(str::to_string),
            },
            files: meta["files"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default(),
            modbus: meta["modbus"].as_str().map(str::to_string),
            scpi: meta["scpi"].as_bool().unwrap_or(false),
        }
    }
}

use hilt_model::bench::Transport;
use hilt_model::validate::CrossOptions;
use hilt_model::{LoadOptions, check_against, parse_bench, parse_suite};

const ALL: CrossOptions = CrossOptions {
    supported_steps: hilt_model::suite::STEP_TYPES,
    supported_gpio: &["mock_gpio", "local_gpio", "remote_gpio"],
    supported_resources: &[
        "gpio_power",
        "i2c_power_monitor",
        "mock_power",
        "mock_measurement",
    ],
};

fn bench_text() -> &'static str {
    include_str!("fixtures/spec-bench.yaml")
}

#[test]
fn spec_examples_load_without_warnings() {
    let b = parse_bench(bench_text(), "bench.yaml", LoadOptions::default()).unwrap();
    assert!(b.warnings.is_empty(), "{:?}", b.warnings);
    assert_eq!(b.value.bench.name, "Thermostat rig A");
    match &b.value.nodes["dut"].transports["console"] {
        Transport::Uart { baud, bytesize, .. } => assert_eq!((*baud, *bytesize), (921600, 8)),
        other => panic!("{other:?}"),
    }
    let mut s = parse_suite(
        include_str!("fixtures/spec-suite.yaml"),
        "suite.yaml",
        LoadOptions::default(),
    )
    .unwrap();
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    assert_eq!(s.value.tests.len(), 4);
    s.path = "suite.yaml".into();
    check_against(&b, &s, &ALL).unwrap();
}

#[test]
fn unknown_key_warns_with_location_and_suggestion() {
    let text = bench_text().replace("baud: 921600", "bauds: 921600");
    let b = parse_bench(&text, "bench.yaml", LoadOptions::default()).unwrap();
    assert_eq!(b.warnings.len(), 1, "{:?}", b.warnings);
    let w = &b.warnings[0];
    assert_eq!(w.line, 24);
    assert!(w.message.contains("unknown key `bauds`"), "{}", w.message);
    assert_eq!(w.help.as_deref(), Some("did you mean `baud`?"));
    let err = parse_bench(&text, "bench.yaml", LoadOptions { strict: true }).unwrap_err();
    assert!(err.to_string().contains("bench.yaml:24:"), "{err}");
}

#[test]
fn wrong_type_names_file_line_column() {
    let text = "bench: {name: b}\nnodes:\n  dut:\n    kind: mcu\n    transports:\n      c: {backend: uart, port: /dev/x, baud: fast}\n";
    let err = parse_bench(text, "b.yaml", LoadOptions::default()).unwrap_err();
    let s = err.to_string();
    assert!(s.starts_with("error: b.yaml:6:"), "{s}");
    assert!(s.contains("nodes.dut.transports.c"), "{s}");
}

#[test]
fn missing_required_field() {
    let err = parse_bench("nodes: {}\n", "b.yaml", LoadOptions::default()).unwrap_err();
    assert!(err.to_string().contains("missing field `bench`"), "{err}");
}

#[test]
fn out_of_range_and_reference_errors_are_all_reported() {
    let text = "bench: {name: b}\ndefaults: {node: nope}\nnodes:\n  dut:\n    kind: mcu\n    transports:\n      c: {backend: uart, port: /dev/x, bytesize: 9}\n";
    let err = parse_bench(text, "b.yaml", LoadOptions::default()).unwrap_err();
    let d = err.diagnostics();
    assert_eq!(d.len(), 2, "{d:?}");
    assert!(d[0].message.contains("node `nope` is not defined"));
    assert_eq!((d[1].line, d[1].message.contains("bytesize")), (7, true));
}

#[test]
fn unknown_step_is_an_error_with_suggestion() {
    let text = "suite: {name: s}\ntests:\n  - name: t\n    steps:\n      - sleep_ms: 5\n      - expect_uartt: {node: dut}\n";
    let err = parse_suite(text, "s.yaml", LoadOptions::default()).unwrap_err();
    let d = &err.diagnostics()[0];
    assert_eq!((d.line, d.col), (6, 9));
    assert!(d.message.contains("unknown step action `expect_uartt`"));
    assert_eq!(d.help.as_deref(), Some("did you mean `expect_uart`?"));
}

#[test]
fn undefined_node_and_unsupported_step_fail_cross_check() {
    let b = parse_bench(bench_text(), "bench.yaml", LoadOptions::default()).unwrap();
    let text = "suite: {name: s}\ntests:\n  - name: t\n    steps:\n      - reset: {node: ghost}\n      - i2c_scan: {node: dut, transport: sensors}\n";
    let mut s = parse_suite(text, "s.yaml", LoadOptions::default()).unwrap();
    s.path = "s.yaml".into();
    let only_basic = CrossOptions {
        supported_steps: &["reset"],
        ..ALL
    };
    let err = check_against(&b, &s, &only_basic).unwrap_err();
    let d = err.diagnostics();
    assert_eq!(d.len(), 2, "{d:?}");
    assert!(d[0].message.contains("unknown node `ghost`"));
    assert!(d[1].message.contains("not supported by this build"));
}

#[test]
fn step_body_unknown_keys_warn() {
    let text = "suite: {name: s}\ntests:\n  - name: t\n    steps:\n      - send_uart: {node: dut, transport: c, data: x, newline: true}\n";
    let s = parse_suite(text, "s.yaml", LoadOptions::default()).unwrap();
    assert_eq!(s.warnings.len(), 1);
    assert!(
        s.warnings[0]
            .message
            .contains("tests[0].steps[0].send_uart.newline")
    );
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn parsers_never_panic(s in "\\PC{0,300}") {
            let _ = parse_bench(&s, "b.yaml", LoadOptions::default());
            let _ = parse_suite(&s, "s.yaml", LoadOptions::default());
        }

        #[test]
        fn yaml_like_input_never_panics(s in "([a-z_]{1,8}: ?(\\[|\\{|-|&a|\\*a|<<|[0-9x.]{1,6}|'q'|\"d\"|\n  |\n- )){0,40}") {
            let _ = parse_bench(&s, "b.yaml", LoadOptions::default());
            let _ = parse_suite(&s, "s.yaml", LoadOptions { strict: true });
        }

        #[test]
        fn mutated_spec_bench_never_panics(pos in 0usize..1500, byte in any::<u8>()) {
            let mut b = bench_text().as_bytes().to_vec();
            let p = pos % b.len();
            b[p] = byte;
            if let Ok(text) = String::from_utf8(b) {
                let _ = parse_bench(&text, "b.yaml", LoadOptions::default());
            }
        }
    }
}

#[test]
fn unsupported_gpio_backend_is_reported_once_per_line_at_the_bench() {
    let bench = "bench: {name: b}\nnodes:\n  dut:\n    kind: mcu\n    gpio:\n      led: {backend: local_gpio, chip: /dev/gpiochip0, line: 3, direction: input}\n      btn: {backend: mock_gpio, channel: 1, direction: output}\n";
    let mut b = parse_bench(bench, "bench.yaml", LoadOptions::default()).unwrap();
    b.path = "bench.yaml".into();
    let text = "suite: {name: s}\ntests:\n  - name: t\n    steps:\n      - gpio_set: {node: dut, line: btn, value: true}\n      - gpio_get: {node: dut, line: led}\n  - name: u\n    steps:\n      - gpio_set: {node: dut, line: btn, value: false}\n";
    let mut s = parse_suite(text, "s.yaml", LoadOptions::default()).unwrap();
    s.path = "s.yaml".into();
    let mock_only = CrossOptions {
        supported_gpio: &["mock_gpio"],
        ..ALL
    };
    let err = check_against(&b, &s, &mock_only).unwrap_err();
    let d = err.diagnostics();
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!((d[0].file.as_str(), d[0].line), ("bench.yaml", 6));
    assert!(
        d[0].message.contains("`local_gpio`")
            && d[0]
                .message
                .contains("used by 3 steps, first tests[0].steps[0].gpio_set"),
        "{}",
        d[0].message
    );
}

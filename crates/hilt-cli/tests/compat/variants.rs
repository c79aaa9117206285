//! Generated cases: one bench template and step templates multiplied over their options,
//! defaults and failure modes. Families whose failures only fail a test share one suite
//! (one run, many tests); a measurement failure aborts a BenchCI run, so each of those
//! variants is its own run.

use super::case::{Case, Device, Mode};

/// The bench every generated case runs on: a simulated DUT on a pty, mock GPIO lines
/// (two pairs that share a channel, one inverted), mock power and a mock instrument.
fn bench(defaults: bool) -> String {
    let defaults = if defaults {
        "defaults: {node: dut, timeouts: {within_ms: 1500}}\n"
    } else {
        ""
    };
    format!(
        "version: 1\nbench: {{name: generated}}\n{defaults}nodes:\n  dut:\n    kind: simulator\n    \
         transports:\n      console: {{backend: uart, port: \"{{{{PORT}}}}\", baud: 115200}}\n    \
         gpio:\n      \
         out: {{backend: mock_gpio, channel: 0, direction: output}}\n      \
         inp: {{backend: mock_gpio, channel: 0, direction: input, edge: both}}\n      \
         nout: {{backend: mock_gpio, channel: 1, direction: output, active_high: false}}\n      \
         ninp: {{backend: mock_gpio, channel: 1, direction: input, active_high: false, edge: rising}}\n      \
         lone: {{backend: mock_gpio, channel: 4, direction: input}}\n      \
         pu: {{backend: mock_gpio, channel: 5, direction: input, bias: pull_up}}\n\
         resources:\n  mains: {{kind: power_controller, driver: {{type: mock_power, outlets: {{dut: true, aux: false}}}}}}\n  \
         shunt: {{kind: measurement, driver: {{type: mock_measurement, value: 0.012, quantity: current, unit: A}}}}\n"
    )
}

fn suite(name: &str, tests: &[(String, Vec<String>)]) -> String {
    let mut s = format!("version: 1\nsuite: {{name: {name}}}\ntests:\n");
    for (test, steps) in tests {
        s.push_str(&format!("  - name: \"{test}\"\n    steps:\n"));
        if steps.is_empty() {
            s.push_str("    steps: []\n");
        }
        for step in steps {
            s.push_str(&format!("      - {step}\n"));
        }
    }
    s
}

fn case(name: &str, about: &str, defaults: bool, tests: &[(String, Vec<String>)]) -> Case {
    Case {
        name: format!("gen/{name}"),
        about: about.to_string(),
        mode: Mode::Run,
        bench: bench(defaults),
        suite: Some(suite(name, tests)),
        args: Vec::new(),
        device: Device::default(),
        files: Vec::new(),
        modbus: None,
        scpi: false,
    }
}

const UART: &str = "node: dut, transport: console";

fn send(data: &str) -> String {
    format!("send_uart: {{{UART}, data: {data}}}")
}

fn expect(rule: &str, within: Option<u32>) -> String {
    match within {
        Some(ms) => format!("expect_uart: {{{UART}, {rule}, within_ms: {ms}}}"),
        None => format!("expect_uart: {{{UART}, {rule}}}"),
    }
}

/// expect_uart: contains/regex × hit/miss × explicit/default timeout, the rolling buffer
/// (text from an earlier test still matches), and send_uart's forms.
fn uart() -> Vec<Case> {
    let mut tests = Vec::new();
    for (rule_kind, hit, miss) in [
        ("contains", "\"pong\"", "\"pang\""),
        ("regex", "\"p[o]+ng$\"", "\"^pong[0-9]\""),
    ] {
        for (outcome, pattern) in [("hit", hit), ("miss", miss)] {
            for within in [Some(2000), None] {
                let within = if outcome == "miss" {
                    within.map(|_| 300)
                } else {
                    within
                };
                tests.push((
                    format!("{rule_kind} {outcome} within {within:?}"),
                    vec![
                        send("\"ping\\n\""),
                        expect(&format!("{rule_kind}: {pattern}"), within),
                    ],
                ));
            }
        }
    }
    tests.push((
        "rolling buffer keeps earlier output".into(),
        vec![expect("contains: \"pong\"", Some(300))],
    ));
    tests.push((
        "regex over several lines".into(),
        vec![
            send("\"version\\n\""),
            expect(
                "regex: \"pong\\\\s+(?:\\\\S+\\\\s+)*version \\\\d+\"",
                Some(2000),
            ),
        ],
    ));
    let mut forms = Vec::new();
    for (form, data, reply, ok) in [
        ("lf", "\"echo lf-form\\n\"", "lf-form", true),
        ("crlf", "\"echo crlf-form\\r\\n\"", "crlf-form", true),
        ("no newline", "\"echo bare-form\"", "bare-form", false),
        (
            "unicode",
            "\"echo h\u{e9}llo-\u{2713}\\n\"",
            "h\u{e9}llo-\u{2713}",
            true,
        ),
        ("single quoted", "'echo sq-form\\n'", "sq-form", false),
    ] {
        let within = if ok { 2000 } else { 300 };
        forms.push((
            format!("send_uart {form}"),
            vec![
                send(data),
                expect(&format!("contains: \"{reply}\""), Some(within)),
            ],
        ));
    }
    forms.push((
        "send_uart block scalar".into(),
        vec![
            "send_uart:\n          node: dut\n          transport: console\n          data: |\n            echo block-form".into(),
            expect("contains: \"block-form\"", Some(2000)),
        ],
    ));
    let since_mark = vec![
        (
            "earlier output".to_string(),
            vec![
                send("\"ping\\n\""),
                expect("contains: \"pong\"", Some(1500)),
            ],
        ),
        (
            "only since the last mark".to_string(),
            vec![
                send("\"version\\n\""),
                format!(
                    "expect_uart: {{{UART}, contains: \"pong\", within_ms: 300, scope: since_mark}}"
                ),
            ],
        ),
    ];
    vec![
        case(
            "expect-uart-since-mark",
            "hilt's scope: since_mark (BenchCI ignores the key and searches its whole buffer)",
            true,
            &since_mark,
        ),
        case(
            "expect-uart",
            "expect_uart options and the rolling buffer",
            true,
            &tests,
        ),
        case(
            "send-uart",
            "send_uart data forms (a line without newline gets no reply)",
            true,
            &forms,
        ),
        case(
            "expect-uart-no-default",
            "expect_uart without within_ms and without bench defaults",
            false,
            &[(
                "no timeout anywhere".into(),
                vec![send("\"ping\\n\""), expect("contains: \"pong\"", None)],
            )],
        ),
    ]
}

/// GPIO: set/get/expect/wait_edge over shared-channel wires, straight and inverted.
fn gpio() -> Vec<Case> {
    let mut tests = Vec::new();
    for (out, inp) in [("out", "inp"), ("nout", "ninp")] {
        for value in [true, false] {
            tests.push((
                format!("{out} set {value} then get {inp}"),
                vec![
                    format!("gpio_set: {{node: dut, line: {out}, value: {value}}}"),
                    format!("gpio_get: {{node: dut, line: {inp}, expect: {value}}}"),
                    format!(
                        "gpio_expect: {{node: dut, line: {inp}, value: {value}, within_ms: 200}}"
                    ),
                ],
            ));
            tests.push((
                format!("{inp} expect {} while {out} is {value}", !value),
                vec![
                    format!("gpio_set: {{node: dut, line: {out}, value: {value}}}"),
                    format!(
                        "gpio_expect: {{node: dut, line: {inp}, value: {}, within_ms: 200}}",
                        !value
                    ),
                ],
            ));
        }
    }
    tests.push((
        "get without expect".into(),
        vec!["gpio_get: {node: dut, line: lone}".into()],
    ));
    tests.push((
        "get mismatch".into(),
        vec!["gpio_get: {node: dut, line: lone, expect: true}".into()],
    ));
    tests.push((
        "expect from bench default".into(),
        vec!["gpio_expect: {node: dut, line: lone, value: false}".into()],
    ));
    for edge in ["rising", "falling", "both"] {
        tests.push((
            format!("wait_edge {edge} with nothing moving"),
            vec![format!(
                "gpio_wait_edge: {{node: dut, line: inp, edge: {edge}, within_ms: 200}}"
            )],
        ));
    }
    let mut errors = Vec::new();
    for (what, step) in [
        ("read an output", "gpio_get: {node: dut, line: out}"),
        (
            "drive an input",
            "gpio_set: {node: dut, line: inp, value: true}",
        ),
        (
            "wait for an edge the line is not configured for",
            "gpio_wait_edge: {node: dut, line: ninp, edge: falling, within_ms: 200}",
        ),
        (
            "wait for an edge on a line without edge",
            "gpio_wait_edge: {node: dut, line: lone, edge: rising, within_ms: 200}",
        ),
    ] {
        errors.push(case(
            &format!("gpio-{}", what.replace(' ', "-")),
            &format!("GPIO: {what}"),
            true,
            &[
                (what.to_string(), vec![step.to_string()]),
                ("after".into(), vec!["sleep_ms: 0".into()]),
            ],
        ));
    }
    let mut all = vec![case(
        "gpio",
        "GPIO steps over shared-channel wires",
        true,
        &tests,
    )];
    all.push(case(
        "gpio-pull-up",
        "an undriven input with bias: pull_up",
        true,
        &[(
            "pulled up".into(),
            vec!["gpio_get: {node: dut, line: pu, expect: true}".into()],
        )],
    ));
    all.extend(errors);
    all
}

/// Power: set/expect/cycle, an expectation that does not hold, an unknown outlet.
fn power() -> Vec<Case> {
    let ok = vec![
        "power_set: {resource: mains, outlet: aux, state: true}".to_string(),
        "power_expect: {resource: mains, outlet: aux, state: true}".into(),
        "power_set: {resource: mains, outlet: dut, state: false}".into(),
        "power_expect: {resource: mains, outlet: dut, state: false}".into(),
        "power_cycle: {resource: mains, outlet: dut, off_ms: 10, on_settle_ms: 10}".into(),
        "power_expect: {resource: mains, outlet: dut, state: true}".into(),
        "power_cycle: {resource: mains, outlet: aux}".into(),
    ];
    let after = ("after".to_string(), vec!["sleep_ms: 1".to_string()]);
    vec![
        case(
            "power",
            "power on/off/cycle/expect on mock_power",
            true,
            &[("power".into(), ok), after.clone()],
        ),
        case(
            "power-expect-mismatch",
            "power_expect that does not hold",
            true,
            &[
                (
                    "mismatch".into(),
                    vec!["power_expect: {resource: mains, outlet: aux, state: true}".into()],
                ),
                after.clone(),
            ],
        ),
        case(
            "power-unknown-outlet",
            "power_set on an outlet the resource does not have",
            true,
            &[
                (
                    "unknown outlet".into(),
                    vec!["power_set: {resource: mains, outlet: nope, state: true}".into()],
                ),
                after,
            ],
        ),
    ]
}

/// measure + assert_metric: every limit, passing and failing, units and unknown metrics.
fn measurement() -> Vec<Case> {
    let mut cases = Vec::new();
    let after = ("after".to_string(), vec!["sleep_ms: 1".to_string()]);
    let limits = [
        ("expect_less_than", "0.02", "0.012"),
        ("expect_less_than_or_equal", "0.012", "0.011"),
        ("expect_greater_than", "0.011", "0.012"),
        ("expect_greater_than_or_equal", "0.012", "0.013"),
        ("expect_equal", "0.012", "0.0125"),
    ];
    // Passing limits never stop a run: one suite holds them all.
    let mut passing = vec![(
        "record".to_string(),
        vec!["measure: {resource: shunt, record_as: i, unit: A}".to_string()],
    )];
    for (limit, pass, _) in limits {
        passing.push((
            format!("measure {limit} {pass}"),
            vec![format!(
                "measure: {{resource: shunt, record_as: m, {limit}: {pass}}}"
            )],
        ));
        passing.push((
            format!("assert {limit} {pass}"),
            vec![format!("assert_metric: {{name: i, {limit}: {pass}}}")],
        ));
    }
    cases.push(case(
        "measure-pass",
        "measure and assert_metric within every kind of limit",
        true,
        &passing,
    ));
    // A failing limit aborts a BenchCI run: one run each.
    for (limit, _, fail) in limits {
        let key = limit.trim_start_matches("expect_").replace('_', "-");
        cases.push(case(
            &format!("measure-{key}-fail"),
            &format!("measure with {limit}: {fail} (fails)"),
            true,
            &[
                (
                    format!("measure {limit} {fail}"),
                    vec![format!(
                        "measure: {{resource: shunt, record_as: i, {limit}: {fail}}}"
                    )],
                ),
                after.clone(),
            ],
        ));
        cases.push(case(
            &format!("assert-metric-{key}-fail"),
            &format!("assert_metric with {limit}: {fail} (fails)"),
            true,
            &[
                (
                    "record".into(),
                    vec!["measure: {resource: shunt, record_as: i, unit: A}".into()],
                ),
                (
                    format!("assert {limit} {fail}"),
                    vec![format!("assert_metric: {{name: i, {limit}: {fail}}}")],
                ),
                after.clone(),
            ],
        ));
    }
    for (name, about, step) in [
        (
            "measure-tolerance",
            "expect_equal with a tolerance",
            "measure: {resource: shunt, expect_equal: 0.0125, tolerance: 0.001}",
        ),
        (
            "measure-range",
            "two range limits together",
            "measure: {resource: shunt, record_as: i, expect_greater_than: 0.01, expect_less_than: 0.013}",
        ),
        (
            "measure-unit-mismatch",
            "measure asking for another unit",
            "measure: {resource: shunt, unit: V}",
        ),
        (
            "assert-metric-unknown",
            "assert_metric on a metric never recorded",
            "assert_metric: {name: nothing, expect_less_than: 1}",
        ),
    ] {
        cases.push(case(
            name,
            about,
            true,
            &[("only".into(), vec![step.to_string()]), after.clone()],
        ));
    }
    cases
}

/// sleep and reset (method none) and an empty test.
fn control() -> Vec<Case> {
    vec![case(
        "control",
        "sleep_ms, reset with method none, a test without steps",
        true,
        &[
            (
                "sleep".into(),
                vec!["sleep_ms: 20".into(), "sleep_ms: 0".into()],
            ),
            ("reset none".into(), vec!["reset: {node: dut}".into()]),
            ("no steps".into(), vec![]),
        ],
    )]
}

pub fn all() -> Vec<Case> {
    let mut v = Vec::new();
    v.extend(uart());
    v.extend(gpio());
    v.extend(power());
    v.extend(measurement());
    v.extend(control());
    v
}

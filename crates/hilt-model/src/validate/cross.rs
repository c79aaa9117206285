//! A suite checked against the bench it will run on: every name it uses must exist and fit,
//! and every step and driver it needs must be in this build. Runs before hardware is touched.

use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::bench::{Bench, Direction, Edge, Node, ResourceDriver, Transport};
use crate::diag::Diags;
use crate::suite::{STEP_TYPES, Step, Suite};
use crate::yaml::{push_index, push_key};

/// Which optional drivers this build has. The runner passes what it was compiled with.
#[derive(Debug, Clone, Copy)]
pub struct CrossOptions<'a> {
    pub supported_steps: &'a [&'a str],
    pub supported_gpio: &'a [&'a str],
    pub supported_resources: &'a [&'a str],
}

/// A driver of the bench that this build lacks, found through the steps that use it.
/// It is reported once, at its definition in the bench file, whatever the number of steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// The dotted path of its definition in the bench (`resources.pdu.driver.type`).
    pub bench_path: String,
    pub message: String,
    pub help: String,
    /// Every step that uses it (`tests[0].steps[2].power_set`), in suite order.
    pub used_by: Vec<String>,
}

impl Unsupported {
    /// The message with the steps that use it (`used by 3 steps, first tests[0]…`).
    pub fn message_with_uses(&self) -> String {
        let n = self.used_by.len();
        let first = self.used_by.first().map(String::as_str).unwrap_or("");
        if n == 1 {
            format!("{} (used by 1 step: {first})", self.message)
        } else {
            format!("{} (used by {n} steps, first {first})", self.message)
        }
    }
}

/// Checks the suite against the bench; errors go to `d` (the suite file). Drivers the
/// build lacks come back once each, keyed by their definition, for the caller to locate
/// in the bench file.
pub fn cross(
    d: &mut Diags,
    bench: &Bench,
    suite: &Suite,
    opts: &CrossOptions<'_>,
) -> Vec<Unsupported> {
    let default_within = bench
        .defaults
        .as_ref()
        .and_then(|x| x.timeouts.as_ref())
        .and_then(|t| t.within_ms);
    let unsupported = RefCell::new(BTreeMap::new());
    // One buffer for every step's path (a suite may have tens of thousands of steps).
    let mut p = String::new();
    for (ti, test) in suite.tests.iter().enumerate() {
        p.clear();
        p.push_str("tests");
        push_index(&mut p, ti);
        p.push_str(".steps");
        let tp = p.len();
        for (si, step) in test.steps.iter().enumerate() {
            p.truncate(tp);
            push_index(&mut p, si);
            push_key(&mut p, step.type_name());
            let c = Ctx {
                bench,
                path: &p,
                default_within,
                opts,
                unsupported: &unsupported,
            };
            c.step(d, step);
        }
    }
    unsupported.into_inner().into_values().collect()
}

struct Ctx<'a> {
    bench: &'a Bench,
    path: &'a str,
    default_within: Option<u64>,
    opts: &'a CrossOptions<'a>,
    unsupported: &'a RefCell<BTreeMap<String, Unsupported>>,
}

impl Ctx<'_> {
    fn field(&self, f: &str) -> String {
        format!("{}.{f}", self.path)
    }

    /// Records that this step uses a driver the build lacks; one entry per definition.
    fn unsupported(&self, bench_path: String, message: String, help: String) {
        let mut all = self.unsupported.borrow_mut();
        let entry = all
            .entry(bench_path.clone())
            .or_insert_with(|| Unsupported {
                bench_path,
                message,
                help,
                used_by: Vec::new(),
            });
        if entry.used_by.last().map(String::as_str) != Some(self.path) {
            entry.used_by.push(self.path.to_string());
        }
    }

    fn node<'b>(&'b self, d: &mut Diags, name: &str) -> Option<&'b Node> {
        let n = self.bench.nodes.get(name);
        if n.is_none() {
            let names: Vec<&str> = self.bench.nodes.keys().map(String::as_str).collect();
            d.error_help(
                &self.field("node"),
                format!("unknown node `{name}`: the bench does not define it"),
                format!("nodes in this bench: {}", names.join(", ")),
            );
        }
        n
    }

    fn host(&self, d: &mut Diags, name: &str) {
        if self.bench.hosts.contains_key(name) {
            return;
        }
        let names: Vec<&str> = self.bench.hosts.keys().map(String::as_str).collect();
        let help = match crate::diag::suggest(name, names.iter().copied()) {
            Some(s) => format!("did you mean `{s}`?"),
            None if names.is_empty() => "the bench defines no `hosts`".to_string(),
            None => format!("hosts in this bench: {}", names.join(", ")),
        };
        d.error_help(
            &self.field("host"),
            format!("unknown host `{name}`: the bench does not define it"),
            help,
        );
    }

    fn step(&self, d: &mut Diags, step: &Step) {
        if !self.opts.supported_steps.contains(&step.type_name()) {
            debug_assert!(STEP_TYPES.contains(&step.type_name()));
            d.error_help(
                self.path,
                format!(
                    "step `{}` is not supported by this build of hilt",
                    step.type_name()
                ),
                crate::suite::UNSUPPORTED_HELP,
            );
            return;
        }
        if let Some(node_name) = step.node() {
            let Some(node) = self.node(d, node_name) else {
                return;
            };
            self.gpio_backends(node_name, node);
            if let Some(t) = step.transport() {
                self.transport(d, step, node_name, node, t);
            }
        }
        if let Some(host) = step.host() {
            self.host(d, host);
        }
        match step {
            Step::Flash(_) => {
                let node = step.node().and_then(|n| self.bench.nodes.get(n));
                if node.is_some_and(|n| n.flash.is_none()) {
                    d.error(
                        &self.field("node"),
                        "this node has no `flash` block in the bench",
                    );
                }
            }
            Step::ExpectUart(s) => self.within(d, s.within_ms),
            Step::GpioSet(s) => self.line(d, &s.node, &s.line, Direction::Output, None),
            Step::GpioGet(s) => self.line(d, &s.node, &s.line, Direction::Input, None),
            Step::GpioExpect(s) => {
                self.line(d, &s.node, &s.line, Direction::Input, None);
                self.within(d, s.within_ms);
            }
            Step::GpioWaitEdge(s) => {
                self.line(d, &s.node, &s.line, Direction::Input, Some(s.edge));
                self.within(d, s.within_ms);
            }
            Step::PowerSet(s) | Step::PowerExpect(s) => self.power(d, &s.resource, &s.outlet),
            Step::PowerCycle(s) => self.power(d, &s.resource, &s.outlet),
            Step::Measure(m) => match self.bench.resources.get(&m.resource) {
                None => self.unknown_resource(d, &m.resource),
                Some(r) if r.kind != "measurement" => d.error(
                    &self.field("resource"),
                    format!(
                        "resource `{}` has kind `{}`; `measure` needs kind `measurement`",
                        m.resource, r.kind
                    ),
                ),
                Some(r) => self.driver_supported(&m.resource, &r.driver),
            },
            Step::RunExternal(r) => self.external(d, r),
            Step::FaultInjectPowerGlitch(_)
            | Step::FaultInjectGpioGlitch(_)
            | Step::FaultInjectUartNoise(_) => self.fault(d, step),
            _ => {}
        }
    }

    fn within(&self, d: &mut Diags, w: Option<u64>) {
        if w.is_none() && self.default_within.is_none() {
            d.error_help(
                self.path,
                "no `within_ms` on the step and no `defaults.timeouts.within_ms` in the bench",
                "add `within_ms: 2000` to the step",
            );
        }
    }

    fn transport(&self, d: &mut Diags, step: &Step, node_name: &str, node: &Node, t: &str) {
        match node.transports.get(t) {
            None => {
                let names: Vec<&str> = node.transports.keys().map(String::as_str).collect();
                d.error_help(
                    &self.field("transport"),
                    format!("node `{node_name}` has no transport `{t}`"),
                    format!("transports of `{node_name}`: {}", names.join(", ")),
                );
            }
            Some(tr) if !step.allowed_backends().contains(&tr.backend()) => d.error(
                &self.field("transport"),
                format!(
                    "transport `{t}` is `{}`, but `{}` needs {}",
                    tr.backend(),
                    step.type_name(),
                    step.allowed_backends().join(" or ")
                ),
            ),
            Some(Transport::Uart { .. }) | Some(_) => {}
        }
    }

    /// Every GPIO line of a used node is opened, so each needs a driver in this build.
    fn gpio_backends(&self, node_name: &str, node: &Node) {
        for (l, line) in &node.gpio {
            let name = line.backend.name();
            if !self.opts.supported_gpio.contains(&name) {
                self.unsupported(
                    format!("nodes.{node_name}.gpio.{l}.backend"),
                    format!("node `{node_name}` line `{l}` uses GPIO backend `{name}`, which is not supported by this build of hilt"),
                    format!("supported GPIO backends: {}", self.opts.supported_gpio.join(", ")),
                );
            }
        }
    }

    fn line(&self, d: &mut Diags, node: &str, line: &str, want: Direction, edge: Option<Edge>) {
        let Some(n) = self.bench.nodes.get(node) else {
            return;
        };
        let Some(l) = n.gpio.get(line) else {
            let names: Vec<&str> = n.gpio.keys().map(String::as_str).collect();
            d.error_help(
                &self.field("line"),
                format!("node `{node}` has no GPIO line `{line}`"),
                format!("lines of `{node}`: {}", names.join(", ")),
            );
            return;
        };
        if l.direction != want {
            let verb = if want == Direction::Output {
                "written"
            } else {
                "read"
            };
            d.error(
                &self.field("line"),
                format!(
                    "line `{line}` is an {:?} line and cannot be {verb} by `{}`",
                    l.direction,
                    self.path.rsplit('.').next().unwrap_or("")
                )
                .to_lowercase(),
            );
        }
        if let Some(want_edge) = edge {
            let ok = match (l.edge, want_edge) {
                (Some(Edge::Both), _) => true,
                (Some(have), want) => have == want,
                (None, _) => false,
            };
            if !ok {
                d.error_help(
                    &self.field("edge"),
                    format!(
                        "line `{line}` is not configured to report `{}` edges",
                        want_edge.as_str()
                    ),
                    format!(
                        "set `edge: {}` (or `both`) on nodes.{node}.gpio.{line}",
                        want_edge.as_str()
                    ),
                );
            }
        }
    }

    fn unknown_resource(&self, d: &mut Diags, name: &str) {
        let names: Vec<&str> = self.bench.resources.keys().map(String::as_str).collect();
        d.error_help(
            &self.field("resource"),
            format!("unknown resource `{name}`: the bench does not define it"),
            format!(
                "resources in this bench: {}",
                if names.is_empty() {
                    "(none)".to_string()
                } else {
                    names.join(", ")
                }
            ),
        );
    }

    fn power(&self, d: &mut Diags, resource: &str, outlet: &str) {
        let Some(r) = self.bench.resources.get(resource) else {
            return self.unknown_resource(d, resource);
        };
        if !r.driver.is_power()
            || matches!(
                r.driver,
                ResourceDriver::Gpio { .. } | ResourceDriver::Scpi { .. }
            )
        {
            d.error(
                &self.field("resource"),
                format!(
                    "resource `{resource}` (driver `{}`) cannot switch power",
                    r.driver.type_name()
                ),
            );
            return;
        }
        if !r.driver.outlet_names().iter().any(|o| o == outlet) {
            d.error_help(
                &self.field("outlet"),
                format!("resource `{resource}` has no outlet `{outlet}`"),
                format!("outlets: {}", r.driver.outlet_names().join(", ")),
            );
        }
        self.driver_supported(resource, &r.driver);
    }

    /// A fault-injection step: its target and recovery oracle exist, and the bench's
    /// safety policy allows it within its limits (bench-format §7).
    fn fault(&self, d: &mut Diags, step: &Step) {
        let recovery = match step {
            Step::FaultInjectPowerGlitch(f) => &f.recovery,
            Step::FaultInjectGpioGlitch(f) => &f.recovery,
            Step::FaultInjectUartNoise(f) => &f.recovery,
            _ => return,
        };
        if let Some(node) = self.bench.nodes.get(&recovery.node) {
            match node.transports.get(&recovery.transport) {
                Some(Transport::Uart { .. }) => {}
                Some(t) => d.error(
                    &self.field("recovery.transport"),
                    format!(
                        "transport `{}` is `{}`; the recovery oracle needs a `uart` transport",
                        recovery.transport,
                        t.backend()
                    ),
                ),
                None => d.error(
                    &self.field("recovery.transport"),
                    format!(
                        "node `{}` has no transport `{}`",
                        recovery.node, recovery.transport
                    ),
                ),
            }
        } else {
            d.error(
                &self.field("recovery.node"),
                format!(
                    "unknown node `{}`: the bench does not define it",
                    recovery.node
                ),
            );
        }
        let policy = &self.bench.safety.fault_injection;
        if !policy.enabled {
            d.error_help(
                self.path,
                "fault injection is not enabled on this bench",
                "the bench owner must set `safety.fault_injection.enabled: true` and allow-list the target",
            );
            return;
        }
        let not_listed = |d: &mut Diags, what: String, list: &str, entry: String| {
            d.error_help(
                self.path,
                format!("the bench's safety policy does not allow {what}"),
                format!("add `{entry}` to `safety.fault_injection.{list}` in the bench"),
            );
        };
        let over = |d: &mut Diags, field: &str, value: u64, limit: u64, list: &str| {
            d.error_help(
                &self.field(field),
                format!(
                    "{field} {value} exceeds the bench's limit of {limit} ms (safety.fault_injection.{list})"
                ),
                format!("use at most {limit}, or ask the bench owner to raise the limit"),
            );
        };
        match step {
            Step::FaultInjectPowerGlitch(f) => {
                self.power(d, &f.resource, &f.outlet);
                match policy
                    .power
                    .iter()
                    .find(|r| r.resource == f.resource && r.outlet == f.outlet)
                {
                    None => not_listed(
                        d,
                        format!("power glitches on `{}` outlet `{}`", f.resource, f.outlet),
                        "power",
                        format!(
                            "{{resource: {}, outlet: {}, max_off_ms: {}}}",
                            f.resource, f.outlet, f.off_ms
                        ),
                    ),
                    Some(r) if f.off_ms > r.max_off_ms => {
                        over(d, "off_ms", f.off_ms, r.max_off_ms, "power")
                    }
                    Some(_) => {}
                }
            }
            Step::FaultInjectGpioGlitch(f) => {
                self.line(d, &f.node, &f.line, Direction::Output, None);
                match policy
                    .gpio
                    .iter()
                    .find(|r| r.node == f.node && r.line == f.line)
                {
                    None => not_listed(
                        d,
                        format!("GPIO glitches on `{}` line `{}`", f.node, f.line),
                        "gpio",
                        format!(
                            "{{node: {}, line: {}, max_duration_ms: {}}}",
                            f.node, f.line, f.duration_ms
                        ),
                    ),
                    Some(r) if f.duration_ms > r.max_duration_ms => {
                        over(d, "duration_ms", f.duration_ms, r.max_duration_ms, "gpio")
                    }
                    Some(_) => {}
                }
            }
            Step::FaultInjectUartNoise(f) => {
                let total = crate::validate::parse_hex_bytes(&f.data)
                    .map(|b| b.len() as u64)
                    .unwrap_or(0)
                    * f.repeat;
                match policy
                    .uart
                    .iter()
                    .find(|r| r.node == f.node && r.transport == f.transport)
                {
                    None => not_listed(
                        d,
                        format!("UART noise on `{}` transport `{}`", f.node, f.transport),
                        "uart",
                        format!(
                            "{{node: {}, transport: {}, max_total_bytes: {total}}}",
                            f.node, f.transport
                        ),
                    ),
                    Some(r) if total > r.max_total_bytes => d.error_help(
                        &self.field("repeat"),
                        format!(
                            "data × repeat is {total} bytes, more than the bench's limit of {} bytes (safety.fault_injection.uart)",
                            r.max_total_bytes
                        ),
                        "send fewer bytes, or ask the bench owner to raise `max_total_bytes`",
                    ),
                    Some(_) => {}
                }
            }
            _ => {}
        }
    }

    fn driver_supported(&self, resource: &str, driver: &ResourceDriver) {
        // BenchCI's two placeholder types parse but can do nothing (bench-format §4).
        let placeholder = match driver.type_name() {
            "gpio" => Some((
                "BenchCI's legacy GPIO placeholder and cannot switch power",
                "use `type: gpio_power` with `outlets: {name: line}`",
            )),
            "scpi" => Some((
                "BenchCI's generic SCPI placeholder and cannot be used by steps",
                "use `scpi_measurement` or `scpi_power_supply_measurement`",
            )),
            _ => None,
        };
        if let Some((what, help)) = placeholder {
            self.unsupported(
                format!("resources.{resource}.driver.type"),
                format!("resource driver `{}` is {what}", driver.type_name()),
                help.to_string(),
            );
            return;
        }
        if !self.opts.supported_resources.contains(&driver.type_name()) {
            self.unsupported(
                format!("resources.{resource}.driver.type"),
                format!(
                    "resource driver `{}` is not supported by this build of hilt",
                    driver.type_name()
                ),
                format!(
                    "supported drivers: {}",
                    self.opts.supported_resources.join(", ")
                ),
            );
        }
    }

    fn external(&self, d: &mut Diags, r: &crate::suite::RunExternal) {
        let policy = &self.bench.safety.external;
        if !policy.enabled {
            d.error_help(
                self.path,
                "run_external is not enabled on this bench",
                "the bench owner must set `safety.external.enabled: true` and define the target",
            );
            return;
        }
        let Some(t) = policy.targets.get(&r.target) else {
            let names: Vec<&str> = policy.targets.keys().map(String::as_str).collect();
            d.error_help(
                &self.field("target"),
                format!("unknown external target `{}`", r.target),
                format!("targets: {}", names.join(", ")),
            );
            return;
        };
        if r.timeout_ms > t.max_timeout_ms {
            d.error(
                &self.field("timeout_ms"),
                format!(
                    "{} exceeds the target's max_timeout_ms {}",
                    r.timeout_ms, t.max_timeout_ms
                ),
            );
        }
        if r.http.is_none() && t.argv_prefix.is_empty() {
            d.error(
                self.path,
                format!(
                    "target `{}` has no `argv_prefix`; use `http` mode",
                    r.target
                ),
            );
        }
        if r.http.is_some() && t.base_url.is_none() {
            d.error(
                self.path,
                format!(
                    "target `{}` has no `base_url`; HTTP mode is not allowed",
                    r.target
                ),
            );
        }
        let patterns = t.arg_regexes();
        for (i, a) in r.args.iter().enumerate() {
            if !patterns.iter().any(|p| p.is_match(a)) {
                d.error(
                    &self.field(&format!("args[{i}]")),
                    format!("argument `{a}` matches none of the target's arg_patterns"),
                );
            }
        }
        if let Some(h) = &r.http
            && let Some(base) = &t.base_url
        {
            for (f, url) in std::iter::once(("http.url", &h.url))
                .chain(h.poll.iter().map(|p| ("http.poll.url", &p.url)))
            {
                if !url.starts_with(base.as_str()) {
                    d.error(
                        &self.field(f),
                        format!("`{url}` is not under the target's base_url `{base}`"),
                    );
                }
            }
            if !t.methods.iter().any(|m| m.eq_ignore_ascii_case(&h.method)) {
                d.error(
                    &self.field("http.method"),
                    format!("method `{}` is not allowed by the target", h.method),
                );
            }
        }
    }
}

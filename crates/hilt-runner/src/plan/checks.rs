//! What this build supports (the driver registry) and the drivers' own parameter checks,
//! located in the bench file.

use hilt_hw::drivers::{
    GPIO_DRIVERS, RESOURCE_DRIVERS, gpio_driver, resource_driver, transport_driver,
};
use hilt_model::bench::{AuthRef, Bench};
use hilt_model::diag::Diags;
use hilt_model::{Diagnostic, Loaded};

/// The tags this build supports, for the suite-against-bench check.
pub struct Supported {
    gpio: Vec<&'static str>,
    resources: Vec<&'static str>,
}

impl Supported {
    pub fn of_build() -> Supported {
        Supported {
            gpio: GPIO_DRIVERS.iter().map(|d| d.tag()).collect(),
            resources: RESOURCE_DRIVERS.iter().map(|d| d.tag()).collect(),
        }
    }

    pub fn cross_options(&self) -> hilt_model::validate::CrossOptions<'_> {
        hilt_model::validate::CrossOptions {
            supported_steps: hilt_model::suite::SUPPORTED_STEP_TYPES,
            supported_gpio: &self.gpio,
            supported_resources: &self.resources,
        }
    }
}

/// Every registered driver checks its parameters wherever the bench uses it; each problem
/// names `file:line:column` of the field.
pub fn driver_errors(bench: &Loaded<Bench>) -> Vec<Diagnostic> {
    let file = bench.path.display().to_string();
    let mut d = Diags::new(&file, &bench.doc);
    let report = |d: &mut Diags, base: String, problems: Vec<hilt_hw::drivers::Problem>| {
        for p in problems {
            let path = if p.field.is_empty() {
                base.clone()
            } else {
                format!("{base}.{}", p.field)
            };
            match p.help {
                Some(h) => d.error_help(&path, p.message, h),
                None => d.error(&path, p.message),
            }
        }
    };
    for (name, r) in &bench.value.resources {
        if let Some(driver) = resource_driver(r.driver.type_name()) {
            report(
                &mut d,
                format!("resources.{name}.driver"),
                driver.check(&r.driver),
            );
        }
    }
    hosts(&mut d, bench);
    for (n, node) in &bench.value.nodes {
        for (t, transport) in &node.transports {
            if let Some(driver) = transport_driver(transport.backend()) {
                report(
                    &mut d,
                    format!("nodes.{n}.transports.{t}"),
                    driver.check(transport),
                );
            }
        }
        for (l, line) in &node.gpio {
            if let Some(driver) = gpio_driver(line.backend.name()) {
                report(&mut d, format!("nodes.{n}.gpio.{l}"), driver.check(line));
            }
        }
    }
    d.errors
}

/// The files the hosts name exist: every used key file and each host's known_hosts
/// (relative paths from the bench file's directory). Errors point at the field.
fn hosts(d: &mut Diags, bench: &Loaded<Bench>) {
    let dir = std::path::absolute(&bench.path)
        .ok()
        .and_then(|p| p.parent().map(std::path::Path::to_path_buf))
        .unwrap_or_default();
    let b = &bench.value;
    for (name, h) in &b.hosts {
        if let Some(k) = &h.known_hosts
            && !k.trim().is_empty()
            && !dir.join(k).is_file()
        {
            d.error_help(
                &format!("hosts.{name}.known_hosts"),
                format!("known_hosts file {} does not exist", dir.join(k).display()),
                "create it with the host keys of this host and every hop (host keys are checked strictly)",
            );
        }
    }
    for (name, a) in &b.auth_refs {
        if let AuthRef::KeyFile { path } = a
            && !path.trim().is_empty()
            && !dir.join(path).is_file()
        {
            d.error(
                &format!("auth_refs.{name}.path"),
                format!("key file {} does not exist", dir.join(path).display()),
            );
        }
    }
}

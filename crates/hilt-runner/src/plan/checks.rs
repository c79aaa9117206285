//! What this build supports (the driver registry) and the drivers' own parameter checks,
//! located in the bench file.

use hilt_hw::drivers::{
    GPIO_DRIVERS, RESOURCE_DRIVERS, gpio_driver, resource_driver, transport_driver,
};
use hilt_model::bench::Bench;
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

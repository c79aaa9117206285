//! `hilt measure RESOURCE --bench B`: read an instrument of a bench by hand, under the same
//! resource locks a run takes, without running a suite.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use hilt_hw::drivers::Opened;
use hilt_hw::locks::{self, LockConfig};
use hilt_model::LoadOptions;
use hilt_runner::classify::exit;
use serde_json::json;

#[derive(Args)]
pub struct MeasureArgs {
    /// The measurement resource (a key of the bench's `resources:`).
    pub resource: String,
    #[arg(long, short = 'b')]
    pub bench: PathBuf,
    /// How many readings to take.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub repeat: u32,
    /// Pause between readings.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=3_600_000))]
    pub interval_ms: u64,
    /// One JSON document on stdout: every reading and the statistics.
    #[arg(long)]
    pub json: bool,
}

pub fn measure(a: MeasureArgs) -> anyhow::Result<i32> {
    let bench = match hilt_model::load_bench(&a.bench, LoadOptions::default()) {
        Ok(b) => b.value,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(exit::CONFIG_ERROR);
        }
    };
    let Some(res) = bench.resources.get(&a.resource) else {
        let names: Vec<&str> = bench.resources.keys().map(String::as_str).collect();
        eprintln!(
            "error: the bench has no resource `{}` (it has: {})",
            a.resource,
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        );
        return Ok(exit::CONFIG_ERROR);
    };
    let tag = res.driver.type_name();
    if !res.driver.is_measurement() {
        eprintln!(
            "error: resource `{}` is a {tag}, not a measurement instrument",
            a.resource
        );
        return Ok(exit::CONFIG_ERROR);
    }
    let Some(driver) = hilt_hw::drivers::resource_driver(tag) else {
        eprintln!("error: measurement driver `{tag}` is not supported by this build");
        return Ok(exit::CONFIG_ERROR);
    };
    // The locks a run would take, so a reading never interleaves with a run's.
    let config = match LockConfig::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(exit::BENCH_ERROR);
        }
    };
    let held = match locks::acquire(&config, driver.lock_specs(&a.resource, &res.driver), None) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(exit::BENCH_ERROR);
        }
    };
    let mut inst = match driver.open(&a.resource, &res.driver) {
        Ok(Opened::Instrument(i)) => i,
        Ok(Opened::Power(_)) => {
            eprintln!("error: resource `{}` opened as a power switch", a.resource);
            return Ok(exit::CONFIG_ERROR);
        }
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(exit::BENCH_ERROR);
        }
    };
    let mut readings = Vec::new();
    let mut unit = None;
    let started = Instant::now();
    for i in 0..a.repeat {
        if i > 0 && a.interval_ms > 0 {
            std::thread::sleep(Duration::from_millis(a.interval_ms));
        }
        match inst.read() {
            Ok(r) => {
                if !a.json {
                    println!("{} {}", r.value, r.unit.as_deref().unwrap_or(""));
                }
                unit = r.unit.clone().or(unit);
                readings.push(
                    json!({"value": r.value, "unit": r.unit, "quantity": r.quantity,
                    "timestamp": hilt_model::run::now(), "raw_response": r.raw_response}),
                );
            }
            Err(e) => {
                eprintln!("error: reading {} failed: {e}", a.resource);
                return Ok(exit::BENCH_ERROR);
            }
        }
    }
    drop(inst);
    held.release();
    let values: Vec<f64> = readings
        .iter()
        .filter_map(|r| r["value"].as_f64())
        .collect();
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let sd = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
    let unit = unit.unwrap_or_default();
    if a.json {
        let doc = json!({"resource": a.resource, "driver": tag, "unit": unit,
            "count": values.len(), "min": min, "max": max, "mean": mean, "stddev": sd,
            "elapsed_s": started.elapsed().as_secs_f64(), "readings": readings});
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else if values.len() > 1 {
        println!(
            "{} readings of {}: min {min} {unit}, max {max} {unit}, mean {mean} {unit}, stddev {sd} {unit}",
            values.len(),
            a.resource
        );
    }
    Ok(exit::PASSED)
}

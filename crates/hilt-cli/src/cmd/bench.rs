//! `hilt bench self-test`: the agent's start-up health check, run locally.

use hilt_runner::selftest::{SelfTestOptions, self_test as run_self_test};

use crate::cli::SelfTestArgs;

/// Exit 0 when healthy or degraded, 1 when failing or unknown (BenchCI's convention).
pub fn self_test(a: SelfTestArgs) -> anyhow::Result<i32> {
    let opts = SelfTestOptions {
        open_hardware: a.open_hardware,
        read_inputs: a.read_inputs,
        read_measurements: a.read_measurements,
        log_dir: std::path::absolute(&a.log_dir)?,
    };
    let report = run_self_test(&a.bench, &opts);
    if let Some(out) = &a.output {
        std::fs::write(out, serde_json::to_vec_pretty(&report)?)?;
    }
    let status = report["health_status"].as_str().unwrap_or("unknown");
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_checks(&report);
    }
    Ok(if matches!(status, "healthy" | "degraded") {
        0
    } else {
        1
    })
}

/// Each check of a self-test report on a line (`ok`, `WARN`, `FAIL`, `skip`), a failing
/// one with its fix, then the verdict.
pub fn print_checks(report: &serde_json::Value) {
    for c in report["checks"].as_array().into_iter().flatten() {
        let mark = match c["status"].as_str().unwrap_or("") {
            "pass" => "ok  ",
            "warn" => "WARN",
            "fail" => "FAIL",
            _ => "skip",
        };
        println!(
            "{mark} {:<40} {}",
            c["id"].as_str().unwrap_or(""),
            c["message"].as_str().unwrap_or("")
        );
        if let Some(fix) = c["suggested_fix"]
            .as_str()
            .filter(|_| c["status"] != "pass")
        {
            println!("     fix: {fix}");
        }
    }
    println!(
        "\n{}: {}",
        report["health_status"].as_str().unwrap_or("unknown"),
        report["summary"].as_str().unwrap_or("")
    );
}

//! `hilt validate`: load and cross-check files, print located diagnostics.

use hilt_model::{Diagnostic, LoadError, LoadOptions};
use hilt_runner::classify::exit;

use crate::cli::ValidateArgs;
use crate::render;

pub fn validate(a: ValidateArgs) -> anyhow::Result<i32> {
    let lo = LoadOptions { strict: a.strict };
    let mut errors: Vec<Diagnostic> = Vec::new();
    let mut warnings: Vec<Diagnostic> = Vec::new();
    let mut io_errors: Vec<String> = Vec::new();
    let mut take = |e: LoadError, errors: &mut Vec<Diagnostic>| match e {
        LoadError::Io { .. } => io_errors.push(e.to_string()),
        LoadError::Invalid { diagnostics } => errors.extend(diagnostics),
    };
    let bench = match hilt_model::load_bench(&a.bench, lo) {
        Ok(b) => {
            warnings.extend(b.warnings.clone());
            Some(b)
        }
        Err(e) => {
            take(e, &mut errors);
            None
        }
    };
    let suite = match a.suite.as_ref().map(|p| hilt_model::load_suite(p, lo)) {
        Some(Ok(s)) => {
            warnings.extend(s.warnings.clone());
            Some(s)
        }
        Some(Err(e)) => {
            take(e, &mut errors);
            None
        }
        None => None,
    };
    // The scoped checks need the loaded files after the plan has taken its own copies.
    let scoped = a
        .scope
        .and(bench.as_ref())
        .map(|b| (b.value.clone(), suite.as_ref().map(|s| s.value.clone())));
    match (bench, suite) {
        // The same plan a run builds: cross-checks, driver checks, compiled patterns.
        (Some(b), Some(s)) => {
            match hilt_runner::Plan::from_loaded(b, s, false) {
                // The process ends right after printing: handing a 20,000-step plan back to
                // the allocator piece by piece would only add to the wait.
                Ok(plan) => std::mem::forget(plan),
                Err(e) => errors.extend(e.diagnostics),
            }
        }
        (Some(b), None) => errors.extend(hilt_runner::plan::driver_errors(&b)),
        (None, _) => {}
    }
    let ok = errors.is_empty() && io_errors.is_empty();
    if let Some(scope) = a.scope {
        let config = super::validate_scopes::ConfigOutcome {
            ok,
            errors: errors
                .iter()
                .map(|e| e.to_string())
                .chain(io_errors.iter().cloned())
                .collect(),
            warnings: warnings.len(),
        };
        return super::validate_scopes::run(&a, scope, config, scoped);
    }
    if a.json {
        let doc = serde_json::json!({"ok": ok, "errors": errors, "warnings": warnings, "io_errors": io_errors});
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        for e in &io_errors {
            eprintln!("error: {e}");
        }
        render::diagnostics("error", &errors);
        render::diagnostics("warning", &warnings);
        if ok {
            let what = if a.suite.is_some() {
                "bench and suite are"
            } else {
                "bench is"
            };
            eprintln!(
                "ok: {what} valid ({} warning{})",
                warnings.len(),
                if warnings.len() == 1 { "" } else { "s" }
            );
        } else {
            eprintln!(
                "invalid: {} error{}",
                errors.len() + io_errors.len(),
                if errors.len() + io_errors.len() == 1 {
                    ""
                } else {
                    "s"
                }
            );
        }
    }
    Ok(if ok { exit::PASSED } else { exit::CONFIG_ERROR })
}

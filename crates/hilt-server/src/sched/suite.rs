//! A submitted suite, parsed once at submission: invalid suites are refused with located
//! diagnostics, and the plan's "uses" set says which parts of a bench the run touches.

use hilt_model::LoadOptions;
use hilt_runner::plan::Uses;

/// The concerns (`resource:<r>`, `transport:<node>.<t>`, `gpio:<node>`, `flash:<node>`,
/// `node:<node>`) the suite uses, or its diagnostics (`suite.yaml:LINE:COL: message`).
///
/// The server has the bench's summary, not its file, so `Uses` is computed against an
/// empty bench: a used node counts as using its GPIO (the run opens every line of a used
/// node that has any), and a node's self-identification transport is not known here.
pub fn uses(text: &str, skip_flash: bool) -> Result<Vec<String>, String> {
    let suite =
        hilt_model::load::parse_suite(text, "suite.yaml", LoadOptions::default()).map_err(|e| {
            match e {
                hilt_model::LoadError::Invalid { diagnostics } => diagnostics
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join("\n"),
                other => other.to_string(),
            }
        })?;
    let bench: hilt_model::bench::Bench =
        serde_json::from_value(serde_json::json!({"bench": {"name": "server"}, "nodes": {}}))
            .map_err(|e| e.to_string())?;
    let u = Uses::of(&bench, &suite.value, skip_flash);
    let mut out = Vec::new();
    for n in &u.nodes {
        out.push(format!("node:{n}"));
        out.push(format!("gpio:{n}"));
    }
    out.extend(
        u.transports
            .iter()
            .map(|(n, t)| format!("transport:{n}.{t}")),
    );
    out.extend(u.flash_nodes.iter().map(|n| format!("flash:{n}")));
    out.extend(u.resources.iter().map(|r| format!("resource:{r}")));
    out.sort();
    out.dedup();
    Ok(out)
}

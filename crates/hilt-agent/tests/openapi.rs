//! The served OpenAPI document describes every body with a real schema: no request or
//! response body is a bare `Object` (a schema with no properties, no reference, no items).

use hilt_testkit::agent as common;

use common::Lab;
use serde_json::Value;

/// A schema that says nothing about its shape.
fn bare(schema: &Value) -> bool {
    if schema.get("$ref").is_some() {
        return false;
    }
    match schema["type"].as_str() {
        Some("array") => bare(&schema["items"]),
        Some("object") | None => {
            schema.get("properties").is_none()
                && schema.get("additionalProperties").is_none()
                && schema.get("oneOf").is_none()
                && schema.get("allOf").is_none()
        }
        Some(_) => false,
    }
}

#[test]
fn no_body_in_the_served_document_is_a_bare_object() {
    let lab = Lab::new();
    let agent = lab.start(None);
    let doc = agent.get_json("/openapi.json");
    let mut found_bare = Vec::new();
    let mut bodies = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let mut check = |what: String, content: &Value| {
                for (_, media) in content.as_object().into_iter().flatten() {
                    bodies += 1;
                    if bare(&media["schema"]) {
                        found_bare.push(format!("{method} {path} {what}"));
                    }
                }
            };
            check("request".into(), &op["requestBody"]["content"]);
            for (status, resp) in op["responses"].as_object().unwrap() {
                check(status.clone(), &resp["content"]);
            }
        }
    }
    assert!(bodies > 40, "only {bodies} bodies described");
    found_bare.sort();
    assert!(
        found_bare.is_empty(),
        "bare Object bodies in /openapi.json: {found_bare:?}"
    );
    // The shapes are the wire crate's, and every reference names one of them.
    let schemas = &doc["components"]["schemas"];
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    for r in &refs {
        let name = r.strip_prefix("#/components/schemas/").unwrap_or(r);
        assert!(schemas.get(name).is_some(), "dangling reference {r}");
    }
    for name in [
        "RunView",
        "RunEvent",
        "Accepted",
        "EventsPage",
        "ErrorBody",
        "Health",
        "BenchSummary",
        "BenchDetail",
        "BenchHealth",
        "GpioStart",
        "GpioSet",
        "GpioWaitEdge",
    ] {
        assert!(
            schemas.get(name).is_some(),
            "{name} missing from components"
        );
    }
}

/// Every `$ref` in the document.
fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => collect_refs(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

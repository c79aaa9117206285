//! The served OpenAPI document describes every body with a real schema: no request or
//! response body is a bare `Object` (a schema with no properties, no reference, no items).

use hilt_testkit::agent as common;

use common::Lab;
use serde_json::Value;

/// Bodies not typed yet, by "METHOD path status-or-request". Each entry must still be bare
/// (the test fails when one gets typed, so this list only shrinks).
const STILL_UNTYPED: &[&str] = &[
    "get /v1/benches 200",
    "get /v1/benches/{bench_id} 200",
    "get /v1/benches/{bench_id}/health 200",
    "post /v1/benches/{bench_id}/health/refresh 200",
    "post /v1/gpio/session/start request",
    "post /v1/gpio/session/stop request",
    "post /v1/gpio/set request",
    "post /v1/gpio/get request",
    "post /v1/gpio/wait_value request",
    "post /v1/gpio/wait_edge request",
];

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
    let mut expected: Vec<String> = STILL_UNTYPED.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(found_bare, expected, "bare Object bodies in /openapi.json");
    // The run shapes are the wire crate's.
    let schemas = &doc["components"]["schemas"];
    for name in [
        "RunView",
        "RunEvent",
        "Accepted",
        "EventsPage",
        "ErrorBody",
        "Health",
    ] {
        assert!(
            schemas.get(name).is_some(),
            "{name} missing from components"
        );
    }
}

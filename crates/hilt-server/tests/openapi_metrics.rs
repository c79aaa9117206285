//! `GET /openapi.json` lists exactly the routes the router serves, each body with a schema
//! from the wire crate; `GET /metrics` is Prometheus text that needs an admin token (or
//! `--metrics-public`) and whose figures follow submissions, assignments and events.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{BOOT, Db, Server};
use serde_json::{Value, json};

/// (METHOD, path) of every `.route(…)` in the router's source.
fn router_routes() -> BTreeSet<(String, String)> {
    let src = include_str!("../src/api/mod.rs");
    let method = regex::Regex::new(r"(?:^|[^A-Za-z0-9_:])(get|post|put|delete|patch)\(").unwrap();
    let mut out = BTreeSet::new();
    let mut rest = src;
    while let Some(at) = rest.find(".route(") {
        let call = &rest[at + ".route(".len()..];
        // The call's text up to its closing parenthesis.
        let mut depth = 1;
        let end = call
            .char_indices()
            .find_map(|(i, c)| {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                (depth == 0).then_some(i)
            })
            .expect("unbalanced .route(");
        let body = &call[..end];
        let path = body
            .split('"')
            .nth(1)
            .expect("a route without a path literal");
        for m in method.captures_iter(body) {
            out.insert((m[1].to_uppercase(), path.to_string()));
        }
        rest = &call[end..];
    }
    assert!(out.len() > 15, "only {} routes found: {out:?}", out.len());
    out
}

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

#[test]
fn the_document_lists_every_served_route_with_typed_bodies() {
    let s = Server::start(&Db::Sqlite, |_| {});
    let r = s.call("GET", "/openapi.json", None, &[], None);
    assert_eq!(r.status, 200, "{}", r.text);
    let doc = r.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");

    let mut documented = BTreeSet::new();
    let mut bodies = 0;
    let mut schemaless = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            documented.insert((method.to_uppercase(), path.clone()));
            let mut check = |what: String, content: &Value| {
                for (media, m) in content.as_object().into_iter().flatten() {
                    bodies += 1;
                    if m.get("schema").is_none() || bare(&m["schema"]) {
                        schemaless.push(format!("{method} {path} {what} {media}"));
                    }
                }
            };
            check("request".into(), &op["requestBody"]["content"]);
            let responses = op["responses"].as_object().unwrap();
            assert!(!responses.is_empty(), "{method} {path} has no responses");
            for (status, resp) in responses {
                check(status.clone(), &resp["content"]);
            }
        }
    }
    assert_eq!(
        documented,
        router_routes(),
        "documented routes (left) differ from the router's (right)"
    );
    assert!(bodies > 50, "only {bodies} bodies described");
    assert!(
        schemaless.is_empty(),
        "bodies without a schema: {schemaless:?}"
    );
    let schemas = &doc["components"]["schemas"];
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    for r in &refs {
        let name = r.strip_prefix("#/components/schemas/").unwrap_or(r);
        assert!(schemas.get(name).is_some(), "dangling reference {r}");
    }
    for name in [
        "ServerRun",
        "SubmitRun",
        "ServerMultipartRun",
        "Assignment",
        "ErrorBody",
    ] {
        assert!(schemas.get(name).is_some(), "{name} missing");
    }

    // Every documented operation is served: no 405 and no "no such endpoint".
    for (method, path) in &documented {
        let concrete = path
            .replace("{run_id}", "r")
            .replace("{token_id}", "t")
            .replace("{name}", "n");
        let r = s.call(method, &concrete, None, &[], None);
        assert_ne!(r.status, 405, "{method} {path}: {}", r.text);
        assert!(
            !(r.status == 404 && r.text.contains("no such endpoint")),
            "{method} {path} is documented but not served"
        );
    }
}

/// `name{labels}` → value, checking every sample has a TYPE line.
fn scrape(s: &Server, token: Option<&str>) -> BTreeMap<String, f64> {
    let r = s.call("GET", "/metrics", token, &[], None);
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.content_type.starts_with("text/plain"),
        "{}",
        r.content_type
    );
    let mut typed = BTreeSet::new();
    let mut out = BTreeMap::new();
    for line in r.text.lines() {
        if let Some(t) = line.strip_prefix("# TYPE ") {
            let mut it = t.split(' ');
            let (name, kind) = (it.next().unwrap(), it.next().unwrap());
            assert!(["gauge", "counter", "histogram"].contains(&kind), "{line}");
            typed.insert(name.to_string());
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (key, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {line:?}"));
        let name = key.split('{').next().unwrap();
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| typed.contains(*f)))
            .unwrap_or(name);
        assert!(typed.contains(family), "{name} has no TYPE line");
        let v: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        out.insert(key.to_string(), v);
    }
    out
}

fn metrics_follow_the_queue(db: Db) {
    let s = Server::start(&db, |_| {});
    // Auth: no token 401, an agent or non-admin user token 403, the admin token 200.
    s.call("GET", "/metrics", None, &[], None).error(401);
    let (_, agent) = s.token(BOOT, "default", "agent");
    let (_, user) = s.token(BOOT, "default", "user");
    s.call("GET", "/metrics", Some(&agent), &[], None)
        .error(403);
    let e = s.call("GET", "/metrics", Some(&user), &[], None).error(403);
    assert!(e.contains("--metrics-public"), "{e}");

    let m = scrape(&s, Some(BOOT));
    assert_eq!(m["hilt_server_queue_depth"], 0.0);
    assert_eq!(m["hilt_server_runs{state=\"queued\"}"], 0.0);
    assert_eq!(m["hilt_server_dispatch_latency_seconds_count"], 0.0);
    assert_eq!(m["hilt_server_events_ingested_total"], 0.0);

    let bench = s.sync(&agent, "m", "rig", "healthy");
    let run = s.submit(BOOT, &bench);
    s.submit(BOOT, &bench);
    let m = scrape(&s, Some(BOOT));
    assert_eq!(m["hilt_server_queue_depth"], 2.0);
    assert_eq!(m["hilt_server_runs{state=\"queued\"}"], 2.0);
    assert_eq!(m["hilt_server_runs_submitted_total"], 2.0);
    assert_eq!(m["hilt_server_agents_online"], 1.0);

    let v = s
        .agent(&agent, "m", "GET", "/v1/agents/assignments/next", None)
        .json();
    assert_eq!(v["assignment"]["run_id"], run.as_str());
    let events = json!({"events": [
        {"timestamp": "2026-01-01T00:00:00Z", "event_type": "run.started", "message": "a", "data": {}},
        {"timestamp": "2026-01-01T00:00:01Z", "event_type": "test.started", "message": "b", "data": {}}]});
    let r = s.agent(
        &agent,
        "m",
        "POST",
        &format!("/v1/agents/runs/{run}/events"),
        Some(events),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let m = scrape(&s, Some(BOOT));
    assert_eq!(m["hilt_server_queue_depth"], 1.0);
    assert_eq!(m["hilt_server_runs{state=\"running\"}"], 1.0);
    assert_eq!(m["hilt_server_events_ingested_total"], 2.0);
    assert_eq!(m["hilt_server_dispatch_latency_seconds_count"], 1.0);
    assert_eq!(
        m["hilt_server_dispatch_latency_seconds_bucket{le=\"+Inf\"}"],
        1.0
    );
    assert_eq!(
        m["hilt_server_dispatch_latency_seconds_bucket{le=\"3600\"}"],
        1.0
    );
    assert!(m["hilt_server_dispatch_latency_seconds_sum"] < 60.0);

    // --metrics-public: no token needed. (A second server: a fresh SQLite data dir, the
    // same PostgreSQL database.)
    let open = Server::start(&db, |c| c.metrics_public = true);
    let queued = if matches!(db, Db::Sqlite) { 0.0 } else { 1.0 };
    assert_eq!(scrape(&open, None)["hilt_server_queue_depth"], queued);
}

crate::scenarios!(metrics_follow_the_queue);

//! Fuzzing the HTTP surface: random methods, paths under /v1/…, headers and bodies (bytes,
//! JSON, multipart-ish text), with and without the token. The agent must always answer,
//! never with a 5xx, and keep working afterwards.

use hilt_testkit::agent as common;

use std::time::{Duration, Instant};

use common::{Lab, TOKEN};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::Value;

#[derive(Debug, Clone)]
struct Req {
    method: String,
    path: String,
    /// 0 none, 1 the token, 2 a wrong token, 3 garbage header value.
    auth: u8,
    content_type: Option<String>,
    client: Option<String>,
    body: Vec<u8>,
    chunked: bool,
}

impl Req {
    fn bytes(&self) -> Vec<u8> {
        let mut h = format!(
            "{} {} HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n",
            self.method, self.path
        );
        match self.auth {
            1 => h.push_str(&format!("Authorization: Bearer {TOKEN}\r\n")),
            2 => h.push_str("Authorization: Bearer nope\r\n"),
            3 => h.push_str("Authorization: Bearer \u{7f}t0k\r\n"),
            _ => {}
        }
        if let Some(ct) = &self.content_type {
            h.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        if let Some(c) = &self.client {
            h.push_str(&format!("X-Hilt-Client: {c}\r\n"));
        }
        let mut out;
        if self.chunked {
            h.push_str("Transfer-Encoding: chunked\r\n\r\n");
            out = h.into_bytes();
            for part in self.body.chunks(97) {
                out.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
                out.extend_from_slice(part);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
        } else {
            h.push_str(&format!("Content-Length: {}\r\n\r\n", self.body.len()));
            out = h.into_bytes();
            out.extend_from_slice(&self.body);
        }
        out
    }
}

const KEYS: &[&str] = &[
    "bench_id",
    "suite_yaml",
    "artifact_relpath",
    "artifact_filename",
    "artifact_base64",
    "skip_flash",
    "verbose",
    "session_id",
    "chip",
    "lines",
    "direction",
    "bias",
    "edge",
    "channel",
    "value",
    "timeout_ms",
    "17",
    "x",
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(KEYS).prop_map(str::to_string),
        1 => "[\\PC]{0,8}",
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (0u64..700_000).prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "[\\PC]{0,24}".prop_map(Value::from),
        proptest::sample::select(vec![
            "m1",
            "sim:fuzz",
            "input",
            "output",
            "both",
            "rising",
            "pull_up",
            "fw.bin",
            "../x.bin",
            "QUJD",
            "!!",
            "version: 1\n",
            "true",
            "0",
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec((key(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn multipartish() -> impl Strategy<Value = (String, Vec<u8>)> {
    let part = (
        proptest::sample::select(vec![
            "bench_yaml",
            "suite_yaml",
            "artifact",
            "skip_flash",
            "verbose",
            "",
            "x\"y",
        ]),
        proptest::option::of("[\\PC]{0,12}"),
        proptest::collection::vec(any::<u8>(), 0..64),
        any::<bool>(),
    );
    (
        proptest::collection::vec(part, 0..4),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(parts, close, right_boundary)| {
            let mut body = Vec::new();
            for (name, file, data, crlf) in parts {
                body.extend_from_slice(b"--bnd\r\nContent-Disposition: form-data; name=\"");
                body.extend_from_slice(name.as_bytes());
                body.push(b'"');
                if let Some(f) = file {
                    body.extend_from_slice(b"; filename=\"");
                    body.extend_from_slice(f.as_bytes());
                    body.push(b'"');
                }
                body.extend_from_slice(if crlf { b"\r\n\r\n" } else { b"\n\n" });
                body.extend_from_slice(&data);
                body.extend_from_slice(b"\r\n");
            }
            if close {
                body.extend_from_slice(b"--bnd--\r\n");
            }
            let ct = if right_boundary {
                "multipart/form-data; boundary=bnd"
            } else {
                "multipart/form-data; boundary=other"
            };
            (ct.to_string(), body)
        })
}

fn path(run: String) -> impl Strategy<Value = String> {
    let id = prop_oneof![
        Just(run),
        Just("m1".to_string()),
        Just("0123456789ab".to_string()),
        "[a-z0-9]{0,16}",
        "[a-zA-Z0-9._~%-]{1,20}",
        Just("..%2F..%2Fetc".to_string()),
        Just("%00".to_string()),
        Just("%FF%FE".to_string()),
    ];
    let query = "[a-zA-Z0-9=&%_.-]{0,24}";
    let known = (
        proptest::sample::select(vec![
            "/v1/benches",
            "/v1/benches/{}",
            "/v1/benches/{}/health",
            "/v1/benches/{}/health/refresh",
            "/v1/runs",
            "/v1/runs/json",
            "/v1/runs/{}",
            "/v1/runs/{}/events",
            "/v1/runs/{}/events/stream",
            "/v1/runs/{}/cancel",
            "/v1/runs/{}/artifacts.zip",
            "/v1/gpio/session/start",
            "/v1/gpio/session/stop",
            "/v1/gpio/set",
            "/v1/gpio/get",
            "/v1/gpio/wait_value",
            "/v1/gpio/wait_edge",
            "/health",
            "/metrics",
            "/openapi.json",
        ]),
        id,
        proptest::option::of(query),
    )
        .prop_map(|(t, id, q)| {
            let mut p = t.replace("{}", &id);
            if let Some(q) = q {
                p.push('?');
                p.push_str(&q);
            }
            p
        });
    prop_oneof![
        6 => known,
        2 => "/v1/[a-zA-Z0-9_./%?=&~+-]{0,40}".prop_map(|s| s),
        1 => "/v1/(runs|benches|gpio)/[!-~]{0,30}".prop_map(|s| s),
        1 => "[!-~]{0,20}".prop_map(|s| s),
    ]
}

fn request(run: String) -> impl Strategy<Value = Req> {
    let method = prop_oneof![
        4 => Just("GET".to_string()),
        4 => Just("POST".to_string()),
        1 => proptest::sample::select(vec!["PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
            .prop_map(str::to_string),
        1 => "[A-Z]{1,8}",
    ];
    let body = prop_oneof![
        2 => proptest::collection::vec(any::<u8>(), 0..512)
            .prop_map(|b| (None::<String>, b)),
        4 => json_value().prop_map(|v| (Some("application/json".to_string()), v.to_string().into_bytes())),
        3 => multipartish().prop_map(|(ct, b)| (Some(ct), b)),
        1 => ("[ -~]{0,40}", proptest::collection::vec(any::<u8>(), 0..128))
            .prop_map(|(ct, b)| (Some(ct), b)),
    ];
    (
        method,
        path(run),
        0u8..4,
        body,
        proptest::option::weighted(0.1, "[ -~]{0,20}"),
        proptest::bool::weighted(0.15),
    )
        .prop_map(
            |(method, path, auth, (content_type, body), client, chunked)| Req {
                method,
                path,
                auth,
                content_type,
                client,
                body,
                chunked,
            },
        )
}

#[test]
fn random_requests_never_get_a_5xx() {
    let lab = Lab::new();
    let bench = lab.mock_bench("m1.yaml", "m1");
    let cfg = lab.agent_yaml(&[("m1", &bench)], "");
    let agent = lab.start(Some(&cfg));
    let run = agent.submit("m1", &common::sleep_suite(1));
    agent.wait_finished(&run);

    let started = Instant::now();
    let mut runner = TestRunner::new(Config {
        cases: 12_000,
        failure_persistence: None,
        max_shrink_time: 30_000,
        ..Config::default()
    });
    let addr = agent.addr;
    let seen = std::sync::Mutex::new(std::collections::BTreeMap::<u16, usize>::new());
    let result = runner.run(&request(run.clone()), |req| {
        let status = common::raw_status(addr, &req.bytes(), Duration::from_secs(5));
        let Some(status) = status else {
            return Err(TestCaseError::fail(format!("no answer to {req:?}")));
        };
        *seen.lock().unwrap().entry(status).or_default() += 1;
        if status >= 500 {
            return Err(TestCaseError::fail(format!("{status} for {req:?}")));
        }
        if req.auth != 1 && req.path.starts_with("/v1/") && status == 200 {
            return Err(TestCaseError::fail(format!(
                "200 without the token for {req:?}"
            )));
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let seen = seen.into_inner().unwrap();
    eprintln!(
        "fuzz: {} requests in {:?}, statuses {seen:?}",
        seen.values().sum::<usize>(),
        started.elapsed()
    );

    // Raw garbage instead of HTTP.
    let mut raw = TestRunner::new(Config {
        cases: 200,
        failure_persistence: None,
        ..Config::default()
    });
    raw.run(&proptest::collection::vec(any::<u8>(), 1..300), |bytes| {
        let mut bytes = bytes;
        bytes.extend_from_slice(b"\r\n\r\n");
        if let Some(s) = common::raw_status(addr, &bytes, Duration::from_millis(500)) {
            prop_assert!(s < 500, "{s} for raw {bytes:?}");
        }
        Ok(())
    })
    .unwrap();

    // Still healthy and still working.
    let h = agent.get_json("/health");
    assert_eq!(h["ok"], true);
    let after = agent.submit("m1", &common::sleep_suite(1));
    assert_eq!(agent.wait_finished(&after)["status"], "done");
    assert_eq!(agent.run(&run)["status"], "done");
}

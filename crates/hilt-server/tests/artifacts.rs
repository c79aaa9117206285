//! The artifact store on S3 (`--artifacts s3://bucket/prefix`) against a real S3-protocol
//! server on loopback (moto): firmware submitted with a run is streamed into the bucket,
//! the agent downloads it through the assignment's `firmware_url`, uploads its results,
//! and the user downloads them byte-identical; the objects are in the bucket under the
//! prefix. A store that stops answering gives 503 JSON errors, not hangs; a bad bucket or
//! an unreachable endpoint stops the server at start with a clear error. Multipart
//! submissions into the default store (the data dir) are checked part by part, and a
//! refused one leaves no file behind.

mod common;

use std::time::{Duration, Instant};

use common::moto::Moto;
use common::{BOOT, Db, Server, multipart};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const BUCKET: &str = "hilt-artifacts";
const PREFIX: &str = "ci/hilt";

/// Deterministic bytes that do not compress or repeat in a short period.
fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A multipart submission: text parts and one firmware file part.
fn submission(bench: &str, firmware: &[u8], name: &str) -> (String, Vec<u8>) {
    let boundary = "hiltsubmit5e1d";
    let mut b = Vec::new();
    for (k, v) in [
        ("bench_id", bench),
        ("suite_yaml", "version: 1\nsuite: {name: s}\ntests: []\n"),
        ("skip_flash", "false"),
    ] {
        b.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    b.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"artifact\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    b.extend_from_slice(firmware);
    b.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), b)
}

fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// GET of a full URL without any token (as BenchCI fetches `firmware_url`): status, body.
fn plain_get(url: &str) -> (u16, Vec<u8>) {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .new_agent();
    let mut r = agent.get(url).call().unwrap();
    let status = r.status().as_u16();
    let body = r
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_vec()
        .unwrap();
    (status, body)
}

fn s3_server(moto: &Moto, url: &str) -> Server {
    let options = moto.options();
    let url = url.to_string();
    Server::start(&Db::Sqlite, move |c| {
        c.artifacts = Some(url);
        c.s3_options = options;
    })
}

#[test]
fn firmware_and_results_go_through_the_bucket_byte_identical() {
    let Some(mut moto) = Moto::start() else {
        return;
    };
    moto.create_bucket(BUCKET);
    let s = s3_server(&moto, &format!("s3://{BUCKET}/{PREFIX}"));
    let (_, agent) = s.token(BOOT, "default", "agent");
    let bench = s.sync(&agent, "m", "rig", "healthy");

    // 1. Submit with a 7 MB firmware: more than one multipart part.
    let firmware = data(7 * 1024 * 1024 + 123, 1);
    let (ct, body) = submission(&bench, &firmware, "app.bin");
    let r = s.call("POST", "/v1/runs", Some(BOOT), &[], Some((&ct, body)));
    assert_eq!(r.status, 201, "{}", r.text);
    let run = r.json()["run_id"].as_str().unwrap().to_string();

    // 2. The agent is assigned the run and downloads the firmware by its URL, no token.
    let v = s
        .agent(&agent, "m", "GET", "/v1/agents/assignments/next", None)
        .json();
    let a = &v["assignment"];
    assert_eq!(a["run_id"], run.as_str(), "{v}");
    assert_eq!(
        a["artifact_base64"],
        Value::Null,
        "firmware is never inlined"
    );
    assert_eq!(a["artifact_filename"], "app.bin");
    assert_eq!(a["firmware_sha256"], sha(&firmware).as_str());
    let url = a["firmware_url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!(
            "http://{}/v1/agents/runs/{run}/firmware/app.bin?key=",
            s.addr
        )),
        "{url}"
    );
    assert!(
        a["firmware_url_redacted"]
            .as_str()
            .unwrap()
            .ends_with("?key=<redacted>")
    );
    let (status, got) = plain_get(url);
    assert_eq!(status, 200);
    assert!(got == firmware, "the downloaded firmware differs");
    // A wrong key is refused; so is the right one for another file name.
    let flipped = if url.ends_with('0') { '1' } else { '0' };
    let wrong = format!("{}{flipped}", &url[..url.len() - 1]);
    assert_eq!(plain_get(&wrong).0, 403);
    assert_eq!(plain_get(&url.replace("app.bin", "other.bin")).0, 403);

    // 3. The agent reports and uploads a 6 MB results archive, then completes.
    let r = s.agent(
        &agent,
        "m",
        "POST",
        &format!("/v1/agents/runs/{run}/events"),
        Some(json!({"events": [{"timestamp": "2026-01-01T00:00:00Z", "event_type": "run.started", "message": "m", "data": {}}]})),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let zip = data(6 * 1024 * 1024 + 7, 2);
    let (ct, body) = multipart("artifact_zip", "artifacts.zip", &zip);
    let r = s.call(
        "POST",
        &format!("/v1/agents/runs/{run}/artifacts"),
        Some(&agent),
        &[("X-BenchCI-Agent-Machine-ID", "m")],
        Some((&ct, body)),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let r = s.agent(
        &agent,
        "m",
        "POST",
        &format!("/v1/agents/runs/{run}/complete"),
        Some(json!({"status": "done", "exit_code": 0})),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    // The firmware URL dies with the lease.
    assert_eq!(plain_get(url).0, 409);

    // 4. The user downloads the results byte-identical; the run records size and hash.
    let v = s.user(BOOT, "GET", &format!("/v1/runs/{run}"), None).json();
    assert_eq!(v["artifacts"]["sha256"], sha(&zip).as_str());
    assert_eq!(v["artifacts"]["size_bytes"], zip.len());
    let (status, got) = plain_get_auth(&s, &format!("/v1/runs/{run}/artifacts.zip"));
    assert_eq!(status, 200);
    assert!(got == zip, "the downloaded results differ");

    // 5. Both objects are in the bucket, under the prefix.
    let objects = moto.list(BUCKET, "");
    assert_eq!(
        objects,
        vec![
            (
                format!("{PREFIX}/runs/{run}/artifacts.zip"),
                zip.len() as u64
            ),
            (
                format!("{PREFIX}/runs/{run}/firmware/app.bin"),
                firmware.len() as u64
            ),
        ]
    );

    // 6. The store dies in the middle of an upload: the agent gets a 503 JSON error, not a
    //    hang. (The body is small enough to sit in socket buffers, so the client reads the
    //    answer whenever the server gives it.)
    let second = s.submit(BOOT, &bench);
    let v = s
        .agent(&agent, "m", "GET", "/v1/agents/assignments/next", None)
        .json();
    assert_eq!(v["assignment"]["run_id"], second.as_str(), "{v}");
    let (ct, body) = multipart("artifact_zip", "artifacts.zip", &data(1024 * 1024, 9));
    let (first, rest) = body.split_at(600 * 1024);
    let mut dying = Dying {
        first,
        rest,
        moto: &mut moto,
        stage: 0,
    };
    let t = Instant::now();
    let client = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(90)))
        .build()
        .new_agent();
    let mut resp = client
        .post(format!(
            "http://{}/v1/agents/runs/{second}/artifacts",
            s.addr
        ))
        .header("Authorization", format!("Bearer {agent}"))
        .header("X-BenchCI-Agent-Machine-ID", "m")
        .header("Content-Type", &ct)
        .send(ureq::SendBody::from_reader(&mut dying))
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap();
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("artifact store is unavailable"), "{text}");
    assert!(
        t.elapsed() < Duration::from_secs(60),
        "took {:?}",
        t.elapsed()
    );

    // 7. The store stays down: uploads and downloads fail with 503, promptly.
    let t = Instant::now();
    let (ct, body) = submission(&bench, &data(100_000, 3), "late.bin");
    let r = s.call("POST", "/v1/runs", Some(BOOT), &[], Some((&ct, body)));
    let e = r.error(503);
    assert!(e.contains("artifact store is unavailable"), "{e}");
    let r = s.user(BOOT, "GET", &format!("/v1/runs/{run}/artifacts.zip"), None);
    let e = r.error(503);
    assert!(e.contains("artifact store is unavailable"), "{e}");
    assert!(
        t.elapsed() < Duration::from_secs(60),
        "503s took {:?}",
        t.elapsed()
    );
    // Nothing was queued by the failed submission.
    let list = s.user(BOOT, "GET", "/v1/runs", None).json();
    assert_eq!(list["runs"].as_array().unwrap().len(), 2, "{list}");
}

/// A request body that stops the S3 server half-way: its first bytes (the part's headers
/// and some data), then — once the server has had time to start the multipart upload —
/// moto is killed and the rest follows.
struct Dying<'a> {
    first: &'a [u8],
    rest: &'a [u8],
    moto: &'a mut Moto,
    stage: u8,
}

impl std::io::Read for Dying<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let src = if self.first.is_empty() {
            if self.stage == 0 {
                std::thread::sleep(Duration::from_millis(500));
                self.moto.stop();
                self.stage = 1;
            }
            &mut self.rest
        } else {
            &mut self.first
        };
        let n = buf.len().min(src.len());
        buf[..n].copy_from_slice(&src[..n]);
        *src = &src[n..];
        Ok(n)
    }
}

fn plain_get_auth(s: &Server, path: &str) -> (u16, Vec<u8>) {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .new_agent();
    let mut r = agent
        .get(format!("http://{}{path}", s.addr))
        .header("Authorization", format!("Bearer {BOOT}"))
        .call()
        .unwrap();
    let status = r.status().as_u16();
    let body = r
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_vec()
        .unwrap();
    (status, body)
}

/// `serve` with these settings fails at start; returns its error text.
fn start_error(tune: impl FnOnce(&mut hilt_server::ServerSettings)) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = hilt_server::ServerSettings::new(dir.path().join("data"));
    tune(&mut settings);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let t = Instant::now();
    let err = rt.block_on(async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        hilt_server::serve(l, settings, std::future::pending())
            .await
            .expect_err("the server started with an unusable artifact store")
    });
    assert!(
        t.elapsed() < Duration::from_secs(60),
        "took {:?}",
        t.elapsed()
    );
    err.to_string()
}

#[test]
fn a_missing_bucket_stops_the_server_at_start() {
    let Some(moto) = Moto::start() else {
        return;
    };
    let options = moto.options();
    let e = start_error(|c| {
        c.artifacts = Some("s3://no-such-bucket/p".into());
        c.s3_options = options;
    });
    assert!(
        e.contains("cannot use the artifact store s3://no-such-bucket/p"),
        "{e}"
    );
}

#[test]
fn an_unreachable_endpoint_or_a_bad_url_stops_the_server_at_start() {
    // Nothing listens on this port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = start_error(|c| {
        c.artifacts = Some("s3://bucket/prefix".into());
        c.s3_options = vec![
            (
                "aws_endpoint_url".into(),
                format!("http://127.0.0.1:{port}"),
            ),
            ("aws_access_key_id".into(), "k".into()),
            ("aws_secret_access_key".into(), "s".into()),
        ];
    });
    assert!(
        e.contains("cannot use the artifact store s3://bucket/prefix"),
        "{e}"
    );
    let e = start_error(|c| c.artifacts = Some("gs://bucket".into()));
    assert!(
        e.contains("unsupported --artifacts URL \"gs://bucket\""),
        "{e}"
    );
    let e = start_error(|c| c.artifacts = Some("s3:///prefix".into()));
    assert!(e.contains("names no bucket"), "{e}");
}

/// Files under the data dir's `runs/` (the default artifact store).
fn stored(s: &Server) -> Vec<String> {
    let root = s.dir.path().join("data").join("runs");
    let mut out = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                out.push(p.strip_prefix(&root).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn multipart_submissions_are_checked_and_refused_ones_leave_nothing() {
    let s = Server::start(&Db::Sqlite, |c| {
        c.max_firmware_bytes = 1024 * 1024;
        c.max_artifacts_bytes = 2 * 1024 * 1024;
    });
    let (_, agent) = s.token(BOOT, "default", "agent");
    let bench = s.sync(&agent, "m", "rig", "healthy");
    let post =
        |ct: &str, body: Vec<u8>| s.call("POST", "/v1/runs", Some(BOOT), &[], Some((ct, body)));

    // Over the firmware cap: 413 while streaming, nothing kept.
    let (ct, body) = submission(&bench, &data(1024 * 1024 + 1, 4), "big.bin");
    let e = post(&ct, body).error(413);
    assert!(e.contains("exceeds the limit of 1048576 bytes"), "{e}");
    // Unknown bench (checked after the firmware part): the run fails at once as a
    // configuration error, and its stored firmware is deleted.
    let (ct, body) = submission("no-such-bench", &data(1000, 5), "fw.bin");
    let r = post(&ct, body);
    assert_eq!(r.status, 201, "{}", r.text);
    let run = r.json();
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(run["failure"]["category"], "CONFIG_ERROR", "{run}");
    assert!(
        run["error"]
            .as_str()
            .unwrap()
            .contains("bench not found: no-such-bench"),
        "{run}"
    );
    let (ct, body) = submission(&bench, &data(10, 6), "fw.exe");
    let e = post(&ct, body).error(400);
    assert!(e.contains(".elf or .hex or .bin"), "{e}");
    let (ct, body) = submission(&bench, &data(10, 6), "fw.bin");
    let body = String::from_utf8_lossy(&body).replace(
        "name=\"skip_flash\"\r\n\r\nfalse",
        "name=\"skip_flash\"\r\n\r\nmaybe",
    );
    let e = post(&ct, body.into_bytes()).error(400);
    assert!(
        e.contains("skip_flash must be true or false")
            || e.contains("`skip_flash` must be true or false"),
        "{e}"
    );
    let (ct, body) = multipart("surprise", "x.bin", b"x");
    let e = post(&ct, body).error(400);
    assert!(e.contains("unknown part `surprise`"), "{e}");
    let e = post("multipart/form-data", b"--x--".to_vec()).error(400);
    assert!(!e.is_empty());
    assert_eq!(
        stored(&s),
        Vec::<String>::new(),
        "refused submissions left files"
    );
    // Only the impossible run exists (failed); refused submissions left no run.
    let list = s.user(BOOT, "GET", "/v1/runs", None).json();
    let runs = list["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{list}");
    assert_eq!(runs[0]["bench_id"], "no-such-bench", "{list}");

    // A good one: the file is in the store, byte-identical, and the assignment names it.
    let firmware = data(300_000, 7);
    let (ct, body) = submission(&bench, &firmware, "app.elf");
    let r = post(&ct, body);
    assert_eq!(r.status, 201, "{}", r.text);
    let run = r.json()["run_id"].as_str().unwrap().to_string();
    assert_eq!(stored(&s), vec![format!("{run}/firmware/app.elf")]);
    let on_disk = std::fs::read(
        s.dir
            .path()
            .join(format!("data/runs/{run}/firmware/app.elf")),
    )
    .unwrap();
    assert!(on_disk == firmware);
    let v = s
        .agent(&agent, "m", "GET", "/v1/agents/assignments/next", None)
        .json();
    assert_eq!(v["assignment"]["firmware_sha256"], sha(&firmware).as_str());
    let (status, got) = plain_get(v["assignment"]["firmware_url"].as_str().unwrap());
    assert_eq!(status, 200);
    assert!(got == firmware);

    // A results archive over its cap: 413, no object, the run records none.
    let (ct, body) = multipart(
        "artifact_zip",
        "artifacts.zip",
        &data(2 * 1024 * 1024 + 1, 8),
    );
    let r = s.call(
        "POST",
        &format!("/v1/agents/runs/{run}/artifacts"),
        Some(&agent),
        &[("X-BenchCI-Agent-Machine-ID", "m")],
        Some((&ct, body)),
    );
    r.error(413);
    assert_eq!(stored(&s), vec![format!("{run}/firmware/app.elf")]);
    let v = s.user(BOOT, "GET", &format!("/v1/runs/{run}"), None).json();
    assert_eq!(v["artifacts"], Value::Null, "{v}");

    // A run without firmware gets no URL.
    let r = s.agent(
        &agent,
        "m",
        "POST",
        &format!("/v1/agents/runs/{run}/complete"),
        Some(json!({"status": "done", "exit_code": 0})),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let plain = s.submit(BOOT, &bench);
    let v = s
        .agent(&agent, "m", "GET", "/v1/agents/assignments/next", None)
        .json();
    assert_eq!(v["assignment"]["run_id"], plain.as_str());
    assert_eq!(v["assignment"]["firmware_url"], Value::Null);
    assert_eq!(v["assignment"]["firmware_sha256"], Value::Null);
}

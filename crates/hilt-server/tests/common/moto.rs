//! A real S3-protocol server on loopback: moto in server mode (test-peers §10), installed
//! into the peers venv by `scripts/peers.sh`. Buckets are made and listed with boto3 (moto
//! depends on it), a client independent of the server's.
//!
//! Without `moto_server` the tests skip with a message, unless HILT_REQUIRE_PEERS=1.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Moto {
    child: Option<Child>,
    pub port: u16,
    bin: PathBuf,
}

fn find_moto() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(v) = std::env::var_os("HILT_PY_VENV") {
        dirs.push(PathBuf::from(v).join("bin"));
    }
    if let Some(h) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(h).join(".cache/hilt-venv/bin"));
    }
    dirs.into_iter()
        .map(|d| d.join("moto_server"))
        .find(|p| p.is_file())
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

impl Moto {
    /// A running moto, or `None` (after saying so) when it is not installed.
    pub fn start() -> Option<Moto> {
        let Some(bin) = find_moto() else {
            if std::env::var("HILT_REQUIRE_PEERS").as_deref() == Ok("1") {
                panic!(
                    "moto_server is required (HILT_REQUIRE_PEERS=1) but not found: run scripts/peers.sh"
                );
            }
            eprintln!("SKIPPED: moto_server not found (run scripts/peers.sh to install moto)");
            return None;
        };
        let port = free_port();
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let m = Moto {
            child: Some(child),
            port,
            bin,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto_server did not listen within 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(m)
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The server's S3 settings for this moto (any key and secret are accepted).
    pub fn options(&self) -> Vec<(String, String)> {
        vec![
            ("aws_endpoint_url".into(), self.endpoint()),
            ("aws_access_key_id".into(), "hilt-test".into()),
            ("aws_secret_access_key".into(), "hilt-test-secret".into()),
            ("aws_region".into(), "us-east-1".into()),
        ]
    }

    fn python(&self, script: &str, args: &[&str]) -> String {
        let py = self.bin.with_file_name("python");
        let out = Command::new(&py)
            .arg("-c")
            .arg(script)
            .arg(self.endpoint())
            .args(args)
            .env("AWS_ACCESS_KEY_ID", "hilt-test")
            .env("AWS_SECRET_ACCESS_KEY", "hilt-test-secret")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", py.display()));
        assert!(
            out.status.success(),
            "boto3 failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn create_bucket(&self, bucket: &str) {
        self.python(
            "import sys, boto3; boto3.client('s3', endpoint_url=sys.argv[1]).create_bucket(Bucket=sys.argv[2])",
            &[bucket],
        );
    }

    /// (key, size) of every object under `prefix`, sorted.
    pub fn list(&self, bucket: &str, prefix: &str) -> Vec<(String, u64)> {
        let out = self.python(
            "import sys, boto3\n\
             c = boto3.client('s3', endpoint_url=sys.argv[1])\n\
             for page in c.get_paginator('list_objects_v2').paginate(Bucket=sys.argv[2], Prefix=sys.argv[3]):\n\
             \x20   for o in page.get('Contents', []):\n\
             \x20       print(o['Key'], o['Size'])\n",
            &[bucket, prefix],
        );
        let mut v: Vec<(String, u64)> = out
            .lines()
            .filter_map(|l| {
                let (k, s) = l.rsplit_once(' ')?;
                Some((k.to_string(), s.parse().ok()?))
            })
            .collect();
        v.sort();
        v
    }

    /// Stops the server (requests to it then fail: connection refused).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.stop();
    }
}

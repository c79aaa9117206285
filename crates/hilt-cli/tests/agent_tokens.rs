//! The agent's token from the environment, through the real binary: an empty
//! `HILT_AGENT_TOKEN` is unset (it neither hides `BENCHCI_AGENT_TOKEN` nor turns auth off),
//! a configured token is trimmed like the presented one, and a whitespace-only one is
//! refused at start.

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use hilt_testkit::process::{AgentProc, Layout, Options, unique, write_agent_yaml};

/// An agent with no bench in `dir`, started without the test token.
fn layout(dir: &Path) -> Layout {
    let l = Layout::new(dir, &unique("hilt-tokens"));
    write_agent_yaml(&l.config(), &l.name, &[]);
    l
}

fn options() -> Options {
    Options::default().no_token().arg("--no-self-test")
}

#[test]
fn empty_hilt_token_does_not_hide_the_benchci_token() {
    let d = tempfile::tempdir().unwrap();
    let a = layout(d.path()).start_with(
        &options()
            .env("HILT_AGENT_TOKEN", "")
            .env("BENCHCI_AGENT_TOKEN", "s3cret"),
    );
    let line = a.listening_line();
    assert!(line.contains("auth on"), "{line}");
    assert_eq!(a.status_as(None, "/v1/benches"), 401);
    assert_eq!(a.status_as(Some("wrong"), "/v1/benches"), 403);
    assert_eq!(a.status_as(Some("s3cret"), "/v1/benches"), 200);
}

#[test]
fn configured_token_with_surrounding_spaces_is_trimmed() {
    let d = tempfile::tempdir().unwrap();
    let a = layout(d.path()).start_with(&options().env("HILT_AGENT_TOKEN", "  s3cret \t"));
    let line = a.listening_line();
    assert!(line.contains("auth on"), "{line}");
    assert_eq!(a.status_as(Some("s3cret"), "/v1/benches"), 200);
    assert_eq!(a.status_as(None, "/v1/benches"), 401);
}

#[test]
fn whitespace_only_token_is_refused_at_start() {
    let d = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let l = layout(d.path());
    let mut child = AgentProc::command(&l, &options().env("HILT_AGENT_TOKEN", "   "))
        .spawn()
        .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(
        err.contains("HILT_AGENT_TOKEN holds only whitespace"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}

//! Hardening found by trying the agent as an attacker and as a careless client would: bad
//! query values, hostile file names, oversized GPIO sessions, runs that would never end.
//! Each answer is a 4xx with the JSON error shape, never a 5xx, a hang or a leak.

mod common;

use common::{Auth, Lab};

#[test]
fn unknown_state_filter_is_a_400_naming_the_valid_states() {
    let lab = Lab::new();
    let agent = lab.start(None);
    let r = agent.request("GET", "/v1/runs?state=bogus", Auth::Token, None, None);
    let err = r.expect_error(400);
    assert!(err.contains("bogus"), "{err}");
    for s in [
        "queued",
        "preparing",
        "running",
        "uploading_artifacts",
        "done",
        "failed",
        "cancelled",
    ] {
        assert!(err.contains(s), "{err} does not name {s}");
        let ok = agent.request(
            "GET",
            &format!("/v1/runs?state={s}"),
            Auth::Token,
            None,
            None,
        );
        assert_eq!(ok.status, 200, "{s}: {}", ok.text());
    }
}

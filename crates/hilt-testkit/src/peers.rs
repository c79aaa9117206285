//! Tests that need a real peer (a program from a Debian or Python package) skip with a
//! visible message when it is missing under plain `cargo test`, and fail when
//! `HILT_REQUIRE_PEERS` is set (`scripts/test` and CI set it, so nothing is skipped there).

use std::path::PathBuf;

/// `name` on PATH, if it is there.
pub fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|c| c.is_file())
    })
}

/// Whether peers are required (a missing one is a failure, not a skip).
pub fn required() -> bool {
    std::env::var_os("HILT_REQUIRE_PEERS").is_some_and(|v| !v.is_empty() && v != "0")
}

/// The program `name` on PATH; otherwise `None` after printing why the test is skipped,
/// or a panic naming `install` (how to get it) when peers are required.
pub fn program(name: &str, install: &str) -> Option<PathBuf> {
    let found = on_path(name);
    if found.is_none() {
        assert!(
            !required(),
            "{name} is not on PATH but HILT_REQUIRE_PEERS is set: {install}"
        );
        eprintln!("skipping: {name} is not installed ({install})");
    }
    found
}

/// BenchCI 2.0.1's `benchci`, the compatibility reference: on PATH, else in
/// `$HILT_PY_VENV/bin` (where `scripts/peers.sh` installs it). No message, no panic: the
/// caller decides (see [`benchci`]).
pub fn find_benchci() -> Option<PathBuf> {
    on_path("benchci").or_else(|| {
        std::env::var_os("HILT_PY_VENV")
            .map(|v| PathBuf::from(v).join("bin").join("benchci"))
            .filter(|p| p.is_file())
    })
}

/// [`find_benchci`], or `None` after saying the test is skipped; a panic when peers are
/// required.
pub fn benchci() -> Option<PathBuf> {
    let found = find_benchci();
    if found.is_none() {
        assert!(
            !required(),
            "benchci is not found (PATH, $HILT_PY_VENV/bin) but HILT_REQUIRE_PEERS is set: run \
             scripts/peers.sh and put $HILT_PY_VENV/bin (default $HOME/.cache/hilt-venv/bin) \
             first on PATH, or use scripts/test"
        );
        eprintln!("skipping: benchci not installed (run scripts/test)");
    }
    found
}

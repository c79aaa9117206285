//! hilt extension: bundles a step needs on a remote host (issue 14, bundle-first staging).
//! A bundle lists prebuilt candidates by platform with their SHA-256; the runner's stage
//! phase picks the one matching the host, verifies it, copies it and only then executes.
//! Not part of the BenchCI format.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::defaults;

/// A file (a tool, a firmware image, an archive) staged to a host before a step uses it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Bundle {
    /// Absolute remote path of the staged copy; its directory is created.
    pub dest: String,
    /// Prebuilt files, tried in order; the first whose platform matches the host and whose
    /// file exists is staged.
    #[serde(default)]
    pub candidates: Vec<BundleCandidate>,
    /// What to do on the host when no candidate fits (no matching platform, file missing).
    /// Without it such a run stops with `BUNDLE_UNAVAILABLE`.
    #[serde(default)]
    pub fallback: Option<BundleFallback>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BundleCandidate {
    /// `arch`, `os/arch` or `os-arch` (`linux/arm64`, `aarch64`, `linux-x86_64`), or `any`.
    /// Aliases are normalised: arm64 = aarch64, amd64 = x86_64 (see [`normalize_arch`]).
    pub platform: String,
    /// Local file (relative paths are taken from the suite file's directory).
    pub path: String,
    /// Expected SHA-256 of the file (64 hex digits); a file that differs is refused.
    pub sha256: String,
}

/// A command run on the host instead of staging a prebuilt file (a build from source or a
/// wrapper); it must leave the bundle at `dest`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BundleFallback {
    /// A POSIX shell script run with `sh -c` on the host; `HILT_BUNDLE_DEST` holds `dest`.
    pub script: String,
    /// Time limit in milliseconds.
    #[serde(default = "defaults::u64_::<300000>")]
    pub timeout_ms: u64,
}

/// The canonical name of a CPU architecture: `arm64` → `aarch64`, `amd64`/`x64` →
/// `x86_64`, `i386`/`i686` → `x86`, `armhf`/`armv7l` → `armv7`; others lower-cased.
pub fn normalize_arch(arch: &str) -> String {
    let a = arch.trim().to_ascii_lowercase();
    match a.as_str() {
        "arm64" | "aarch64" | "armv8" | "armv8l" => "aarch64".into(),
        "amd64" | "x86_64" | "x86-64" | "x64" => "x86_64".into(),
        "i386" | "i486" | "i586" | "i686" | "x86" => "x86".into(),
        "armhf" | "armv7" | "armv7l" | "armv7hl" => "armv7".into(),
        _ => a,
    }
}

/// A platform as `(os, arch)`, both normalised; `os` is `None` when not given and `arch`
/// is `None` for `any`.
pub fn parse_platform(p: &str) -> (Option<String>, Option<String>) {
    let p = p.trim().to_ascii_lowercase();
    if p == "any" || p == "noarch" {
        return (None, None);
    }
    let split = p.split_once('/').or_else(|| {
        // `linux-x86_64`, `linux-arm64`: an OS word before the first dash.
        p.split_once('-')
            .filter(|(os, _)| ["linux", "darwin", "freebsd", "windows"].contains(os))
    });
    match split {
        Some((os, arch)) => (Some(os.to_string()), Some(normalize_arch(arch))),
        None => (None, Some(normalize_arch(&p))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_normalise() {
        assert_eq!(normalize_arch("arm64"), normalize_arch("aarch64"));
        assert_eq!(normalize_arch("AMD64"), "x86_64");
        assert_eq!(
            parse_platform("linux/arm64"),
            (Some("linux".into()), Some("aarch64".into()))
        );
        assert_eq!(
            parse_platform("linux-x86_64"),
            (Some("linux".into()), Some("x86_64".into()))
        );
        assert_eq!(parse_platform("x86-64"), (None, Some("x86_64".into())));
        assert_eq!(parse_platform("any"), (None, None));
    }
}

//! Lock keys and lock file names (BenchCI's derivation, bit for bit).

use sha2::{Digest, Sha256};
use std::path::Path;

const SLUG_MAX: usize = 48;

/// `<slug(category)>-<slug(display_name)>-<sha256(key)[:16]>.lock`.
pub fn lock_file_name(category: &str, display_name: &str, key: &str) -> String {
    let digest = hex::encode(Sha256::digest(key.as_bytes()));
    format!(
        "{}-{}-{}.lock",
        slug(category),
        slug(display_name),
        &digest[..16]
    )
}

/// Lower-case; keep `[a-z0-9._-]`, everything else becomes `-`; runs of `-` collapse; `-`
/// trimmed; at most 48 characters (then trimmed again); empty becomes `resource`.
fn slug(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.to_lowercase().chars() {
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-') {
            c
        } else {
            '-'
        };
        if c == '-' && out.ends_with('-') {
            continue;
        }
        out.push(c);
    }
    let trimmed = out.trim_matches('-');
    // Only ASCII is left, so byte slicing is character slicing.
    let cut = &trimmed[..trimmed.len().min(SLUG_MAX)];
    let cut = cut.trim_matches('-');
    if cut.is_empty() {
        "resource".to_owned()
    } else {
        cut.to_owned()
    }
}

/// hilt's additive key for a serial port reached through a symlink.
///
/// Returns `serial:<realpath>` when the real path differs from `port`, so that a
/// `/dev/serial/by-id/…` link and the device it points to conflict. The BenchCI key
/// `serial:<port>` must be locked as well; this key is taken in addition to it. `None` when
/// the port does not resolve or already is its real path.
pub fn canonical_serial_key(port: &str) -> Option<String> {
    let real = std::fs::canonicalize(port).ok()?;
    if real == Path::new(port) {
        return None;
    }
    Some(format!("serial:{}", real.to_string_lossy()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn benchci_file_name_vectors() {
        assert_eq!(
            lock_file_name("serial_transport", "/dev/ttyUSB0", "serial:/dev/ttyUSB0"),
            "serial_transport-dev-ttyusb0-02009e55b2512ba0.lock"
        );
        assert_eq!(
            lock_file_name(
                "debug_probe",
                "OpenOCD probe 066DFF515049",
                "debugger:openocd:066DFF515049"
            ),
            "debug_probe-openocd-probe-066dff515049-0f958729a238e445.lock"
        );
        assert_eq!(
            lock_file_name(
                "gpio_line",
                "/dev/gpiochip0 line 17",
                "gpio:local:/dev/gpiochip0:17"
            ),
            "gpio_line-dev-gpiochip0-line-17-5d155e9ae16a9deb.lock"
        );
    }

    #[test]
    fn slug_edges() {
        assert_eq!(slug(""), "resource");
        assert_eq!(slug("///"), "resource");
        assert_eq!(slug("a--b__c..d"), "a-b__c..d");
        assert_eq!(slug("Ä b"), "b");
        let long = format!("{}-{}", "a".repeat(47), "b".repeat(10));
        assert_eq!(slug(&long), "a".repeat(47));
        assert_eq!(slug(&"x".repeat(60)).len(), 48);
    }

    #[test]
    fn canonical_key_only_for_links() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("ttyFAKE0");
        std::fs::write(&target, b"").unwrap();
        let link = dir.path().join("by-id-link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let real = std::fs::canonicalize(&target).unwrap();
        assert_eq!(
            canonical_serial_key(link.to_str().unwrap()),
            Some(format!("serial:{}", real.display()))
        );
        assert_eq!(canonical_serial_key(real.to_str().unwrap()), None);
        assert_eq!(canonical_serial_key("/nonexistent/tty"), None);
    }
}

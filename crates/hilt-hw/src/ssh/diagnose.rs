//! Which endpoint of a chain failed, and how. OpenSSH reports every connection failure
//! with exit status 255, so the kind comes from its message and the endpoint from probing
//! the chain one endpoint at a time (first hop alone, then through it the second, …): the
//! first that fails is named.

use std::time::Duration;

use super::chain::Chain;
use super::{SshError, SshErrorKind};

/// The kind of failure an ssh error message describes.
pub(super) fn kind_of(stderr: &str) -> SshErrorKind {
    let s = stderr.to_ascii_lowercase();
    if s.contains("host key verification failed")
        || s.contains("remote host identification has changed")
        || s.contains("host key is known for")
        || s.contains("you have requested strict checking")
    {
        SshErrorKind::HostKey
    } else if s.contains("permission denied")
        || s.contains("too many authentication failures")
        || s.contains("no more authentication methods")
    {
        SshErrorKind::Auth
    } else {
        SshErrorKind::Unreachable
    }
}

/// The meaningful lines of an ssh error output (banner art and blank lines dropped).
pub(super) fn summary(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("@@@") && !l.starts_with('@'))
        .collect();
    let tail = &lines[lines.len().saturating_sub(3)..];
    tail.join(" / ")
}

/// Builds the error for endpoint `index` of the chain that failed with `stderr`.
pub(super) fn error_at(chain: &Chain, index: usize, stderr: &str) -> SshError {
    let e = &chain.endpoints[index];
    let role = if index + 1 == chain.endpoints.len() {
        "host"
    } else {
        "jump hop"
    };
    let kind = kind_of(stderr);
    let what = match kind {
        SshErrorKind::HostKey => format!(
            "host key of {role} {} does not match known_hosts {} (strict host key checking)",
            e.describe(),
            chain.known_hosts.display()
        ),
        SshErrorKind::Auth => format!("{role} {} refused the login", e.describe()),
        _ => format!("{role} {} is unreachable", e.describe()),
    };
    let detail = summary(stderr);
    let message = if detail.is_empty() {
        what
    } else {
        format!("{what}: {detail}")
    };
    SshError::new(kind, Some(e.label.clone()), message)
}

/// Probe time limit per endpoint beyond the connect timeout of each hop crossed.
pub(super) fn probe_timeout(chain: &Chain, index: usize) -> Duration {
    Duration::from_secs(chain.connect_timeout_s * (index as u64 + 1) + 5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openssh_messages_map_to_kinds() {
        let changed = "@@@@@@@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n\
                       Host key for [127.0.0.1]:2222 has changed and you have requested strict checking.\n\
                       Host key verification failed.\n";
        assert_eq!(kind_of(changed), SshErrorKind::HostKey);
        assert_eq!(
            summary(changed),
            "Host key for [127.0.0.1]:2222 has changed and you have requested strict checking. / Host key verification failed."
        );
        assert_eq!(
            kind_of(
                "No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict checking.\n"
            ),
            SshErrorKind::HostKey
        );
        assert_eq!(
            kind_of("tester@10.0.0.1: Permission denied (publickey,password).\n"),
            SshErrorKind::Auth
        );
        assert_eq!(
            kind_of("ssh: connect to host 127.0.0.1 port 1: Connection refused\n"),
            SshErrorKind::Unreachable
        );
        assert_eq!(kind_of(""), SshErrorKind::Unreachable);
    }
}

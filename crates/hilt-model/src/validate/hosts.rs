//! Checks on the `hosts` and `auth_refs` of a bench (hilt extension, issue 14). Files the
//! hosts name (key files, known_hosts) are checked for existence by the runner's plan,
//! since this crate reads nothing but the file it loads.

use crate::bench::{AuthRef, Bench};
use crate::diag::{Diags, suggest};

use super::range;

pub fn hosts(d: &mut Diags, b: &Bench) {
    for (name, a) in &b.auth_refs {
        let p = format!("auth_refs.{name}");
        match a {
            AuthRef::KeyFile { path } if path.trim().is_empty() => {
                d.error(&format!("{p}.path"), "key_file needs the `path` of a private key")
            }
            AuthRef::PasswordEnv { value } if !is_env_name(value) => d.error_help(
                &format!("{p}.value"),
                format!("`{value}` is not an environment variable name"),
                "password_env takes the NAME of a variable holding the password, never the password",
            ),
            _ => {}
        }
    }
    for (name, h) in &b.hosts {
        let p = format!("hosts.{name}");
        if h.hostname.trim().is_empty() {
            d.error(&p, "a host needs a `hostname`");
        }
        if h.username.trim().is_empty() {
            d.error(&p, "a host needs a `username`");
        }
        range(d, &format!("{p}.port"), h.port as u64, 1, 65535);
        auth_ref(d, b, &format!("{p}.auth_ref"), &p, &h.auth_ref);
        match &h.known_hosts {
            Some(k) if k.trim().is_empty() => d.error(&format!("{p}.known_hosts"), "must not be empty"),
            Some(_) => {}
            None => d.error_help(
                &p,
                "a host needs a `known_hosts` file: host keys are checked strictly",
                "list the host keys of this host and of every hop (ssh-keyscan, or the lines of your own ~/.ssh/known_hosts)",
            ),
        }
        if h.retry.attempts == 0 {
            d.error(&format!("{p}.retry.attempts"), "must be at least 1");
        }
        range(
            d,
            &format!("{p}.connect_timeout_s"),
            h.connect_timeout_s,
            1,
            3600,
        );
        for (i, hop) in h.transport.hops().iter().enumerate() {
            let hp = format!("{p}.transport.hops[{i}]");
            if hop.hostname.trim().is_empty() {
                d.error(&hp, format!("hop {} has no `hostname`", hop.label(i)));
            }
            if hop.username.trim().is_empty() {
                d.error(&hp, format!("hop {} has no `username`", hop.label(i)));
            }
            range(d, &format!("{hp}.port"), hop.port as u64, 1, 65535);
            auth_ref(d, b, &format!("{hp}.auth_ref"), &hp, &hop.auth_ref);
        }
        if matches!(&h.transport, crate::bench::HostTransport::JumpChain { hops } if hops.is_empty())
        {
            d.error(
                &format!("{p}.transport"),
                "a jump_chain needs at least one hop in `hops`",
            );
        }
    }
}

fn auth_ref(d: &mut Diags, b: &Bench, path: &str, owner: &str, name: &str) {
    if name.trim().is_empty() {
        d.error_help(
            owner,
            "no `auth_ref`",
            "name an entry of `auth_refs` (key_file, ssh_agent or password_env)",
        );
        return;
    }
    if b.auth_refs.contains_key(name) {
        return;
    }
    let names: Vec<&str> = b.auth_refs.keys().map(String::as_str).collect();
    let help = match suggest(name, names.iter().copied()) {
        Some(s) => format!("did you mean `{s}`?"),
        None if names.is_empty() => "the bench defines no `auth_refs`".to_string(),
        None => format!("auth_refs in this bench: {}", names.join(", ")),
    };
    d.error_help(
        path,
        format!("unknown auth_ref `{name}`: not defined under `auth_refs`"),
        help,
    );
}

fn is_env_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

//! TLS for every HTTP client hilt has (agent client, cloud agent, firmware downloads,
//! HTTP drivers, remote GPIO, external HTTP targets): one place builds the ureq
//! configuration, so `https://` works the same everywhere a URL is accepted.
//!
//! rustls with the ring provider (the one the S3 client already builds). Trusted roots:
//! Mozilla's (webpki-root-certs) plus one extra PEM bundle, from `HILT_CA_FILE` or, when
//! that is unset, `SSL_CERT_FILE` (the usual convention). The extra bundle adds to
//! Mozilla's roots; it never replaces them. There is no way to turn verification off.
//!
//! A bundle that is missing or holds no certificate is an error naming the file, reported
//! by [`check_url`] for every `https://` URL (plain `http://` is unaffected).

use std::sync::{Arc, OnceLock};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use ureq::config::ConfigBuilder;
use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};
use ureq::typestate::AgentScope;

/// The environment variables naming an extra CA bundle, first set one wins.
pub const CA_FILE_VARS: [&str; 2] = ["HILT_CA_FILE", "SSL_CERT_FILE"];

struct Roots {
    certs: Arc<Vec<Certificate<'static>>>,
    /// Why the extra bundle could not be used (it is then left out).
    problem: Option<String>,
}

fn roots() -> &'static Roots {
    static ROOTS: OnceLock<Roots> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let mut certs: Vec<Certificate<'static>> = webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .map(|c| Certificate::from_der(c.as_ref()).to_owned())
            .collect();
        let mut problem = None;
        if let Some((var, path)) = ca_file() {
            match load_pem(&path) {
                Ok(extra) => certs.extend(extra),
                Err(e) => problem = Some(format!("{var}={path}: {e}")),
            }
        }
        Roots {
            certs: Arc::new(certs),
            problem,
        }
    })
}

/// The extra bundle's variable and path, if one is set (an empty value counts as unset).
pub fn ca_file() -> Option<(&'static str, String)> {
    CA_FILE_VARS.iter().find_map(|var| {
        std::env::var(var)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .map(|v| (*var, v))
    })
}

/// Every certificate of a PEM file; an error when it cannot be read, is not PEM or holds
/// no certificate.
pub fn load_pem(path: &str) -> Result<Vec<Certificate<'static>>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read the CA file: {e}"))?;
    let mut out = Vec::new();
    for cert in CertificateDer::pem_slice_iter(&bytes) {
        let cert = cert.map_err(|e| format!("not a PEM certificate file: {e}"))?;
        out.push(Certificate::from_der(cert.as_ref()).to_owned());
    }
    if out.is_empty() {
        return Err("no PEM certificate (-----BEGIN CERTIFICATE-----) in the CA file".into());
    }
    Ok(out)
}

/// A ureq configuration that speaks TLS with hilt's roots; callers add their timeouts.
pub fn config_builder() -> ConfigBuilder<AgentScope> {
    let tls = TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .root_certs(RootCerts::Specific(roots().certs.clone()))
        .build();
    ureq::Agent::config_builder().tls_config(tls)
}

/// `Err` with a message naming the CA file when `url` is `https://` and the configured
/// extra CA bundle cannot be used.
pub fn check_url(url: &str) -> Result<(), String> {
    if !url
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("https://")
    {
        return Ok(());
    }
    match &roots().problem {
        Some(p) => Err(format!("cannot use the extra CA bundle for {url}: {p}")),
        None => Ok(()),
    }
}

/// `host:port` of a URL (what error messages name).
pub fn authority(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let auth = &rest[..end];
    auth.rsplit_once('@').map_or(auth, |(_, h)| h)
}

/// What went wrong with a request to `url`, in words: a certificate problem names the host
/// and the fix; anything else is ureq's own text.
pub fn describe(e: &ureq::Error, url: &str) -> String {
    match certificate_problem(e) {
        Some(p) => p.message(authority(url)),
        None => e.to_string(),
    }
}

/// A TLS failure told apart from the others, for messages and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsProblem {
    /// The chain does not end at a trusted root (self-signed, company CA not added).
    NotTrusted,
    /// The certificate is valid, but not for the host name in the URL.
    NameMismatch,
    /// Outside its validity period.
    Expired,
    NotYetValid,
    /// Anything else in the handshake (a plain-HTTP port behind https://, no common cipher…).
    Handshake(String),
}

impl TlsProblem {
    pub fn message(&self, host: &str) -> String {
        let add_ca = "if it is signed by a company CA, set HILT_CA_FILE to that CA's PEM file";
        match self {
            TlsProblem::NotTrusted => format!(
                "TLS: certificate not trusted for {host}: its issuer is not a trusted CA ({add_ca})"
            ),
            TlsProblem::NameMismatch => format!(
                "TLS: certificate name mismatch: the certificate of {host} is not valid for that name; use the host name the certificate was issued for, or fix the proxy's certificate"
            ),
            TlsProblem::Expired => format!(
                "TLS: the certificate of {host} has expired; renew it on the server (or check this machine's clock)"
            ),
            TlsProblem::NotYetValid => format!(
                "TLS: the certificate of {host} is not valid yet; check this machine's clock"
            ),
            TlsProblem::Handshake(e) => format!(
                "TLS handshake with {host} failed: {e} (is that port https, and the URL's scheme right?)"
            ),
        }
    }
}

/// The TLS failure inside a ureq error, if it is one.
pub fn certificate_problem(e: &ureq::Error) -> Option<TlsProblem> {
    let rustls_err = match e {
        ureq::Error::Rustls(r) => r,
        ureq::Error::Io(io) => io.get_ref()?.downcast_ref::<rustls::Error>()?,
        _ => return None,
    };
    use rustls::CertificateError as C;
    Some(match rustls_err {
        rustls::Error::InvalidCertificate(c) => match c {
            C::UnknownIssuer | C::BadSignature => TlsProblem::NotTrusted,
            C::NotValidForName | C::NotValidForNameContext { .. } => TlsProblem::NameMismatch,
            C::Expired | C::ExpiredContext { .. } => TlsProblem::Expired,
            C::NotValidYet | C::NotValidYetContext { .. } => TlsProblem::NotYetValid,
            other => TlsProblem::Handshake(format!("invalid certificate: {other:?}")),
        },
        other => TlsProblem::Handshake(other.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_of_urls() {
        assert_eq!(authority("https://a.b:8443/v1/x?y"), "a.b:8443");
        assert_eq!(authority("https://u:p@h/x"), "h");
        assert_eq!(authority("h:1"), "h:1");
    }

    #[test]
    fn mozilla_roots_are_loaded() {
        assert!(roots().certs.len() > 100);
    }

    #[test]
    fn bad_pem_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.pem");
        let e = load_pem(missing.to_str().unwrap()).unwrap_err();
        assert!(e.contains("cannot read the CA file"), "{e}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "hello\n").unwrap();
        let e = load_pem(empty.to_str().unwrap()).unwrap_err();
        assert!(e.contains("no PEM certificate"), "{e}");
    }

    fn io(e: rustls::CertificateError) -> ureq::Error {
        let r = rustls::Error::InvalidCertificate(e);
        ureq::Error::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, r))
    }

    #[test]
    fn certificate_errors_are_named_with_the_host() {
        use rustls::CertificateError as C;
        let url = "https://hilt.lab:8443/v1/runs";
        let m = describe(&io(C::UnknownIssuer), url);
        assert!(
            m.contains("certificate not trusted for hilt.lab:8443"),
            "{m}"
        );
        assert!(m.contains("HILT_CA_FILE"), "{m}");
        let m = describe(&io(C::NotValidForName), url);
        assert!(
            m.contains("name mismatch") && m.contains("hilt.lab:8443"),
            "{m}"
        );
        let m = describe(&io(C::Expired), url);
        assert!(m.contains("hilt.lab:8443 has expired"), "{m}");
        assert_eq!(
            certificate_problem(&io(C::NotValidYet)),
            Some(TlsProblem::NotYetValid)
        );
        assert_eq!(certificate_problem(&ureq::Error::ConnectionFailed), None);
        assert_eq!(
            describe(&ureq::Error::HostNotFound, url),
            ureq::Error::HostNotFound.to_string()
        );
    }

    #[test]
    fn plain_http_never_needs_the_bundle() {
        assert_eq!(check_url("http://x:1/"), Ok(()));
    }
}

//! Tokens checked lately, so that an agent's or a CI job's calls do not each look their
//! token up: a token found valid is trusted by this process for [`TRUST_FOR`]. A revocation
//! made through this process forgets every token at once; one made through another replica
//! takes effect here within [`TRUST_FOR`]. Unknown or revoked tokens are never remembered,
//! so a wrong token is looked up every time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::store::Principal;

/// How long a valid token is trusted without looking it up again.
pub const TRUST_FOR: Duration = Duration::from_secs(1);
/// Tokens remembered at most.
const MAX_REMEMBERED: usize = 10_000;

#[derive(Default)]
pub struct Principals {
    /// Token hash → (when looked up, what it named).
    trusted: Mutex<HashMap<String, (Instant, Principal)>>,
}

impl Principals {
    /// The principal of a token looked up within [`TRUST_FOR`].
    pub fn get(&self, hash: &str) -> Option<Principal> {
        let trusted = self.trusted.lock().unwrap_or_else(|e| e.into_inner());
        trusted
            .get(hash)
            .filter(|(at, _)| at.elapsed() < TRUST_FOR)
            .map(|(_, p)| p.clone())
    }

    /// A token just found valid.
    pub fn trust(&self, hash: &str, p: &Principal) {
        let mut trusted = self.trusted.lock().unwrap_or_else(|e| e.into_inner());
        if trusted.len() >= MAX_REMEMBERED && !trusted.contains_key(hash) {
            trusted.retain(|_, (at, _)| at.elapsed() < TRUST_FOR);
            if trusted.len() >= MAX_REMEMBERED {
                trusted.clear();
            }
        }
        trusted.insert(hash.to_string(), (Instant::now(), p.clone()));
    }

    /// Forgets one token (its row changed, e.g. bound to a machine).
    pub fn forget(&self, hash: &str) {
        let mut trusted = self.trusted.lock().unwrap_or_else(|e| e.into_inner());
        trusted.remove(hash);
    }

    /// Forgets every token (a token was revoked).
    pub fn forget_all(&self) {
        let mut trusted = self.trusted.lock().unwrap_or_else(|e| e.into_inner());
        trusted.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(id: &str) -> Principal {
        Principal {
            token_id: id.into(),
            workspace_id: "w".into(),
            workspace_name: "default".into(),
            kind: "user".into(),
            admin: false,
            machine_id: None,
        }
    }

    #[test]
    fn trusts_for_a_while_and_forgets_on_demand() {
        let ps = Principals::default();
        assert!(ps.get("h1").is_none(), "nothing trusted yet");
        ps.trust("h1", &p("t1"));
        ps.trust("h2", &p("t2"));
        assert_eq!(ps.get("h1").unwrap().token_id, "t1");
        ps.forget("h1");
        assert!(ps.get("h1").is_none());
        assert!(ps.get("h2").is_some());
        ps.forget_all();
        assert!(ps.get("h2").is_none(), "a revocation forgets every token");
    }

    #[test]
    fn bounded() {
        let ps = Principals::default();
        for i in 0..MAX_REMEMBERED + 5 {
            ps.trust(&format!("h{i}"), &p("t"));
        }
        let n = ps.trusted.lock().unwrap().len();
        assert!(n <= MAX_REMEMBERED, "{n} remembered");
    }
}

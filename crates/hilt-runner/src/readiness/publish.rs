//! The publish scope: each publish target's prerequisites as checks.

use std::path::Path;

use hilt_hw::CancelToken;
use hilt_model::bench::Bench;
use hilt_model::suite::Suite;

use super::{Check, Scope, Status};
use crate::publish;

pub(super) fn publish(
    bench: &Bench,
    bench_path: &Path,
    suite: Option<(&Suite, &Path)>,
    cancel: &CancelToken,
) -> Vec<Check> {
    let targets = publish::targets(Some((bench, bench_path)), suite);
    if targets.is_empty() {
        return vec![Check::new(
            "publish.targets",
            Scope::Publish,
            Status::Skip,
            "the bench and suite declare no publish targets",
        )];
    }
    let mut out = Vec::new();
    for t in &targets {
        for p in publish::prerequisites(t, cancel) {
            let status = match p.ok {
                Some(true) => Status::Pass,
                Some(false) => Status::Fail,
                None => Status::Skip,
            };
            let mut c = Check::new(
                format!("publish.{}.{}", t.name, p.what),
                Scope::Publish,
                status,
                p.detail,
            )
            .target(&t.name);
            c.fix = p.fix;
            out.push(c);
        }
    }
    out
}

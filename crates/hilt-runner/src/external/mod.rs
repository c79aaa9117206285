//! run_external: bench-owned commands and HTTP jobs under the bench's safety policy.

use hilt_model::run::{Category, Failure};
use hilt_model::suite::RunExternal;

use crate::events::Events;
use crate::exec::{Exec, StepError, StepResult};

pub fn run(_exec: &mut Exec, r: &RunExternal, _ev: &mut Events) -> StepResult {
    Err(StepError::Run(Failure::new(
        Category::ConfigError,
        format!(
            "run_external (target `{}`) is not supported by this build",
            r.target
        ),
    )))
}

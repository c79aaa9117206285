use std::sync::Arc;

pub fn routes() -> axum::Router<Arc<crate::state::Agent>> {
    axum::Router::new()
}

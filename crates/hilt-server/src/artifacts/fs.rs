//! The default artifact store: a local directory (the data dir), objects as files under
//! `runs/<run_id>/`. A multipart upload is written to a staging file beside its object and
//! renamed into place when complete, so a half-received upload is never served.

use std::path::Path;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::local::LocalFileSystem;

use super::ArtifactsError;

pub fn open(dir: &Path) -> Result<Arc<dyn ObjectStore>, ArtifactsError> {
    let unusable = |detail: String| ArtifactsError::Unusable {
        url: dir.display().to_string(),
        detail,
    };
    std::fs::create_dir_all(dir).map_err(|e| unusable(e.to_string()))?;
    let store = LocalFileSystem::new_with_prefix(dir)
        .map_err(|e| unusable(e.to_string()))?
        // A pruned run leaves no empty directories behind.
        .with_automatic_cleanup(true);
    Ok(Arc::new(store))
}

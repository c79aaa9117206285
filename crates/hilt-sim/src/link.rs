//! The stable symlink that points at the pty slave (pty numbers change every start).

use std::fs;
use std::io;
use std::path::Path;

use crate::error::SimError;

/// Creates `link` → `target`. Replaces an existing symlink, refuses anything else.
pub(crate) fn create(link: &Path, target: &Path) -> Result<(), SimError> {
    let fail = |reason: String| SimError::Link {
        path: link.to_path_buf(),
        reason,
    };
    match fs::symlink_metadata(link) {
        Ok(meta) if meta.file_type().is_symlink() => fs::remove_file(link)
            .map_err(|e| fail(format!("cannot replace the existing symlink: {e}")))?,
        Ok(_) => {
            return Err(fail(
                "a file that is not a symlink is in the way; remove it or choose another link path"
                    .into(),
            ));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(fail(e.to_string())),
    }
    std::os::unix::fs::symlink(target, link).map_err(|e| fail(e.to_string()))
}

/// Removes `link` if it is still our symlink to `target` (never someone else's file).
pub(crate) fn remove(link: &Path, target: &Path) {
    if fs::read_link(link).is_ok_and(|t| t == target) {
        let _ = fs::remove_file(link);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("hilt-sim-link-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn replaces_symlink_refuses_file() {
        let dir = scratch("a");
        let link = dir.join("dut");
        let target = dir.join("target");
        std::os::unix::fs::symlink("/nonexistent", &link).unwrap();
        create(&link, &target).unwrap();
        assert_eq!(fs::read_link(&link).unwrap(), target);
        remove(&link, &target);
        assert!(fs::symlink_metadata(&link).is_err());

        fs::write(&link, "precious").unwrap();
        let err = create(&link, &target).unwrap_err().to_string();
        assert!(err.contains("not a symlink"), "{err}");
        remove(&link, &target);
        assert_eq!(fs::read_to_string(&link).unwrap(), "precious");
        let _ = fs::remove_dir_all(&dir);
    }
}

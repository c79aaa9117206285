//! Finding a program the way `execvp` would, before starting it.

use super::ProcessError;
use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Looks `program` up in the process's `PATH`, as the self-test's tool checks need. A name
/// containing `/` is checked as a path instead. Only executable regular files count.
pub fn which(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let path = PathBuf::from(program);
        return is_executable(&path).then_some(path);
    }
    search(program, std::env::var_os("PATH").as_deref())
}

fn search(program: &str, path_var: Option<&OsStr>) -> Option<PathBuf> {
    if program.is_empty() {
        return None;
    }
    std::env::split_paths(path_var?)
        // An empty entry means "current directory" to a shell; never run from there.
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The absolute path to execute for `program`, or [`ProcessError::NotFound`].
pub(super) fn resolve(
    program: &str,
    path_var: Option<&OsStr>,
    cwd: &Path,
) -> Result<PathBuf, ProcessError> {
    let found = if program.contains('/') {
        let path = cwd.join(program);
        is_executable(&path).then_some(path)
    } else {
        search(program, path_var)
    };
    found.ok_or_else(|| ProcessError::NotFound {
        program: program.to_owned(),
        path_env_hint: if program.contains('/') {
            format!("no executable file at {}", cwd.join(program).display())
        } else {
            match path_var {
                Some(p) => format!("searched PATH={}", p.to_string_lossy()),
                None => "PATH is not set".to_owned(),
            }
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_sh_and_not_nonsense() {
        assert!(which("sh").is_some_and(|p| p.is_absolute()));
        assert_eq!(which("hilt-no-such-tool-xyz"), None);
        assert_eq!(which(""), None);
        assert_eq!(search("sh", None), None);
    }

    #[test]
    fn non_executable_files_do_not_count() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("tool");
        std::fs::write(&f, b"#!/bin/sh\n").unwrap();
        assert_eq!(search("tool", Some(tmp.path().as_os_str())), None);
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(search("tool", Some(tmp.path().as_os_str())), Some(f));
    }
}

//! Checks on the files that hold secrets on this machine: who can read them, and whether git
//! tracks them. Findings carry the command that fixes them.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::error::display_path;

/// A problem with a local secrets file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Concern {
    /// What is wrong.
    pub message: String,
    /// The commands that fix it.
    pub fix: String,
    /// Whether `secrets.validation: strict` makes it an error.
    pub strict_error: bool,
}

/// Warns about a file group or others can read.
pub fn permissions(path: &Path) -> Option<Concern> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then(|| Concern {
            message: format!("{} can be read by group or others (mode {mode:04o})", display_path(path)),
            fix: format!("chmod 600 {}", shell_quote(&display_path(path))),
            strict_error: false,
        })
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// Warns about a secrets file that git tracks (an error under strict validation). Quiet when
/// git is not installed or the file is not in a repository (then git is not even started).
pub fn tracked_by_git(path: &Path) -> Option<Concern> {
    let dir = path.parent()?;
    let name = path.file_name()?;
    // A work tree has `.git` (a directory, or a file for a linked worktree or submodule) in its
    // top folder: without one above the file (or a GIT_DIR naming the repository), nothing can
    // track it.
    if std::env::var_os("GIT_DIR").is_none() && !dir.ancestors().any(|folder| folder.join(".git").exists()) {
        return None;
    }
    let status = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["ls-files", "--error-unmatch", "--"])
        .arg(name)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()?;
    status.success().then(|| {
        let shown = shell_quote(&display_path(path));
        Concern {
            message: format!(
                "{} is tracked by git, so its secrets are in the repository's history",
                display_path(path)
            ),
            fix: format!(
                "git rm --cached {shown} && echo {shown} >> .gitignore (then rotate the secrets it held)"
            ),
            strict_error: true,
        }
    })
}

fn shell_quote(text: &str) -> String {
    if text.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+".contains(c)) {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readable_files_are_reported_with_the_chmod_that_fixes_them() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.json");
        std::fs::write(&path, "{}").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let concern = permissions(&path).unwrap();
        assert!(
            concern.message.ends_with("can be read by group or others (mode 0644)"),
            "{}",
            concern.message
        );
        assert!(concern.fix.starts_with("chmod 600 "));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(permissions(&path), None);
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("a/b.json"), "a/b.json");
        assert_eq!(shell_quote("my dir/x"), "'my dir/x'");
    }
}

//! Reading the user's files defensively: only regular files (a FIFO or a device would hang or
//! never end), and never more than a stated size.

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Location, Result};

/// Reads a regular file of at most `max` bytes. A missing file is `Ok(None)`.
pub fn read_limited(path: &Path, max: u64, what: &str) -> Result<Option<Vec<u8>>> {
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Ok(link) = std::fs::read_link(path) {
                return Err(Error::input(
                    Location::file(path),
                    format!("{what} is a symbolic link to {}, which does not exist", link.display()),
                    "point the link at the real file, or remove it",
                ));
            }
            return Ok(None);
        }
        Err(e) => return Err(Error::io("read", path, e)),
    };
    if !metadata.is_file() {
        let kind = if metadata.is_dir() { "a directory" } else { "not a regular file" };
        return Err(Error::input(
            Location::file(path),
            format!("{what} is {kind}"),
            format!("replace it with a regular file (a {what})"),
        ));
    }
    let file = std::fs::File::open(path).map_err(|e| Error::io("read", path, e))?;
    let mut bytes = Vec::with_capacity(metadata.len().min(max) as usize);
    file.take(max + 1).read_to_end(&mut bytes).map_err(|e| Error::io("read", path, e))?;
    if bytes.len() as u64 > max {
        return Err(Error::input(
            Location::file(path),
            format!("{what} is larger than {max} bytes, the most cloud-secrets reads"),
            "check that this is the right file",
        ));
    }
    Ok(Some(bytes))
}

/// Replaces `path` atomically with `bytes`, mode 0600: a temporary file in the same directory,
/// flushed to disk, renamed over the target, then the directory flushed. A reader sees the old
/// file or the new one, never a mix; a crash leaves the old one.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    // What is replaced must be a regular file: a symlink or a FIFO planted in its place is
    // refused rather than replaced or written through.
    if let Ok(metadata) = path.symlink_metadata()
        && !metadata.is_file()
    {
        let what = path.file_name().map_or_else(|| "file".to_owned(), |n| n.to_string_lossy().into_owned());
        let is = if metadata.file_type().is_symlink() { "a symbolic link" } else { "not a regular file" };
        return Err(not_regular(path, &what, is));
    }
    let (dir, tmp) = written_temp(path, bytes)?;
    tmp.persist(path).map_err(|e| Error::io("replace", path, e.error))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// A temporary file beside `path` (mode 0600, named `.cloud-secrets-*.tmp`, removed when dropped)
/// holding `bytes`, flushed to disk; and the directory it is in.
fn written_temp<'a>(path: &'a Path, bytes: &[u8]) -> Result<(&'a Path, tempfile::NamedTempFile)> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".cloud-secrets-")
        .suffix(".tmp")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .tempfile_in(dir)
        .map_err(|e| Error::io("create a temporary file in", dir, e))?;
    tmp.write_all(bytes).map_err(|e| Error::io("write", tmp.path(), e))?;
    tmp.as_file().sync_all().map_err(|e| Error::io("sync", tmp.path(), e))?;
    Ok((dir, tmp))
}

/// Creates `path` with `bytes`, mode 0600, complete or not at all, unless something is already
/// there (never replaced): true when it was created.
pub fn create_private(path: &Path, bytes: &[u8]) -> Result<bool> {
    let (_, tmp) = written_temp(path, bytes)?;
    match tmp.persist_noclobber(path) {
        Ok(_) => Ok(true),
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(Error::io("create", path, e.error)),
    }
}

/// Opens a file cloud-secrets owns (a lock, a record, a plan key) with `options`, mode 0600 when
/// created, without following a symlink at `path`, and only if it is a regular file: a file a
/// checkout planted in its place (a link to `~/.bashrc`, a FIFO) is refused, never written.
pub fn open_own(options: &mut std::fs::OpenOptions, path: &Path, what: &str) -> Result<std::fs::File> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(|e| match e.raw_os_error() {
        Some(libc::ELOOP) => not_regular(path, what, "a symbolic link"),
        _ => Error::io("open", path, e),
    })?;
    let metadata = file.metadata().map_err(|e| Error::io("inspect", path, e))?;
    if !metadata.is_file() {
        return Err(not_regular(path, what, "not a regular file"));
    }
    Ok(file)
}

fn not_regular(path: &Path, what: &str, is: &str) -> Error {
    Error::input(
        crate::error::Location::file(path),
        format!("the {what} is {is}; cloud-secrets writes only regular files of its own"),
        format!("remove {} (cloud-secrets makes it anew)", crate::error::display_path(path)),
    )
}

/// Takes an advisory lock on `path` (created, mode 0600), waiting up to `timeout` for another
/// process to release it, and records our pid in it for whoever waits next. The lock is released
/// when the returned file is dropped, or when the process ends, however it ends.
pub fn lock(path: &Path, timeout: std::time::Duration) -> Result<std::fs::File> {
    use std::fs::TryLockError;
    use std::io::{Read, Seek, Write};
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    let mut file = open_own(&mut options, path, "lock file")?;
    let started = std::time::Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) if started.elapsed() < timeout => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(Error::Locked { path: path.to_path_buf(), holder: text.trim().parse().ok() });
            }
            Err(TryLockError::Error(e)) => return Err(Error::io("lock", path, e)),
        }
    }
    let pid = std::process::id().to_string();
    let recorded = file.set_len(0).and_then(|()| file.rewind()).and_then(|()| file.write_all(pid.as_bytes()));
    recorded.map_err(|e| Error::io("write", path, e))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_directories_and_oversized_files_and_reports_missing_ones() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_limited(&dir.path().join("nope"), 10, "x").unwrap().is_none());
        let e = read_limited(dir.path(), 10, "a secrets file").unwrap_err().to_string();
        assert!(e.ends_with("a secrets file is a directory"), "{e}");
        let big = dir.path().join("big");
        std::fs::write(&big, [b'a'; 11]).unwrap();
        assert!(read_limited(&big, 10, "x").unwrap_err().to_string().contains("larger than 10 bytes"));
        assert_eq!(read_limited(&big, 11, "x").unwrap().unwrap().len(), 11);
    }

    #[cfg(unix)]
    #[test]
    fn files_of_its_own_are_never_written_through_a_link_or_into_a_fifo() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let link = dir.path().join("apply.lock");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let e = lock(&link, std::time::Duration::ZERO).unwrap_err().to_string();
        assert!(e.contains("is a symbolic link"), "{e}");
        let e = write_private(&link, b"x").unwrap_err().to_string();
        assert!(e.contains("is a symbolic link"), "{e}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert!(link.symlink_metadata().unwrap().file_type().is_symlink(), "the link was replaced");
        let fifo = dir.path().join("record.json");
        nix_free_mkfifo(&fifo);
        assert!(
            lock(&fifo, std::time::Duration::ZERO).unwrap_err().to_string().contains("not a regular file")
        );
        assert!(write_private(&fifo, b"x").unwrap_err().to_string().contains("not a regular file"));
    }

    fn nix_free_mkfifo(path: &Path) {
        let status = std::process::Command::new("mkfifo").arg(path).status().unwrap();
        assert!(status.success());
    }

    #[test]
    fn refuses_a_fifo_instead_of_hanging() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let e = read_limited(&fifo, 10, "profile.yaml").unwrap_err().to_string();
        assert!(e.ends_with("profile.yaml is not a regular file"), "{e}");
    }
}

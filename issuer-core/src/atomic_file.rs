//! Files that appear whole or not at all: written to a temporary file in
//! the same directory, flushed to disk, then moved into place.

use std::fs::{self, File};
use std::io::{self, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

/// What to do when the destination already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    Replace,
    /// Fail with `ErrorKind::AlreadyExists` and leave it untouched.
    Keep,
}

/// Writes `contents` to `path` atomically. The temporary file is created
/// with `mode` from the start, so a secret is never readable by others,
/// even for a moment.
pub fn write(path: &Path, contents: &[u8], mode: u32, existing: Existing) -> io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"))?;
    let mut temp = tempfile::Builder::new()
        .prefix(&format!(".{}.", name.to_string_lossy()))
        .suffix(".tmp")
        .permissions(fs::Permissions::from_mode(mode))
        .tempfile_in(&dir)?;
    temp.write_all(contents)?;
    temp.as_file().sync_all()?;
    match existing {
        Existing::Replace => temp.persist(path),
        // Never replaces its destination (a hard link, then the temporary
        // name removed), so two writers cannot both believe they made it.
        Existing::Keep => temp.persist_noclobber(path),
    }
    .map_err(|e| e.error)?;
    // What tempfile does not do: the rename is durable only once the
    // directory entry is on disk.
    File::open(&dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn write_creates_file_with_mode_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        write(&path, b"abc", 0o600, Existing::Keep).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"abc");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn keep_refuses_to_replace_and_replace_does() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file");
        write(&path, b"first", 0o644, Existing::Keep).unwrap();
        let err = write(&path, b"second", 0o644, Existing::Keep).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&path).unwrap(), b"first");
        write(&path, b"third", 0o644, Existing::Replace).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"third");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}

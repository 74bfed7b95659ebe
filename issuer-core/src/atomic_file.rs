//! Files that appear whole or not at all: written to a temporary file in
//! the same directory, flushed to disk, then moved into place.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use ren3_shared::binary;

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
    let suffix = binary::os_random::<6>().map_err(io::Error::other)?;
    let temp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        binary::encode(&suffix)
    ));
    let result = write_temp(&temp, contents, mode).and_then(|()| match existing {
        Existing::Replace => fs::rename(&temp, path),
        // A hard link never replaces its destination, so two writers cannot
        // both believe they created the file.
        Existing::Keep => fs::hard_link(&temp, path).and_then(|()| fs::remove_file(&temp)),
    });
    if result.is_err() {
        // Best effort: the temporary file holds nothing the caller relies on.
        let _ = fs::remove_file(&temp);
    }
    result?;
    // The rename is durable only once the directory entry is on disk.
    File::open(&dir)?.sync_all()
}

fn write_temp(temp: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(temp)?;
    file.write_all(contents)?;
    file.sync_all()
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

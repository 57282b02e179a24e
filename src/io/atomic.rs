//! Atomic file writes: a crash mid-write leaves the previous file intact.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use crate::{Error, Result};

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, `fsync`, rename
/// over `path`, then `fsync` of the directory so that the rename itself is durable.
///
/// Readers see either the old file or the new one, never a truncated mix.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    let err = |e: std::io::Error| Error::Save {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| Error::Save {
        path: path.to_path_buf(),
        message: "not a file path".into(),
    })?;
    let tmp = temporary_path(dir, name);
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(err)
}

/// The temporary name [`atomic_write`] writes `path`'s contents under before renaming.
fn temporary_path(dir: &Path, name: &std::ffi::OsStr) -> std::path::PathBuf {
    dir.join(format!(".{}.tmp-{}", name.to_string_lossy(), std::process::id()))
}

/// Removes the temporary files that an [`atomic_write`] of another process left in `dir` when it
/// was killed mid-write (`.NAME.tmp-PID`); returns what it removed.
pub(crate) fn remove_stale_temporaries(dir: &Path) -> Vec<std::path::PathBuf> {
    let ours = format!(".tmp-{}", std::process::id());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let pid = name.rsplit_once(".tmp-").map(|(_, pid)| pid);
            name.starts_with('.')
                && pid.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                && !name.ends_with(&ours)
                && e.file_type().is_ok_and(|t| t.is_file())
        })
        .filter_map(|e| std::fs::remove_file(e.path()).ok().map(|_| e.path()))
        .collect()
}

/// `fsync` on a directory (a no-op where directories cannot be opened, as on Windows).
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("ember-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.bin");
        atomic_write(&path, b"old").unwrap();
        atomic_write(&path, b"new contents").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new contents");
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        // A directory that does not exist: an error naming the file, the old state untouched.
        let err = atomic_write(&dir.join("missing/b.bin"), b"x").unwrap_err();
        assert!(err.to_string().contains("missing/b.bin"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn stale_temporaries_of_other_processes_are_removed() {
        let dir = std::env::temp_dir().join(format!("ember-atomic-stale-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ours = temporary_path(&dir, std::ffi::OsStr::new("c.bin"));
        for name in [
            ".model.bin.tmp-4242",
            ".a.tmp-1",
            "keep.tmp-5",
            ".keep.tmp-x",
            "model.bin",
        ] {
            std::fs::write(dir.join(name), b"x").unwrap();
        }
        std::fs::write(&ours, b"x").unwrap();
        let mut removed: Vec<String> = remove_stale_temporaries(&dir)
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().to_string())
            .collect();
        removed.sort();
        assert_eq!(removed, [".a.tmp-1", ".model.bin.tmp-4242"]);
        assert!(ours.exists() && dir.join("keep.tmp-5").exists() && dir.join("model.bin").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! Private files on disk: bounded reads of key files (warning when others can
//! read them) and atomic, durable writes with mode 0600 into directories
//! created with mode 0700.

#[cfg(unix)]
use std::fs::{self, DirBuilder, File, OpenOptions};
#[cfg(unix)]
use std::io::{self, Read, Write};
#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
#[cfg(unix)]
use std::path::{Path, PathBuf};
#[cfg(unix)]
use std::sync::atomic::{AtomicU64, Ordering};

#[cfg(unix)]
use zeroize::Zeroizing;

#[cfg(unix)]
use super::error::{io_error, KeyError};
#[cfg(unix)]
use super::{KEY_DIR_MODE, KEY_FILE_MODE, MAX_KEY_FILE_LEN};
#[cfg(unix)]
use crate::paths::parent_dir;

/// How to write a key file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteMode {
    /// Fail with [`KeyError::AlreadyExists`] if the file exists.
    CreateNew,
    /// Atomically replace an existing file.
    Overwrite,
}

#[cfg(unix)]
/// Reads a small secret file into a zeroizing buffer that never reallocates.
pub(super) fn read_key_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    // Checked before opening so that a FIFO or device does not block us.
    let meta = fs::metadata(path).map_err(io_error("read key file", path))?;
    if !meta.is_file() {
        return Err(KeyError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    let file = File::open(path).map_err(io_error("open key file", path))?;
    let meta = file
        .metadata()
        .map_err(io_error("read key file metadata of", path))?;
    if !meta.is_file() {
        return Err(KeyError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    warn_if_loose(path, meta.mode());
    if meta.len() > MAX_KEY_FILE_LEN {
        return Err(KeyError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    let cap = usize::try_from(MAX_KEY_FILE_LEN)
        .unwrap_or(usize::MAX)
        .saturating_add(1);
    let mut buf = Zeroizing::new(Vec::with_capacity(cap));
    file.take(MAX_KEY_FILE_LEN.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(io_error("read key file", path))?;
    if buf.len() as u64 > MAX_KEY_FILE_LEN {
        return Err(KeyError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    Ok(buf)
}

/// Whether a file mode gives group or others any access.
pub fn is_mode_too_open(mode: u32) -> bool {
    mode & 0o077 != 0
}

#[cfg(unix)]
pub(super) fn warn_if_loose(path: &Path, mode: u32) {
    if is_mode_too_open(mode) {
        tracing::warn!(
            path = %path.display(),
            mode = format_args!("{:o}", mode & 0o777),
            "key file is accessible to other users; run `chmod 600 {}`",
            path.display()
        );
    }
}

#[cfg(unix)]
pub(super) fn sync_dir(dir: &Path) -> Result<(), KeyError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error("sync directory", dir))
}

#[cfg(unix)]
/// Creates the missing directories leading to `dir`, each with mode 0700,
/// and makes each creation durable.
pub(super) fn create_private_dirs(dir: &Path) -> Result<(), KeyError> {
    let mut missing = Vec::new();
    let mut current = dir;
    loop {
        match fs::metadata(current) {
            Ok(meta) if meta.is_dir() => break,
            Ok(_) => {
                return Err(KeyError::NotADirectory {
                    path: current.to_path_buf(),
                })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                missing.push(current);
                match current.parent() {
                    Some(parent) if !parent.as_os_str().is_empty() => current = parent,
                    _ => break,
                }
            }
            Err(e) => return Err(io_error("inspect directory", current)(e)),
        }
    }
    for created in missing.into_iter().rev() {
        match DirBuilder::new().mode(KEY_DIR_MODE).create(created) {
            Ok(()) => {
                fs::set_permissions(created, fs::Permissions::from_mode(KEY_DIR_MODE))
                    .map_err(io_error("set permissions of directory", created))?;
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && created.is_dir() => {}
            Err(e) => return Err(io_error("create directory", created)(e)),
        }
        sync_dir(parent_dir(created))?;
    }
    Ok(())
}

#[cfg(unix)]
/// A temporary file next to the destination, removed on drop unless it was
/// renamed away.
struct TempFile {
    path: PathBuf,
    file: File,
}

#[cfg(unix)]
impl TempFile {
    fn create(dir: &Path, name: &std::ffi::OsStr) -> Result<Self, KeyError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let mut attempts = 0u32;
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let mut tmp_name = std::ffi::OsString::from(".");
            tmp_name.push(name);
            tmp_name.push(format!(".{}.{n}.tmp", std::process::id()));
            let path = dir.join(tmp_name);
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(KEY_FILE_MODE)
                .open(&path)
            {
                Ok(file) => return Ok(Self { path, file }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 16 => {
                    attempts += 1;
                }
                Err(e) => return Err(io_error("create temporary key file", &path)(e)),
            }
        }
    }
}

#[cfg(unix)]
impl Drop for TempFile {
    fn drop(&mut self) {
        // Already gone after a rename; nothing else to do on failure.
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(unix)]
/// Writes `contents` to `path` so that after a crash the path holds either
/// nothing (or the old file) or the complete new file.
pub fn write_secret_file(path: &Path, contents: &[u8], mode: WriteMode) -> Result<(), KeyError> {
    let name = path.file_name().ok_or_else(|| KeyError::NoFileName {
        path: path.to_path_buf(),
    })?;
    let dir = parent_dir(path);
    create_private_dirs(dir)?;
    if mode == WriteMode::CreateNew && fs::symlink_metadata(path).is_ok() {
        return Err(KeyError::AlreadyExists {
            path: path.to_path_buf(),
        });
    }

    let mut tmp = TempFile::create(dir, name)?;
    tmp.file
        .set_permissions(fs::Permissions::from_mode(KEY_FILE_MODE))
        .map_err(io_error("set permissions of", &tmp.path))?;
    tmp.file
        .write_all(contents)
        .and_then(|()| tmp.file.sync_all())
        .map_err(io_error("write key file", &tmp.path))?;

    match mode {
        WriteMode::CreateNew => fs::hard_link(&tmp.path, path).map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                KeyError::AlreadyExists {
                    path: path.to_path_buf(),
                }
            } else {
                io_error("create key file", path)(e)
            }
        })?,
        WriteMode::Overwrite => {
            fs::rename(&tmp.path, path).map_err(io_error("replace key file", path))?
        }
    }
    drop(tmp);
    sync_dir(dir)
}

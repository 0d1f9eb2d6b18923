//! A Unix-socket listener that is careful with its socket file.
//!
//! A crashed process leaves its socket file behind, and a plain `bind` then fails with
//! "address in use". Deleting the file blindly would, however, steal the address of a second
//! instance that is still running. So a leftover file is removed only when a connect to it is
//! refused. The socket is created 0600 inside a private 0700 directory and renamed into place,
//! so no other user can connect even for a moment (the process umask is not touched: it is
//! process-wide and other threads may be creating files). On drop, the file is removed if it
//! is still ours.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A listening Unix socket whose file is removed when this value is dropped.
#[derive(Debug)]
pub struct UnixSocketListener {
    listener: UnixListener,
    path: PathBuf,
    /// (device, inode) of the socket file we created, to avoid removing someone else's.
    identity: (u64, u64),
}

impl UnixSocketListener {
    /// Binds `path`, replacing a stale socket file left by a dead process; fails with
    /// `AddrInUse` when another process is listening there, and refuses to replace anything
    /// that is not a socket.
    pub fn bind(path: &Path) -> io::Result<Self> {
        remove_if_stale(path)?;
        let listener = bind_private(path)?;
        let meta = fs::symlink_metadata(path)?;
        Ok(Self {
            listener,
            path: path.to_owned(),
            identity: (meta.dev(), meta.ino()),
        })
    }

    /// The underlying std listener.
    pub fn listener(&self) -> &UnixListener {
        &self.listener
    }

    /// The socket file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for UnixSocketListener {
    fn drop(&mut self) {
        if let Ok(meta) = fs::symlink_metadata(&self.path) {
            if (meta.dev(), meta.ino()) == self.identity {
                let _ = fs::remove_file(&self.path);
            }
        }
    }
}

fn remove_if_stale(path: &Path) -> io::Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{} exists and is not a socket; remove it or choose another path",
                path.display()
            ),
        ));
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!(
                "another process is listening on {}; stop it or choose another path",
                path.display()
            ),
        )),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            tracing::info!(path = %path.display(), "removing stale socket file");
            fs::remove_file(path)
        }
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!(
                "cannot tell whether {} is in use ({e}); remove it if it is stale",
                path.display()
            ),
        )),
    }
}

fn bind_private(path: &Path) -> io::Result<UnixListener> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let tmp_dir = parent.join(format!(
        ".tmkms-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    fs::DirBuilder::new().mode(0o700).create(&tmp_dir)?;
    let tmp_sock = tmp_dir.join("s");
    let result = (|| {
        let listener = UnixListener::bind(&tmp_sock)?;
        fs::set_permissions(&tmp_sock, fs::Permissions::from_mode(0o600))?;
        fs::rename(&tmp_sock, path)?;
        Ok(listener)
    })();
    let _ = fs::remove_file(&tmp_sock);
    let _ = fs::remove_dir(&tmp_dir);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_0600_and_removes_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.sock");
        let l = UnixSocketListener::bind(&path).unwrap();
        let meta = fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        UnixStream::connect(&path).unwrap();
        drop(l);
        assert!(!path.exists());
        // No temporary directory is left next to it.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn replaces_stale_socket_but_not_live_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.sock");
        // A stale file: bound by a listener that is gone without cleaning up.
        drop(UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let live = UnixSocketListener::bind(&path).unwrap();
        let err = UnixSocketListener::bind(&path).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        assert!(
            err.to_string().contains("another process is listening"),
            "{err}"
        );
        // The failed attempt did not remove the live socket.
        UnixStream::connect(&path).unwrap();
        drop(live);
    }

    #[test]
    fn refuses_to_replace_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.sock");
        fs::write(&path, b"precious").unwrap();
        let err = UnixSocketListener::bind(&path).unwrap_err();
        assert!(err.to_string().contains("is not a socket"), "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"precious");
    }

    #[test]
    fn drop_leaves_a_replacement_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.sock");
        let first = UnixSocketListener::bind(&path).unwrap();
        fs::remove_file(&path).unwrap();
        let _other = UnixListener::bind(&path).unwrap();
        drop(first);
        assert!(path.exists(), "someone else's socket must survive our drop");
    }
}

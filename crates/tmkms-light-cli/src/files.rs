//! Small file helpers of the host binaries: where a path's directory is,
//! and reading a small operator-supplied file without trusting its size.

use std::fs;
use std::io::{self, Read as _};
use std::path::{Path, PathBuf};

use thiserror::Error;

/// The directory a path is in (`.` for a bare file name), written once in
/// the core for the key and state writers and the host binaries alike.
pub use tmkms_light::paths::parent_dir;

/// `init` of a TEE host: write the configuration `render` makes, unless
/// `path` exists (a re-run of `init` keeps the operator's file and edits).
/// `render` runs only when the file is written, so its checks of the
/// inputs come before anything is.
pub fn write_config_if_missing(
    path: &Path,
    render: impl FnOnce() -> anyhow::Result<String>,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    if path.exists() {
        eprintln!("using the existing {}", path.display());
        return Ok(());
    }
    let text = render()?;
    let dir = parent_dir(path);
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

/// Why a capped read failed; `what` names the file for the operator
/// ("sealed consensus key", "state JSON file").
#[derive(Debug, Error)]
pub enum CappedReadError {
    #[error("{what} {}", path.display())]
    Stat {
        what: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{what} {} is {len} bytes; expected at most {max} — wrong file?", path.display())]
    TooLarge {
        what: String,
        path: PathBuf,
        len: u64,
        max: u64,
    },
    #[error("reading {what} {}", path.display())]
    Read {
        what: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Read the whole of `path`, refusing a file over `max` bytes: these files
/// (sealed blobs, ciphertexts, state JSON) are small, and a large one is
/// the wrong file, not something to load into memory. The read itself is
/// capped too, so a file that grows after the size check is refused the
/// same way.
pub fn read_capped(path: &Path, max: u64, what: &str) -> Result<Vec<u8>, CappedReadError> {
    let stat_error = |source| CappedReadError::Stat {
        what: what.to_owned(),
        path: path.to_path_buf(),
        source,
    };
    let too_large = |len| CappedReadError::TooLarge {
        what: what.to_owned(),
        path: path.to_path_buf(),
        len,
        max,
    };
    let len = fs::metadata(path).map_err(stat_error)?.len();
    if len > max {
        return Err(too_large(len));
    }
    let read_error = |source| CappedReadError::Read {
        what: what.to_owned(),
        path: path.to_path_buf(),
        source,
    };
    let file = fs::File::open(path).map_err(read_error)?;
    let mut bytes = Vec::new();
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    let read = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if read > max {
        return Err(too_large(read));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_file_at_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        fs::write(&path, [7u8; 16]).unwrap();
        assert_eq!(read_capped(&path, 16, "blob").unwrap(), vec![7u8; 16]);
    }

    #[test]
    fn refuses_a_file_over_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        fs::write(&path, [7u8; 17]).unwrap();
        let err = read_capped(&path, 16, "sealed blob").unwrap_err();
        assert!(matches!(
            err,
            CappedReadError::TooLarge {
                len: 17,
                max: 16,
                ..
            }
        ));
        assert!(err.to_string().starts_with("sealed blob "), "{err}");
        assert!(
            err.to_string()
                .ends_with("is 17 bytes; expected at most 16 — wrong file?"),
            "{err}"
        );
    }

    #[test]
    fn names_the_file_that_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent");
        let err = read_capped(&path, 16, "backup").unwrap_err();
        assert!(matches!(err, CappedReadError::Stat { .. }));
        assert_eq!(err.to_string(), format!("backup {}", path.display()));
    }
}

//! Paths of the files the signer writes (key files, the state file).

use std::path::Path;

/// The directory `path` lives in: where a new file's directory entry is
/// made durable, and which must exist first. A bare file name
/// (`tmkms.toml`) has an empty parent, meaning the current directory: that
/// is returned as `.` so that joining, creating and printing it all do
/// what the operator expects.
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_file_name_lives_in_the_current_directory() {
        assert_eq!(parent_dir(Path::new("state.bin")), Path::new("."));
        assert_eq!(parent_dir(Path::new("a/b/state.bin")), Path::new("a/b"));
        assert_eq!(parent_dir(Path::new("/state.bin")), Path::new("/"));
        assert_eq!(parent_dir(Path::new("")), Path::new("."));
        assert_eq!(parent_dir(Path::new("/")), Path::new("."));
        assert_eq!(parent_dir(Path::new("./tmkms.toml")), Path::new("."));
    }
}

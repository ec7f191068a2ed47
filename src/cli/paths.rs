//! Files named on the command line (`dry-run INPUT`, `gen --out FILE`). A path that does
//! not exist, is a directory, or may not be read or created is bad usage, the user's to
//! fix (exit 2); any other I/O failure is the machine's (exit 1). The error names the path.

use crate::error::{Failure, Fault};
use std::fs::File;
use std::io;
use std::path::Path;

/// Whose fault it is that a named file cannot be opened or created.
fn fault_of(e: &io::Error) -> Fault {
    use io::ErrorKind::*;
    match e.kind() {
        NotFound | PermissionDenied | IsADirectory | NotADirectory | ReadOnlyFilesystem => {
            Fault::User
        }
        _ => Fault::World,
    }
}

/// Opens the input file `path` for reading.
pub(super) fn open_input(path: &Path) -> Result<File, Failure> {
    let refused = |e: io::Error| {
        Failure::new(fault_of(&e), e).context(format!("cannot open input {}", path.display()))
    };
    let file = File::open(path).map_err(refused)?;
    // A directory opens on Unix, and fails only at the first read.
    if file.metadata().map_err(refused)?.is_dir() {
        return Err(refused(io::ErrorKind::IsADirectory.into()));
    }
    Ok(file)
}

/// Creates (or truncates) the output file `path`.
pub(super) fn create_output(path: &Path) -> Result<File, Failure> {
    File::create(path).map_err(|e| {
        let fault = fault_of(&e);
        // "No such file or directory" for a file being created: its directory is missing.
        let missing_dir = path
            .parent()
            .filter(|d| e.kind() == io::ErrorKind::NotFound && !d.as_os_str().is_empty())
            .filter(|d| !d.exists());
        let error = match missing_dir {
            Some(d) => anyhow::anyhow!("the directory {} does not exist", d.display()),
            None => e.into(),
        };
        Failure::new(fault, error).context(format!("cannot create {}", path.display()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_directory_path_is_bad_usage_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.jsonl");
        let e = open_input(&missing).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("nope.jsonl"), "{e}");

        let e = open_input(dir.path()).unwrap_err();
        assert_eq!(e.exit_code(), 2, "{e}");

        let nested = dir.path().join("no-such-dir").join("x");
        let e = create_output(&nested).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let text = e.to_string();
        assert!(text.contains("cannot create"), "{text}");
        assert!(text.contains("no-such-dir does not exist"), "{text}");

        let e = create_output(dir.path()).unwrap_err();
        assert_eq!(e.exit_code(), 2, "{e}");

        let ok = dir.path().join("out");
        create_output(&ok).unwrap();
        open_input(&ok).unwrap();
    }

    #[test]
    fn other_io_failures_are_the_machines() {
        assert_eq!(fault_of(&io::Error::other("disk")), Fault::World);
        assert_eq!(fault_of(&io::ErrorKind::StorageFull.into()), Fault::World);
    }
}

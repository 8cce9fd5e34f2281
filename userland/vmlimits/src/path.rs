//! Paths to images: the one rule for `start -b`, `-d` and `-r` in the shell and `boot`, `disk`,
//! `cdrom` and `initrd` in vm.conf.
//!
//! What it does: [`check_path`] says whether a path may be given at all: not empty, at most
//! [`PATH_MAX`] bytes. Errors are [`NameError`]s (`Empty`, `TooLong`), worded by the caller's
//! `what` (`disk path must not be empty`).
//!
//! What it does not do: say whether the file exists (on Keel a path names a boot module; vmd
//! looks it up when the VM starts) or read a `raw:` / `qcow2:` prefix (the shell's `-d` does).

use crate::name::NameError;

/// The longest path, in bytes: OpenBSD's `PATH_MAX` is 1024 with the terminating NUL.
pub const PATH_MAX: usize = 1023;

/// A path to an image: 1 to [`PATH_MAX`] bytes.
pub fn check_path(path: &str) -> Result<(), NameError> {
    if path.is_empty() {
        return Err(NameError::Empty);
    }
    if path.len() > PATH_MAX {
        return Err(NameError::TooLong { len: path.len(), max: PATH_MAX });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(check_path("/bsd.rd"), Ok(()));
        assert_eq!(check_path("any thing: at all"), Ok(()));
        assert_eq!(check_path(&"p".repeat(PATH_MAX)), Ok(()));
        assert_eq!(check_path(""), Err(NameError::Empty));
        assert_eq!(check_path(&"p".repeat(PATH_MAX + 1)), Err(NameError::TooLong { len: 1024, max: 1023 }));
        assert_eq!(NameError::Empty.message("disk path", "''"), "disk path must not be empty");
    }
}

//! Paths and names: a path is `/`-separated names (leading, trailing and repeated `/` ignored);
//! `.` and `..` are refused rather than resolved, since the storage service hands out paths it
//! built itself. A name is checked against the rules both exFAT and FAT32 long names share
//! (exFAT spec 7.7.3: no control characters and none of `" * / : < > ? \ |`, at most 255 UTF-16
//! units). It does not know about short 8.3 names (the FAT32 code makes those).

use alloc::vec::Vec;

use crate::error::{Error, Result};

/// The most UTF-16 units in a name (exFAT spec 7.7.3; FAT long names, the same).
pub const MAX_NAME_UNITS: usize = 255;

/// The names of `path`, in order; empty for the root.
pub fn components(path: &str) -> Result<Vec<&str>> {
    let names: Vec<&str> = path.split('/').filter(|n| !n.is_empty()).collect();
    for name in &names {
        check_name(name)?;
    }
    Ok(names)
}

/// The parent's names and the last name of `path`; the root has no last name.
pub fn split_last(path: &str) -> Result<(Vec<&str>, &str)> {
    let mut names = components(path)?;
    let last = names.pop().ok_or(Error::InvalidName)?;
    Ok((names, last))
}

/// Check one name and return it as UTF-16.
pub fn check_name(name: &str) -> Result<Vec<u16>> {
    if name.is_empty() || name == "." || name == ".." {
        return Err(Error::InvalidName);
    }
    let units: Vec<u16> = name.encode_utf16().collect();
    if units.len() > MAX_NAME_UNITS {
        return Err(Error::NameTooLong);
    }
    if units.iter().any(|&u| u < 0x20 || matches!(u, 0x22 | 0x2a | 0x2f | 0x3a | 0x3c | 0x3e | 0x3f | 0x5c | 0x7c)) {
        return Err(Error::InvalidName);
    }
    Ok(units)
}

/// A UTF-16 name from disk as a `String` (unpaired surrogates become U+FFFD).
pub fn name_to_string(units: &[u16]) -> alloc::string::String {
    char::decode_utf16(units.iter().copied()).map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_and_names_are_checked() {
        assert_eq!(components("//a/b//c/").unwrap(), ["a", "b", "c"]);
        assert!(components("/").unwrap().is_empty());
        assert_eq!(components("a/../b"), Err(Error::InvalidName));
        assert_eq!(check_name("a:b"), Err(Error::InvalidName));
        assert_eq!(check_name(&"x".repeat(256)), Err(Error::NameTooLong));
        assert_eq!(check_name(&"é".repeat(255)).unwrap().len(), 255);
        assert_eq!(split_last("/a/b").unwrap(), (alloc::vec!["a"], "b"));
        assert_eq!(split_last("/"), Err(Error::InvalidName));
    }
}

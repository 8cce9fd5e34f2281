//! A disk image's size: the one rule for `create -s` (vmctl(8)'s `-s size`).
//!
//! What it does: reads a size ([`crate::scaled::scan_scaled`]), checks it lies in
//! [`MIN_DISK_SIZE`]..=[`MAX_DISK_SIZE`] and rounds it down to a whole MiB, as vmctl's
//! `parse_size` does (it keeps the size in megabytes).
//!
//! What it does not do: know how much room the datastore has (images are sparse; a write that
//! finds the datastore full fails then, with a clear error).

use alloc::format;
use alloc::string::String;
use core::fmt;

use crate::scaled::{scan_scaled, ScanError};

/// The smallest image, 1 MiB (vmctl: "size must be at least 1MB").
pub const MIN_DISK_SIZE: u64 = 1 << 20;
/// The largest image, 64 TiB: a qcow2 image of 64 KiB clusters then has a 1 MiB L1 table, which
/// the monitor keeps in memory; far past what a datastore disk holds today.
pub const MAX_DISK_SIZE: u64 = 64 << 40;

/// Why a disk size was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskSizeError {
    Invalid(ScanError),
    TooSmall,
    TooLarge,
}

impl DiskSizeError {
    /// The error as one line, naming `shown` (the text as typed) when the text is the problem.
    pub fn message(&self, shown: &str) -> String {
        match self {
            Self::Invalid(e) => format!("invalid disk size {shown}: {e}"),
            other => format!("{other}"),
        }
    }
}

impl fmt::Display for DiskSizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid(e) => write!(f, "invalid disk size: {e}"),
            Self::TooSmall => f.write_str("disk size must be at least 1M"),
            Self::TooLarge => f.write_str("disk size too large (limit is 64T)"),
        }
    }
}

/// A disk size as typed (`50G`, `512M`): in bytes, rounded down to a MiB.
pub fn parse_disk_size(text: &str) -> Result<u64, DiskSizeError> {
    let bytes = match scan_scaled(text) {
        Ok(bytes) => bytes,
        Err(ScanError::TooLarge) => return Err(DiskSizeError::TooLarge),
        Err(e) => return Err(DiskSizeError::Invalid(e)),
    };
    if bytes < MIN_DISK_SIZE {
        return Err(DiskSizeError::TooSmall);
    }
    if bytes > MAX_DISK_SIZE {
        return Err(DiskSizeError::TooLarge);
    }
    Ok(bytes & !(MIN_DISK_SIZE - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_vmctl_reads_them() {
        assert_eq!(parse_disk_size("50G"), Ok(50 << 30));
        assert_eq!(parse_disk_size("4G"), Ok(4 << 30));
        assert_eq!(parse_disk_size("1.5M"), Ok(1 << 20));
        assert_eq!(parse_disk_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_disk_size("64T"), Ok(64 << 40));
        assert_eq!(parse_disk_size("512K"), Err(DiskSizeError::TooSmall));
        assert_eq!(parse_disk_size("65T"), Err(DiskSizeError::TooLarge));
        assert_eq!(parse_disk_size("99999999E"), Err(DiskSizeError::TooLarge));
        assert!(matches!(parse_disk_size("5GB"), Err(DiskSizeError::Invalid(_))));
        assert_eq!(parse_disk_size("").unwrap_err().message("\"\""), "invalid disk size \"\": no size given");
    }
}

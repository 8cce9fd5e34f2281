//! A VM's memory size: the one rule for `start -m` in the shell, `memory` in vm.conf and the
//! default vmd uses when neither gives one.
//!
//! What it does: reads a size ([`crate::scaled::scan_scaled`]) or takes a byte count, checks it
//! lies in [`MIN_MEMORY`]..=[`MAX_MEMORY`] and rounds it down to a whole MiB, as vmd's and
//! vmctl's `parse_size` do. Errors say what is wrong and, for a bound, what the bound is.
//!
//! Also the one message for a VM that does not fit in the free memory ([`NotEnoughMemory`]).
//!
//! What it does not do: know how much RAM the machine has free (vmd and the monitor ask the
//! kernel when the VM starts), or warn about the rounding.

use alloc::format;
use alloc::string::String;
use core::fmt;

use crate::scaled::{fmt_scaled, scan_scaled, ScanError};

/// The smallest memory size, 1 MiB (vmd's and vmctl's `parse_size`).
pub const MIN_MEMORY: u64 = 1 << 20;
/// The largest memory size, 128 GiB: OpenBSD's `VMM_MAX_VM_MEM_SIZE` on amd64, so that a
/// vm.conf or a `start -m` that Keel accepts is one OpenBSD accepts too (and the reverse). It is
/// keel-abi's `MAX_VM_MEMORY`, the limit the kernel sizes its own from, so that what the front
/// ends accept the kernel can map.
pub use keel_abi::MAX_VM_MEMORY as MAX_MEMORY;
/// The memory of a VM whose configuration gives none (vm.conf(5): 512M).
pub const DEFAULT_MEMORY: u64 = 512 << 20;

/// Why a memory size was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryError {
    /// Not a size at all.
    Invalid(ScanError),
    /// Below [`MIN_MEMORY`].
    TooSmall,
    /// Above [`MAX_MEMORY`] (including sizes too large for 64 bits).
    TooLarge,
}

impl MemoryError {
    /// The error as one line, naming `shown` (the text as typed, already quoted the front
    /// end's way) when the text itself is the problem: `invalid memory size "1GB": unknown unit
    /// (...)`, `memory size too large (limit is 128G)`.
    pub fn message(&self, shown: &str) -> String {
        match self {
            Self::Invalid(e) => format!("invalid memory size {shown}: {e}"),
            other => format!("{other}"),
        }
    }
}

impl fmt::Display for MemoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid(e) => write!(f, "invalid memory size: {e}"),
            Self::TooSmall => write!(f, "memory size must be at least {}", Limit(MIN_MEMORY)),
            Self::TooLarge => write!(f, "memory size too large (limit is {})", Limit(MAX_MEMORY)),
        }
    }
}

/// A bound written as a user would type it (`1M`, `128G`): whole units, no `.0`.
struct Limit(u64);

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (0..7).rev().map(|i| (i, 1u64 << (10 * i))).find(|&(_, s)| self.0 >= s && self.0.is_multiple_of(s)) {
            Some((i, s)) => write!(f, "{}{}", self.0 / s, char::from(b"BKMGTPE"[i])),
            None => f.write_str("0B"),
        }
    }
}

/// A memory size as typed (`512M`, `1.5G`, `1073741824`): in bytes, rounded down to a MiB.
/// `parse_memory("1G")` is `Ok(1 << 30)`.
pub fn parse_memory(text: &str) -> Result<u64, MemoryError> {
    match scan_scaled(text) {
        Ok(bytes) => check_memory(bytes),
        Err(ScanError::TooLarge) => Err(MemoryError::TooLarge),
        Err(e) => Err(MemoryError::Invalid(e)),
    }
}

/// A memory size given in bytes (vm.conf's `memory 1073741824`): bounds checked, rounded
/// down to a MiB.
pub fn check_memory(bytes: u64) -> Result<u64, MemoryError> {
    if bytes < MIN_MEMORY {
        return Err(MemoryError::TooSmall);
    }
    if bytes > MAX_MEMORY {
        return Err(MemoryError::TooLarge);
    }
    Ok(bytes & !(MIN_MEMORY - 1))
}

/// Why a VM did not start: the machine has too little memory free for it. `Display` is the
/// reason with both sizes as `show` writes them: `not enough memory: 8.0G asked, 410M free`.
/// vmd says so before it starts a monitor (when `asked > free`); a monitor that still cannot
/// get its RAM (what is free must also hold the monitor and its page tables) says so too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotEnoughMemory {
    /// The VM's memory size in bytes.
    pub asked: u64,
    /// The machine's free memory in bytes when the VM was to start.
    pub free: u64,
}

impl fmt::Display for NotEnoughMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not enough memory: {} asked, {} free", fmt_scaled(self.asked), fmt_scaled(self.free))?;
        if self.asked <= self.free {
            f.write_str(" (the VM's monitor and page tables need some of it too)")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_and_rounding() {
        assert_eq!(parse_memory("1M"), Ok(MIN_MEMORY));
        assert_eq!(parse_memory("1048575"), Err(MemoryError::TooSmall));
        assert_eq!(parse_memory("1023K"), Err(MemoryError::TooSmall));
        assert_eq!(parse_memory("0"), Err(MemoryError::TooSmall));
        assert_eq!(parse_memory("1.9M"), Ok(MIN_MEMORY));
        assert_eq!(parse_memory("128G"), Ok(MAX_MEMORY));
        assert_eq!(parse_memory("131072M"), Ok(MAX_MEMORY));
        assert_eq!(parse_memory("137438953472"), Ok(MAX_MEMORY));
        assert_eq!(parse_memory("137438953473"), Err(MemoryError::TooLarge));
        assert_eq!(parse_memory("128.001G"), Err(MemoryError::TooLarge));
        assert_eq!(parse_memory("200G"), Err(MemoryError::TooLarge));
        assert_eq!(parse_memory("1T"), Err(MemoryError::TooLarge));
        assert_eq!(parse_memory("16E"), Err(MemoryError::TooLarge));
        assert_eq!(parse_memory("1GB"), Err(MemoryError::Invalid(ScanError::BadUnit)));
        assert_eq!(check_memory(u64::MAX), Err(MemoryError::TooLarge));
        assert_eq!(check_memory((5 << 20) + 1), Ok(5 << 20));
        const { assert!(MIN_MEMORY <= DEFAULT_MEMORY && DEFAULT_MEMORY <= MAX_MEMORY) };
    }

    #[test]
    fn messages() {
        assert_eq!(MemoryError::TooSmall.to_string(), "memory size must be at least 1M");
        assert_eq!(MemoryError::TooLarge.to_string(), "memory size too large (limit is 128G)");
        assert_eq!(
            MemoryError::Invalid(ScanError::NoDigits).message("'lots'"),
            "invalid memory size 'lots': expected a number, e.g. 512M or 1.5G"
        );
        assert_eq!(MemoryError::TooLarge.message("'200G'"), "memory size too large (limit is 128G)");
        assert_eq!(Limit(3 << 20).to_string(), "3M");
        assert_eq!(Limit(1536).to_string(), "1536B");
        let short = NotEnoughMemory { asked: 8 << 30, free: 410 << 20 };
        assert_eq!(short.to_string(), "not enough memory: 8.0G asked, 410M free");
        let tight = NotEnoughMemory { asked: 400 << 20, free: 405 << 20 };
        assert_eq!(
            tight.to_string(),
            "not enough memory: 400M asked, 405M free (the VM's monitor and page tables need some of it too)"
        );
    }
}

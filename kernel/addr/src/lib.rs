//! Address newtypes, so that a guest-physical address cannot be passed where a host-physical one
//! (or a port, a length, a register value) is meant without saying so. They are plain `u64`s
//! underneath (`.0`). Arithmetic: [`Gpa::checked_add`] for anything a guest chose (a descriptor's
//! buffer, a register it wrote), `+` for offsets into a layout the code placed itself (a table at
//! a known base); `+` overflows as a `u64` would.
//!
//! Why a crate of its own: a guest-physical address crosses every layer, the system-call ABI
//! (`VmMap`, the vCPU page's MMIO exit), the kernel's VM object and nested walk, the monitor's
//! RAM and loader, the device models' DMA and the instruction emulator. Those crates share no
//! other dependency that could hold it (keel-mm is the kernel's frame allocator, keel-abi the
//! system calls), so the one definition lives here, with nothing else.
//!
//! Does not: know where RAM or devices are (the monitor's board and keel-guestboot do), or
//! translate one kind into the other (the kernel's nested page tables do).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

use core::fmt;
use core::ops::Add;

/// The size of a base page, for [`Gpa::page_offset`].
const PAGE_SIZE: u64 = 4096;

/// A guest-physical address: what a guest (or its monitor) names in its own physical space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(transparent)]
pub struct Gpa(pub u64);

/// A host-physical address: a frame of the machine's RAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(transparent)]
pub struct Hpa(pub u64);

impl Gpa {
    /// `self + bytes`, or None on overflow (guest-chosen addresses can be anything).
    pub const fn checked_add(self, bytes: u64) -> Option<Gpa> {
        match self.0.checked_add(bytes) {
            Some(a) => Some(Gpa(a)),
            None => None,
        }
    }

    /// The offset within its 4 KiB page.
    pub const fn page_offset(self) -> u64 {
        self.0 % PAGE_SIZE
    }
}

/// `gpa + bytes`: for offsets into a layout the code placed itself; a guest-chosen address or
/// length goes through [`Gpa::checked_add`].
impl Add<u64> for Gpa {
    type Output = Gpa;
    fn add(self, bytes: u64) -> Gpa {
        Gpa(self.0 + bytes)
    }
}

impl fmt::LowerHex for Gpa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::LowerHex::fmt(&self.0, f)
    }
}

impl fmt::LowerHex for Hpa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::LowerHex::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_arithmetic() {
        assert_eq!(Gpa(0x1000).checked_add(0x20), Some(Gpa(0x1020)));
        assert_eq!(Gpa(u64::MAX).checked_add(1), None);
        assert_eq!(Gpa(0x1234).page_offset(), 0x234);
        assert_eq!(Gpa(0x1000) + 8, Gpa(0x1008));
        assert_eq!(format!("{:#x}", Gpa(0xfee0_0000)), "0xfee00000");
        assert_eq!(format!("{:x}", Hpa(0x20_0000)), "200000");
    }
}

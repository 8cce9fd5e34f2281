//! Address newtypes, so that a guest-physical address cannot be passed where a host-physical one
//! is meant (or the reverse) without saying so. They are plain `u64`s underneath (`.0`); the
//! arithmetic they offer is the checked kind a guest-chosen value needs.

use core::fmt;

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
    pub fn checked_add(self, bytes: u64) -> Option<Gpa> {
        self.0.checked_add(bytes).map(Gpa)
    }

    /// The offset within its 4 KiB page.
    pub fn page_offset(self) -> u64 {
        self.0 % crate::PAGE_SIZE
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
        assert_eq!(format!("{:#x}", Gpa(0xfee0_0000)), "0xfee00000");
    }
}

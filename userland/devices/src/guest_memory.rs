//! The one way a device model reaches guest RAM: bounds-checked copies through [`GuestMemory`].
//!
//! Device models that do DMA (virtio queues) take a `&dyn GuestMemory` or `&mut dyn GuestMemory`
//! for the duration of one call and never keep a reference into guest memory: the guest may change
//! its RAM whenever its vCPU runs, so every value is copied out, validated, then used.
//!
//! Also here: [`VecMemory`], a plain buffer standing in for guest RAM in host tests and fuzz
//! targets.
//!
//! Does not: translate addresses (the monitor's RAM is at GPA 0) or know about MMIO.

use alloc::vec;
use alloc::vec::Vec;

use keel_addr::Gpa;

/// Guest-physical memory as a device sees it. The implementor checks bounds: an access that is not
/// entirely inside guest RAM fails as a whole and touches nothing.
pub trait GuestMemory {
    /// Copies `buf.len()` bytes from guest-physical `gpa` into `buf`; false (and `buf` unspecified)
    /// if any byte is outside RAM.
    fn read(&self, gpa: Gpa, buf: &mut [u8]) -> bool;
    /// Copies `data` to guest-physical `gpa`; false (and nothing written) if any byte is outside
    /// RAM.
    fn write(&mut self, gpa: Gpa, data: &[u8]) -> bool;
}

/// Reads a little-endian `u16` at `gpa`.
pub fn read_u16(mem: &dyn GuestMemory, gpa: Gpa) -> Option<u16> {
    let mut b = [0u8; 2];
    mem.read(gpa, &mut b).then(|| u16::from_le_bytes(b))
}

/// Reads a little-endian `u32` at `gpa`.
pub fn read_u32(mem: &dyn GuestMemory, gpa: Gpa) -> Option<u32> {
    let mut b = [0u8; 4];
    mem.read(gpa, &mut b).then(|| u32::from_le_bytes(b))
}

/// Reads a little-endian `u64` at `gpa`.
pub fn read_u64(mem: &dyn GuestMemory, gpa: Gpa) -> Option<u64> {
    let mut b = [0u8; 8];
    mem.read(gpa, &mut b).then(|| u64::from_le_bytes(b))
}

/// Guest RAM `[base, base + len)` backed by a `Vec`: for host tests and fuzzing.
#[derive(Debug, Clone)]
pub struct VecMemory {
    base: Gpa,
    bytes: Vec<u8>,
}

impl VecMemory {
    /// `len` zero bytes of RAM starting at guest-physical `base`.
    pub fn new(base: Gpa, len: usize) -> Self {
        Self { base, bytes: vec![0; len] }
    }

    /// RAM at `base` holding `bytes`.
    pub fn from_bytes(base: Gpa, bytes: Vec<u8>) -> Self {
        Self { base, bytes }
    }

    /// The whole buffer.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The buffer's index range for `[gpa, gpa + len)`, if it is all inside.
    fn range(&self, gpa: Gpa, len: usize) -> Option<core::ops::Range<usize>> {
        let start = usize::try_from(gpa.0.checked_sub(self.base.0)?).ok()?;
        let end = start.checked_add(len)?;
        (end <= self.bytes.len()).then_some(start..end)
    }
}

impl GuestMemory for VecMemory {
    fn read(&self, gpa: Gpa, buf: &mut [u8]) -> bool {
        match self.range(gpa, buf.len()) {
            Some(r) => {
                buf.copy_from_slice(&self.bytes[r]);
                true
            }
            None => false,
        }
    }

    fn write(&mut self, gpa: Gpa, data: &[u8]) -> bool {
        match self.range(gpa, data.len()) {
            Some(r) => {
                self.bytes[r].copy_from_slice(data);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vec_memory_bounds() {
        let mut mem = VecMemory::new(Gpa(0x1000), 16);
        assert!(mem.write(Gpa(0x1000), &[1, 2, 3]));
        assert!(mem.write(Gpa(0x100E), &[9, 9]));
        assert!(!mem.write(Gpa(0x100F), &[9, 9]), "straddles the end");
        assert!(!mem.write(Gpa(0xFFF), &[9]), "below the base");
        assert!(!mem.write(Gpa(u64::MAX), &[9]));
        assert!(mem.write(Gpa(0x1010), &[]), "an empty access at the end is inside");
        assert_eq!(read_u16(&mem, Gpa(0x1001)), Some(0x0302));
        assert_eq!(read_u32(&mem, Gpa(0x1000)), Some(0x0003_0201));
        assert_eq!(read_u64(&mem, Gpa(0x1008)), Some(0x0909_0000_0000_0000));
        assert_eq!(read_u64(&mem, Gpa(0x1009)), None);
        assert_eq!(mem.bytes()[15], 9);
        let mem = VecMemory::from_bytes(Gpa(u64::MAX - 1), vec![7, 8]);
        assert_eq!(read_u16(&mem, Gpa(u64::MAX - 1)), Some(0x0807));
        assert_eq!(read_u16(&mem, Gpa(u64::MAX)), None);
    }
}

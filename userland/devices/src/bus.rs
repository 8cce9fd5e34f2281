//! An address-range map from guest addresses (ports or guest-physical MMIO addresses) to device
//! indices. The monitor keeps one for port I/O and one for MMIO.
//!
//! Ranges are `[base, base + len)`, may end exactly at 2^64, never overlap and are never empty:
//! an overlap is an error naming the device already there, for the platform to report loudly.
//! A lookup succeeds only when the whole access lies inside one range, and gives the offset from
//! the device's base ([`crate::device::Device`] offsets): the range's own base, or for a device
//! with several windows (the PIC's 0x20, 0xA0 and 0x4D0) the window's offset given to
//! [`Bus::insert_at`]. An access nothing claims is
//! the monitor's to drop; reads of it return all ones ([`all_ones`]), as on an ISA/PCI bus where no
//! device drives the data lines.
//!
//! Does not: own or call the devices (the index is the monitor's), split an access that straddles
//! two ranges, or log.

use alloc::vec::Vec;
use core::fmt;

/// Why [`Bus::insert`] refused a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusError {
    /// `len` is zero.
    Empty,
    /// `base + len` is past 2^64.
    Wraps,
    /// The range overlaps one already mapped to device `index`.
    Overlap { index: usize },
}

impl fmt::Display for BusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("empty range"),
            Self::Wraps => f.write_str("range wraps past the end of the address space"),
            Self::Overlap { index } => write!(f, "range overlaps device {index}"),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Range {
    base: u64,
    /// Last address inside the range (inclusive), so a range may end at 2^64 without overflow.
    last: u64,
    index: usize,
    /// The device offset of `base`.
    offset: u64,
}

/// Ranges sorted by base; lookups are a binary search.
#[derive(Debug, Default, Clone)]
pub struct Bus {
    ranges: Vec<Range>,
}

impl Bus {
    pub const fn new() -> Self {
        Self { ranges: Vec::new() }
    }

    /// Maps `[base, base + len)` to device `index`; `base` is offset 0.
    pub fn insert(&mut self, base: u64, len: u64, index: usize) -> Result<(), BusError> {
        self.insert_at(base, len, index, 0)
    }

    /// Maps `[base, base + len)` to device `index`, `base` being the device's offset `offset`
    /// (a window of a device whose registers are not contiguous).
    pub fn insert_at(&mut self, base: u64, len: u64, index: usize, offset: u64) -> Result<(), BusError> {
        if len == 0 {
            return Err(BusError::Empty);
        }
        let last = base.checked_add(len - 1).ok_or(BusError::Wraps)?;
        // The first range whose base is above ours; the one before it may reach into us.
        let pos = self.ranges.partition_point(|r| r.base <= base);
        if let Some(prev) = pos.checked_sub(1).and_then(|p| self.ranges.get(p)) {
            if prev.last >= base {
                return Err(BusError::Overlap { index: prev.index });
            }
        }
        if let Some(next) = self.ranges.get(pos) {
            if next.base <= last {
                return Err(BusError::Overlap { index: next.index });
            }
        }
        self.ranges.insert(pos, Range { base, last, index, offset });
        Ok(())
    }

    /// The device and its offset for an access of `size` bytes at `addr`, if the whole access lies
    /// inside one range. A zero-sized access matches nothing.
    pub fn lookup(&self, addr: u64, size: u64) -> Option<(usize, u64)> {
        let end = addr.checked_add(size.checked_sub(1)?)?;
        let pos = self.ranges.partition_point(|r| r.base <= addr);
        let range = self.ranges.get(pos.checked_sub(1)?)?;
        (end <= range.last).then(|| (range.index, (addr - range.base).wrapping_add(range.offset)))
    }

    /// Number of mapped ranges.
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The mapped ranges as `(base, last, index)` in address order; `last` is the range's last
    /// address (inclusive).
    pub fn iter(&self) -> impl Iterator<Item = (u64, u64, usize)> + '_ {
        self.ranges.iter().map(|r| (r.base, r.last, r.index))
    }
}

/// Fills a read of an unclaimed address: no device drives the bus, so every bit reads as one.
pub fn all_ones(data: &mut [u8]) {
    data.fill(0xFF);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Rng;

    #[test]
    fn insert_and_lookup() {
        let mut bus = Bus::new();
        bus.insert(0x3F8, 8, 0).unwrap();
        bus.insert(0x20, 2, 1).unwrap();
        bus.insert(0xA0, 2, 2).unwrap();
        bus.insert(0x40, 4, 3).unwrap();
        assert_eq!(bus.len(), 4);
        assert_eq!(bus.lookup(0x3F8, 1), Some((0, 0)));
        assert_eq!(bus.lookup(0x3FF, 1), Some((0, 7)));
        assert_eq!(bus.lookup(0x3FE, 2), Some((0, 6)));
        assert_eq!(bus.lookup(0x3FF, 2), None, "straddles the end");
        assert_eq!(bus.lookup(0x400, 1), None);
        assert_eq!(bus.lookup(0x3F7, 1), None);
        assert_eq!(bus.lookup(0x3F7, 2), None, "straddles the start");
        assert_eq!(bus.lookup(0x21, 1), Some((1, 1)));
        assert_eq!(bus.lookup(0x22, 1), None);
        assert_eq!(bus.lookup(0x43, 1), Some((3, 3)));
        assert_eq!(bus.lookup(0, 1), None);
        assert_eq!(bus.lookup(0x20, 0), None, "zero-sized access");
        let order: Vec<_> = bus.iter().map(|(base, _, i)| (base, i)).collect();
        assert_eq!(order, [(0x20, 1), (0x40, 3), (0xA0, 2), (0x3F8, 0)]);
    }

    #[test]
    fn rejects_overlaps() {
        let mut bus = Bus::new();
        bus.insert(0x1000, 0x1000, 7).unwrap();
        assert_eq!(bus.insert(0x1000, 1, 1), Err(BusError::Overlap { index: 7 }));
        assert_eq!(bus.insert(0x1FFF, 1, 1), Err(BusError::Overlap { index: 7 }));
        assert_eq!(bus.insert(0xFFF, 2, 1), Err(BusError::Overlap { index: 7 }));
        assert_eq!(bus.insert(0x800, 0x2000, 1), Err(BusError::Overlap { index: 7 }), "covers it");
        assert_eq!(bus.insert(0x1800, 0x10, 1), Err(BusError::Overlap { index: 7 }), "inside it");
        bus.insert(0xFFF, 1, 1).unwrap();
        bus.insert(0x2000, 1, 2).unwrap();
        assert_eq!(bus.len(), 3);
        assert_eq!(bus.lookup(0xFFF, 2), None, "two devices");
    }

    #[test]
    fn rejects_empty_and_wrapping() {
        let mut bus = Bus::new();
        assert_eq!(bus.insert(0x10, 0, 0), Err(BusError::Empty));
        assert_eq!(bus.insert(u64::MAX, 2, 0), Err(BusError::Wraps));
        assert_eq!(bus.insert(2, u64::MAX, 0), Err(BusError::Wraps));
        // Ending exactly at 2^64 is fine.
        bus.insert(u64::MAX - 0xFFF, 0x1000, 3).unwrap();
        assert_eq!(bus.lookup(u64::MAX, 1), Some((3, 0xFFF)));
        assert_eq!(bus.lookup(u64::MAX, 2), None);
        assert_eq!(bus.lookup(u64::MAX - 7, 8), Some((3, 0xFF8)));
        assert!(bus.insert(0, u64::MAX, 4).is_err());
        let mut whole = Bus::new();
        whole.insert(0, u64::MAX, 0).unwrap();
        assert_eq!(whole.lookup(u64::MAX - 1, 1), Some((0, u64::MAX - 1)));
        assert_eq!(whole.lookup(u64::MAX, 1), None);
    }

    #[test]
    fn windows_give_device_offsets() {
        let mut bus = Bus::new();
        bus.insert_at(0x20, 2, 0, 0).unwrap();
        bus.insert_at(0xA0, 2, 0, 0x80).unwrap();
        bus.insert_at(0x4D0, 2, 0, 0x4B0).unwrap();
        assert_eq!(bus.lookup(0x21, 1), Some((0, 1)));
        assert_eq!(bus.lookup(0xA1, 1), Some((0, 0x81)));
        assert_eq!(bus.lookup(0x4D0, 2), Some((0, 0x4B0)));
        assert_eq!(bus.insert_at(0xA1, 1, 1, 0), Err(BusError::Overlap { index: 0 }));
        // An offset near 2^64 wraps instead of overflowing (the platform never builds one).
        bus.insert_at(0x1000, 0x10, 2, u64::MAX).unwrap();
        assert_eq!(bus.lookup(0x1001, 1), Some((2, 0)));
    }

    #[test]
    fn all_ones_fills() {
        let mut data = [0u8; 4];
        all_ones(&mut data);
        assert_eq!(data, [0xFF; 4]);
    }

    /// Random inserts agree with a brute-force model; random lookups never panic.
    #[test]
    fn random_against_model() {
        let mut rng = Rng::new(0xB05);
        let mut bus = Bus::new();
        let mut model: Vec<(u64, u64, usize)> = Vec::new(); // (base, last, index)
        for i in 0..2000 {
            let base = rng.below(0x1_0000);
            let len = rng.below(64);
            let result = bus.insert(base, len, i);
            let expect_ok = len != 0 && model.iter().all(|&(b, l, _)| base + len - 1 < b || base > l);
            assert_eq!(result.is_ok(), expect_ok, "insert {base:#x}+{len:#x}");
            if expect_ok {
                model.push((base, base + len - 1, i));
            }
        }
        for _ in 0..20000 {
            let addr = rng.below(0x1_0040);
            let size = rng.below(9);
            let expect = model
                .iter()
                .find(|&&(b, l, _)| size > 0 && addr >= b && addr + size - 1 <= l)
                .map(|&(b, _, i)| (i, addr - b));
            assert_eq!(bus.lookup(addr, size), expect);
        }
        for _ in 0..1000 {
            let _ = bus.lookup(rng.next_u64(), rng.next_u64());
        }
    }
}

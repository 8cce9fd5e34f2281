//! Half-open physical address ranges `[start, end)` and small set operations on them.

/// A half-open range of physical addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PhysRange {
    pub start: u64,
    pub end: u64,
}

impl PhysRange {
    pub const fn new(start: u64, end: u64) -> Self {
        Self { start, end }
    }

    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    pub fn overlaps(&self, other: &PhysRange) -> bool {
        self.start < other.end && other.start < self.end
    }

    /// The largest page-aligned range inside this one (for memory we may use).
    pub fn shrink_to_pages(&self, page: u64) -> PhysRange {
        let start = self.start.div_ceil(page).saturating_mul(page);
        let end = self.end / page * page;
        PhysRange { start, end: end.max(start) }
    }

    /// The smallest page-aligned range covering this one (for memory we must not touch).
    pub fn grow_to_pages(&self, page: u64) -> PhysRange {
        let start = self.start / page * page;
        let end = self.end.div_ceil(page).saturating_mul(page);
        PhysRange { start, end }
    }
}

/// The first page-aligned address `a >= floor` such that `[a, a + size)` lies inside one of
/// `usable` and overlaps none of `reserved`. Used to place the frame bitmap before any allocator
/// exists.
pub fn find_free_span(usable: &[PhysRange], reserved: &[PhysRange], size: u64, floor: u64, page: u64) -> Option<u64> {
    for region in usable {
        let region = region.shrink_to_pages(page);
        let mut candidate = region.start.max(floor).div_ceil(page) * page;
        'retry: while candidate.checked_add(size)? <= region.end {
            let span = PhysRange::new(candidate, candidate + size);
            for r in reserved {
                if r.overlaps(&span) {
                    candidate = r.grow_to_pages(page).end;
                    continue 'retry;
                }
            }
            return Some(candidate);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_rounding() {
        let r = PhysRange::new(0x1001, 0x3fff);
        assert_eq!(r.shrink_to_pages(0x1000), PhysRange::new(0x2000, 0x3000));
        assert_eq!(r.grow_to_pages(0x1000), PhysRange::new(0x1000, 0x4000));
        assert!(PhysRange::new(0x1001, 0x1fff).shrink_to_pages(0x1000).is_empty());
    }

    #[test]
    fn free_span_skips_reserved_ranges_and_floor() {
        let usable = [PhysRange::new(0, 0x9f000), PhysRange::new(0x100000, 0x800000)];
        let reserved = [PhysRange::new(0x100000, 0x180800), PhysRange::new(0x200000, 0x201000)];
        assert_eq!(find_free_span(&usable, &reserved, 0x1000, 0x100000, 0x1000), Some(0x181000));
        assert_eq!(find_free_span(&usable, &reserved, 0x80000, 0x100000, 0x1000), Some(0x201000));
        assert_eq!(find_free_span(&usable, &reserved, 0x10000, 0, 0x1000), Some(0));
        assert_eq!(find_free_span(&usable, &reserved, 0x1000000, 0, 0x1000), None);
    }
}

/// Why a physical range may not be handed to a driver as device memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceRangeError {
    /// Empty, not page-aligned, or wrapping around.
    Malformed,
    /// Beyond the addresses the CPU can reach.
    BeyondPhysicalLimit,
    /// Overlaps RAM (which holds the kernel and every process) or firmware tables.
    OverlapsRam,
    /// Overlaps an interrupt controller (local APIC, I/O APIC): its owner is the kernel.
    OverlapsInterruptController,
}

/// Check that `[start, start + len)` may be a driver's device memory: page-aligned, below
/// `phys_limit`, and disjoint from every range in `ram` and in `interrupt_controllers`. This is
/// the one rule the kernel applies before it maps physical memory into a process uncached.
pub fn check_device_range(
    start: u64,
    len: u64,
    phys_limit: u64,
    ram: &[PhysRange],
    interrupt_controllers: &[PhysRange],
    page: u64,
) -> Result<PhysRange, DeviceRangeError> {
    if len == 0 || !start.is_multiple_of(page) || !len.is_multiple_of(page) {
        return Err(DeviceRangeError::Malformed);
    }
    let range = PhysRange::new(start, start.checked_add(len).ok_or(DeviceRangeError::Malformed)?);
    if range.end > phys_limit {
        return Err(DeviceRangeError::BeyondPhysicalLimit);
    }
    if ram.iter().any(|r| r.overlaps(&range)) {
        return Err(DeviceRangeError::OverlapsRam);
    }
    if interrupt_controllers.iter().any(|r| r.overlaps(&range)) {
        return Err(DeviceRangeError::OverlapsInterruptController);
    }
    Ok(range)
}

#[cfg(test)]
mod device_range_tests {
    use super::*;

    #[test]
    fn device_ranges_stay_out_of_ram_and_the_interrupt_controllers() {
        let ram = [PhysRange::new(0, 0x9f000), PhysRange::new(0x10_0000, 0x2000_0000)];
        let ics = [PhysRange::new(0xfec0_0000, 0xfec0_1000), PhysRange::new(0xfee0_0000, 0xfee0_1000)];
        let check = |start, len| check_device_range(start, len, 1 << 40, &ram, &ics, 0x1000);
        assert_eq!(check(0xfebf_0000, 0x4000), Ok(PhysRange::new(0xfebf_0000, 0xfebf_4000)));
        assert_eq!(check(0x1000_0000, 0x1000), Err(DeviceRangeError::OverlapsRam));
        assert_eq!(check(0xfff_f000, 0x2000), Err(DeviceRangeError::OverlapsRam));
        assert_eq!(check(0xfee0_0000, 0x1000), Err(DeviceRangeError::OverlapsInterruptController));
        assert_eq!(check(0xfebf_e000, 0x2000), Ok(PhysRange::new(0xfebf_e000, 0xfec0_0000)));
        assert_eq!(check(0xfebf_f000, 0x3000), Err(DeviceRangeError::OverlapsInterruptController));
        assert_eq!(check(0xfebf_0001, 0x1000), Err(DeviceRangeError::Malformed));
        assert_eq!(check(0xfebf_0000, 0), Err(DeviceRangeError::Malformed));
        assert_eq!(check(!0xfff, 0x2000), Err(DeviceRangeError::Malformed));
        assert_eq!(check(1 << 40, 0x1000), Err(DeviceRangeError::BeyondPhysicalLimit));
    }
}

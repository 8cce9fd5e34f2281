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

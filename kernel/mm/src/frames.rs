//! The physical frame allocator: one bit per 4 KiB frame, set when the frame is in use.
//!
//! Every frame starts out used; the kernel then frees the usable ranges of the firmware memory
//! map and marks as used again everything that must never be handed out (the kernel image, the
//! boot information, the modules, the bitmap itself). So memory the firmware did not call usable
//! can never be allocated, whatever order the ranges come in.
//!
//! Freeing a frame that is not allocated, or outside the bitmap, is reported, not ignored: it
//! means a kernel bug, and silently accepting it would hand one frame out twice.
//!
//! Does not: zero frames (the caller does, through its own mapping), or lock (the kernel wraps
//! it in a spinlock).

use crate::range::PhysRange;
use crate::PAGE_SIZE;

/// Frames below this are handed out only when asked for explicitly (`alloc_below`): real-mode
/// code such as the AP start-up trampoline needs them.
pub const LOW_MEMORY_END: u64 = 0x10_0000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreeError {
    NotAllocated(u64),
    OutOfRange(u64),
    Misaligned(u64),
}

pub struct FrameAllocator<'a> {
    bitmap: &'a mut [u64],
    frame_count: u64,
    free_frames: u64,
    /// Lowest frame index above `LOW_MEMORY_END` that may be free (a search hint).
    hint: u64,
}

/// How many 64-bit words a bitmap needs for memory up to `max_addr`.
pub fn bitmap_words(max_addr: u64) -> usize {
    max_addr.div_ceil(PAGE_SIZE).div_ceil(64) as usize
}

impl<'a> FrameAllocator<'a> {
    /// An allocator over `bitmap` (every frame used) covering `bitmap.len() * 64` frames.
    pub fn new(bitmap: &'a mut [u64]) -> Self {
        bitmap.fill(u64::MAX);
        let frame_count = bitmap.len() as u64 * 64;
        Self { bitmap, frame_count, free_frames: 0, hint: LOW_MEMORY_END / PAGE_SIZE }
    }

    fn is_used(&self, frame: u64) -> bool {
        self.bitmap[(frame / 64) as usize] & (1 << (frame % 64)) != 0
    }

    fn set_used(&mut self, frame: u64, used: bool) {
        let word = &mut self.bitmap[(frame / 64) as usize];
        let bit = 1u64 << (frame % 64);
        if used && *word & bit == 0 {
            *word |= bit;
            self.free_frames -= 1;
        } else if !used && *word & bit != 0 {
            *word &= !bit;
            self.free_frames += 1;
        }
    }

    /// Make the whole pages inside `range` available (firmware said: usable RAM).
    pub fn add_usable(&mut self, range: PhysRange) {
        let r = range.shrink_to_pages(PAGE_SIZE);
        let end = (r.end / PAGE_SIZE).min(self.frame_count);
        for frame in r.start / PAGE_SIZE..end {
            self.set_used(frame, false);
        }
        self.hint = self.hint.min(end);
    }

    /// Never hand out any page that touches `range`.
    pub fn reserve(&mut self, range: PhysRange) {
        let r = range.grow_to_pages(PAGE_SIZE);
        let end = (r.end / PAGE_SIZE).min(self.frame_count);
        for frame in r.start / PAGE_SIZE..end {
            self.set_used(frame, true);
        }
    }

    pub fn free_frames(&self) -> u64 {
        self.free_frames
    }

    /// One frame at or above 1 MiB (falling back to low memory when nothing else is left).
    pub fn alloc(&mut self) -> Option<u64> {
        let low = LOW_MEMORY_END / PAGE_SIZE;
        let start = self.hint.max(low);
        if let Some(frame) = self.find_free(start, self.frame_count) {
            self.hint = frame + 1;
            self.set_used(frame, true);
            return Some(frame * PAGE_SIZE);
        }
        self.alloc_in(0, LOW_MEMORY_END)
    }

    /// One frame below `limit` (for example a real-mode trampoline page below 1 MiB).
    pub fn alloc_below(&mut self, limit: u64) -> Option<u64> {
        self.alloc_in(PAGE_SIZE, limit) // frame 0 holds the real-mode IVT: never hand it out
    }

    /// One frame in `[start, end)` (for example page tables that 32-bit code must reach, below 4 GiB).
    pub fn alloc_in(&mut self, start: u64, end: u64) -> Option<u64> {
        let frame = self.find_free(start / PAGE_SIZE, (end / PAGE_SIZE).min(self.frame_count))?;
        self.set_used(frame, true);
        Some(frame * PAGE_SIZE)
    }

    fn find_free(&self, from: u64, to: u64) -> Option<u64> {
        let mut frame = from;
        while frame < to {
            let word = self.bitmap[(frame / 64) as usize];
            if word == u64::MAX && frame.is_multiple_of(64) {
                frame += 64;
                continue;
            }
            if !self.is_used(frame) {
                return Some(frame);
            }
            frame += 1;
        }
        None
    }

    /// `count` physically contiguous frames starting at a multiple of `align` bytes (a power of
    /// two, at least a page), at or above 1 MiB.
    pub fn alloc_contiguous(&mut self, count: u64, align: u64) -> Option<u64> {
        if count == 0 || !align.is_power_of_two() || align < PAGE_SIZE {
            return None;
        }
        let step = align / PAGE_SIZE;
        let mut first = (LOW_MEMORY_END / PAGE_SIZE).div_ceil(step) * step;
        while first.checked_add(count)? <= self.frame_count {
            match (first..first + count).find(|&f| self.is_used(f)) {
                None => {
                    for f in first..first + count {
                        self.set_used(f, true);
                    }
                    return Some(first * PAGE_SIZE);
                }
                Some(used) => first = (used + 1).div_ceil(step) * step,
            }
        }
        None
    }

    pub fn free(&mut self, addr: u64) -> Result<(), FreeError> {
        if !addr.is_multiple_of(PAGE_SIZE) {
            return Err(FreeError::Misaligned(addr));
        }
        let frame = addr / PAGE_SIZE;
        if frame >= self.frame_count {
            return Err(FreeError::OutOfRange(addr));
        }
        if !self.is_used(frame) {
            return Err(FreeError::NotAllocated(addr));
        }
        self.set_used(frame, false);
        if frame >= LOW_MEMORY_END / PAGE_SIZE {
            self.hint = self.hint.min(frame);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn allocator(bitmap: &mut [u64]) -> FrameAllocator<'_> {
        let mut a = FrameAllocator::new(bitmap);
        a.add_usable(PhysRange::new(0x1000, 0x9f000));
        a.add_usable(PhysRange::new(MIB, 8 * MIB));
        a.reserve(PhysRange::new(MIB, 2 * MIB + 100)); // kernel image, ends mid-page
        a
    }

    #[test]
    fn hands_out_only_usable_unreserved_frames() {
        let mut bitmap = vec![0; bitmap_words(16 * MIB)];
        let mut a = allocator(&mut bitmap);
        let total = a.free_frames();
        assert_eq!(total, (0x9f000 - 0x1000) / PAGE_SIZE + (6 * MIB - PAGE_SIZE) / PAGE_SIZE);
        let mut seen = std::collections::BTreeSet::new();
        while let Some(f) = a.alloc() {
            assert!(seen.insert(f), "frame {f:#x} handed out twice");
            assert!((0x1000..0x9f000).contains(&f) || (2 * MIB + PAGE_SIZE..8 * MIB).contains(&f), "{f:#x}");
        }
        assert_eq!(seen.len() as u64, total);
        assert_eq!(a.free_frames(), 0);
        // High memory went first.
        assert_eq!(*seen.iter().find(|&&f| f >= MIB).unwrap(), 2 * MIB + PAGE_SIZE);
    }

    #[test]
    fn reserve_before_add_still_wins_only_if_added_later() {
        // The kernel frees usable ranges first, then reserves: the reserve must stick.
        let mut bitmap = vec![0; bitmap_words(4 * MIB)];
        let mut a = FrameAllocator::new(&mut bitmap);
        a.add_usable(PhysRange::new(MIB, 4 * MIB));
        a.reserve(PhysRange::new(MIB, 4 * MIB - PAGE_SIZE));
        assert_eq!(a.alloc(), Some(4 * MIB - PAGE_SIZE));
        assert_eq!(a.alloc(), None);
    }

    #[test]
    fn low_memory_only_when_asked() {
        let mut bitmap = vec![0; bitmap_words(16 * MIB)];
        let mut a = allocator(&mut bitmap);
        let low = a.alloc_below(MIB).unwrap();
        assert_eq!(low, 0x1000);
        assert!(a.alloc().unwrap() >= MIB);
    }

    #[test]
    fn free_and_double_free() {
        let mut bitmap = vec![0; bitmap_words(16 * MIB)];
        let mut a = allocator(&mut bitmap);
        let f = a.alloc().unwrap();
        let before = a.free_frames();
        a.free(f).unwrap();
        assert_eq!(a.free_frames(), before + 1);
        assert_eq!(a.free(f), Err(FreeError::NotAllocated(f)));
        assert_eq!(a.free(f + 1), Err(FreeError::Misaligned(f + 1)));
        assert_eq!(a.free(1 << 40), Err(FreeError::OutOfRange(1 << 40)));
        assert_eq!(a.alloc(), Some(f), "a freed frame is reused");
    }

    #[test]
    fn contiguous_aligned() {
        let mut bitmap = vec![0; bitmap_words(16 * MIB)];
        let mut a = allocator(&mut bitmap);
        let two_mib = a.alloc_contiguous(512, 2 * MIB).unwrap();
        assert_eq!(two_mib % (2 * MIB), 0);
        assert!(two_mib >= 2 * MIB + PAGE_SIZE);
        assert_eq!(two_mib, 4 * MIB); // 2 MiB .. 4 MiB has the kernel's tail page in it
        assert!(a.alloc_contiguous(4096, PAGE_SIZE).is_none());
        assert!(a.alloc_contiguous(0, PAGE_SIZE).is_none());
        assert!(a.alloc_contiguous(1, 3).is_none());
    }

    #[test]
    fn ranges_past_the_bitmap_are_ignored() {
        let mut bitmap = vec![0; bitmap_words(2 * MIB)];
        let mut a = FrameAllocator::new(&mut bitmap);
        a.add_usable(PhysRange::new(MIB, u64::MAX));
        assert_eq!(a.free_frames(), MIB / PAGE_SIZE);
        a.reserve(PhysRange::new(0, u64::MAX));
        assert_eq!(a.free_frames(), 0);
    }
}

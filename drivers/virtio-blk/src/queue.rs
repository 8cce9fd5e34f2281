//! A split virtqueue (virtio 1.2 2.7) in a region of a DMA buffer: the descriptor table (16 bytes
//! per entry, 2.7.5), the available ring (flags, idx, ring, 2.7.6) and the used ring (flags, idx,
//! ring of id/len pairs, 2.7.8), laid out back to back with their alignments (2.7: 16, 2 and 4).
//! The driver keeps one request in flight, so a chain always starts at descriptor 0. Reading the
//! used ring checks what the device wrote: exactly one new entry, naming the chain's head. It does
//! not do indirect descriptors, event suppression or the packed layout.

use core::sync::atomic::{fence, Ordering};

use keel_drv_hal::{Dma, HwError};

use crate::spec::desc_flags;

/// One buffer of a chain: where it is (physical), how long, whether the device writes it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Segment {
    pub phys: u64,
    pub len: u32,
    pub device_writes: bool,
}

/// What the device got wrong about the used ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UsedError {
    /// The used index moved by other than one.
    BadIndex,
    /// The used entry names another descriptor than the chain's head.
    BadId,
}

/// A split virtqueue of `size` entries at byte `base` of a DMA buffer.
pub(crate) struct SplitQueue {
    size: u16,
    base: usize,
    /// The next available index to publish (free-running, 2.7.6).
    avail_idx: u16,
    /// The used index last seen (free-running, 2.7.8).
    used_idx: u16,
}

const DESC_LEN: usize = 16;

impl SplitQueue {
    pub fn new(size: u16, base: usize) -> Self {
        SplitQueue { size, base, avail_idx: 0, used_idx: 0 }
    }

    /// The bytes a queue of `size` entries needs.
    pub const fn len(size: u16) -> usize {
        let (_, _, used) = Self::offsets(size);
        used + 6 + 8 * size as usize
    }

    /// Offsets of the descriptor table, available ring and used ring from the queue's base.
    const fn offsets(size: u16) -> (usize, usize, usize) {
        let desc = 0;
        let avail = desc + DESC_LEN * size as usize;
        let used = (avail + 6 + 2 * size as usize).next_multiple_of(4);
        (desc, avail, used)
    }

    /// Physical addresses of the three parts, for the common configuration.
    pub fn addresses(&self, buffer_phys: u64) -> (u64, u64, u64) {
        let (desc, avail, used) = Self::offsets(self.size);
        let at = |o: usize| buffer_phys + (self.base + o) as u64;
        (at(desc), at(avail), at(used))
    }

    pub fn size(&self) -> u16 {
        self.size
    }

    /// Write `segments` as a chain from descriptor 0 and make it available (2.7.13). The caller
    /// keeps the chain no longer than the queue.
    pub fn submit<D: Dma + ?Sized>(&mut self, dma: &mut D, segments: &[Segment]) -> Result<(), HwError> {
        let (desc, avail, _) = Self::offsets(self.size);
        let count = segments.len().min(self.size as usize);
        for (i, seg) in segments[..count].iter().enumerate() {
            let mut entry = [0u8; DESC_LEN];
            entry[0..8].copy_from_slice(&seg.phys.to_le_bytes());
            entry[8..12].copy_from_slice(&seg.len.to_le_bytes());
            let mut flags = if seg.device_writes { desc_flags::WRITE } else { 0 };
            if i + 1 < count {
                flags |= desc_flags::NEXT;
            }
            entry[12..14].copy_from_slice(&flags.to_le_bytes());
            entry[14..16].copy_from_slice(&((i + 1) as u16).to_le_bytes());
            dma.write(self.base + desc + i * DESC_LEN, &entry)?;
        }
        let slot = (self.avail_idx % self.size) as usize;
        dma.write_u16(self.base + avail + 4 + 2 * slot, 0)?; // the head: descriptor 0
                                                             // The ring entry before the index that publishes it (2.7.13.3.1).
        fence(Ordering::SeqCst);
        self.avail_idx = self.avail_idx.wrapping_add(1);
        dma.write_u16(self.base + avail + 2, self.avail_idx)?;
        fence(Ordering::SeqCst);
        Ok(())
    }

    /// Whether the device has moved the used index since the last completion.
    pub fn has_used<D: Dma + ?Sized>(&self, dma: &D) -> bool {
        let (_, _, used) = Self::offsets(self.size);
        dma.read_u16(self.base + used + 2) != self.used_idx
    }

    /// Take the completion of the chain in flight: exactly one new used entry, for descriptor 0.
    /// Returns the length the device says it wrote.
    pub fn take_used<D: Dma + ?Sized>(&mut self, dma: &D) -> Result<u32, UsedError> {
        let (_, _, used) = Self::offsets(self.size);
        let idx = dma.read_u16(self.base + used + 2);
        fence(Ordering::SeqCst);
        if idx.wrapping_sub(self.used_idx) != 1 {
            return Err(UsedError::BadIndex);
        }
        let slot = (self.used_idx % self.size) as usize;
        self.used_idx = idx;
        let id = dma.read_u32(self.base + used + 4 + 8 * slot);
        let len = dma.read_u32(self.base + used + 4 + 8 * slot + 4);
        if id != 0 {
            return Err(UsedError::BadId);
        }
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_follows_the_alignments() {
        assert_eq!(SplitQueue::offsets(8), (0, 128, 128 + 6 + 16 + 2));
        assert_eq!(SplitQueue::len(128), 2312 + 6 + 1024);
        assert!(SplitQueue::len(128) <= 4096);
        let q = SplitQueue::new(4, 0x100);
        assert_eq!(q.addresses(0x10000), (0x10100, 0x10140, 0x10150));
    }
}

//! Test helper: the driver side of a split virtqueue, written the way Linux's virtio_ring does it
//! (descriptor table, available ring, used ring laid out one after another). [`Ring`] is one
//! queue's driver state over any [`VecMemory`] (several queues can share one guest RAM);
//! [`Driver`] is a ring with its own RAM, for the tests of one queue.

use alloc::vec::Vec;

use keel_addr::Gpa;
use keel_devices::guest_memory::{read_u16, read_u32, GuestMemory, VecMemory};

use crate::queue::{VIRTQ_AVAIL_F_NO_INTERRUPT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE};

/// Guest RAM for the tests: 1 MiB at GPA 0.
pub const RAM: usize = 1 << 20;
/// Where the rings go.
pub const DESC: Gpa = Gpa(0x1_0000);
/// Data buffers are handed out from here.
pub const DATA: Gpa = Gpa(0x8_0000);

/// One queue as its driver sees it.
pub struct Ring {
    pub size: u16,
    pub desc: Gpa,
    pub avail: Gpa,
    pub used: Gpa,
    avail_idx: u16,
    next_desc: u16,
    seen_used: u16,
}

impl Ring {
    /// The modern layout at `desc`: the available ring right after the table, the used ring at
    /// the next 4-byte boundary after the available ring and its `used_event`.
    pub fn new(size: u16, desc: Gpa) -> Self {
        let avail = desc + 16 * u64::from(size);
        let used = Gpa(((avail + 6 + 2 * u64::from(size)).0 + 3) & !3);
        Self { size, desc, avail, used, avail_idx: 0, next_desc: 0, seen_used: 0 }
    }

    /// The legacy layout at `desc` (2.7.2): the used ring at the next 4096-byte boundary.
    pub fn legacy(size: u16, desc: Gpa) -> Self {
        let mut ring = Self::new(size, desc);
        ring.used = Gpa((ring.avail + 6 + 2 * u64::from(size)).0.next_multiple_of(4096));
        ring
    }

    pub fn write_desc(&mut self, mem: &mut VecMemory, index: u16, addr: Gpa, len: u32, flags: u16, next: u16) {
        let mut raw = [0u8; 16];
        raw[..8].copy_from_slice(&addr.0.to_le_bytes());
        raw[8..12].copy_from_slice(&len.to_le_bytes());
        raw[12..14].copy_from_slice(&flags.to_le_bytes());
        raw[14..].copy_from_slice(&next.to_le_bytes());
        assert!(mem.write(self.desc + 16 * u64::from(index), &raw));
    }

    /// Makes `head` available (one avail ring entry) and bumps the index.
    pub fn publish(&mut self, mem: &mut VecMemory, head: u16) {
        let slot = u64::from(self.avail_idx % self.size);
        assert!(mem.write(self.avail + 4 + 2 * slot, &head.to_le_bytes()));
        self.avail_idx = self.avail_idx.wrapping_add(1);
        assert!(mem.write(self.avail + 2, &self.avail_idx.to_le_bytes()));
    }

    /// Sets the available index directly (to test bogus values).
    pub fn set_avail_idx(&mut self, mem: &mut VecMemory, idx: u16) {
        self.avail_idx = idx;
        assert!(mem.write(self.avail + 2, &idx.to_le_bytes()));
    }

    /// Adds a chain of buffers `(addr, len, writable)` at the next free descriptors (wrapping
    /// round the table) and publishes it; returns the head.
    pub fn add_chain(&mut self, mem: &mut VecMemory, bufs: &[(Gpa, u32, bool)]) -> u16 {
        let head = self.next_desc;
        for (i, &(addr, len, writable)) in bufs.iter().enumerate() {
            let index = self.next_desc;
            let next = (index + 1) % self.size;
            let mut flags = if writable { VIRTQ_DESC_F_WRITE } else { 0 };
            if i + 1 < bufs.len() {
                flags |= VIRTQ_DESC_F_NEXT;
            }
            self.write_desc(mem, index, addr, len, flags, next);
            self.next_desc = next;
        }
        self.publish(mem, head);
        head
    }

    pub fn set_no_interrupt(&mut self, mem: &mut VecMemory, on: bool) {
        let flags = if on { VIRTQ_AVAIL_F_NO_INTERRUPT } else { 0 };
        assert!(mem.write(self.avail, &flags.to_le_bytes()));
    }

    /// Writes `used_event` (after the available ring; read by the device with EVENT_IDX).
    pub fn set_used_event(&mut self, mem: &mut VecMemory, idx: u16) {
        assert!(mem.write(self.avail + 4 + 2 * u64::from(self.size), &idx.to_le_bytes()));
    }

    /// The device's `avail_event` (after the used ring).
    pub fn avail_event(&self, mem: &VecMemory) -> u16 {
        read_u16(mem, self.used + 4 + 8 * u64::from(self.size)).unwrap()
    }

    /// Used elements `(id, len)` the device added since the last call.
    pub fn take_used(&mut self, mem: &VecMemory) -> Vec<(u32, u32)> {
        let idx = read_u16(mem, self.used + 2).unwrap();
        let mut out = Vec::new();
        while self.seen_used != idx {
            let slot = u64::from(self.seen_used % self.size);
            let id = read_u32(mem, self.used + 4 + 8 * slot).unwrap();
            let len = read_u32(mem, self.used + 8 + 8 * slot).unwrap();
            out.push((id, len));
            self.seen_used = self.seen_used.wrapping_add(1);
        }
        out
    }
}

/// A ring with its own RAM.
pub struct Driver {
    pub mem: VecMemory,
    pub size: u16,
    pub desc: Gpa,
    pub avail: Gpa,
    pub used: Gpa,
    ring: Ring,
}

impl Driver {
    pub fn new(size: u16) -> Self {
        let ring = Ring::new(size, DESC);
        Self { mem: VecMemory::new(Gpa(0), RAM), size, desc: ring.desc, avail: ring.avail, used: ring.used, ring }
    }

    pub fn write_desc(&mut self, index: u16, addr: Gpa, len: u32, flags: u16, next: u16) {
        self.ring.write_desc(&mut self.mem, index, addr, len, flags, next);
    }

    pub fn publish(&mut self, head: u16) {
        self.ring.publish(&mut self.mem, head);
    }

    pub fn set_avail_idx(&mut self, idx: u16) {
        self.ring.set_avail_idx(&mut self.mem, idx);
    }

    pub fn add_chain(&mut self, bufs: &[(Gpa, u32, bool)]) -> u16 {
        self.ring.add_chain(&mut self.mem, bufs)
    }

    pub fn set_no_interrupt(&mut self, on: bool) {
        self.ring.set_no_interrupt(&mut self.mem, on);
    }

    pub fn set_used_event(&mut self, idx: u16) {
        self.ring.set_used_event(&mut self.mem, idx);
    }

    pub fn avail_event(&self) -> u16 {
        self.ring.avail_event(&self.mem)
    }

    pub fn take_used(&mut self) -> Vec<(u32, u32)> {
        self.ring.take_used(&self.mem)
    }

    pub fn bytes(&self, addr: Gpa, len: usize) -> Vec<u8> {
        let mut v = alloc::vec![0u8; len];
        assert!(self.mem.read(addr, &mut v));
        v
    }
}

//! The device side of a split virtqueue (virtio 1.2, 2.7): the descriptor table, the available
//! (driver) ring and the used (device) ring, all in guest memory.
//!
//! [`SplitQueue::pop`] takes the next chain head the driver made available,
//! [`SplitQueue::for_each_desc`] walks its descriptors, [`SplitQueue::push_used`] returns it, and
//! [`SplitQueue::take_notification`] says whether the driver wants an interrupt for what was
//! returned. [`SplitQueue::publish_used`] writes the device's used index again (the transport
//! does so after every pass, so that a buffer overlapping the used ring cannot leave a count in
//! RAM that is not the device's). A device that must know a frame fits before it takes anything
//! (virtio-net's receive side) looks ahead with [`SplitQueue::available`] and
//! [`SplitQueue::peek`], then takes what it used with [`SplitQueue::consume`] and returns it at
//! once with [`SplitQueue::push_used_all`].
//!
//! Notification suppression, per device as negotiated ([`SplitQueue::set_event_idx`]):
//! - without VIRTIO_F_EVENT_IDX, the driver's VIRTQ_AVAIL_F_NO_INTERRUPT flag (2.7.7) suppresses
//!   used buffer notifications, and the device never asks the driver to hold back its own;
//! - with it (2.7.7, 2.7.10), the flag is ignored and the device interrupts only when an entry
//!   it returned since its last decision has the index the driver wrote in `used_event` (the
//!   `vring_need_event` rule, in wrapping 16-bit arithmetic: `used_event` in `[old, new)`); and
//!   [`SplitQueue::publish_used`] writes `avail_event` as the device's next available index, so
//!   the driver notifies only when it makes a buffer available that the device has not seen
//!   while the device has taken everything before it. The monitor serves the queues with the
//!   guest's vCPU stopped, so writing `avail_event` at the end of the pass cannot race with a
//!   driver making buffers available.
//!
//! Checked, each an error ([`QueueError`]) rather than a panic or a loop: the ring and table
//! alignment (2.7, "Virtqueue Part Alignment"), an available index more than the queue size ahead
//! of the device (2.7.6), a head or next index past the table, a chain with more descriptors than
//! the queue has (a loop, 2.7.5.3.1), an indirect descriptor (VIRTIO_F_INDIRECT_DESC is never
//! offered), and any ring or table access outside guest memory. Indices are 16-bit and wrap
//! (2.7.6, 2.7.8). Descriptor buffer addresses are not checked here: the device's own copies
//! through [`GuestMemory`] fail for an address outside RAM.
//!
//! Does not: keep any pointer into guest memory, allocate, or set VIRTQ_USED_F_NO_NOTIFY (the
//! used ring's `flags` stay the 0 the driver wrote, as 2.7.10 requires with EVENT_IDX).

use keel_addr::Gpa;
use keel_devices::guest_memory::{read_u16, GuestMemory};

/// The largest queue size the split ring allows (2.7).
pub const MAX_SIZE: u16 = 32768;

/// Descriptor flags (2.7.5).
pub use keel_virtio_spec::desc_flags::{NEXT as VIRTQ_DESC_F_NEXT, WRITE as VIRTQ_DESC_F_WRITE};
pub const VIRTQ_DESC_F_INDIRECT: u16 = 4;
/// Available ring flag: the driver does not want interrupts (2.7.7).
pub const VIRTQ_AVAIL_F_NO_INTERRUPT: u16 = 1;

/// How the driver broke the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueError {
    /// A ring or the descriptor table is not where the driver may put it (outside RAM or
    /// misaligned), or a buffer could not be copied.
    Memory,
    /// The available index is more than the queue size ahead of the device's.
    AvailIndex,
    /// A head or next index is not below the queue size.
    DescIndex,
    /// A chain longer than the queue: a loop.
    ChainTooLong,
    /// An indirect descriptor (not negotiated).
    Indirect,
}

/// One descriptor of a chain, as the device uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Descriptor {
    /// The buffer, as the driver wrote it (not checked: see the module documentation).
    pub addr: Gpa,
    pub len: u32,
    /// Device-writable (VIRTQ_DESC_F_WRITE); otherwise device-readable.
    pub writable: bool,
}

/// One split virtqueue's configuration and the device's position in it.
#[derive(Debug, Clone)]
pub struct SplitQueue {
    max_size: u16,
    size: u16,
    enabled: bool,
    desc: Gpa,
    driver: Gpa,
    device: Gpa,
    next_avail: u16,
    next_used: u16,
    /// Buffers returned since the last [`SplitQueue::take_notification`].
    returned: bool,
    /// The used index at the last [`SplitQueue::take_notification`] (EVENT_IDX's "old").
    notified_used: u16,
    /// VIRTIO_F_EVENT_IDX was negotiated.
    event_idx: bool,
}

impl SplitQueue {
    /// A disabled queue of at most `max_size` entries (clamped to a power of two in 1..=32768).
    pub fn new(max_size: u16) -> Self {
        let max_size = match max_size {
            0 => 1,
            n if n > MAX_SIZE => MAX_SIZE,
            n if n.is_power_of_two() => n,
            n => 1 << (15 - n.leading_zeros()),
        };
        Self {
            max_size,
            size: max_size,
            enabled: false,
            desc: Gpa(0),
            driver: Gpa(0),
            device: Gpa(0),
            next_avail: 0,
            next_used: 0,
            returned: false,
            notified_used: 0,
            event_idx: false,
        }
    }

    /// Back to the state after [`SplitQueue::new`] (device reset).
    pub fn reset(&mut self) {
        *self = Self::new(self.max_size);
    }

    pub fn max_size(&self) -> u16 {
        self.max_size
    }

    pub fn size(&self) -> u16 {
        self.size
    }

    /// Sets the size the driver chose: a power of two no larger than the maximum. False (and
    /// nothing changes) otherwise or once the queue is enabled.
    pub fn set_size(&mut self, size: u16) -> bool {
        let ok = !self.enabled && size.is_power_of_two() && size <= self.max_size;
        if ok {
            self.size = size;
        }
        ok
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The driver enabled the queue (queue_enable = 1).
    pub fn enable(&mut self) {
        self.enabled = true;
    }

    /// The descriptor table, driver (available) and device (used) areas.
    pub fn addresses(&self) -> (Gpa, Gpa, Gpa) {
        (self.desc, self.driver, self.device)
    }

    /// Sets the three areas' guest-physical addresses; false (nothing changes) once enabled.
    pub fn set_addresses(&mut self, desc: Gpa, driver: Gpa, device: Gpa) -> bool {
        if self.enabled {
            return false;
        }
        self.desc = desc;
        self.driver = driver;
        self.device = device;
        true
    }

    /// The device's next available and used ring indices (free-running, wrapping).
    pub fn indices(&self) -> (u16, u16) {
        (self.next_avail, self.next_used)
    }

    /// Whether VIRTIO_F_EVENT_IDX is in force (the transport sets it from the negotiated
    /// features before the device uses the queue).
    pub fn event_idx(&self) -> bool {
        self.event_idx
    }

    pub fn set_event_idx(&mut self, on: bool) {
        self.event_idx = on;
    }

    /// Where the driver's `used_event` is: after the available ring (2.7.6).
    fn used_event_at(&self) -> Result<Gpa, QueueError> {
        Self::at(self.driver, 4 + 2 * u64::from(self.size))
    }

    /// Where the device's `avail_event` is: after the used ring (2.7.8).
    fn avail_event_at(&self) -> Result<Gpa, QueueError> {
        Self::at(self.device, 4 + 8 * u64::from(self.size))
    }

    fn check_alignment(&self) -> Result<(), QueueError> {
        // 2.7 Table "Virtqueue Part Alignment": descriptors 16, available ring 2, used ring 4.
        if !self.desc.0.is_multiple_of(16) || !self.driver.0.is_multiple_of(2) || !self.device.0.is_multiple_of(4) {
            return Err(QueueError::Memory);
        }
        Ok(())
    }

    /// `base + offset`, or a memory error if it wraps (the driver chose `base`).
    fn at(base: Gpa, offset: u64) -> Result<Gpa, QueueError> {
        base.checked_add(offset).ok_or(QueueError::Memory)
    }

    /// How many chains the driver made available that the device has not taken (2.7.6): at most
    /// the queue size, or an error.
    pub fn available(&self, mem: &dyn GuestMemory) -> Result<u16, QueueError> {
        if !self.enabled {
            return Ok(0);
        }
        self.check_alignment()?;
        let avail_idx = read_u16(mem, Self::at(self.driver, 2)?).ok_or(QueueError::Memory)?;
        let pending = avail_idx.wrapping_sub(self.next_avail);
        if pending > self.size {
            return Err(QueueError::AvailIndex);
        }
        Ok(pending)
    }

    /// The head of the `nth` chain after the ones taken (0: the one [`SplitQueue::pop`] would
    /// return), without taking it; `nth` below what [`SplitQueue::available`] said.
    pub fn peek(&self, mem: &dyn GuestMemory, nth: u16) -> Result<u16, QueueError> {
        self.check_alignment()?;
        let slot = u64::from(self.next_avail.wrapping_add(nth) % self.size);
        let head = read_u16(mem, Self::at(self.driver, 4 + 2 * slot)?).ok_or(QueueError::Memory)?;
        if head >= self.size {
            return Err(QueueError::DescIndex);
        }
        Ok(head)
    }

    /// Takes the next `count` chains, those [`SplitQueue::peek`] showed for `0..count` (`count`
    /// no more than [`SplitQueue::available`] said).
    pub fn consume(&mut self, count: u16) {
        self.next_avail = self.next_avail.wrapping_add(count.min(self.size));
    }

    /// The next chain head the driver made available, if any (2.7.6).
    pub fn pop(&mut self, mem: &dyn GuestMemory) -> Result<Option<u16>, QueueError> {
        if self.available(mem)? == 0 {
            return Ok(None);
        }
        let head = self.peek(mem, 0)?;
        self.consume(1);
        Ok(Some(head))
    }

    /// Calls `f` with each descriptor of the chain at `head`, in order (2.7.5). At most `size`
    /// descriptors; stops at the first error from `f` or from the chain.
    pub fn for_each_desc(
        &self,
        mem: &mut dyn GuestMemory,
        head: u16,
        mut f: impl FnMut(&mut dyn GuestMemory, Descriptor) -> Result<(), QueueError>,
    ) -> Result<(), QueueError> {
        self.check_alignment()?;
        let mut index = head;
        for _ in 0..self.size {
            if index >= self.size {
                return Err(QueueError::DescIndex);
            }
            let mut raw = [0u8; 16];
            if !mem.read(Self::at(self.desc, 16 * u64::from(index))?, &mut raw) {
                return Err(QueueError::Memory);
            }
            let addr = Gpa(u64::from_le_bytes([raw[0], raw[1], raw[2], raw[3], raw[4], raw[5], raw[6], raw[7]]));
            let len = u32::from_le_bytes([raw[8], raw[9], raw[10], raw[11]]);
            let flags = u16::from_le_bytes([raw[12], raw[13]]);
            let next = u16::from_le_bytes([raw[14], raw[15]]);
            if flags & VIRTQ_DESC_F_INDIRECT != 0 {
                return Err(QueueError::Indirect);
            }
            f(mem, Descriptor { addr, len, writable: flags & VIRTQ_DESC_F_WRITE != 0 })?;
            if flags & VIRTQ_DESC_F_NEXT == 0 {
                return Ok(());
            }
            index = next;
        }
        Err(QueueError::ChainTooLong)
    }

    /// Returns the chain at `head` with `len` bytes written into it (2.7.8): the used element
    /// first, then the used index.
    pub fn push_used(&mut self, mem: &mut dyn GuestMemory, head: u16, len: u32) -> Result<(), QueueError> {
        self.push_used_all(mem, &[(head, len)])
    }

    /// Returns several chains `(head, bytes written)` together: every used element, then the
    /// used index once (2.7.8), so the driver sees all of them or none (virtio-net's merged
    /// receive buffers, 5.1.6.4). At most the queue size of them.
    pub fn push_used_all(&mut self, mem: &mut dyn GuestMemory, used: &[(u16, u32)]) -> Result<(), QueueError> {
        self.check_alignment()?;
        let used = &used[..used.len().min(usize::from(self.size))];
        if used.is_empty() {
            return Ok(());
        }
        let mut next = self.next_used;
        for &(head, len) in used {
            let slot = u64::from(next % self.size);
            let mut elem = [0u8; 8];
            elem[..4].copy_from_slice(&u32::from(head).to_le_bytes());
            elem[4..].copy_from_slice(&len.to_le_bytes());
            if !mem.write(Self::at(self.device, 4 + 8 * slot)?, &elem) {
                return Err(QueueError::Memory);
            }
            next = next.wrapping_add(1);
        }
        if !mem.write(Self::at(self.device, 2)?, &next.to_le_bytes()) {
            return Err(QueueError::Memory);
        }
        self.next_used = next;
        self.returned = true;
        Ok(())
    }

    /// Writes the device's used index into the used ring again (2.7.8).
    ///
    /// Why: the used ring is "only written to by the device" (virtio 1.2, 2.7.8), and the device's
    /// own copy of its index is what counts. A hostile driver can still make guest RAM disagree:
    /// by writing the index itself, or by handing the device a writable buffer that overlaps it
    /// (the device must write what the driver asked, 2.7.8.2) and then a chain that fails before
    /// the device returns it. Publishing again at the end of every pass means the driver always
    /// finds exactly the buffers the device returned, never a stale or random count.
    ///
    /// With EVENT_IDX, also writes `avail_event`: the device's next available index, i.e. "notify
    /// me when you make available the entry I would take next" (2.7.10). Written at the end of
    /// every pass (and after every received frame), so the driver holds back notifications only
    /// while the device still has buffers it has not taken.
    pub fn publish_used(&self, mem: &mut dyn GuestMemory) -> Result<(), QueueError> {
        if !self.enabled {
            return Ok(());
        }
        self.check_alignment()?;
        if !mem.write(Self::at(self.device, 2)?, &self.next_used.to_le_bytes()) {
            return Err(QueueError::Memory);
        }
        if self.event_idx && !mem.write(self.avail_event_at()?, &self.next_avail.to_le_bytes()) {
            return Err(QueueError::Memory);
        }
        Ok(())
    }

    /// Whether the driver wants an interrupt for the buffers returned since the last call (false
    /// if there were none). Without EVENT_IDX: unless it set VIRTQ_AVAIL_F_NO_INTERRUPT (2.7.7).
    /// With EVENT_IDX: if one of them went into the used ring at the index `used_event` names
    /// (2.7.7). A `flags` or `used_event` outside RAM counts as "wants one".
    pub fn take_notification(&mut self, mem: &dyn GuestMemory) -> bool {
        let old = core::mem::replace(&mut self.notified_used, self.next_used);
        if !core::mem::take(&mut self.returned) {
            return false;
        }
        if self.event_idx {
            let Some(used_event) = self.used_event_at().ok().and_then(|at| read_u16(mem, at)) else { return true };
            return need_event(used_event, self.next_used, old);
        }
        !matches!(read_u16(mem, self.driver), Some(flags) if flags & VIRTQ_AVAIL_F_NO_INTERRUPT != 0)
    }
}

/// The event-index rule (2.7.7, `vring_need_event`): whether the entries placed at indices
/// `old..new` (wrapping) include `event`, the one after which the other side asked to be told.
pub fn need_event(event: u16, new: u16, old: u16) -> bool {
    new.wrapping_sub(event).wrapping_sub(1) < new.wrapping_sub(old)
}

#[cfg(test)]
mod tests;

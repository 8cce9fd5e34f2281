//! The device side of a split virtqueue (virtio 1.2, 2.7): the descriptor table, the available
//! (driver) ring and the used (device) ring, all in guest memory.
//!
//! [`SplitQueue::pop`] takes the next chain head the driver made available,
//! [`SplitQueue::for_each_desc`] walks its descriptors, [`SplitQueue::push_used`] returns it, and
//! [`SplitQueue::take_notification`] says whether the driver wants an interrupt for what was
//! returned (VIRTQ_AVAIL_F_NO_INTERRUPT, 2.7.10). [`SplitQueue::publish_used`] writes the device's
//! used index again (the transport does so after every pass, so that a buffer overlapping the
//! used ring cannot leave a count in RAM that is not the device's).
//!
//! Checked, each an error ([`QueueError`]) rather than a panic or a loop: the ring and table
//! alignment (2.7, "Virtqueue Part Alignment"), an available index more than the queue size ahead
//! of the device (2.7.6), a head or next index past the table, a chain with more descriptors than
//! the queue has (a loop, 2.7.5.3.1), an indirect descriptor (VIRTIO_F_INDIRECT_DESC is never
//! offered), and any ring or table access outside guest memory. Indices are 16-bit and wrap
//! (2.7.6, 2.7.8). Descriptor buffer addresses are not checked here: the device's own copies
//! through [`GuestMemory`] fail for an address outside RAM.
//!
//! Does not: keep any pointer into guest memory, allocate, or implement event-index suppression.

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

    /// The next chain head the driver made available, if any (2.7.6).
    pub fn pop(&mut self, mem: &dyn GuestMemory) -> Result<Option<u16>, QueueError> {
        if !self.enabled {
            return Ok(None);
        }
        self.check_alignment()?;
        let avail_idx = read_u16(mem, Self::at(self.driver, 2)?).ok_or(QueueError::Memory)?;
        let pending = avail_idx.wrapping_sub(self.next_avail);
        if pending == 0 {
            return Ok(None);
        }
        if pending > self.size {
            return Err(QueueError::AvailIndex);
        }
        let slot = u64::from(self.next_avail % self.size);
        let head = read_u16(mem, Self::at(self.driver, 4 + 2 * slot)?).ok_or(QueueError::Memory)?;
        if head >= self.size {
            return Err(QueueError::DescIndex);
        }
        self.next_avail = self.next_avail.wrapping_add(1);
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
        self.check_alignment()?;
        let slot = u64::from(self.next_used % self.size);
        let mut elem = [0u8; 8];
        elem[..4].copy_from_slice(&u32::from(head).to_le_bytes());
        elem[4..].copy_from_slice(&len.to_le_bytes());
        if !mem.write(Self::at(self.device, 4 + 8 * slot)?, &elem) {
            return Err(QueueError::Memory);
        }
        let next = self.next_used.wrapping_add(1);
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
    pub fn publish_used(&self, mem: &mut dyn GuestMemory) -> Result<(), QueueError> {
        if !self.enabled {
            return Ok(());
        }
        self.check_alignment()?;
        if !mem.write(Self::at(self.device, 2)?, &self.next_used.to_le_bytes()) {
            return Err(QueueError::Memory);
        }
        Ok(())
    }

    /// Whether buffers were returned since the last call and the driver did not suppress
    /// interrupts (2.7.10: VIRTQ_AVAIL_F_NO_INTERRUPT; an unreadable flags word counts as "wants
    /// one"). Clears the "returned" state.
    pub fn take_notification(&mut self, mem: &dyn GuestMemory) -> bool {
        if !core::mem::take(&mut self.returned) {
            return false;
        }
        !matches!(read_u16(mem, self.driver), Some(flags) if flags & VIRTQ_AVAIL_F_NO_INTERRUPT != 0)
    }
}

#[cfg(test)]
mod tests;

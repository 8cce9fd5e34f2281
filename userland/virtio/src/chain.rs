//! A request's descriptor chain as the block, SCSI and network devices see it: the device-readable bytes
//! and the device-writable bytes, each one byte stream however the driver split it into
//! descriptors (virtio 1.2, 2.6.4 "Message Framing": the device must not assume a particular
//! arrangement of descriptors).
//!
//! [`Chain::gather`] copies the chain's descriptors (never more than the queue size, checked by
//! [`SplitQueue::for_each_desc`]) into a list the device allocated once at its queue's maximum
//! size, so a request costs no allocation. [`Region`] then reads or writes a byte range of either
//! stream through [`GuestMemory`] copies. A readable descriptor after a writable one breaks 2.7.4.2
//! ("device-writable descriptor elements after device-readable ones"); it is recorded in
//! [`Chain::misordered`] for the device to answer with an error status.
//!
//! Does not: decide what the bytes mean, hold guest memory, or check buffer addresses (a copy
//! outside RAM fails and the device decides what that means).

use alloc::vec::Vec;

use keel_devices::guest_memory::GuestMemory;

use crate::queue::{Descriptor, QueueError, SplitQueue};

/// One request's descriptors.
#[derive(Debug, Default)]
pub struct Chain {
    descs: Vec<Descriptor>,
    readable_len: u64,
    writable_len: u64,
    misordered: bool,
}

impl Chain {
    /// Room for chains of up to `max_len` descriptors (the queue's maximum size).
    pub fn with_capacity(max_len: u16) -> Self {
        Self { descs: Vec::with_capacity(usize::from(max_len)), readable_len: 0, writable_len: 0, misordered: false }
    }

    /// Reads the chain at `head`. An error is a broken queue (a bad index, a loop, an indirect
    /// descriptor, a table outside RAM), not a bad request.
    pub fn gather(&mut self, queue: &SplitQueue, mem: &mut dyn GuestMemory, head: u16) -> Result<(), QueueError> {
        self.descs.clear();
        self.readable_len = 0;
        self.writable_len = 0;
        self.misordered = false;
        let Self { descs, readable_len, writable_len, misordered } = self;
        queue.for_each_desc(mem, head, |_, desc| {
            // At most the queue size (`for_each_desc` stops a longer chain): below 2^15 x 2^32.
            if desc.writable {
                *writable_len += u64::from(desc.len);
            } else {
                *misordered |= *writable_len > 0;
                *readable_len += u64::from(desc.len);
            }
            descs.push(desc);
            Ok(())
        })
    }

    /// The device-readable stream.
    pub fn readable(&self) -> Region<'_> {
        Region { descs: &self.descs, writable: false, len: self.readable_len }
    }

    /// The device-writable stream.
    pub fn writable(&self) -> Region<'_> {
        Region { descs: &self.descs, writable: true, len: self.writable_len }
    }

    /// Whether the chain ends in a device-writable descriptor of at least one byte: where a
    /// status byte goes (virtio-blk's last byte).
    pub fn last_is_writable(&self) -> bool {
        self.descs.last().is_some_and(|d| d.writable && d.len > 0)
    }

    /// A readable descriptor came after a writable one (2.7.4.2).
    pub fn misordered(&self) -> bool {
        self.misordered
    }

    /// Whether any descriptor is device-writable (even one of 0 bytes).
    pub fn has_writable(&self) -> bool {
        self.descs.iter().any(|d| d.writable)
    }
}

/// The readable or the writable bytes of a chain, as one stream.
#[derive(Debug, Clone, Copy)]
pub struct Region<'a> {
    descs: &'a [Descriptor],
    writable: bool,
    len: u64,
}

impl Region<'_> {
    /// Bytes in the stream.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Calls `f(descriptor, offset in it, bytes)` for each piece of `[offset, offset + len)`;
    /// false if the range is not inside the stream or `f` fails.
    fn pieces(&self, offset: u64, len: u64, mut f: impl FnMut(&Descriptor, u64, u64, u64) -> bool) -> bool {
        let Some(end) = offset.checked_add(len) else { return false };
        if end > self.len {
            return false;
        }
        let mut start = 0u64; // the stream offset of the current descriptor
        let mut done = 0u64;
        for desc in self.descs.iter().filter(|d| d.writable == self.writable) {
            if done == len {
                break;
            }
            let desc_end = start + u64::from(desc.len);
            let at = offset + done;
            if at < desc_end {
                let inside = at - start;
                let n = (desc_end - at).min(len - done);
                if !f(desc, inside, n, done) {
                    return false;
                }
                done += n;
            }
            start = desc_end;
        }
        done == len
    }

    /// Copies `buf.len()` bytes at stream offset `offset` out of guest memory; false if the range
    /// is not in the stream or not in RAM.
    pub fn read(&self, mem: &dyn GuestMemory, offset: u64, buf: &mut [u8]) -> bool {
        self.pieces(offset, buf.len() as u64, |desc, inside, n, done| {
            let Some(gpa) = desc.addr.checked_add(inside) else { return false };
            // `done + n` is at most `buf.len()`: both fit a usize.
            mem.read(gpa, &mut buf[done as usize..(done + n) as usize])
        })
    }

    /// Copies `data` into guest memory at stream offset `offset`; false if the range is not in
    /// the stream or not in RAM (pieces before the failing one may have been written).
    pub fn write(&self, mem: &mut dyn GuestMemory, offset: u64, data: &[u8]) -> bool {
        self.pieces(offset, data.len() as u64, |desc, inside, n, done| {
            let Some(gpa) = desc.addr.checked_add(inside) else { return false };
            mem.write(gpa, &data[done as usize..(done + n) as usize])
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdriver::{Driver, DATA};
    use keel_addr::Gpa;

    fn queue(d: &Driver) -> SplitQueue {
        let mut q = SplitQueue::new(d.size);
        q.set_addresses(d.desc, d.avail, d.used);
        q.enable();
        q
    }

    #[test]
    fn streams_span_descriptors() {
        let mut d = Driver::new(8);
        let head = d.add_chain(&[
            (DATA, 3, false),
            (DATA + 0x100, 5, false),
            (DATA + 0x200, 4, true),
            (DATA + 0x300, 1, true),
        ]);
        assert!(d.mem.write(DATA, &[1, 2, 3]));
        assert!(d.mem.write(DATA + 0x100, &[4, 5, 6, 7, 8]));
        let q = queue(&d);
        let mut c = Chain::with_capacity(8);
        c.gather(&q, &mut d.mem, head).unwrap();
        assert_eq!((c.readable().len(), c.writable().len(), c.misordered()), (8, 5, false));
        let mut b = [0u8; 4];
        assert!(c.readable().read(&d.mem, 1, &mut b));
        assert_eq!(b, [2, 3, 4, 5]);
        assert!(!c.readable().read(&d.mem, 5, &mut b), "past the stream");
        assert!(!c.readable().read(&d.mem, u64::MAX, &mut b));
        assert!(c.writable().write(&mut d.mem, 2, &[9, 9, 7]));
        assert_eq!(d.bytes(DATA + 0x200, 4), [0, 0, 9, 9]);
        assert_eq!(d.bytes(DATA + 0x300, 1), [7]);
        assert!(c.readable().read(&d.mem, 8, &mut []), "an empty read at the end");
    }

    #[test]
    fn misordered_and_outside_ram() {
        let mut d = Driver::new(8);
        let head = d.add_chain(&[(DATA, 1, true), (DATA + 0x100, 5, false), (Gpa(1 << 40), 4, true)]);
        let q = queue(&d);
        let mut c = Chain::with_capacity(8);
        c.gather(&q, &mut d.mem, head).unwrap();
        assert!(c.misordered());
        assert!(c.writable().write(&mut d.mem, 0, &[1]));
        assert!(!c.writable().write(&mut d.mem, 1, &[1]), "outside RAM");
        assert_eq!(c.writable().len(), 5);
    }
}

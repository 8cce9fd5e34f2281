//! The virtio entropy device (virtio 1.2, 5.4): one queue (requestq, index 0) of device-writable
//! buffers that the device fills with random bytes from an injected [`Entropy`] source.
//!
//! For each available chain: every device-writable descriptor is filled in order, up to
//! [`MAX_BYTES_PER_REQUEST`] bytes for the whole chain (the device may return fewer bytes than
//! the buffer holds, 5.4.6.2), and the chain goes on the used ring with the number of bytes
//! written. Device-readable descriptors are skipped (the driver must not send any, 5.4.6.1). One
//! call takes at most one queue's worth of chains, so a `process` does bounded work (at most
//! queue size x 4 KiB of output).
//!
//! Does not: rate-limit the guest (the monitor decides how often to process), or offer features
//! (virtio-rng has none).

use keel_devices::guest_memory::GuestMemory;

use crate::queue::{QueueError, SplitQueue};
use crate::{device_id, VirtioDevice};

/// Where random bytes come from.
pub trait Entropy {
    /// Fills `buf` with random bytes.
    fn fill(&mut self, buf: &mut [u8]);
}

/// The most bytes returned for one request.
pub const MAX_BYTES_PER_REQUEST: u32 = 4096;
/// requestq's maximum size.
pub const QUEUE_SIZE: u16 = 256;

/// virtio-rng over an entropy source.
#[derive(Debug, Clone)]
pub struct VirtioRng<E: Entropy> {
    entropy: E,
    bytes_served: u64,
    requests: u64,
}

impl<E: Entropy> VirtioRng<E> {
    pub fn new(entropy: E) -> Self {
        Self { entropy, bytes_served: 0, requests: 0 }
    }

    /// Total bytes handed to the guest.
    pub fn bytes_served(&self) -> u64 {
        self.bytes_served
    }

    /// Requests completed.
    pub fn requests(&self) -> u64 {
        self.requests
    }

    pub fn entropy_mut(&mut self) -> &mut E {
        &mut self.entropy
    }

    /// Fills the writable parts of the chain at `head`; returns the bytes written.
    fn serve(&mut self, queue: &SplitQueue, mem: &mut dyn GuestMemory, head: u16) -> Result<u32, QueueError> {
        let mut written = 0u32;
        let entropy = &mut self.entropy;
        queue.for_each_desc(mem, head, |mem, desc| {
            if !desc.writable {
                return Ok(());
            }
            let want = desc.len.min(MAX_BYTES_PER_REQUEST - written);
            let mut done = 0u32;
            let mut buf = [0u8; 256];
            while done < want {
                let n = (want - done).min(buf.len() as u32) as usize;
                entropy.fill(&mut buf[..n]);
                let gpa = desc.addr.checked_add(u64::from(done)).ok_or(QueueError::Memory)?;
                if !mem.write(gpa, &buf[..n]) {
                    return Err(QueueError::Memory);
                }
                done += n as u32;
            }
            written += want;
            Ok(())
        })?;
        Ok(written)
    }
}

impl<E: Entropy> VirtioDevice for VirtioRng<E> {
    fn device_id(&self) -> u16 {
        device_id::ENTROPY
    }

    fn num_queues(&self) -> u16 {
        1
    }

    fn max_queue_size(&self) -> u16 {
        QUEUE_SIZE
    }

    fn process_queue(
        &mut self,
        index: u16,
        queue: &mut SplitQueue,
        mem: &mut dyn GuestMemory,
    ) -> Result<(), QueueError> {
        if index != 0 {
            return Ok(());
        }
        for _ in 0..queue.size() {
            let Some(head) = queue.pop(mem)? else { break };
            let written = self.serve(queue, mem, head)?;
            queue.push_used(mem, head, written)?;
            self.bytes_served += u64::from(written);
            self.requests += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdriver::{Driver, DATA};
    use keel_addr::Gpa;

    /// Counts up from 1: easy to check which bytes went where.
    struct Counter(u8);

    impl Entropy for Counter {
        fn fill(&mut self, buf: &mut [u8]) {
            for b in buf {
                self.0 = self.0.wrapping_add(1);
                *b = self.0;
            }
        }
    }

    fn setup(size: u16) -> (Driver, SplitQueue, VirtioRng<Counter>) {
        let d = Driver::new(size);
        let mut q = SplitQueue::new(QUEUE_SIZE);
        assert!(q.set_size(size));
        q.set_addresses(d.desc, d.avail, d.used);
        q.enable();
        (d, q, VirtioRng::new(Counter(0)))
    }

    #[test]
    fn fills_writable_buffers() {
        let (mut d, mut q, mut rng) = setup(8);
        let h0 = d.add_chain(&[(DATA, 64, true)]);
        let h1 = d.add_chain(&[(DATA + 0x100, 3, false), (DATA + 0x200, 2, true), (DATA + 0x300, 5, true)]);
        rng.process_queue(0, &mut q, &mut d.mem).unwrap();
        assert_eq!(d.take_used(), vec![(u32::from(h0), 64), (u32::from(h1), 7)]);
        let first: alloc::vec::Vec<u8> = (1..=64).collect();
        assert_eq!(d.bytes(DATA, 64), first);
        assert_eq!(d.bytes(DATA + 0x100, 3), [0, 0, 0], "readable buffer untouched");
        assert_eq!(d.bytes(DATA + 0x200, 2), [65, 66]);
        assert_eq!(d.bytes(DATA + 0x300, 5), [67, 68, 69, 70, 71]);
        assert_eq!((rng.bytes_served(), rng.requests()), (71, 2));
        assert!(q.take_notification(&d.mem));
        // Another queue index is ignored.
        d.add_chain(&[(DATA, 1, true)]);
        rng.process_queue(1, &mut q, &mut d.mem).unwrap();
        assert!(d.take_used().is_empty());
        rng.process_queue(0, &mut q, &mut d.mem).unwrap();
        assert_eq!(d.take_used().len(), 1);
        rng.entropy_mut().0 = 0;
    }

    #[test]
    fn large_requests_are_capped() {
        let (mut d, mut q, mut rng) = setup(8);
        let h = d.add_chain(&[(DATA, 3000, true), (DATA + 0x1000, 3000, true)]);
        rng.process_queue(0, &mut q, &mut d.mem).unwrap();
        assert_eq!(d.take_used(), vec![(u32::from(h), MAX_BYTES_PER_REQUEST)]);
        assert_eq!(d.bytes(DATA + 0x1000 + 1096, 8), [0; 8], "past the cap untouched");
        // A 4 GiB buffer claim does not make the device write 4 GiB.
        let h = d.add_chain(&[(DATA, u32::MAX, true)]);
        rng.process_queue(0, &mut q, &mut d.mem).unwrap();
        assert_eq!(d.take_used(), vec![(u32::from(h), MAX_BYTES_PER_REQUEST)]);
    }

    #[test]
    fn a_buffer_outside_ram_is_an_error() {
        let (mut d, mut q, mut rng) = setup(8);
        d.add_chain(&[(Gpa(1 << 40), 16, true)]);
        assert_eq!(rng.process_queue(0, &mut q, &mut d.mem), Err(QueueError::Memory));
        let (mut d, mut q, mut rng) = setup(8);
        d.add_chain(&[(Gpa(u64::MAX - 100), 200, true)]);
        assert_eq!(rng.process_queue(0, &mut q, &mut d.mem), Err(QueueError::Memory));
    }

    #[test]
    fn one_pass_per_call() {
        let (mut d, mut q, mut rng) = setup(4);
        for _ in 0..4 {
            d.add_chain(&[(DATA, 1, true)]);
        }
        rng.process_queue(0, &mut q, &mut d.mem).unwrap();
        assert_eq!(d.take_used().len(), 4);
        assert_eq!(rng.device_id(), 4);
        assert_eq!(rng.features(), 0);
        assert_eq!(rng.config_len(), 0);
    }
}

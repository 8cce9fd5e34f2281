//! The guest's virtio-blk disk (virtio 1.2, 5.2) over a [`BlockBackend`]: one request queue,
//! requests served synchronously when the monitor calls `process`.
//!
//! Offered (5.2.3): VIRTIO_BLK_F_SIZE_MAX, SEG_MAX, BLK_SIZE (512-byte logical blocks), FLUSH,
//! DISCARD, WRITE_ZEROES, and RO when the backend is read-only (plus VERSION_1 from the
//! transport). The configuration (5.2.4) gives the capacity in 512-byte sectors (a partial last
//! sector of the image is not visible) and the limits below; `writeback` and the topology read 0.
//!
//! Requests (5.2.6): IN, OUT, FLUSH, GET_ID (the serial given at creation, 20 bytes NUL-padded),
//! DISCARD and WRITE_ZEROES; anything else is VIRTIO_BLK_S_UNSUPP. The chain is read as two byte
//! streams (`crate::chain`), so any split of header, data and status into descriptors works (the
//! legacy fixed framing and VIRTIO_F_ANY_LAYOUT alike). The status byte is the last byte of the
//! chain, which must be a device-writable descriptor; every request is checked and a bad one
//! gets VIRTIO_BLK_S_IOERR (or UNSUPP) there, never a panic:
//!
//! - header shorter than 16 bytes, a readable descriptor after a writable one (2.7.4.2), data in
//!   the wrong direction (readable data on IN, writable data besides the status on OUT), a data
//!   length that is not a multiple of 512, a range past the capacity, more than
//!   [`MAX_REQUEST_BYTES`], any write to a read-only disk (5.2.6.2), a data buffer outside RAM,
//!   a backend error: IOERR;
//! - discard and write-zeroes: segments (16 bytes each) that do not fill the data exactly, more
//!   than [`MAX_DISCARD_SEG`] of them or a segment longer than [`MAX_DISCARD_SECTORS`] (the same
//!   limits for write-zeroes), an unknown flag, or the unmap flag on a discard: UNSUPP
//!   (5.2.6.2); a segment past the capacity: IOERR. Segments are copied out of guest memory once
//!   and all checked before any is done.
//!
//! A chain with no place for a status byte (no writable last descriptor) is returned with 0
//! bytes written and nothing done: there is no way to tell the driver, and nothing to break. A
//! status byte outside RAM is a memory error of the queue (as for every device here: the
//! transport sets DEVICE_NEEDS_RESET). Data moves piece by piece between the guest's buffers
//! and the backend ([`BlockBackend::read_into`], [`BlockBackend::write_from`]): nothing is
//! allocated per request, whatever length the guest claims.
//!
//! Does not: offer multiqueue, the writeback toggle, secure erase, zoned devices, lifetime,
//! topology or geometry; queue requests (the backend is synchronous).

use keel_devices::guest_memory::GuestMemory;
use keel_virtio_spec::{blk_config, blk_request, blk_status};

use crate::backend::{BackendError, BlockBackend};
use crate::chain::Chain;
use crate::queue::{QueueError, SplitQueue};
use crate::{device_id, features, VirtioDevice};

/// The request queue's maximum size.
pub const QUEUE_SIZE: u16 = 256;
/// Requests count in 512-byte sectors whatever the block size (5.2.6).
pub const SECTOR: u64 = blk_request::SECTOR;
/// Data segments per request: the queue less the header and status descriptors (as QEMU).
pub const SEG_MAX: u32 = QUEUE_SIZE as u32 - 2;
/// The largest data segment the driver may use.
pub const SIZE_MAX: u32 = 128 * 1024;
/// The most data bytes one request may carry (what SEG_MAX and SIZE_MAX allow).
pub const MAX_REQUEST_BYTES: u64 = SEG_MAX as u64 * SIZE_MAX as u64;
/// Discard and write-zeroes limits (5.2.4): segments per request, sectors per segment.
pub const MAX_DISCARD_SEG: u32 = 16;
pub const MAX_DISCARD_SECTORS: u32 = 1 << 22;
/// Discard granularity hint, in sectors (4 KiB).
pub const DISCARD_SECTOR_ALIGNMENT: u32 = 8;
/// The PCI class reported: mass storage, SCSI (as other hypervisors' virtio disks).
pub const PCI_CLASS: u32 = 0x01_00_00;

const SEGMENT_LEN: usize = blk_request::ZEROES_SEGMENT_LEN;

/// The status a backend's answer becomes.
fn status_of(result: Result<(), BackendError>) -> u8 {
    match result {
        Ok(()) => blk_status::OK,
        Err(BackendError::Unsupported) => blk_status::UNSUPP,
        Err(_) => blk_status::IOERR,
    }
}

/// What became of requests, for the monitor's statistics and the tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlkStats {
    /// Chains completed (with or without a status byte).
    pub requests: u64,
    /// Requests answered IOERR or UNSUPP, or without a place for the status.
    pub errors: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
}

/// A virtio-blk device over `B`.
#[derive(Debug)]
pub struct VirtioBlk<B: BlockBackend> {
    backend: B,
    serial: [u8; blk_request::ID_LEN],
    capacity_sectors: u64,
    read_only: bool,
    chain: Chain,
    stats: BlkStats,
}

/// One discard or write-zeroes segment (5.2.6, `struct virtio_blk_discard_write_zeroes`).
#[derive(Debug, Clone, Copy, Default)]
struct Segment {
    sector: u64,
    num_sectors: u32,
    flags: u32,
}

impl<B: BlockBackend> VirtioBlk<B> {
    /// A disk over `backend`; `serial` is what GET_ID returns (its first 20 bytes). The capacity
    /// and read-only state are the backend's at creation.
    pub fn new(backend: B, serial: &[u8]) -> Self {
        let mut id = [0u8; blk_request::ID_LEN];
        let n = serial.len().min(id.len());
        id[..n].copy_from_slice(&serial[..n]);
        Self {
            capacity_sectors: backend.size_bytes() / SECTOR,
            read_only: backend.read_only(),
            backend,
            serial: id,
            chain: Chain::with_capacity(QUEUE_SIZE),
            stats: BlkStats::default(),
        }
    }

    pub fn backend(&self) -> &B {
        &self.backend
    }

    pub fn backend_mut(&mut self) -> &mut B {
        &mut self.backend
    }

    /// The capacity the guest sees, in 512-byte sectors.
    pub fn capacity_sectors(&self) -> u64 {
        self.capacity_sectors
    }

    pub fn stats(&self) -> BlkStats {
        self.stats
    }

    fn config_bytes(&self) -> [u8; blk_config::LEN] {
        let mut c = [0u8; blk_config::LEN];
        let mut put = |at: usize, v: &[u8]| c[at..at + v.len()].copy_from_slice(v);
        put(blk_config::CAPACITY, &self.capacity_sectors.to_le_bytes());
        put(blk_config::SIZE_MAX, &SIZE_MAX.to_le_bytes());
        put(blk_config::SEG_MAX, &SEG_MAX.to_le_bytes());
        put(blk_config::BLK_SIZE, &(SECTOR as u32).to_le_bytes());
        put(blk_config::NUM_QUEUES, &1u16.to_le_bytes());
        put(blk_config::MAX_DISCARD_SECTORS, &MAX_DISCARD_SECTORS.to_le_bytes());
        put(blk_config::MAX_DISCARD_SEG, &MAX_DISCARD_SEG.to_le_bytes());
        put(blk_config::DISCARD_SECTOR_ALIGNMENT, &DISCARD_SECTOR_ALIGNMENT.to_le_bytes());
        put(blk_config::MAX_WRITE_ZEROES_SECTORS, &MAX_DISCARD_SECTORS.to_le_bytes());
        put(blk_config::MAX_WRITE_ZEROES_SEG, &MAX_DISCARD_SEG.to_le_bytes());
        put(blk_config::WRITE_ZEROES_MAY_UNMAP, &[1]);
        c
    }

    /// The byte range of `sectors` worth `len` bytes from `sector`, if inside the disk.
    fn byte_range(&self, sector: u64, len: u64) -> Option<u64> {
        let offset = sector.checked_mul(SECTOR)?;
        let end = offset.checked_add(len)?;
        (end <= self.capacity_sectors.checked_mul(SECTOR)?).then_some(offset)
    }

    /// Serves the chain gathered in `self.chain`: the status to write and the data bytes written
    /// into the chain before it.
    fn serve(&mut self, mem: &mut dyn GuestMemory) -> (u8, u64) {
        let readable = self.chain.readable();
        let mut header = [0u8; blk_request::HEADER_LEN];
        if self.chain.misordered() || !readable.read(mem, 0, &mut header) {
            return (blk_status::IOERR, 0);
        }
        let kind = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let sector = u64::from_le_bytes([
            header[8], header[9], header[10], header[11], header[12], header[13], header[14], header[15],
        ]);
        // Data: readable bytes after the header, writable bytes before the status byte.
        let data_out = readable.len() - blk_request::HEADER_LEN as u64;
        let data_in = self.chain.writable().len() - 1;
        match kind {
            blk_request::IN if data_out == 0 => self.read(mem, sector, data_in),
            blk_request::OUT if data_in == 0 => (self.write(mem, sector, data_out), 0),
            blk_request::IN | blk_request::OUT => (blk_status::IOERR, 0),
            blk_request::FLUSH => (status_of(self.backend.flush()), 0),
            blk_request::GET_ID => {
                let n = data_in.min(blk_request::ID_LEN as u64) as usize;
                match self.chain.writable().write(mem, 0, &self.serial[..n]) {
                    true => (blk_status::OK, n as u64),
                    false => (blk_status::IOERR, 0),
                }
            }
            blk_request::DISCARD | blk_request::WRITE_ZEROES => (self.discard_or_zero(mem, kind, data_out), 0),
            _ => (blk_status::UNSUPP, 0),
        }
    }

    /// Checks a transfer of `len` data bytes at `sector`: its byte offset on the disk.
    fn transfer_offset(&self, sector: u64, len: u64) -> Option<u64> {
        if !len.is_multiple_of(SECTOR) || len > MAX_REQUEST_BYTES {
            return None;
        }
        self.byte_range(sector, len)
    }

    /// VIRTIO_BLK_T_IN: disk to the writable stream, a chunk at a time.
    fn read(&mut self, mem: &mut dyn GuestMemory, sector: u64, len: u64) -> (u8, u64) {
        let Some(offset) = self.transfer_offset(sector, len) else { return (blk_status::IOERR, 0) };
        let writable = self.chain.writable();
        let mut done = 0u64;
        let result = self.backend.read_into(offset, len, &mut |at, bytes| {
            let ok = writable.write(mem, at, bytes);
            if ok {
                done = at + bytes.len() as u64;
            }
            ok
        });
        if result.is_err() {
            return (blk_status::IOERR, done);
        }
        self.stats.bytes_read += len;
        (blk_status::OK, len)
    }

    fn write(&mut self, mem: &mut dyn GuestMemory, sector: u64, len: u64) -> u8 {
        if self.read_only {
            return blk_status::IOERR;
        }
        let Some(offset) = self.transfer_offset(sector, len) else { return blk_status::IOERR };
        let readable = self.chain.readable();
        let from = blk_request::HEADER_LEN as u64;
        if self.backend.write_from(offset, len, &mut |at, piece| readable.read(mem, from + at, piece)).is_err() {
            return blk_status::IOERR;
        }
        self.stats.bytes_written += len;
        blk_status::OK
    }

    fn discard_or_zero(&mut self, mem: &mut dyn GuestMemory, kind: u32, len: u64) -> u8 {
        if self.read_only {
            return blk_status::IOERR;
        }
        let count = len / SEGMENT_LEN as u64;
        if len == 0 || !len.is_multiple_of(SEGMENT_LEN as u64) || count > u64::from(MAX_DISCARD_SEG) {
            return blk_status::UNSUPP;
        }
        let mut segments = [Segment::default(); MAX_DISCARD_SEG as usize];
        let segments = &mut segments[..count as usize];
        for (i, seg) in segments.iter_mut().enumerate() {
            let mut raw = [0u8; SEGMENT_LEN];
            let at = blk_request::HEADER_LEN as u64 + (i * SEGMENT_LEN) as u64;
            if !self.chain.readable().read(mem, at, &mut raw) {
                return blk_status::IOERR;
            }
            let [s0, s1, s2, s3, s4, s5, s6, s7, n0, n1, n2, n3, f0, f1, f2, f3] = raw;
            *seg = Segment {
                sector: u64::from_le_bytes([s0, s1, s2, s3, s4, s5, s6, s7]),
                num_sectors: u32::from_le_bytes([n0, n1, n2, n3]),
                flags: u32::from_le_bytes([f0, f1, f2, f3]),
            };
        }
        let discard = kind == blk_request::DISCARD;
        let mut ranges = [(0u64, 0u64); MAX_DISCARD_SEG as usize];
        for (seg, range) in segments.iter().zip(ranges.iter_mut()) {
            // 5.2.6.2: unknown flags, and unmap on a discard, are UNSUPP; so is a segment past
            // the advertised limits.
            let unknown_flags = seg.flags & !blk_request::SEGMENT_FLAG_UNMAP != 0;
            let unmap_on_discard = discard && seg.flags != 0;
            if unknown_flags || unmap_on_discard || seg.num_sectors > MAX_DISCARD_SECTORS {
                return blk_status::UNSUPP;
            }
            let len = u64::from(seg.num_sectors) * SECTOR;
            let Some(offset) = self.byte_range(seg.sector, len) else { return blk_status::IOERR };
            *range = (offset, len);
        }
        for (seg, &(offset, len)) in segments.iter().zip(ranges.iter()) {
            let result = if discard {
                self.backend.discard(offset, len)
            } else {
                self.backend.write_zeroes(offset, len, seg.flags & blk_request::SEGMENT_FLAG_UNMAP != 0)
            };
            if result.is_err() {
                return status_of(result);
            }
        }
        blk_status::OK
    }

    /// Serves the chain at `head` and returns it.
    fn complete(&mut self, queue: &mut SplitQueue, mem: &mut dyn GuestMemory, head: u16) -> Result<(), QueueError> {
        self.chain.gather(queue, mem, head)?;
        self.stats.requests += 1;
        // The status byte: the last byte of the chain, in a device-writable descriptor.
        if !self.chain.last_is_writable() {
            self.stats.errors += 1;
            return queue.push_used(mem, head, 0);
        }
        let (status, data) = self.serve(mem);
        if status != blk_status::OK {
            self.stats.errors += 1;
        }
        let status_at = self.chain.writable().len() - 1;
        if !self.chain.writable().write(mem, status_at, &[status]) {
            return Err(QueueError::Memory);
        }
        // Data bytes plus the status byte; at most the writable stream, so below 2^32 only if
        // the stream is: clamp for the used element's 32-bit length.
        let written = u32::try_from(data + 1).unwrap_or(u32::MAX);
        queue.push_used(mem, head, written)
    }
}

impl<B: BlockBackend> VirtioDevice for VirtioBlk<B> {
    fn device_id(&self) -> u16 {
        device_id::BLOCK
    }

    fn features(&self) -> u64 {
        let ro = if self.read_only { features::BLK_RO } else { 0 };
        features::BLK_SIZE_MAX
            | features::BLK_SEG_MAX
            | features::BLK_BLK_SIZE
            | features::BLK_FLUSH
            | features::BLK_DISCARD
            | features::BLK_WRITE_ZEROES
            | ro
    }

    fn num_queues(&self) -> u16 {
        1
    }

    fn max_queue_size(&self) -> u16 {
        QUEUE_SIZE
    }

    fn pci_class(&self) -> u32 {
        PCI_CLASS
    }

    fn config_len(&self) -> u32 {
        blk_config::LEN as u32
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        crate::read_config_bytes(&self.config_bytes(), offset, data);
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
            self.complete(queue, mem, head)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;

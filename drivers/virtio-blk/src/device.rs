//! The virtio-blk driver proper: device initialisation (virtio 1.2 3.1.1: reset, ACKNOWLEDGE,
//! DRIVER, feature negotiation with VERSION_1, FEATURES_OK checked, queue 0 set up, DRIVER_OK),
//! the configuration read under its generation counter (2.5.1), and requests (5.2.6: IN, OUT,
//! FLUSH, WRITE_ZEROES) through one bounce buffer, one request in flight, each waited for with a
//! timeout. A device that does not answer, or that breaks the queue protocol, is reset and the
//! driver refuses every later request with `Gone` (the service probes it afresh if it wants).
//!
//! What it does not do: several queues (MQ), DISCARD, indirect descriptors, event suppression,
//! configuration-change interrupts (a resized disk is seen on the next probe), or hot unplug
//! beyond noticing that the device reads all ones.

use alloc::vec;
use alloc::vec::Vec;

use keel_block::{check_request, BlockDevice, BlockError};
use keel_drv_hal::{wait_until, Dma, HwError, Platform, Registers};

use crate::layout::VirtioPciLayout;
use crate::queue::{Segment, SplitQueue, UsedError};
use crate::serial::Serial;
use crate::spec::{common, config, feature, request, request_status, status, NO_VECTOR};
use crate::{Options, VirtioError};

/// The largest queue used: its rings fit in the buffer's first page.
const MAX_QUEUE_SIZE: u16 = 128;
/// The DMA buffer: the rings in page 0; the request header, a write-zeroes segment and the status
/// byte in page 1; the data bounce buffer from page 2.
const HEADER_AT: usize = 4096;
const ZEROES_SEGMENT_AT: usize = HEADER_AT + request::HEADER_LEN;
const STATUS_AT: usize = ZEROES_SEGMENT_AT + request::ZEROES_SEGMENT_LEN;
const BOUNCE_AT: usize = 8192;
// The largest queue's rings fit before the request header.
const _: () = assert!(SplitQueue::len(MAX_QUEUE_SIZE) <= HEADER_AT);
/// The bounce buffer: the most one request moves.
pub const BOUNCE_LEN: usize = 64 * 1024;

/// `BlockError::Device` codes for a device that broke the queue protocol (beside the request
/// statuses 1, IOERR, and 2, UNSUPP, which it reports itself).
pub mod protocol_error {
    /// The used index moved by other than the one request in flight.
    pub const BAD_USED_INDEX: u32 = 0x100;
    /// The used entry named a descriptor that was not the request's head.
    pub const BAD_USED_ID: u32 = 0x101;
    /// The DMA buffer refused an access (a driver bug, not the device's).
    pub const DMA: u32 = 0x102;
}

/// What the device offers, as negotiated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    /// The features both sides accepted.
    pub features: u64,
    /// Capacity in 512-byte sectors.
    pub capacity_sectors: u64,
    /// The logical block size (BLK_SIZE, else 512).
    pub block_size: u32,
    pub read_only: bool,
    /// The queue size in use.
    pub queue_size: u16,
    /// The most bytes one read or write request carries.
    pub max_request_bytes: usize,
}

/// A virtio-blk device on the modern virtio-pci transport.
pub struct VirtioBlk<P: Platform, R: Registers> {
    platform: P,
    regs: R,
    layout: VirtioPciLayout,
    options: Options,
    dma: P::Buffer,
    queue: SplitQueue,
    notify_at: usize,
    info: DeviceInfo,
    /// The most bytes of one data segment (SIZE_MAX), and segments per request (SEG_MAX).
    segment_max: u32,
    /// The descriptors of the request being built (kept for its capacity).
    segments: Vec<Segment>,
    /// Sectors per write-zeroes request (0: not offered).
    write_zeroes_max_sectors: u32,
    broken: bool,
}

impl<P: Platform, R: Registers> VirtioBlk<P, R> {
    /// Initialise the device whose structures `layout` locates in the BAR `regs` (offsets from the
    /// BAR's start). The function's memory decode and bus mastering must be on already.
    pub fn new(mut platform: P, mut regs: R, layout: VirtioPciLayout, options: Options) -> Result<Self, VirtioError> {
        let fits = |r: &crate::layout::Region| r.end() <= regs.len() as u64;
        if !(fits(&layout.common) && fits(&layout.notify) && fits(&layout.isr) && fits(&layout.device)) {
            return Err(VirtioError::BarTooSmall);
        }
        let c = layout.common.offset as usize;

        // 3.1.1 steps 1-3: reset (waiting for the device to read back 0, 4.1.4.3.2), then
        // ACKNOWLEDGE and DRIVER.
        regs.write8(c + common::DEVICE_STATUS, 0);
        if !wait_until(&mut platform, options.reset_timeout_ns, |_| regs.read8(c + common::DEVICE_STATUS) == 0) {
            return Err(VirtioError::ResetTimeout);
        }
        regs.write8(c + common::DEVICE_STATUS, status::ACKNOWLEDGE);
        regs.write8(c + common::DEVICE_STATUS, status::ACKNOWLEDGE | status::DRIVER);

        // Steps 4-6: features. VERSION_1 is required (a legacy-only device is not supported).
        let offered = read_features(&mut regs, c);
        if offered & feature::VERSION_1 == 0 {
            fail(&mut regs, c);
            return Err(VirtioError::Unsupported("device lacks VIRTIO_F_VERSION_1"));
        }
        let wanted = feature::VERSION_1
            | feature::ACCESS_PLATFORM
            | feature::BLK_SIZE_MAX
            | feature::BLK_SEG_MAX
            | feature::BLK_RO
            | feature::BLK_BLK_SIZE
            | feature::BLK_FLUSH
            | feature::BLK_WRITE_ZEROES;
        let features = offered & wanted;
        for (select, half) in [(0u32, features as u32), (1, (features >> 32) as u32)] {
            regs.write32(c + common::DRIVER_FEATURE_SELECT, select);
            regs.write32(c + common::DRIVER_FEATURE, half);
        }
        let negotiating = status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK;
        regs.write8(c + common::DEVICE_STATUS, negotiating);
        if regs.read8(c + common::DEVICE_STATUS) & status::FEATURES_OK == 0 {
            fail(&mut regs, c);
            return Err(VirtioError::FeaturesRefused);
        }

        // Step 7: the device configuration (5.2.4) and queue 0.
        let device_config = read_config(&mut regs, &layout, features);
        let Some(device_config) = device_config else {
            fail(&mut regs, c);
            return Err(VirtioError::Unsupported("configuration generation never settles"));
        };
        let setup = setup_queue(&mut platform, &mut regs, &layout, &options);
        let (dma, queue, notify_at) = match setup {
            Ok(setup) => setup,
            Err(e) => {
                fail(&mut regs, c);
                return Err(e);
            }
        };

        let (segment_max, segments) = device_config.segment_limits(queue.size());
        let block_size = device_config.block_size;
        let max_request_bytes = (segment_max as usize).saturating_mul(segments).min(BOUNCE_LEN);
        let max_request_bytes = max_request_bytes - max_request_bytes % block_size as usize;
        if max_request_bytes == 0 {
            fail(&mut regs, c);
            return Err(VirtioError::Unsupported("SIZE_MAX and SEG_MAX allow less than one block"));
        }

        // Step 8: DRIVER_OK.
        regs.write8(c + common::DEVICE_STATUS, negotiating | status::DRIVER_OK);
        let info = DeviceInfo {
            features,
            capacity_sectors: device_config.capacity,
            block_size,
            read_only: features & feature::BLK_RO != 0,
            queue_size: queue.size(),
            max_request_bytes,
        };
        Ok(VirtioBlk {
            platform,
            regs,
            layout,
            options,
            dma,
            queue,
            notify_at,
            info,
            segment_max,
            segments: Vec::new(),
            write_zeroes_max_sectors: device_config.write_zeroes_max_sectors,
            broken: false,
        })
    }

    /// What was negotiated.
    pub fn info(&self) -> &DeviceInfo {
        &self.info
    }

    /// The device's serial number (GET_ID, 5.2.6), for listings: up to 20 bytes, trailing NULs
    /// cut; `None` when the device has none (it answers UNSUPP) or sends bytes that are not
    /// printable ASCII.
    pub fn serial(&mut self) -> Result<Option<Serial>, BlockError> {
        match self.transfer(request::GET_ID, 0, Some((BOUNCE_AT, request::ID_LEN, true))) {
            Ok(()) => {}
            Err(BlockError::Device(code)) if code == request_status::UNSUPP as u32 => return Ok(None),
            Err(e) => return Err(e),
        }
        let mut id = [0u8; request::ID_LEN];
        self.dma.read(BOUNCE_AT, &mut id).map_err(|_| BlockError::Device(protocol_error::DMA))?;
        Ok(Serial::from_bytes(&id))
    }

    /// Give the platform and registers back (the device is reset first).
    pub fn into_parts(mut self) -> (P, R) {
        self.regs.write8(self.layout.common.offset as usize + common::DEVICE_STATUS, 0);
        (self.platform, self.regs)
    }

    #[cfg(test)]
    pub(crate) fn platform_for_tests(&self) -> &P {
        &self.platform
    }

    fn sectors_per_block(&self) -> u64 {
        self.info.block_size as u64 / request::SECTOR
    }

    /// One request: the header, then `data` (a range of the DMA buffer: offset, length, whether
    /// the device writes it) split into segments, then the status byte; wait for it.
    fn transfer(&mut self, kind: u32, sector: u64, data: Option<(usize, usize, bool)>) -> Result<(), BlockError> {
        if self.broken {
            return Err(BlockError::Gone);
        }
        let dma_err = |_: HwError| BlockError::Device(protocol_error::DMA);
        let mut header = [0u8; request::HEADER_LEN];
        header[0..4].copy_from_slice(&kind.to_le_bytes());
        header[8..16].copy_from_slice(&sector.to_le_bytes());
        self.dma.write(HEADER_AT, &header).map_err(dma_err)?;
        // A status the device never writes reads as 0xFF, not as success.
        self.dma.write(STATUS_AT, &[0xFF]).map_err(dma_err)?;

        let phys = self.dma.phys();
        // Reused, so that a request allocates nothing once the first has sized it.
        let segments = &mut self.segments;
        segments.clear();
        segments.push(Segment { phys: phys + HEADER_AT as u64, len: request::HEADER_LEN as u32, device_writes: false });
        if let Some((offset, len, device_writes)) = data {
            let mut done = 0;
            while done < len {
                let now = (len - done).min(self.segment_max as usize);
                segments.push(Segment { phys: phys + (offset + done) as u64, len: now as u32, device_writes });
                done += now;
            }
        }
        segments.push(Segment { phys: phys + STATUS_AT as u64, len: 1, device_writes: true });
        self.queue.submit(&mut self.dma, segments).map_err(dma_err)?;
        // 4.1.4.4: notify by writing the queue's index at its notify address.
        self.regs.write16(self.notify_at, 0);

        let (queue, dma) = (&self.queue, &self.dma);
        let completed = wait_until(&mut self.platform, self.options.request_timeout_ns, |_| queue.has_used(dma));
        if !completed {
            let gone = self.regs.read8(self.layout.common.offset as usize + common::DEVICE_STATUS) == 0xFF;
            self.give_up();
            return Err(if gone { BlockError::Gone } else { BlockError::Timeout });
        }
        if self.options.msix_vector.is_none() {
            // 4.1.4.5: reading the ISR status acknowledges the INTx interrupt.
            self.regs.read8(self.layout.isr.offset as usize);
        }
        if let Err(e) = self.queue.take_used(&self.dma) {
            self.give_up();
            return Err(BlockError::Device(match e {
                UsedError::BadIndex => protocol_error::BAD_USED_INDEX,
                UsedError::BadId => protocol_error::BAD_USED_ID,
            }));
        }
        let mut status_byte = [0u8];
        self.dma.read(STATUS_AT, &mut status_byte).map_err(dma_err)?;
        match status_byte[0] {
            request_status::OK => Ok(()),
            other => Err(BlockError::Device(other as u32)),
        }
    }

    /// Reset a device that stopped answering or broke the protocol, so it lets go of the queue,
    /// and refuse every later request.
    fn give_up(&mut self) {
        self.broken = true;
        self.regs.write8(self.layout.common.offset as usize + common::DEVICE_STATUS, 0);
    }

    /// Write zeroes through the bounce buffer (a device without WRITE_ZEROES).
    fn write_zeroes_by_writing(&mut self, lba: u64, blocks: u64) -> Result<(), BlockError> {
        let block_size = self.info.block_size as u64;
        let per_request = self.info.max_request_bytes as u64 / block_size;
        let zeros = vec![0u8; self.info.max_request_bytes];
        self.dma.write(BOUNCE_AT, &zeros).map_err(|_| BlockError::Device(protocol_error::DMA))?;
        let mut done = 0;
        while done < blocks {
            let now = per_request.min(blocks - done);
            let sector = (lba + done) * self.sectors_per_block();
            self.transfer(request::OUT, sector, Some((BOUNCE_AT, (now * block_size) as usize, false)))?;
            done += now;
        }
        Ok(())
    }
}

impl<P: Platform, R: Registers> BlockDevice for VirtioBlk<P, R> {
    fn block_size(&self) -> u32 {
        self.info.block_size
    }

    fn block_count(&self) -> u64 {
        self.info.capacity_sectors / self.sectors_per_block()
    }

    fn read_only(&self) -> bool {
        self.info.read_only
    }

    fn read_blocks(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        check_request(self.block_size(), self.block_count(), lba, buf.len())?;
        let per_sector = self.sectors_per_block();
        let block_size = self.info.block_size as u64;
        for (chunk, index) in buf.chunks_mut(self.info.max_request_bytes).zip(0u64..) {
            let first = lba + index * (self.info.max_request_bytes as u64 / block_size);
            self.transfer(request::IN, first * per_sector, Some((BOUNCE_AT, chunk.len(), true)))?;
            self.dma.read(BOUNCE_AT, chunk).map_err(|_| BlockError::Device(protocol_error::DMA))?;
        }
        Ok(())
    }

    fn write_blocks(&mut self, lba: u64, buf: &[u8]) -> Result<(), BlockError> {
        check_request(self.block_size(), self.block_count(), lba, buf.len())?;
        if self.info.read_only {
            return Err(BlockError::ReadOnly);
        }
        let per_sector = self.sectors_per_block();
        let block_size = self.info.block_size as u64;
        for (chunk, index) in buf.chunks(self.info.max_request_bytes).zip(0u64..) {
            let first = lba + index * (self.info.max_request_bytes as u64 / block_size);
            self.dma.write(BOUNCE_AT, chunk).map_err(|_| BlockError::Device(protocol_error::DMA))?;
            self.transfer(request::OUT, first * per_sector, Some((BOUNCE_AT, chunk.len(), false)))?;
        }
        Ok(())
    }

    /// FLUSH (5.2.6.1). A device that does not offer it has no volatile write cache to flush.
    fn flush(&mut self) -> Result<(), BlockError> {
        if self.info.read_only {
            return Err(BlockError::ReadOnly);
        }
        if self.broken {
            return Err(BlockError::Gone);
        }
        if self.info.features & feature::BLK_FLUSH == 0 {
            return Ok(());
        }
        self.transfer(request::FLUSH, 0, None)
    }

    /// WRITE_ZEROES (5.2.6) in requests of at most max_write_zeroes_sectors, one segment each,
    /// without the unmap flag; a device without it gets zeroed writes.
    fn write_zeroes(&mut self, lba: u64, blocks: u64) -> Result<(), BlockError> {
        match lba.checked_add(blocks) {
            Some(end) if end <= self.block_count() => {}
            _ => return Err(BlockError::OutOfRange),
        }
        if self.info.read_only {
            return Err(BlockError::ReadOnly);
        }
        let per_sector = self.sectors_per_block();
        let max_blocks = self.write_zeroes_max_sectors as u64 / per_sector;
        if self.info.features & feature::BLK_WRITE_ZEROES == 0 || max_blocks == 0 {
            return self.write_zeroes_by_writing(lba, blocks);
        }
        let mut done = 0;
        while done < blocks {
            let now = max_blocks.min(blocks - done);
            let mut segment = [0u8; request::ZEROES_SEGMENT_LEN];
            segment[0..8].copy_from_slice(&((lba + done) * per_sector).to_le_bytes());
            segment[8..12].copy_from_slice(&((now * per_sector) as u32).to_le_bytes());
            self.dma.write(ZEROES_SEGMENT_AT, &segment).map_err(|_| BlockError::Device(protocol_error::DMA))?;
            self.transfer(request::WRITE_ZEROES, 0, Some((ZEROES_SEGMENT_AT, segment.len(), false)))?;
            done += now;
        }
        Ok(())
    }
}

/// Set FAILED (3.1.1: the driver gives up on the device).
fn fail<R: Registers>(regs: &mut R, c: usize) {
    let now = regs.read8(c + common::DEVICE_STATUS);
    regs.write8(c + common::DEVICE_STATUS, now | status::FAILED);
}

fn read_features<R: Registers>(regs: &mut R, c: usize) -> u64 {
    let mut features = 0;
    for select in [0u32, 1] {
        regs.write32(c + common::DEVICE_FEATURE_SELECT, select);
        features |= (regs.read32(c + common::DEVICE_FEATURE) as u64) << (32 * select);
    }
    features
}

/// The device configuration fields the driver uses, already judged.
struct DeviceConfig {
    capacity: u64,
    block_size: u32,
    /// SIZE_MAX if negotiated (0: none).
    size_max: u32,
    /// SEG_MAX if negotiated (0: none).
    seg_max: u32,
    write_zeroes_max_sectors: u32,
}

impl DeviceConfig {
    /// (bytes per segment, segments per request): without SEG_MAX one segment (as Linux assumes),
    /// never more than the queue holds beside the header and status.
    fn segment_limits(&self, queue_size: u16) -> (u32, usize) {
        let segment = if self.size_max == 0 { BOUNCE_LEN as u32 } else { self.size_max.min(BOUNCE_LEN as u32) };
        let segments = if self.seg_max == 0 { 1 } else { self.seg_max as usize };
        (segment, segments.min(queue_size as usize - 2))
    }
}

/// Read the configuration until the generation counter is the same before and after (2.5.1),
/// at most 8 times.
fn read_config<R: Registers>(regs: &mut R, layout: &VirtioPciLayout, features: u64) -> Option<DeviceConfig> {
    let c = layout.common.offset as usize;
    let d = layout.device.offset as usize;
    let has = |f: u64| features & f != 0;
    // Fields past the structure's announced length read as absent.
    let field = |regs: &mut R, offset: usize| {
        if offset + 4 <= layout.device.length as usize {
            regs.read32(d + offset)
        } else {
            0
        }
    };
    for _ in 0..8 {
        let before = regs.read8(c + common::CONFIG_GENERATION);
        let capacity = if layout.device.length >= 8 { regs.read64(d + config::CAPACITY) } else { 0 };
        let size_max = if has(feature::BLK_SIZE_MAX) { field(regs, config::SIZE_MAX) } else { 0 };
        let seg_max = if has(feature::BLK_SEG_MAX) { field(regs, config::SEG_MAX) } else { 0 };
        let blk_size = if has(feature::BLK_BLK_SIZE) { field(regs, config::BLK_SIZE) } else { 0 };
        let (zero_sectors, zero_segs) = if has(feature::BLK_WRITE_ZEROES) {
            (field(regs, config::MAX_WRITE_ZEROES_SECTORS), field(regs, config::MAX_WRITE_ZEROES_SEG))
        } else {
            (0, 0)
        };
        if regs.read8(c + common::CONFIG_GENERATION) != before {
            continue;
        }
        // An odd block size is ignored: 512-byte requests are always valid (5.2.6).
        let block_size = if blk_size.is_power_of_two() && (512..=65536).contains(&blk_size) { blk_size } else { 512 };
        return Some(DeviceConfig {
            capacity,
            block_size,
            size_max,
            seg_max,
            write_zeroes_max_sectors: if zero_segs == 0 { 0 } else { zero_sectors },
        });
    }
    None
}

/// Set up queue 0 (4.1.5.1.3): size, MSI-X vector, ring addresses, notify address, enable.
fn setup_queue<P: Platform, R: Registers>(
    platform: &mut P,
    regs: &mut R,
    layout: &VirtioPciLayout,
    options: &Options,
) -> Result<(P::Buffer, SplitQueue, usize), VirtioError> {
    let c = layout.common.offset as usize;
    if regs.read16(c + common::NUM_QUEUES) == 0 {
        return Err(VirtioError::NoQueue);
    }
    let vector = options.msix_vector.unwrap_or(NO_VECTOR);
    regs.write16(c + common::CONFIG_MSIX_VECTOR, NO_VECTOR);
    regs.write16(c + common::QUEUE_SELECT, 0);
    let max = regs.read16(c + common::QUEUE_SIZE);
    if max == 0 || regs.read16(c + common::QUEUE_ENABLE) != 0 {
        return Err(VirtioError::NoQueue);
    }
    // A split queue's size is a power of two (2.7); the largest one within both limits.
    let size = 1u16 << (max.min(MAX_QUEUE_SIZE).ilog2());
    if size < 4 {
        return Err(VirtioError::NoQueue);
    }
    let mut dma = platform.alloc_dma(BOUNCE_AT + BOUNCE_LEN).map_err(VirtioError::Hw)?;
    if dma.len() < BOUNCE_AT + BOUNCE_LEN {
        return Err(VirtioError::Hw(HwError::NoMemory));
    }
    // Zero the rings whatever the platform handed out.
    dma.write(0, &[0u8; 4096]).map_err(VirtioError::Hw)?;
    let queue = SplitQueue::new(size, 0);
    let (desc, driver, device) = queue.addresses(dma.phys());
    regs.write16(c + common::QUEUE_SIZE, size);
    regs.write16(c + common::QUEUE_MSIX_VECTOR, vector);
    if regs.read16(c + common::QUEUE_MSIX_VECTOR) != vector {
        return Err(VirtioError::VectorRefused);
    }
    regs.write64(c + common::QUEUE_DESC, desc);
    regs.write64(c + common::QUEUE_DRIVER, driver);
    regs.write64(c + common::QUEUE_DEVICE, device);
    let notify_off = regs.read16(c + common::QUEUE_NOTIFY_OFF) as u64;
    let notify_at = layout.notify.offset as u64 + notify_off * layout.notify_off_multiplier as u64;
    if notify_at + 2 > layout.notify.end() {
        return Err(VirtioError::Unsupported("queue notify address outside the notify structure"));
    }
    regs.write16(c + common::QUEUE_ENABLE, 1);
    Ok((dma, queue, notify_at as usize))
}

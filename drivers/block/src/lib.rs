//! The one interface between a disk and what reads it: Keel's host disk drivers (virtio-blk,
//! AHCI, NVMe in `drivers/`) implement [`BlockDevice`]; the partition readers and the datastore
//! file systems take any `BlockDevice`, so they are tested on the host against [`MemDisk`].
//!
//! - [`BlockDevice`]: whole blocks at a block address (LBA), and a flush;
//! - [`BlockError`]: why a request failed, with a clear `Display`;
//! - [`DiskInfo`]: a disk as a listing shows it, filled in by every driver;
//! - [`Window`]: a range of blocks of another device (a partition) as a device of its own;
//! - [`MemDisk`]: a disk in memory that can fail on demand and records every write and flush,
//!   so a test can rebuild the disk as a power cut at any point would have left it.
//!
//! - [`FileDisk`] (feature `std`, host tools and tests only): a disk image in a host file.
//!
//! What it does not do: queue or reorder requests, cache, or split a request into a driver's
//! maximum transfer (a driver splits what it must). Nothing here panics on any request: a range
//! past the end, a buffer that is not a whole number of blocks, or a write to a read-only device
//! is an error.
#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![forbid(unsafe_code)]
extern crate alloc;

#[cfg(feature = "std")]
mod filedisk;
mod info;
mod memdisk;
mod window;

#[cfg(feature = "std")]
pub use filedisk::FileDisk;

pub use info::DiskInfo;
pub use memdisk::{DiskEvent, MemDisk};
pub use window::Window;

/// Why a block request failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockError {
    /// The request reaches past the last block (or its address overflows).
    OutOfRange,
    /// The buffer is empty or not a whole number of blocks.
    Misaligned,
    /// A write or flush to a device that is read-only.
    ReadOnly,
    /// The device reported an error for this request (the driver's status code).
    Device(u32),
    /// The device did not complete the request in time.
    Timeout,
    /// The device is gone (removed, or its controller stopped answering).
    Gone,
}

impl core::fmt::Display for BlockError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BlockError::OutOfRange => f.write_str("request past the end of the disk"),
            BlockError::Misaligned => f.write_str("buffer is not a whole number of blocks"),
            BlockError::ReadOnly => f.write_str("disk is read-only"),
            BlockError::Device(code) => write!(f, "disk error (status {code:#x})"),
            BlockError::Timeout => f.write_str("disk did not answer in time"),
            BlockError::Gone => f.write_str("disk is gone"),
        }
    }
}

/// A disk, or a part of one: fixed-size blocks numbered from 0.
///
/// A write is durable only after a successful [`BlockDevice::flush`] (a device with a volatile
/// write cache may hold it until then); a flush covers every write completed before it.
pub trait BlockDevice {
    /// Bytes per block: a power of two, at least 512.
    fn block_size(&self) -> u32;
    /// The number of blocks.
    fn block_count(&self) -> u64;
    /// Whether writes are refused.
    fn read_only(&self) -> bool {
        false
    }
    /// Read `buf.len() / block_size` blocks starting at `lba`.
    fn read_blocks(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), BlockError>;
    /// Write `buf.len() / block_size` blocks starting at `lba`.
    fn write_blocks(&mut self, lba: u64, buf: &[u8]) -> Result<(), BlockError>;
    /// Make every completed write durable.
    fn flush(&mut self) -> Result<(), BlockError>;
    /// Zero `blocks` blocks at `lba`. A driver whose device has a zeroing command (virtio-blk
    /// WRITE_ZEROES, NVMe Write Zeroes) overrides this, so that zeroing a large range (a file
    /// grown past its valid data) costs one request instead of writing every byte.
    fn write_zeroes(&mut self, lba: u64, blocks: u64) -> Result<(), BlockError> {
        zero_by_writing(self, lba, blocks)
    }
}

impl<D: BlockDevice + ?Sized> BlockDevice for &mut D {
    fn block_size(&self) -> u32 {
        (**self).block_size()
    }
    fn block_count(&self) -> u64 {
        (**self).block_count()
    }
    fn read_only(&self) -> bool {
        (**self).read_only()
    }
    fn read_blocks(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        (**self).read_blocks(lba, buf)
    }
    fn write_blocks(&mut self, lba: u64, buf: &[u8]) -> Result<(), BlockError> {
        (**self).write_blocks(lba, buf)
    }
    fn flush(&mut self) -> Result<(), BlockError> {
        (**self).flush()
    }
    fn write_zeroes(&mut self, lba: u64, blocks: u64) -> Result<(), BlockError> {
        (**self).write_zeroes(lba, blocks)
    }
}

/// Zero `blocks` blocks at `lba` by writing zeros, 4 KiB at a time: `write_zeroes` for a device
/// without a zeroing command.
pub fn zero_by_writing<D: BlockDevice + ?Sized>(dev: &mut D, lba: u64, blocks: u64) -> Result<(), BlockError> {
    let size = dev.block_size() as usize;
    let zeros = [0u8; 4096];
    let per_chunk = (zeros.len() / size).max(1) as u64;
    let mut done = 0;
    while done < blocks {
        let now = per_chunk.min(blocks - done);
        let len = now as usize * size;
        if len > zeros.len() {
            // A block larger than 4 KiB: one block at a time from a heap buffer.
            let big = alloc::vec![0u8; size];
            dev.write_blocks(lba + done, &big)?;
            done += 1;
            continue;
        }
        dev.write_blocks(lba + done, &zeros[..len])?;
        done += now;
    }
    Ok(())
}

/// Check a request of `len` bytes at `lba` against a device of `block_count` blocks of
/// `block_size` bytes; returns the number of blocks. Drivers and wrappers use this one rule.
pub fn check_request(block_size: u32, block_count: u64, lba: u64, len: usize) -> Result<u64, BlockError> {
    let size = block_size as usize;
    if len == 0 || size == 0 || !len.is_multiple_of(size) {
        return Err(BlockError::Misaligned);
    }
    let blocks = (len / size) as u64;
    match lba.checked_add(blocks) {
        Some(end) if end <= block_count => Ok(blocks),
        _ => Err(BlockError::OutOfRange),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_checked() {
        assert_eq!(check_request(512, 8, 0, 4096), Ok(8));
        assert_eq!(check_request(512, 8, 1, 4096), Err(BlockError::OutOfRange));
        assert_eq!(check_request(512, 8, u64::MAX, 512), Err(BlockError::OutOfRange));
        assert_eq!(check_request(512, 8, 0, 100), Err(BlockError::Misaligned));
        assert_eq!(check_request(512, 8, 0, 0), Err(BlockError::Misaligned));
    }
}

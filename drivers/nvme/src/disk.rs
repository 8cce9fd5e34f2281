//! A namespace as a [`BlockDevice`], and its description for the shell's disk listing. The
//! controller owns the queues, so a disk borrows it; a service that keeps several disks open at
//! once wraps the controller itself and calls [`Nvme::read_blocks`] and friends by index.

use alloc::string::String;

use keel_block::{BlockDevice, BlockError};
use keel_drv_hal::{Platform, Registers};

use crate::controller::Nvme;

/// What the shell's disk listing shows of a namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskInfo {
    /// The controller kind: "NVMe".
    pub controller: &'static str,
    pub model: String,
    pub serial: String,
    pub firmware: String,
    /// The namespace identifier.
    pub namespace: u32,
    pub block_size: u32,
    pub block_count: u64,
    /// The controller has a volatile write cache (flushes matter).
    pub write_cache: bool,
}

impl DiskInfo {
    /// The size in bytes.
    pub fn size_bytes(&self) -> u64 {
        self.block_count.saturating_mul(self.block_size as u64)
    }
}

impl core::fmt::Display for DiskInfo {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{} {} (serial {}, firmware {}) namespace {}: {} blocks of {} bytes",
            self.controller, self.model, self.serial, self.firmware, self.namespace, self.block_count, self.block_size
        )
    }
}

impl<R: Registers, P: Platform> Nvme<R, P> {
    /// The namespace at `index` of [`Nvme::namespaces`] as a block device.
    pub fn disk(&mut self, index: usize) -> Option<NvmeDisk<'_, R, P>> {
        (index < self.namespaces.len()).then_some(NvmeDisk { nvme: self, index })
    }

    /// The listing line's fields for the namespace at `index`.
    pub fn describe(&self, index: usize) -> Option<DiskInfo> {
        let namespace = self.namespaces.get(index)?;
        Some(DiskInfo {
            controller: "NVMe",
            model: self.identity.model.clone(),
            serial: self.identity.serial.clone(),
            firmware: self.identity.firmware.clone(),
            namespace: namespace.id,
            block_size: namespace.block_size,
            block_count: namespace.block_count,
            write_cache: self.identity.volatile_write_cache,
        })
    }

    /// The controller's version register (VS: major in bits 31:16, minor 15:8).
    pub fn version(&self) -> u32 {
        self.version
    }
}

/// One namespace of an [`Nvme`] controller.
pub struct NvmeDisk<'a, R: Registers, P: Platform> {
    nvme: &'a mut Nvme<R, P>,
    index: usize,
}

impl<R: Registers, P: Platform> BlockDevice for NvmeDisk<'_, R, P> {
    fn block_size(&self) -> u32 {
        self.nvme.namespaces[self.index].block_size
    }
    fn block_count(&self) -> u64 {
        self.nvme.namespaces[self.index].block_count
    }
    fn read_blocks(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        self.nvme.read_blocks(self.index, lba, buf)
    }
    fn write_blocks(&mut self, lba: u64, buf: &[u8]) -> Result<(), BlockError> {
        self.nvme.write_blocks(self.index, lba, buf)
    }
    fn flush(&mut self) -> Result<(), BlockError> {
        self.nvme.flush(self.index)
    }
    fn write_zeroes(&mut self, lba: u64, blocks: u64) -> Result<(), BlockError> {
        self.nvme.write_zeroes(self.index, lba, blocks)
    }
}

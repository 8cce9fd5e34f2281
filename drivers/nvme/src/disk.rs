//! A namespace as a [`BlockDevice`], and its description for the shell's disk listing. The
//! controller owns the queues, so a disk borrows it; a service that keeps several disks open at
//! once wraps the controller itself and calls [`Nvme::read_blocks`] and friends by index.

use keel_block::{BlockDevice, BlockError, DiskInfo};
use keel_drv_hal::{Platform, Registers};

use crate::controller::Nvme;

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
            unit_kind: "namespace",
            unit: namespace.id,
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

//! A SATA disk as a [`BlockDevice`], and its description for the shell's disk listing. The HBA
//! owns the ports and the bounce buffer, so a disk borrows it; a service that keeps several
//! disks open at once wraps the HBA itself and calls [`Ahci::read_blocks`] and friends by index.

use keel_block::{BlockDevice, BlockError, DiskInfo};
use keel_drv_hal::{Platform, Registers};

use crate::hba::Ahci;

impl<R: Registers, P: Platform> Ahci<R, P> {
    /// The disk at `index` (0..[`Ahci::disk_count`]) as a block device.
    pub fn disk(&mut self, index: usize) -> Option<AhciDisk<'_, R, P>> {
        let disk = self.disks.get(index)?;
        let (block_size, block_count) = (disk.identity.sector_size, disk.identity.sector_count);
        Some(AhciDisk { hba: self, index, block_size, block_count })
    }

    /// The listing line's fields for the disk at `index`.
    pub fn describe(&self, index: usize) -> Option<DiskInfo> {
        let disk = self.disks.get(index)?;
        Some(DiskInfo {
            controller: "AHCI",
            model: disk.identity.model.clone(),
            serial: disk.identity.serial.clone(),
            firmware: disk.identity.firmware.clone(),
            unit_kind: "port",
            unit: disk.port as u32,
            block_size: disk.identity.sector_size,
            block_count: disk.identity.sector_count,
            write_cache: disk.identity.write_cache,
        })
    }
}

/// One disk of an [`Ahci`] HBA.
pub struct AhciDisk<'a, R: Registers, P: Platform> {
    hba: &'a mut Ahci<R, P>,
    index: usize,
    block_size: u32,
    block_count: u64,
}

impl<R: Registers, P: Platform> BlockDevice for AhciDisk<'_, R, P> {
    fn block_size(&self) -> u32 {
        self.block_size
    }
    fn block_count(&self) -> u64 {
        self.block_count
    }
    fn read_blocks(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        self.hba.read_blocks(self.index, lba, buf)
    }
    fn write_blocks(&mut self, lba: u64, buf: &[u8]) -> Result<(), BlockError> {
        self.hba.write_blocks(self.index, lba, buf)
    }
    fn flush(&mut self) -> Result<(), BlockError> {
        self.hba.flush(self.index)
    }
}

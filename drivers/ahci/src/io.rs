//! Reads, writes and flushes on a disk: a request is checked against the disk, split into
//! commands of at most the bounce buffer (and 65535 sectors), and each copied through it.
//! See: ATA8-ACS 7.25 (READ DMA EXT), 7.63 (WRITE DMA EXT), 7.15 (FLUSH CACHE EXT).
//!
//! What it does not do: NCQ (READ/WRITE FPDMA QUEUED), TRIM, or zero-copy transfers.

use keel_block::{check_request, BlockError};
use keel_drv_hal::{Platform, Registers};

use crate::fis;
use crate::hba::Ahci;
use crate::port::AtaCommand;

/// The most sectors one command names (a count of 0 would mean 65536; never sent).
const MAX_SECTORS_PER_COMMAND: usize = 65535;

impl<R: Registers, P: Platform> Ahci<R, P> {
    /// (sector size, sector count) of the disk at `index`.
    fn geometry(&self, index: usize) -> Result<(u32, u64), BlockError> {
        let disk = self.disks.get(index).ok_or(BlockError::Gone)?;
        Ok((disk.identity.sector_size, disk.identity.sector_count))
    }

    fn sectors_per_command(&self, sector_size: u32) -> usize {
        (self.max_transfer / sector_size as usize).clamp(1, MAX_SECTORS_PER_COMMAND)
    }

    fn transfer(&mut self, index: usize, command: u8, lba: u64, sectors: usize, size: u32) -> Result<(), BlockError> {
        let write = command == fis::WRITE_DMA_EXT;
        let ata = AtaCommand { command, lba, count: sectors as u16, data: &[], write };
        self.run(index, ata, sectors * size as usize)
    }

    /// Read whole sectors at `lba` of the disk at `index`.
    pub fn read_blocks(&mut self, index: usize, lba: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        let (size, count) = self.geometry(index)?;
        check_request(size, count, lba, buf.len())?;
        let per_command = self.sectors_per_command(size);
        for (done, chunk) in buf.chunks_mut(per_command * size as usize).enumerate() {
            let at = lba + (done * per_command) as u64;
            self.transfer(index, fis::READ_DMA_EXT, at, chunk.len() / size as usize, size)?;
            self.bounce_read(chunk)?;
        }
        Ok(())
    }

    /// Write whole sectors at `lba` of the disk at `index`.
    pub fn write_blocks(&mut self, index: usize, lba: u64, buf: &[u8]) -> Result<(), BlockError> {
        let (size, count) = self.geometry(index)?;
        check_request(size, count, lba, buf.len())?;
        let per_command = self.sectors_per_command(size);
        for (done, chunk) in buf.chunks(per_command * size as usize).enumerate() {
            let at = lba + (done * per_command) as u64;
            self.bounce_write(chunk)?;
            self.transfer(index, fis::WRITE_DMA_EXT, at, chunk.len() / size as usize, size)?;
        }
        Ok(())
    }

    /// Write the disk's cache out: FLUSH CACHE EXT, or FLUSH CACHE on a disk without it. Sent
    /// whatever IDENTIFY says of the write cache, which a drive may enable on its own.
    pub fn flush(&mut self, index: usize) -> Result<(), BlockError> {
        let disk = self.disks.get(index).ok_or(BlockError::Gone)?;
        let command = if disk.identity.flush_ext { fis::FLUSH_CACHE_EXT } else { fis::FLUSH_CACHE };
        self.run(index, AtaCommand { command, lba: 0, count: 0, data: &[], write: false }, 0)
    }
}

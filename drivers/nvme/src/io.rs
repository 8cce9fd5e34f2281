//! Reads, writes, flushes and zeroing on a namespace: a request is checked against the
//! namespace, split into transfers of at most the controller's limit (MDTS and the bounce
//! buffer), and each transfer copied through the bounce buffer with PRP1/PRP2 or the PRP list.
//! See: NVMe 1.4 6.9 (Read), 6.15 (Write), 6.8 (Flush), 6.16 (Write Zeroes).
//!
//! What it does not do: give the controller the caller's memory (every byte is copied once),
//! queue several requests, or use metadata, protection information or FUA.

use keel_block::{check_request, BlockError};
use keel_drv_hal::{Platform, Registers};

use crate::command::{nvm, Command};
use crate::controller::{Health, Namespace, Nvme, Queue, IO_TIMEOUT_NS};
use crate::prp;

/// The most blocks one command names (NLB is a 0-based 16-bit field).
const MAX_BLOCKS_PER_COMMAND: u64 = 1 << 16;

impl<R: Registers, P: Platform> Nvme<R, P> {
    fn namespace_at(&self, index: usize) -> Result<Namespace, BlockError> {
        self.namespaces.get(index).copied().ok_or(BlockError::Gone)
    }

    /// Blocks per transfer for `namespace`.
    fn blocks_per_transfer(&self, namespace: &Namespace) -> usize {
        (self.max_transfer / namespace.block_size as usize).clamp(1, MAX_BLOCKS_PER_COMMAND as usize)
    }

    /// One Read or Write of the first `len` bytes of the bounce buffer at `lba`.
    fn transfer(&mut self, opcode: u8, namespace: &Namespace, lba: u64, len: usize) -> Result<(), BlockError> {
        let (prp1, prp2) = prp::data_pointers(self.bounce.phys(), len, self.page_size, self.prp_list.phys());
        let blocks = (len / namespace.block_size as usize) as u32;
        let command = Command::block_range(opcode, namespace.id, lba, blocks).with_data(prp1, prp2);
        self.execute(Queue::Io, command, IO_TIMEOUT_NS)?;
        Ok(())
    }

    /// Read whole blocks at `lba` of the namespace at `index` (of [`Nvme::namespaces`]).
    pub fn read_blocks(&mut self, index: usize, lba: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        let namespace = self.namespace_at(index)?;
        check_request(namespace.block_size, namespace.block_count, lba, buf.len())?;
        let chunk_blocks = self.blocks_per_transfer(&namespace);
        let chunk_bytes = chunk_blocks * namespace.block_size as usize;
        for (done, chunk) in buf.chunks_mut(chunk_bytes).enumerate() {
            let at = lba + (done * chunk_blocks) as u64;
            self.transfer(nvm::READ, &namespace, at, chunk.len())?;
            self.bounce.read(0, chunk).map_err(|_| BlockError::Gone)?;
        }
        Ok(())
    }

    /// Write whole blocks at `lba` of the namespace at `index`.
    pub fn write_blocks(&mut self, index: usize, lba: u64, buf: &[u8]) -> Result<(), BlockError> {
        let namespace = self.namespace_at(index)?;
        check_request(namespace.block_size, namespace.block_count, lba, buf.len())?;
        let chunk_blocks = self.blocks_per_transfer(&namespace);
        let chunk_bytes = chunk_blocks * namespace.block_size as usize;
        for (done, chunk) in buf.chunks(chunk_bytes).enumerate() {
            let at = lba + (done * chunk_blocks) as u64;
            self.bounce.write(0, chunk).map_err(|_| BlockError::Gone)?;
            self.transfer(nvm::WRITE, &namespace, at, chunk.len())?;
        }
        Ok(())
    }

    /// Make completed writes durable: a Flush when the controller has a volatile write cache,
    /// nothing otherwise (every completed write already is). See: NVMe 1.4 6.8, 5.15.2.2 (VWC)
    pub fn flush(&mut self, index: usize) -> Result<(), BlockError> {
        let namespace = self.namespace_at(index)?;
        if self.health == Health::Gone {
            return Err(BlockError::Gone);
        }
        if self.identity.volatile_write_cache {
            self.execute(Queue::Io, Command::new(nvm::FLUSH, namespace.id), IO_TIMEOUT_NS)?;
        }
        Ok(())
    }

    /// Zero `blocks` blocks at `lba`: Write Zeroes commands of up to 65536 blocks when ONCS
    /// offers them, else writes of a zeroed bounce buffer. See: NVMe 1.4 6.16
    pub fn write_zeroes(&mut self, index: usize, lba: u64, blocks: u64) -> Result<(), BlockError> {
        let namespace = self.namespace_at(index)?;
        match lba.checked_add(blocks) {
            Some(end) if end <= namespace.block_count => {}
            _ => return Err(BlockError::OutOfRange),
        }
        let (opcode, per_command) = if self.identity.write_zeroes {
            (nvm::WRITE_ZEROES, MAX_BLOCKS_PER_COMMAND)
        } else {
            let per_transfer = self.blocks_per_transfer(&namespace);
            let zeros = [0u8; 4096];
            let mut offset = 0;
            while offset < per_transfer * namespace.block_size as usize {
                self.bounce.write(offset, &zeros).map_err(|_| BlockError::Gone)?;
                offset += zeros.len();
            }
            (nvm::WRITE, per_transfer as u64)
        };
        let mut done = 0;
        while done < blocks {
            let now = per_command.min(blocks - done);
            if opcode == nvm::WRITE {
                self.transfer(opcode, &namespace, lba + done, now as usize * namespace.block_size as usize)?;
            } else {
                let command = Command::block_range(opcode, namespace.id, lba + done, now as u32);
                self.execute(Queue::Io, command, IO_TIMEOUT_NS)?;
            }
            done += now;
        }
        Ok(())
    }
}

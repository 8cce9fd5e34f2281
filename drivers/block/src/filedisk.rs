//! A disk image in a host file, for host tools (`cargo xtask datastore`) and file-system tests:
//! 512-byte blocks over `std::fs::File`, with `write_zeroes` that keeps a sparse image sparse
//! (it writes only the blocks that are not zero already, so zeroing a hole costs reads, never
//! disk space). Built only with the `std` feature; nothing in Keel itself uses it.

use std::fs::File;
use std::os::unix::fs::FileExt;

use crate::{check_request, BlockDevice, BlockError};

/// Bytes zeroed per request in `write_zeroes`.
const ZERO_CHUNK: usize = 1 << 20;

/// A host file as a disk of 512-byte blocks, starting `offset` bytes into the file (a volume in
/// a partition) and `blocks` blocks long.
pub struct FileDisk {
    file: File,
    offset: u64,
    blocks: u64,
    read_only: bool,
}

impl FileDisk {
    /// Block size of every `FileDisk`.
    pub const BLOCK_SIZE: u32 = 512;

    /// The whole file from `offset` on (its length cut to whole blocks); `read_only` refuses
    /// writes. Fails when the file's length cannot be read.
    pub fn new(file: File, offset: u64, read_only: bool) -> std::io::Result<Self> {
        let len = file.metadata()?.len();
        let blocks = len.saturating_sub(offset) / u64::from(Self::BLOCK_SIZE);
        Ok(FileDisk { file, offset, blocks, read_only })
    }

    fn byte_offset(&self, lba: u64) -> u64 {
        self.offset + lba * u64::from(Self::BLOCK_SIZE)
    }
}

fn io_error(_: std::io::Error) -> BlockError {
    BlockError::Device(u32::MAX)
}

impl BlockDevice for FileDisk {
    fn block_size(&self) -> u32 {
        Self::BLOCK_SIZE
    }
    fn block_count(&self) -> u64 {
        self.blocks
    }
    fn read_only(&self) -> bool {
        self.read_only
    }
    fn read_blocks(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        check_request(Self::BLOCK_SIZE, self.blocks, lba, buf.len())?;
        self.file.read_exact_at(buf, self.byte_offset(lba)).map_err(io_error)
    }
    fn write_blocks(&mut self, lba: u64, buf: &[u8]) -> Result<(), BlockError> {
        check_request(Self::BLOCK_SIZE, self.blocks, lba, buf.len())?;
        if self.read_only {
            return Err(BlockError::ReadOnly);
        }
        self.file.write_all_at(buf, self.byte_offset(lba)).map_err(io_error)
    }
    fn flush(&mut self) -> Result<(), BlockError> {
        if self.read_only {
            return Err(BlockError::ReadOnly);
        }
        self.file.sync_data().map_err(io_error)
    }
    fn write_zeroes(&mut self, lba: u64, blocks: u64) -> Result<(), BlockError> {
        let size = u64::from(Self::BLOCK_SIZE);
        match lba.checked_add(blocks) {
            Some(end) if end <= self.blocks => {}
            _ => return Err(BlockError::OutOfRange),
        }
        if self.read_only {
            return Err(BlockError::ReadOnly);
        }
        let mut buf = vec![0u8; ZERO_CHUNK];
        let zeros = vec![0u8; ZERO_CHUNK];
        let mut done = 0;
        while done < blocks {
            let now = (blocks - done).min(ZERO_CHUNK as u64 / size);
            let chunk = &mut buf[..(now * size) as usize];
            let at = self.byte_offset(lba + done);
            self.file.read_exact_at(chunk, at).map_err(io_error)?;
            // A slice comparison (memcmp), fast even in a debug build.
            if chunk[..] != zeros[..chunk.len()] {
                self.file.write_all_at(&zeros[..chunk.len()], at).map_err(io_error)?;
            }
            done += now;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_reads_back_what_was_written_and_zeroes() {
        let path = std::env::temp_dir().join(format!("keel-filedisk-{}", std::process::id()));
        let file = File::options().read(true).write(true).create(true).truncate(true).open(&path).unwrap();
        file.set_len(8 * 512 + 100).unwrap();
        let mut disk = FileDisk::new(file, 512, false).unwrap();
        assert_eq!(disk.block_count(), 7);
        disk.write_blocks(6, &[5u8; 512]).unwrap();
        let mut buf = [0u8; 512];
        disk.read_blocks(6, &mut buf).unwrap();
        assert_eq!(buf, [5u8; 512]);
        disk.write_zeroes(5, 2).unwrap();
        disk.read_blocks(6, &mut buf).unwrap();
        assert_eq!(buf, [0u8; 512]);
        assert_eq!(disk.write_zeroes(6, 2), Err(BlockError::OutOfRange));
        std::fs::remove_file(path).unwrap();
    }
}

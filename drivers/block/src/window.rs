//! A range of another device's blocks as a device of its own: a partition. Requests are checked
//! against the window, so a file system on a partition cannot reach past it.

use crate::{check_request, BlockDevice, BlockError};

/// Blocks `first..first + count` of `inner`.
pub struct Window<D> {
    inner: D,
    first: u64,
    count: u64,
}

impl<D: BlockDevice> Window<D> {
    /// The window, or `OutOfRange` when it does not lie within `inner`.
    pub fn new(inner: D, first: u64, count: u64) -> Result<Self, BlockError> {
        match first.checked_add(count) {
            Some(end) if end <= inner.block_count() => Ok(Window { inner, first, count }),
            _ => Err(BlockError::OutOfRange),
        }
    }

    /// The device underneath.
    pub fn into_inner(self) -> D {
        self.inner
    }
}

impl<D: BlockDevice> BlockDevice for Window<D> {
    fn block_size(&self) -> u32 {
        self.inner.block_size()
    }
    fn block_count(&self) -> u64 {
        self.count
    }
    fn read_only(&self) -> bool {
        self.inner.read_only()
    }
    fn read_blocks(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        check_request(self.block_size(), self.count, lba, buf.len())?;
        self.inner.read_blocks(self.first + lba, buf)
    }
    fn write_blocks(&mut self, lba: u64, buf: &[u8]) -> Result<(), BlockError> {
        check_request(self.block_size(), self.count, lba, buf.len())?;
        self.inner.write_blocks(self.first + lba, buf)
    }
    fn flush(&mut self) -> Result<(), BlockError> {
        self.inner.flush()
    }
    fn write_zeroes(&mut self, lba: u64, blocks: u64) -> Result<(), BlockError> {
        match lba.checked_add(blocks) {
            Some(end) if end <= self.count => self.inner.write_zeroes(self.first + lba, blocks),
            _ => Err(BlockError::OutOfRange),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemDisk;

    #[test]
    fn a_window_stays_inside_its_range() {
        let mut disk = MemDisk::new(512, 16);
        let mut part = Window::new(&mut disk, 4, 8).unwrap();
        part.write_blocks(0, &[7u8; 512]).unwrap();
        assert_eq!(part.write_blocks(8, &[0u8; 512]), Err(BlockError::OutOfRange));
        assert_eq!(part.read_blocks(7, &mut [0u8; 1024]), Err(BlockError::OutOfRange));
        let mut block = [0u8; 512];
        disk.read_blocks(4, &mut block).unwrap();
        assert_eq!(block, [7u8; 512]);
        assert!(Window::new(&mut disk, 10, 7).is_err());
    }
}

//! Byte-addressed access to a block device: reads and writes at any byte offset and length,
//! reading and rewriting the partial blocks at either end. The file systems think in their own
//! sectors and clusters; this layer maps them onto whatever block size the device has. It does
//! not cache: every call reaches the device (the callers batch what they write).

use alloc::vec;
use keel_block::BlockDevice;

use crate::error::{Error, Result};

/// A block device seen as an array of bytes.
pub struct ByteDisk<D> {
    pub(crate) dev: D,
    block: u64,
}

impl<D: BlockDevice> ByteDisk<D> {
    pub fn new(dev: D) -> Self {
        let block = u64::from(dev.block_size().max(1));
        ByteDisk { dev, block }
    }

    /// The device's size in bytes.
    pub fn len(&self) -> u64 {
        self.dev.block_count().saturating_mul(self.block)
    }

    pub fn read_only(&self) -> bool {
        self.dev.read_only()
    }

    fn check(&self, offset: u64, len: usize) -> Result<()> {
        match offset.checked_add(len as u64) {
            Some(end) if end <= self.len() => Ok(()),
            _ => Err(Error::Corrupt("a structure lies past the end of the disk")),
        }
    }

    /// Fill `buf` from `offset`.
    pub fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.check(offset, buf.len())?;
        let mut done = 0usize;
        while done < buf.len() {
            let at = offset + done as u64;
            let in_block = (at % self.block) as usize;
            let left = buf.len() - done;
            if in_block == 0 && left as u64 >= self.block {
                let whole = (left as u64 / self.block * self.block) as usize;
                self.dev.read_blocks(at / self.block, &mut buf[done..done + whole])?;
                done += whole;
            } else {
                let mut tmp = vec![0u8; self.block as usize];
                self.dev.read_blocks(at / self.block, &mut tmp)?;
                let n = (self.block as usize - in_block).min(left);
                buf[done..done + n].copy_from_slice(&tmp[in_block..in_block + n]);
                done += n;
            }
        }
        Ok(())
    }

    /// Write `buf` at `offset` (partial blocks are read, patched and rewritten).
    pub fn write(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
        self.check(offset, buf.len())?;
        let mut done = 0usize;
        while done < buf.len() {
            let at = offset + done as u64;
            let in_block = (at % self.block) as usize;
            let left = buf.len() - done;
            if in_block == 0 && left as u64 >= self.block {
                let whole = (left as u64 / self.block * self.block) as usize;
                self.dev.write_blocks(at / self.block, &buf[done..done + whole])?;
                done += whole;
            } else {
                let mut tmp = vec![0u8; self.block as usize];
                self.dev.read_blocks(at / self.block, &mut tmp)?;
                let n = (self.block as usize - in_block).min(left);
                tmp[in_block..in_block + n].copy_from_slice(&buf[done..done + n]);
                self.dev.write_blocks(at / self.block, &tmp)?;
                done += n;
            }
        }
        Ok(())
    }

    /// Zero `len` bytes at `offset`: the whole blocks with one `write_zeroes` (one device command
    /// on drivers that have one), the partial ends by rewriting them.
    pub fn zero(&mut self, offset: u64, len: u64) -> Result<()> {
        let end = offset.checked_add(len).ok_or(Error::Corrupt("zeroed range overflows"))?;
        if end > self.len() {
            return Err(Error::Corrupt("a structure lies past the end of the disk"));
        }
        let first_whole = offset.div_ceil(self.block) * self.block;
        let last_whole = end / self.block * self.block;
        if first_whole >= last_whole {
            let zeros = vec![0u8; len as usize];
            return self.write(offset, &zeros);
        }
        if offset < first_whole {
            self.write(offset, &vec![0u8; (first_whole - offset) as usize])?;
        }
        self.dev.write_zeroes(first_whole / self.block, (last_whole - first_whole) / self.block)?;
        if end > last_whole {
            self.write(last_whole, &vec![0u8; (end - last_whole) as usize])?;
        }
        Ok(())
    }

    pub fn flush(&mut self) -> Result<()> {
        Ok(self.dev.flush()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_block::MemDisk;

    #[test]
    fn unaligned_reads_and_writes_touch_only_their_bytes() {
        let mut disk = ByteDisk::new(MemDisk::new(512, 8));
        disk.write(500, &[7u8; 600]).unwrap();
        let mut buf = [0u8; 602];
        disk.read(499, &mut buf).unwrap();
        assert_eq!(buf[0], 0);
        assert!(buf[1..601].iter().all(|&b| b == 7));
        assert_eq!(buf[601], 0);
        disk.zero(501, 1000).unwrap();
        disk.read(499, &mut buf).unwrap();
        assert_eq!(&buf[..3], &[0, 7, 0]);
        assert!(disk.read(4000, &mut [0u8; 100]).is_err());
    }
}

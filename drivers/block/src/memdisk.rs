//! A disk in memory for host tests: it can be made read-only, made to fail from a given request
//! on (a vanished disk), and it records every write and flush in order, so that a test can rebuild
//! what a power cut after any event would have left on the platter ([`MemDisk::replay`]).

use alloc::vec;
use alloc::vec::Vec;

use crate::{check_request, BlockDevice, BlockError};

/// One request a [`MemDisk`] completed, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiskEvent {
    /// Blocks written at an address (the bytes as written).
    Write { lba: u64, data: Vec<u8> },
    /// A flush: every earlier write is durable.
    Flush,
}

/// A disk held in a `Vec`.
pub struct MemDisk {
    block_size: u32,
    bytes: Vec<u8>,
    read_only: bool,
    /// Requests left before every request fails with `Gone` (`None`: never).
    fail_after: Option<u64>,
    log: Option<Vec<DiskEvent>>,
    initial: Option<Vec<u8>>,
}

impl MemDisk {
    /// A zeroed disk of `blocks` blocks of `block_size` bytes.
    pub fn new(block_size: u32, blocks: u64) -> Self {
        Self::from_bytes(block_size, vec![0; block_size as usize * blocks as usize])
    }

    /// A disk holding `bytes` (cut to whole blocks).
    pub fn from_bytes(block_size: u32, mut bytes: Vec<u8>) -> Self {
        let whole = bytes.len() - bytes.len() % block_size as usize;
        bytes.truncate(whole);
        MemDisk { block_size, bytes, read_only: false, fail_after: None, log: None, initial: None }
    }

    /// The disk's contents.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Take the contents out.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// Refuse writes and flushes from now on.
    pub fn set_read_only(&mut self, read_only: bool) {
        self.read_only = read_only;
    }

    /// Complete `requests` more requests, then fail every one with `Gone`.
    pub fn fail_after(&mut self, requests: u64) {
        self.fail_after = Some(requests);
    }

    /// Start recording writes and flushes (and remember the contents now, for `replay`).
    pub fn start_log(&mut self) {
        self.initial = Some(self.bytes.clone());
        self.log = Some(Vec::new());
    }

    /// The events recorded since `start_log`.
    pub fn log(&self) -> &[DiskEvent] {
        self.log.as_deref().unwrap_or(&[])
    }

    /// The contents as they were at `start_log` with the writes among the first `events` events
    /// applied, except those whose index `keep` refuses: what a power cut could leave when writes
    /// after the last flush were lost (a write before a flush that precedes `events` is always
    /// kept). Writes are whole; a test that wants torn writes edits the log.
    pub fn replay(&self, events: usize, mut keep: impl FnMut(usize) -> bool) -> Vec<u8> {
        let mut bytes = self.initial.clone().unwrap_or_else(|| self.bytes.clone());
        let log = self.log();
        let events = events.min(log.len());
        let last_flush = log[..events].iter().rposition(|e| *e == DiskEvent::Flush);
        for (index, event) in log[..events].iter().enumerate() {
            if let DiskEvent::Write { lba, data } = event {
                let durable = last_flush.is_some_and(|flush| index < flush);
                if durable || keep(index) {
                    let start = *lba as usize * self.block_size as usize;
                    bytes[start..start + data.len()].copy_from_slice(data);
                }
            }
        }
        bytes
    }

    fn take_request(&mut self) -> Result<(), BlockError> {
        match &mut self.fail_after {
            Some(0) => Err(BlockError::Gone),
            Some(left) => {
                *left -= 1;
                Ok(())
            }
            None => Ok(()),
        }
    }
}

impl BlockDevice for MemDisk {
    fn block_size(&self) -> u32 {
        self.block_size
    }
    fn block_count(&self) -> u64 {
        (self.bytes.len() / self.block_size as usize) as u64
    }
    fn read_only(&self) -> bool {
        self.read_only
    }
    fn read_blocks(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        check_request(self.block_size, self.block_count(), lba, buf.len())?;
        self.take_request()?;
        let start = lba as usize * self.block_size as usize;
        buf.copy_from_slice(&self.bytes[start..start + buf.len()]);
        Ok(())
    }
    fn write_blocks(&mut self, lba: u64, buf: &[u8]) -> Result<(), BlockError> {
        check_request(self.block_size, self.block_count(), lba, buf.len())?;
        if self.read_only {
            return Err(BlockError::ReadOnly);
        }
        self.take_request()?;
        let start = lba as usize * self.block_size as usize;
        self.bytes[start..start + buf.len()].copy_from_slice(buf);
        if let Some(log) = &mut self.log {
            log.push(DiskEvent::Write { lba, data: buf.to_vec() });
        }
        Ok(())
    }
    fn flush(&mut self) -> Result<(), BlockError> {
        if self.read_only {
            return Err(BlockError::ReadOnly);
        }
        self.take_request()?;
        if let Some(log) = &mut self.log {
            log.push(DiskEvent::Flush);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_read_back_and_bad_requests_fail() {
        let mut disk = MemDisk::new(512, 4);
        disk.write_blocks(1, &[1u8; 1024]).unwrap();
        let mut buf = [0u8; 512];
        disk.read_blocks(2, &mut buf).unwrap();
        assert_eq!(buf, [1u8; 512]);
        assert_eq!(disk.read_blocks(4, &mut buf), Err(BlockError::OutOfRange));
        disk.set_read_only(true);
        assert_eq!(disk.write_blocks(0, &buf), Err(BlockError::ReadOnly));
    }

    #[test]
    fn a_vanished_disk_fails_every_request() {
        let mut disk = MemDisk::new(512, 4);
        disk.fail_after(1);
        let mut buf = [0u8; 512];
        disk.read_blocks(0, &mut buf).unwrap();
        assert_eq!(disk.read_blocks(0, &mut buf), Err(BlockError::Gone));
        assert_eq!(disk.flush(), Err(BlockError::Gone));
    }

    #[test]
    fn replay_keeps_flushed_writes_and_chooses_among_the_rest() {
        let mut disk = MemDisk::new(512, 4);
        disk.start_log();
        disk.write_blocks(0, &[1u8; 512]).unwrap();
        disk.flush().unwrap();
        disk.write_blocks(1, &[2u8; 512]).unwrap();
        disk.write_blocks(2, &[3u8; 512]).unwrap();
        let lost_all = disk.replay(4, |_| false);
        assert_eq!(&lost_all[..512], &[1u8; 512]);
        assert_eq!(&lost_all[512..1024], &[0u8; 512]);
        let kept_last = disk.replay(4, |index| index == 3);
        assert_eq!(&kept_last[512..1024], &[0u8; 512]);
        assert_eq!(&kept_last[1024..1536], &[3u8; 512]);
        assert_eq!(disk.replay(4, |_| true), disk.bytes());
    }
}

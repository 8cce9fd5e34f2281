//! What a guest disk is stored on: the [`BlockBackend`] trait the virtio-blk and virtio-scsi
//! (CD-ROM) models read and write through, and [`MemBackend`], an image held in memory (host
//! tests, fuzz targets, small read-only images).
//!
//! The trait is synchronous and byte-addressed: the device models check every range against
//! [`BlockBackend::size_bytes`] before calling it, so an implementation over a file (raw or qcow2
//! on the datastore) only has to do the I/O. virtio-blk moves data with
//! [`BlockBackend::read_into`] and [`BlockBackend::write_from`], piece by piece between the
//! backend and the guest's buffers: a backend whose bytes pass through memory anyway (the storage
//! channel's window) then needs no buffer, and the data no copy, of the device's own.
//!
//! Does not: cache, reorder or queue requests, or know about sectors, LBAs or guest memory.

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;

/// Why a backend could not do what was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendError {
    /// The storage failed (the guest sees an I/O error).
    Io,
    /// The range is not inside the image (a device model bug if it happens: ranges are checked).
    OutOfRange,
    /// A write to a read-only image.
    ReadOnly,
    /// The backend cannot do this (discard or write-zeroes on storage that has no such thing).
    Unsupported,
}

/// Where a read's bytes go: pieces in order, `at` counting from the read's start; false stops
/// the read (an I/O error).
pub type Sink<'a> = dyn FnMut(u64, &[u8]) -> bool + 'a;
/// Where a write's bytes come from: fills the piece `at` bytes from the write's start; false
/// stops the write (an I/O error).
pub type Source<'a> = dyn FnMut(u64, &mut [u8]) -> bool + 'a;

/// The piece the default `read_into` and `write_from` go by, in a buffer on the stack.
const PIECE: usize = 4096;

/// A disk image the device models read and write, synchronously.
pub trait BlockBackend {
    /// The image's size in bytes.
    fn size_bytes(&self) -> u64;
    /// Whether writes, discards and write-zeroes are refused.
    fn read_only(&self) -> bool;
    /// Fills `buf` with the bytes at `offset`.
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BackendError>;
    /// Stores `data` at `offset`.
    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), BackendError>;
    /// Makes every completed write durable.
    fn flush(&mut self) -> Result<(), BackendError>;
    /// The guest no longer needs `len` bytes at `offset` (their contents become unspecified).
    fn discard(&mut self, offset: u64, len: u64) -> Result<(), BackendError>;
    /// Makes `len` bytes at `offset` read as zeros; `may_unmap`: the backend may deallocate them.
    fn write_zeroes(&mut self, offset: u64, len: u64, may_unmap: bool) -> Result<(), BackendError>;
    /// Reads `len` bytes at `offset` into `sink`. The default reads through a stack buffer.
    fn read_into(&mut self, offset: u64, len: u64, sink: &mut Sink<'_>) -> Result<(), BackendError> {
        let mut buf = [0u8; PIECE];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(PIECE as u64) as usize;
            self.read(offset.checked_add(done).ok_or(BackendError::OutOfRange)?, &mut buf[..n])?;
            if !sink(done, &buf[..n]) {
                return Err(BackendError::Io);
            }
            done += n as u64;
        }
        Ok(())
    }
    /// Writes `len` bytes at `offset` taken from `source`. The default writes through a stack
    /// buffer.
    fn write_from(&mut self, offset: u64, len: u64, source: &mut Source<'_>) -> Result<(), BackendError> {
        let mut buf = [0u8; PIECE];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(PIECE as u64) as usize;
            if !source(done, &mut buf[..n]) {
                return Err(BackendError::Io);
            }
            self.write(offset.checked_add(done).ok_or(BackendError::OutOfRange)?, &buf[..n])?;
            done += n as u64;
        }
        Ok(())
    }
}

/// So that the monitor can hand a device `Box<dyn BlockBackend>`.
impl<B: BlockBackend + ?Sized> BlockBackend for Box<B> {
    fn size_bytes(&self) -> u64 {
        (**self).size_bytes()
    }
    fn read_only(&self) -> bool {
        (**self).read_only()
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BackendError> {
        (**self).read(offset, buf)
    }
    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), BackendError> {
        (**self).write(offset, data)
    }
    fn flush(&mut self) -> Result<(), BackendError> {
        (**self).flush()
    }
    fn discard(&mut self, offset: u64, len: u64) -> Result<(), BackendError> {
        (**self).discard(offset, len)
    }
    fn write_zeroes(&mut self, offset: u64, len: u64, may_unmap: bool) -> Result<(), BackendError> {
        (**self).write_zeroes(offset, len, may_unmap)
    }
    fn read_into(&mut self, offset: u64, len: u64, sink: &mut Sink<'_>) -> Result<(), BackendError> {
        (**self).read_into(offset, len, sink)
    }
    fn write_from(&mut self, offset: u64, len: u64, source: &mut Source<'_>) -> Result<(), BackendError> {
        (**self).write_from(offset, len, source)
    }
}

/// An image in memory. Discard zeroes the range (a valid "unspecified contents"), so tests can
/// see it happened. Counts flushes.
#[derive(Debug, Clone, Default)]
pub struct MemBackend {
    bytes: Vec<u8>,
    read_only: bool,
    flushes: u64,
}

impl MemBackend {
    /// `len` zero bytes, writable.
    pub fn zeroed(len: usize) -> Self {
        Self { bytes: vec![0; len], read_only: false, flushes: 0 }
    }

    /// An image holding `bytes`.
    pub fn from_bytes(bytes: Vec<u8>, read_only: bool) -> Self {
        Self { bytes, read_only, flushes: 0 }
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.bytes
    }

    /// Flushes done.
    pub fn flushes(&self) -> u64 {
        self.flushes
    }

    fn range(&self, offset: u64, len: u64) -> Result<core::ops::Range<usize>, BackendError> {
        let start = usize::try_from(offset).map_err(|_| BackendError::OutOfRange)?;
        let len = usize::try_from(len).map_err(|_| BackendError::OutOfRange)?;
        let end = start.checked_add(len).ok_or(BackendError::OutOfRange)?;
        if end > self.bytes.len() {
            return Err(BackendError::OutOfRange);
        }
        Ok(start..end)
    }

    fn writable_range(&self, offset: u64, len: u64) -> Result<core::ops::Range<usize>, BackendError> {
        if self.read_only {
            return Err(BackendError::ReadOnly);
        }
        self.range(offset, len)
    }
}

impl BlockBackend for MemBackend {
    fn size_bytes(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn read_only(&self) -> bool {
        self.read_only
    }

    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BackendError> {
        let r = self.range(offset, buf.len() as u64)?;
        buf.copy_from_slice(&self.bytes[r]);
        Ok(())
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), BackendError> {
        let r = self.writable_range(offset, data.len() as u64)?;
        self.bytes[r].copy_from_slice(data);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), BackendError> {
        self.flushes += 1;
        Ok(())
    }

    fn discard(&mut self, offset: u64, len: u64) -> Result<(), BackendError> {
        let r = self.writable_range(offset, len)?;
        self.bytes[r].fill(0);
        Ok(())
    }

    fn write_zeroes(&mut self, offset: u64, len: u64, _may_unmap: bool) -> Result<(), BackendError> {
        let r = self.writable_range(offset, len)?;
        self.bytes[r].fill(0);
        Ok(())
    }

    /// In uneven pieces (a page, then the rest), as a file behind a window would give them.
    fn read_into(&mut self, offset: u64, len: u64, sink: &mut Sink<'_>) -> Result<(), BackendError> {
        let r = self.range(offset, len)?;
        let split = (r.start + PIECE).min(r.end);
        match sink(0, &self.bytes[r.start..split]) && sink((split - r.start) as u64, &self.bytes[split..r.end]) {
            true => Ok(()),
            false => Err(BackendError::Io),
        }
    }

    fn write_from(&mut self, offset: u64, len: u64, source: &mut Source<'_>) -> Result<(), BackendError> {
        let r = self.writable_range(offset, len)?;
        let split = (r.start + PIECE).min(r.end);
        let (first, rest) = self.bytes[r].split_at_mut(split - offset as usize);
        match source(0, first) && source(first.len() as u64, rest) {
            true => Ok(()),
            false => Err(BackendError::Io),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_backend_checks_ranges_and_read_only() {
        let mut b = MemBackend::zeroed(1024);
        b.write(1020, &[1, 2, 3, 4]).unwrap();
        assert_eq!(b.write(1021, &[1, 2, 3, 4]), Err(BackendError::OutOfRange));
        assert_eq!(b.read(u64::MAX, &mut [0]), Err(BackendError::OutOfRange));
        let mut buf = [0u8; 4];
        b.read(1020, &mut buf).unwrap();
        assert_eq!(buf, [1, 2, 3, 4]);
        b.discard(1020, 2).unwrap();
        assert_eq!(&b.bytes()[1020..], [0, 0, 3, 4]);
        b.write_zeroes(1022, 2, false).unwrap();
        assert_eq!(&b.bytes()[1020..], [0; 4]);
        b.flush().unwrap();
        assert_eq!(b.flushes(), 1);
        let mut ro: Box<dyn BlockBackend> = Box::new(MemBackend::from_bytes(vec![9; 16], true));
        assert!(ro.read_only());
        assert_eq!(ro.write(0, &[1]), Err(BackendError::ReadOnly));
        assert_eq!(ro.discard(0, 1), Err(BackendError::ReadOnly));
        assert_eq!(ro.write_zeroes(0, 1, true), Err(BackendError::ReadOnly));
        ro.read(15, &mut buf[..1]).unwrap();
        assert_eq!((buf[0], ro.size_bytes()), (9, 16));
    }
}

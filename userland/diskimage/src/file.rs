//! The file an image lives in: [`ImageFile`], a byte-addressed file (a datastore file through
//! the storage service in Keel, a `std::fs::File` in tools and tests), and [`MemFile`], one in
//! memory for tests and the fuzz target.
//!
//! [`ImageFile::read_into`] and [`ImageFile::write_from`] hand bytes to and from the caller
//! piece by piece, so that a file whose bytes pass through memory anyway (the storage channel's
//! window) lets a guest's buffers be copied straight to and from it: a copy less per request.
//!
//! Not here: caching, or any knowledge of image formats. The image code issues every write and
//! flush in the order crash consistency needs, so an implementation must not reorder a write
//! across a flush, and its `flush` must make what was written durable before it returns.

use alloc::boxed::Box;
use alloc::vec::Vec;

use crate::Error;

/// Where a read's bytes go: called with pieces in order, `at` counting from the read's start;
/// false stops the read ([`Error::Transfer`]).
pub type Sink<'a> = dyn FnMut(u64, &[u8]) -> bool + 'a;
/// Where a write's bytes come from: fills the piece `at` bytes from the write's start; false
/// stops the write ([`Error::Transfer`]).
pub type Source<'a> = dyn FnMut(u64, &mut [u8]) -> bool + 'a;

/// What zero ranges are handed to a sink from (small: it is in every monitor's image).
static ZEROS: [u8; 1024] = [0; 1024];

/// Hands `len` zero bytes to `sink`, `at` bytes into the read.
pub fn sink_zeros(sink: &mut Sink<'_>, at: u64, len: u64) -> Result<(), Error> {
    let mut done = 0;
    while done < len {
        let n = (len - done).min(ZEROS.len() as u64);
        if !sink(at + done, &ZEROS[..n as usize]) {
            return Err(Error::Transfer);
        }
        done += n;
    }
    Ok(())
}

/// The piece the default [`ImageFile::read_into`] and [`ImageFile::write_from`] go by.
const PIECE: usize = 4096;

/// A byte-addressed file.
pub trait ImageFile {
    /// Fills `buf` from `offset`; bytes past the end of the file read as zero.
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Error>;
    /// Writes `data` at `offset`, growing the file if it ends before `offset + data.len()`.
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), Error>;
    /// Makes every write before it durable before returning.
    fn flush(&mut self) -> Result<(), Error>;
    /// The file's length in bytes.
    fn len(&mut self) -> Result<u64, Error>;
    /// Truncates or extends (sparse: the new bytes read as zero) the file to `len` bytes.
    fn set_len(&mut self, len: u64) -> Result<(), Error>;
    /// Whether the file is empty.
    fn is_empty(&mut self) -> Result<bool, Error> {
        Ok(self.len()? == 0)
    }
    /// Reads `len` bytes at `offset` into `sink` (as `read_at` would, zeros past the end). The
    /// default goes through a buffer on the stack; a file that holds its bytes in memory hands
    /// them over directly.
    fn read_into(&mut self, offset: u64, len: u64, sink: &mut Sink<'_>) -> Result<(), Error> {
        let mut buf = [0u8; PIECE];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(PIECE as u64) as usize;
            self.read_at(offset.checked_add(done).ok_or(Error::OffsetOverflow)?, &mut buf[..n])?;
            if !sink(done, &buf[..n]) {
                return Err(Error::Transfer);
            }
            done += n as u64;
        }
        Ok(())
    }
    /// Writes `len` bytes at `offset` taken from `source` (as `write_at` would).
    fn write_from(&mut self, offset: u64, len: u64, source: &mut Source<'_>) -> Result<(), Error> {
        let mut buf = [0u8; PIECE];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(PIECE as u64) as usize;
            if !source(done, &mut buf[..n]) {
                return Err(Error::Transfer);
            }
            self.write_at(offset.checked_add(done).ok_or(Error::OffsetOverflow)?, &buf[..n])?;
            done += n as u64;
        }
        Ok(())
    }
}

impl<F: ImageFile + ?Sized> ImageFile for Box<F> {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        (**self).read_at(offset, buf)
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), Error> {
        (**self).write_at(offset, data)
    }
    fn flush(&mut self) -> Result<(), Error> {
        (**self).flush()
    }
    fn len(&mut self) -> Result<u64, Error> {
        (**self).len()
    }
    fn set_len(&mut self, len: u64) -> Result<(), Error> {
        (**self).set_len(len)
    }
    fn read_into(&mut self, offset: u64, len: u64, sink: &mut Sink<'_>) -> Result<(), Error> {
        (**self).read_into(offset, len, sink)
    }
    fn write_from(&mut self, offset: u64, len: u64, source: &mut Source<'_>) -> Result<(), Error> {
        (**self).write_from(offset, len, source)
    }
}

/// A file in memory, with a length limit so that a hostile image cannot make it grow without
/// bound (a write past the limit fails like a full disk).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemFile {
    pub bytes: Vec<u8>,
    pub limit: u64,
}

impl Default for MemFile {
    fn default() -> MemFile {
        MemFile::new(Vec::new())
    }
}

impl MemFile {
    /// The default limit: 1 GiB.
    pub const DEFAULT_LIMIT: u64 = 1 << 30;

    pub fn new(bytes: Vec<u8>) -> MemFile {
        MemFile { bytes, limit: Self::DEFAULT_LIMIT }
    }

    pub fn with_limit(bytes: Vec<u8>, limit: u64) -> MemFile {
        MemFile { bytes, limit }
    }

    fn grow_to(&mut self, end: u64) -> Result<(), Error> {
        if end > self.limit {
            return Err(Error::Io(alloc::format!("in-memory file limit of {} bytes reached", self.limit)));
        }
        let end = usize::try_from(end).map_err(|_| Error::Io("in-memory file too large".into()))?;
        if end > self.bytes.len() {
            self.bytes.resize(end, 0);
        }
        Ok(())
    }
}

impl ImageFile for MemFile {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        buf.fill(0);
        let len = self.bytes.len() as u64;
        if offset < len {
            let start = offset as usize;
            let n = buf.len().min(self.bytes.len() - start);
            buf[..n].copy_from_slice(&self.bytes[start..start + n]);
        }
        Ok(())
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), Error> {
        let end = offset.checked_add(data.len() as u64).ok_or(Error::Io("write offset overflows".into()))?;
        self.grow_to(end)?;
        let start = offset as usize;
        self.bytes[start..start + data.len()].copy_from_slice(data);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Error> {
        Ok(())
    }

    fn len(&mut self) -> Result<u64, Error> {
        Ok(self.bytes.len() as u64)
    }

    fn set_len(&mut self, len: u64) -> Result<(), Error> {
        self.grow_to(len)?;
        self.bytes.truncate(len as usize);
        Ok(())
    }
}

#[cfg(feature = "std")]
impl ImageFile for std::fs::File {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        use std::os::unix::fs::FileExt;
        let mut done = 0;
        while done < buf.len() {
            let at = offset.checked_add(done as u64).ok_or(Error::Io("read offset overflows".into()))?;
            match FileExt::read_at(self, &mut buf[done..], at) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        buf[done..].fill(0);
        Ok(())
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), Error> {
        use std::os::unix::fs::FileExt;
        Ok(self.write_all_at(data, offset)?)
    }

    fn flush(&mut self) -> Result<(), Error> {
        Ok(self.sync_data()?)
    }

    fn len(&mut self) -> Result<u64, Error> {
        Ok(self.metadata()?.len())
    }

    fn set_len(&mut self, len: u64) -> Result<(), Error> {
        Ok(std::fs::File::set_len(self, len)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memfile_reads_zero_past_the_end_and_grows_on_write() {
        let mut f = MemFile::new(alloc::vec![1, 2, 3]);
        let mut buf = [9u8; 5];
        f.read_at(1, &mut buf).unwrap();
        assert_eq!(buf, [2, 3, 0, 0, 0]);
        f.write_at(6, &[7]).unwrap();
        assert_eq!(f.bytes, [1, 2, 3, 0, 0, 0, 7]);
        f.set_len(2).unwrap();
        assert_eq!(f.len().unwrap(), 2);
        let mut small = MemFile::with_limit(Vec::new(), 4);
        assert!(small.write_at(3, &[1, 2]).is_err());
        assert!(small.write_at(u64::MAX, &[1]).is_err());
    }
}

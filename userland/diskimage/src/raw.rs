//! Raw images: the disk's bytes as they are, in a sparse file whose length is the disk's size.
//!
//! Discard does nothing (the bytes stay readable as they were, which a discard allows); write
//! zeroes writes zeros. Neither shortens the file: a raw disk's size is its file's length, so a
//! truncate-and-extend "punch" would shrink the disk if power failed between the two.
//!
//! Not here: range checks against the disk size (the [`crate::Image`] front does them once).

use alloc::boxed::Box;
use alloc::vec;

use crate::file::{Sink, Source};
use crate::format::QCOW2_MAGIC;
use crate::{Error, ImageFile};

/// Zeros are written in pieces of this size, so write-zeroes of a whole disk needs no big buffer.
const ZERO_CHUNK: usize = 64 * 1024;

pub(crate) struct RawImage {
    file: Box<dyn ImageFile>,
    size: u64,
    /// The format was guessed (no format given): refuse writes that would make it look like qcow2.
    probed: bool,
}

impl RawImage {
    pub(crate) fn open(mut file: Box<dyn ImageFile>, probed: bool) -> Result<RawImage, Error> {
        let size = file.len()?;
        Ok(RawImage { file, size, probed })
    }

    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    pub(crate) fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        self.file.read_at(offset, buf)
    }

    pub(crate) fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), Error> {
        // A guest of a probed raw image could otherwise write a qcow2 header naming a host file
        // as its backing file, and read that file once the image is reopened (QEMU refuses the
        // same write for the same reason).
        if self.probed && offset < QCOW2_MAGIC.len() as u64 {
            let mut head = [0u8; 4];
            self.file.read_at(0, &mut head)?;
            for (i, b) in data.iter().enumerate().take(head.len().saturating_sub(offset as usize)) {
                head[offset as usize + i] = *b;
            }
            if head == QCOW2_MAGIC {
                return Err(Error::RawHeaderWrite);
            }
        }
        self.file.write_at(offset, data)
    }

    pub(crate) fn read_into(&mut self, offset: u64, len: u64, sink: &mut Sink<'_>) -> Result<(), Error> {
        self.file.read_into(offset, len, sink)
    }

    /// As `write`, with the bytes from `source`. A write to the first bytes of a probed image
    /// is gathered first, for `write`'s check.
    pub(crate) fn write_from(&mut self, offset: u64, len: u64, source: &mut Source<'_>) -> Result<(), Error> {
        if self.probed && offset < QCOW2_MAGIC.len() as u64 {
            let mut data = alloc::vec![0u8; usize::try_from(len).map_err(|_| Error::OffsetOverflow)?];
            if !source(0, &mut data) {
                return Err(Error::Transfer);
            }
            return self.write(offset, &data);
        }
        self.file.write_from(offset, len, source)
    }

    pub(crate) fn flush(&mut self) -> Result<(), Error> {
        self.file.flush()
    }

    pub(crate) fn write_zeroes(&mut self, offset: u64, len: u64) -> Result<(), Error> {
        let zeros = vec![0u8; ZERO_CHUNK.min(usize::try_from(len).unwrap_or(ZERO_CHUNK))];
        let mut done = 0u64;
        while done < len {
            let n = (len - done).min(zeros.len() as u64) as usize;
            self.file.write_at(offset + done, &zeros[..n])?;
            done += n as u64;
        }
        Ok(())
    }

    pub(crate) fn file_mut(&mut self) -> &mut dyn ImageFile {
        &mut *self.file
    }
}

//! A datastore file as a disk image's file (keel-diskimage's `ImageFile`): what the monitor
//! serves a guest's disk from and what vmd's `create` writes, through the storage service.
//!
//! Reads past the end of the file give zeros (the image code reads headers and tables that a
//! sparse or short file may not hold). The length is the file's at open, then what writes and
//! `set_len` made it: the file has one writer (vmd refuses a second VM on a writable image), so
//! no request is spent asking. What it does not do: cache, or reorder anything (each call is a
//! request, answered before the next).

use alloc::boxed::Box;
use alloc::string::String;

use keel_diskimage::{sink_zeros, BackingOpener, Error, ImageFile, Sink, Source};

use crate::storage::{OpenFile, StorageClient, MAX_READ};

pub struct StorageFile {
    client: StorageClient,
    file: OpenFile,
    len: u64,
    /// Its path, for messages.
    path: String,
}

fn io(e: String) -> Error {
    Error::Io(e)
}

impl StorageFile {
    /// Open `path` on the datastore (`write`: for writing; `create`: make it when missing).
    pub fn open(client: &StorageClient, path: &str, write: bool, create: bool) -> Result<StorageFile, Error> {
        let mut client = client.clone();
        let file = client.open(path, create, write).map_err(io)?;
        Ok(StorageFile { client, file, len: file.size, path: String::from(path) })
    }

    pub fn path(&self) -> &str {
        &self.path
    }
}

impl Drop for StorageFile {
    fn drop(&mut self) {
        let _ = self.client.close(self.file);
    }
}

impl ImageFile for StorageFile {
    /// `read_into`'s loop (one home for the end-of-file rule), into `buf`.
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        self.read_into(offset, buf.len() as u64, &mut |at, bytes| {
            buf[at as usize..at as usize + bytes.len()].copy_from_slice(bytes);
            true
        })
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), Error> {
        self.write_from(offset, data.len() as u64, &mut |at, piece| {
            piece.copy_from_slice(&data[at as usize..at as usize + piece.len()]);
            true
        })
    }

    /// Straight from the storage window to the sink: no copy of the monitor's own.
    fn read_into(&mut self, offset: u64, len: u64, sink: &mut Sink<'_>) -> Result<(), Error> {
        let mut done = 0u64;
        while done < len {
            let at = offset.checked_add(done).ok_or(Error::OffsetOverflow)?;
            let want = (len - done).min(MAX_READ as u64) as usize;
            let (n, taken) = match at >= self.len {
                true => (0, true),
                false => {
                    self.client.read_with(self.file, at, want, |bytes| (bytes.len(), sink(done, bytes))).map_err(io)?
                }
            };
            if !taken {
                return Err(Error::Transfer);
            }
            if n == 0 {
                // The end of the file: the rest reads as zeros.
                return sink_zeros(sink, done, len - done);
            }
            done += n as u64;
        }
        Ok(())
    }

    /// Straight from the source into the storage window.
    fn write_from(&mut self, offset: u64, len: u64, source: &mut Source<'_>) -> Result<(), Error> {
        let end = offset.checked_add(len).ok_or(Error::OffsetOverflow)?;
        let mut done = 0u64;
        while done < len {
            let n = (len - done).min(MAX_READ as u64) as usize;
            if !self.client.write_with(self.file, offset + done, n, |window| source(done, window)).map_err(io)? {
                return Err(Error::Transfer);
            }
            done += n as u64;
        }
        self.len = self.len.max(end);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Error> {
        self.client.flush(self.file).map_err(io)
    }

    fn len(&mut self) -> Result<u64, Error> {
        Ok(self.len)
    }

    fn set_len(&mut self, len: u64) -> Result<(), Error> {
        self.client.truncate(self.file, len).map_err(io)?;
        self.len = len;
        Ok(())
    }
}

/// Opens a qcow2 image's backing files on the datastore, read-only, by keel-diskimage's naming
/// rule (a relative name is relative to the image's directory).
pub struct DatastoreOpener {
    pub client: StorageClient,
}

impl BackingOpener for DatastoreOpener {
    fn open_backing(&mut self, image: &str, backing: &str) -> Result<(Box<dyn ImageFile>, String), Error> {
        let path = keel_diskimage::resolve_backing_path(image, backing);
        let file = StorageFile::open(&self.client, &path, false, false)?;
        Ok((Box::new(file), path))
    }
}

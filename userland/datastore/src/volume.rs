//! [`Volume`]: a mounted datastore of either format, detected at mount, with one set of
//! operations the storage service and `cargo xtask datastore` use. It only dispatches; each
//! format's module does the work.

use alloc::vec::Vec;
use keel_block::BlockDevice;

use crate::error::{Error, Result};
use crate::exfat::{ExfatFile, ExfatVolume};
use crate::fat::{FatFile, FatVolume};
use crate::{DirEntry, Metadata};

/// Which file system a volume holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Exfat,
    Fat32,
}

/// A mounted exFAT or FAT32 volume.
pub enum Volume<D> {
    Exfat(ExfatVolume<D>),
    Fat32(FatVolume<D>),
}

/// An open file or directory of a [`Volume`].
#[derive(Clone, Debug)]
pub enum File {
    Exfat(ExfatFile),
    Fat32(FatFile),
}

impl File {
    /// Size and kind as of the last operation through this handle.
    pub fn metadata(&self) -> Metadata {
        match self {
            File::Exfat(f) => f.metadata(),
            File::Fat32(f) => f.metadata(),
        }
    }
}

macro_rules! each {
    ($self:expr, $v:ident => $body:expr) => {
        match $self {
            Volume::Exfat($v) => $body,
            Volume::Fat32($v) => $body,
        }
    };
}

impl<D: BlockDevice> Volume<D> {
    /// Mount whichever file system `dev` holds (exFAT's boot sector names itself; FAT32 is
    /// recognised by its BPB).
    pub fn mount(dev: D) -> Result<Self> {
        let mut dev = dev;
        let mut sector = alloc::vec![0u8; dev.block_size().max(512) as usize];
        dev.read_blocks(0, &mut sector)?;
        if &sector[3..11] == b"EXFAT   " {
            ExfatVolume::mount(dev).map(Volume::Exfat)
        } else if crate::fat::looks_like_fat(&sector) {
            FatVolume::mount(dev).map(Volume::Fat32)
        } else {
            Err(Error::NotAFileSystem)
        }
    }

    pub fn format(&self) -> Format {
        match self {
            Volume::Exfat(_) => Format::Exfat,
            Volume::Fat32(_) => Format::Fat32,
        }
    }

    pub fn label(&self) -> &str {
        each!(self, v => v.label())
    }

    /// Bytes in the data area and bytes free.
    pub fn space(&self) -> (u64, u64) {
        each!(self, v => v.space())
    }

    pub fn open(&mut self, path: &str) -> Result<File> {
        match self {
            Volume::Exfat(v) => v.open(path).map(File::Exfat),
            Volume::Fat32(v) => v.open(path).map(File::Fat32),
        }
    }

    /// Create an empty file (`AlreadyExists` if the path is taken).
    pub fn create(&mut self, path: &str) -> Result<File> {
        match self {
            Volume::Exfat(v) => v.create(path).map(File::Exfat),
            Volume::Fat32(v) => v.create(path).map(File::Fat32),
        }
    }

    pub fn read(&mut self, file: &File, offset: u64, buf: &mut [u8]) -> Result<usize> {
        match (self, file) {
            (Volume::Exfat(v), File::Exfat(f)) => v.read(f, offset, buf),
            (Volume::Fat32(v), File::Fat32(f)) => v.read(f, offset, buf),
            _ => Err(Error::Unsupported("a handle of another volume")),
        }
    }

    pub fn write(&mut self, file: &mut File, offset: u64, data: &[u8]) -> Result<()> {
        match (self, file) {
            (Volume::Exfat(v), File::Exfat(f)) => v.write(f, offset, data),
            (Volume::Fat32(v), File::Fat32(f)) => v.write(f, offset, data),
            _ => Err(Error::Unsupported("a handle of another volume")),
        }
    }

    pub fn truncate(&mut self, file: &mut File, len: u64) -> Result<()> {
        match (self, file) {
            (Volume::Exfat(v), File::Exfat(f)) => v.truncate(f, len),
            (Volume::Fat32(v), File::Fat32(f)) => v.truncate(f, len),
            _ => Err(Error::Unsupported("a handle of another volume")),
        }
    }

    pub fn stat(&mut self, path: &str) -> Result<Metadata> {
        each!(self, v => v.stat(path))
    }

    pub fn list(&mut self, path: &str) -> Result<Vec<DirEntry>> {
        each!(self, v => v.list(path))
    }

    pub fn mkdir(&mut self, path: &str) -> Result<()> {
        each!(self, v => v.mkdir(path))
    }

    pub fn rename(&mut self, from: &str, to: &str) -> Result<()> {
        each!(self, v => v.rename(from, to))
    }

    pub fn remove(&mut self, path: &str) -> Result<()> {
        each!(self, v => v.remove(path))
    }

    /// Make everything written so far durable.
    pub fn flush(&mut self) -> Result<()> {
        each!(self, v => v.flush())
    }

    pub fn into_device(self) -> D {
        each!(self, v => v.into_device())
    }
}

//! [`Image`]: one disk over a raw or qcow2 file, what the per-VM monitor serves a guest's
//! virtio-blk disk from and vmd creates and copies. It checks every request against the disk
//! size once, opens backing chains (at most [`MAX_BACKING_DEPTH`] deep, each file once, all
//! read-only) and names the file in every error.
//!
//! Not here: the formats themselves (`raw.rs`, `qcow2/`), or where files come from: a
//! [`BackingOpener`] opens backing files by name, so the caller decides how names resolve.

use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use crate::file::{Sink, Source};
use crate::qcow2::write::Unmap;
use crate::qcow2::Qcow2;
use crate::raw::RawImage;
use crate::{detect, Error, Format, ImageFile};

/// The longest backing chain opened: the image and this many backing files below it.
pub const MAX_BACKING_DEPTH: usize = 16;

/// How to open an image.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenOptions {
    /// Refuse writes (and never write the file, not even its header).
    pub read_only: bool,
    /// The format, when known; `None` detects it by magic. A guessed raw image refuses guest
    /// writes that would give it a qcow2 magic.
    pub format: Option<Format>,
}

/// Opens the backing files a qcow2 image names.
pub trait BackingOpener {
    /// Opens `backing`, as recorded in the image called `image`, for reading: the file, and the
    /// name it resolved to (used to detect a chain that loops, and in messages).
    fn open_backing(&mut self, image: &str, backing: &str) -> Result<(Box<dyn ImageFile>, String), Error>;
}

/// An opener for images that must have no backing file.
pub struct NoBacking;

impl BackingOpener for NoBacking {
    fn open_backing(&mut self, _image: &str, backing: &str) -> Result<(Box<dyn ImageFile>, String), Error> {
        Err(Error::NoBackingOpener(backing.to_string()))
    }
}

/// Why an image asked to be writable was opened read-only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOnlyReason {
    /// The qcow2 corrupt bit is set.
    MarkedCorrupt,
    /// The qcow2 dirty bit is set (lazy refcounts not brought up to date).
    Dirty,
    /// The image has internal snapshots, which this crate does not keep up to date.
    Snapshots,
}

impl fmt::Display for ReadOnlyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReadOnlyReason::MarkedCorrupt => {
                "the image is marked corrupt; opened read-only (qemu-img check -r all repairs it)"
            }
            ReadOnlyReason::Dirty => {
                "the image was not closed cleanly and its refcounts may be stale; opened read-only (qemu-img check -r all repairs them)"
            }
            ReadOnlyReason::Snapshots => "the image has internal snapshots, which are not kept up to date here; opened read-only",
        })
    }
}

/// What a range of the disk holds, for copying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockStatus {
    /// Possibly non-zero bytes: read them.
    Data,
    /// Reads as zeros: a copy may skip it.
    Zero,
}

enum Kind {
    Raw(RawImage),
    Qcow2(Box<Qcow2>),
}

/// A disk image.
pub struct Image {
    kind: Kind,
    name: String,
    read_only: bool,
    read_only_reason: Option<ReadOnlyReason>,
}

impl Image {
    /// Opens the image in `file`, called `name` (for messages, and to resolve its backing file
    /// through `opener`).
    pub fn open(
        file: Box<dyn ImageFile>,
        name: &str,
        options: OpenOptions,
        opener: &mut dyn BackingOpener,
    ) -> Result<Image, Error> {
        let mut chain = Vec::new();
        Image::open_in_chain(file, name, options, opener, &mut chain).map_err(|e| e.in_file(name))
    }

    /// Opens one image of a chain whose images so far are `chain`.
    pub(crate) fn open_in_chain(
        mut file: Box<dyn ImageFile>,
        name: &str,
        options: OpenOptions,
        opener: &mut dyn BackingOpener,
        chain: &mut Vec<String>,
    ) -> Result<Image, Error> {
        if chain.len() > MAX_BACKING_DEPTH {
            return Err(Error::BackingChainTooDeep);
        }
        if chain.iter().any(|n| n == name) {
            return Err(Error::BackingLoop(name.to_string()));
        }
        chain.push(name.to_string());
        let format = match options.format {
            Some(format) => format,
            None => detect(&mut *file)?,
        };
        let (kind, read_only, read_only_reason) = match format {
            Format::Raw => (Kind::Raw(RawImage::open(file, options.format.is_none())?), options.read_only, None),
            Format::Qcow2 => {
                let (mut q, reason) = Qcow2::open(file, options.read_only)?;
                if let Some((backing, backing_format)) = q.backing_file() {
                    let backing = backing.to_string();
                    let format = match backing_format {
                        Some(f) => {
                            Some(Format::from_name(f).ok_or_else(|| Error::UnknownBackingFormat(f.to_string()))?)
                        }
                        None => None,
                    };
                    let opened = opener.open_backing(name, &backing).and_then(|(file, resolved)| {
                        let options = OpenOptions { read_only: true, format };
                        Image::open_in_chain(file, &resolved, options, opener, chain)
                    });
                    let image = opened.map_err(|error| match error {
                        // Said once, not once per image of the chain.
                        Error::BackingLoop(_) | Error::BackingChainTooDeep | Error::NoBackingOpener(_) => error,
                        error => Error::Backing { name: backing, error: Box::new(error) },
                    })?;
                    q.set_backing(image);
                }
                (Kind::Qcow2(Box::new(q)), options.read_only || reason.is_some(), reason)
            }
        };
        Ok(Image { kind, name: name.to_string(), read_only, read_only_reason })
    }

    /// The image's name, as given to `open` (or resolved by the opener, for a backing file).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn format(&self) -> Format {
        match self.kind {
            Kind::Raw(_) => Format::Raw,
            Kind::Qcow2(_) => Format::Qcow2,
        }
    }

    /// The virtual disk's size in bytes.
    pub fn size(&self) -> u64 {
        match &self.kind {
            Kind::Raw(r) => r.size(),
            Kind::Qcow2(q) => q.size(),
        }
    }

    pub fn read_only(&self) -> bool {
        self.read_only
    }

    /// Why an image opened for writing is read-only, to tell the user.
    pub fn read_only_reason(&self) -> Option<ReadOnlyReason> {
        self.read_only_reason
    }

    /// The backing image, if any.
    pub fn backing(&self) -> Option<&Image> {
        match &self.kind {
            Kind::Raw(_) => None,
            Kind::Qcow2(q) => q.backing(),
        }
    }

    /// The qcow2 version and cluster size (`None` for raw images).
    pub fn qcow2_geometry(&self) -> Option<(u32, u64)> {
        match &self.kind {
            Kind::Raw(_) => None,
            Kind::Qcow2(q) => Some((q.version(), q.cluster_size())),
        }
    }

    fn check(&self, offset: u64, len: u64) -> Result<(), Error> {
        match offset.checked_add(len) {
            Some(end) if end <= self.size() => Ok(()),
            _ => Err(Error::OutOfRange { offset, len, size: self.size() }),
        }
    }

    fn check_write(&self, offset: u64, len: u64) -> Result<(), Error> {
        if self.read_only {
            return Err(Error::ReadOnly);
        }
        self.check(offset, len)
    }

    /// Reads `buf.len()` bytes at `offset`.
    pub fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        self.check(offset, buf.len() as u64)?;
        match &mut self.kind {
            Kind::Raw(r) => r.read(offset, buf),
            Kind::Qcow2(q) => q.read(offset, buf),
        }
    }

    /// Reads `len` bytes at `offset` into `sink`, piece by piece (see
    /// [`ImageFile::read_into`](crate::ImageFile::read_into)): no copy of the image's own where
    /// the file hands its bytes over directly.
    pub fn read_into(&mut self, offset: u64, len: u64, sink: &mut Sink<'_>) -> Result<(), Error> {
        self.check(offset, len)?;
        match &mut self.kind {
            Kind::Raw(r) => r.read_into(offset, len, sink),
            Kind::Qcow2(q) => q.read_into(offset, len, sink),
        }
    }

    /// Writes `len` bytes at `offset` taken from `source`, piece by piece (see
    /// [`ImageFile::write_from`](crate::ImageFile::write_from)).
    pub fn write_from(&mut self, offset: u64, len: u64, source: &mut Source<'_>) -> Result<(), Error> {
        self.check_write(offset, len)?;
        match &mut self.kind {
            Kind::Raw(r) => r.write_from(offset, len, source),
            Kind::Qcow2(q) => q.write_from(offset, len, source),
        }
    }

    /// Writes `data` at `offset` (durable after the next [`Image::flush`]).
    pub fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), Error> {
        self.check_write(offset, data.len() as u64)?;
        match &mut self.kind {
            Kind::Raw(r) => r.write(offset, data),
            Kind::Qcow2(q) => q.write(offset, data),
        }
    }

    /// Makes every write before it durable (the file's flush).
    pub fn flush(&mut self) -> Result<(), Error> {
        match &mut self.kind {
            Kind::Raw(r) => r.flush(),
            Kind::Qcow2(q) => q.flush(),
        }
    }

    /// Says the range's contents are no longer needed. Each byte then reads as before or as
    /// zero: qcow2 frees whole clusters (and marks them zero over a backing file); raw keeps
    /// its bytes.
    pub fn discard(&mut self, offset: u64, len: u64) -> Result<(), Error> {
        self.check_write(offset, len)?;
        match &mut self.kind {
            Kind::Raw(_) => Ok(()),
            Kind::Qcow2(q) => q.unmap(offset, len, Unmap::Discard),
        }
    }

    /// Makes the range read as zeros, freeing whole qcow2 clusters where it can.
    pub fn write_zeroes(&mut self, offset: u64, len: u64) -> Result<(), Error> {
        self.check_write(offset, len)?;
        match &mut self.kind {
            Kind::Raw(r) => r.write_zeroes(offset, len),
            Kind::Qcow2(q) => q.unmap(offset, len, Unmap::Zeroes),
        }
    }

    /// What the disk holds from `offset`: a length (at least one byte, at most `limit`, never
    /// past the end) and whether it is known to read as zeros.
    pub fn block_status(&mut self, offset: u64, limit: u64) -> Result<(u64, BlockStatus), Error> {
        let limit = limit.min(self.size().saturating_sub(offset));
        if limit == 0 {
            return Err(Error::OutOfRange { offset, len: 1, size: self.size() });
        }
        match &mut self.kind {
            Kind::Raw(_) => Ok((limit, BlockStatus::Data)),
            Kind::Qcow2(q) => q.block_status(offset, limit),
        }
    }

    /// The raw file underneath a raw image (for tests and tools).
    pub fn raw_file(&mut self) -> Option<&mut dyn ImageFile> {
        match &mut self.kind {
            Kind::Raw(r) => Some(r.file_mut()),
            Kind::Qcow2(_) => None,
        }
    }
}

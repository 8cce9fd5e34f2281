//! Making new images ([`create`]): a sparse raw file of a given size, or a qcow2 v3 image with
//! 64 KiB clusters and 16-bit refcounts, optionally over a backing file (an overlay: its size
//! defaults to the backing image's, and the backing format is recorded). The new image is then
//! opened like any other and returned, so what was written is checked on the way.
//!
//! Not here: copying contents into it (`copy.rs`), or choosing the format from the file name
//! (`format_for_path`, which the caller applies).

use alloc::boxed::Box;
use alloc::string::ToString;
use alloc::vec::Vec;

use crate::qcow2::create::write_new;
use crate::{BackingOpener, Error, Format, Image, ImageFile, OpenOptions};

/// QEMU's default cluster size, 64 KiB.
pub const DEFAULT_CLUSTER_BITS: u32 = 16;

/// What image to create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreateOptions<'a> {
    pub format: Format,
    /// The virtual size; `None` takes the backing image's.
    pub size: Option<u64>,
    /// The backing file's name as the new image should record it (qcow2 only).
    pub backing: Option<&'a str>,
    /// qcow2 cluster size as a power of two (9..=21); [`DEFAULT_CLUSTER_BITS`] unless a tool or
    /// test asks otherwise.
    pub cluster_bits: u32,
}

impl<'a> CreateOptions<'a> {
    /// A new image of `format` and `size` bytes, without backing file.
    pub fn new(format: Format, size: u64) -> CreateOptions<'a> {
        CreateOptions { format, size: Some(size), backing: None, cluster_bits: DEFAULT_CLUSTER_BITS }
    }

    /// A qcow2 overlay over `backing`, as large as it.
    pub fn overlay(backing: &'a str) -> CreateOptions<'a> {
        CreateOptions { format: Format::Qcow2, size: None, backing: Some(backing), cluster_bits: DEFAULT_CLUSTER_BITS }
    }
}

/// Creates an image in `file` (whatever it held is replaced), called `name`, and opens it for
/// writing. `opener` opens the backing file (to learn its size and format, and for the open).
pub fn create(
    mut file: Box<dyn ImageFile>,
    name: &str,
    options: CreateOptions<'_>,
    opener: &mut dyn BackingOpener,
) -> Result<Image, Error> {
    let made = (|| {
        match (options.format, options.backing) {
            (Format::Raw, Some(_)) => return Err(Error::InvalidCreate("a raw image cannot have a backing file")),
            (Format::Raw, None) => {
                let size = options.size.ok_or(Error::InvalidCreate("a size is needed"))?;
                file.set_len(0)?;
                file.set_len(size)?;
                file.flush()?;
            }
            (Format::Qcow2, None) => {
                let size = options.size.ok_or(Error::InvalidCreate("a size is needed"))?;
                write_new(&mut *file, size, options.cluster_bits, None)?;
            }
            (Format::Qcow2, Some(backing)) => {
                let (backing_file, resolved) = opener.open_backing(name, backing)?;
                let mut chain = Vec::from([name.to_string()]);
                let read_only = OpenOptions { read_only: true, format: None };
                let base = Image::open_in_chain(backing_file, &resolved, read_only, opener, &mut chain)
                    .map_err(|error| Error::Backing { name: backing.to_string(), error: Box::new(error) })?;
                let size = options.size.unwrap_or(base.size());
                write_new(&mut *file, size, options.cluster_bits, Some((backing, base.format().name())))?;
            }
        }
        Ok(())
    })();
    made.map_err(|e| e.in_file(name))?;
    Image::open(file, name, OpenOptions { read_only: false, format: Some(options.format) }, opener)
}

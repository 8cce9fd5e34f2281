//! Why an image operation failed: one enum, each variant with a message a user can act on
//! ("disk.qcow2: unknown incompatible qcow2 features 0x20"). The file's name is added once, by
//! [`Error::in_file`], where an image is opened; the variants themselves never carry it twice.
//!
//! Not here: recovery. An error leaves the image as the crash-ordering rules leave it (at worst a
//! leaked cluster), and the caller decides whether to retry, report or stop the guest.

use alloc::boxed::Box;
use alloc::string::String;
use core::fmt;

/// Why an image operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The file underneath failed (its own message).
    Io(String),
    /// A request reaches past the end of the virtual disk (or its arithmetic overflows).
    OutOfRange { offset: u64, len: u64, size: u64 },
    /// A write, discard or write-zeroes on an image opened read-only.
    ReadOnly,
    /// Not a qcow2 image (wrong magic) where one was required.
    NotQcow2,
    /// A qcow2 version other than 2 or 3.
    UnsupportedVersion(u32),
    /// Incompatible feature bits this crate does not know (with the names the image's feature
    /// name table gives them, if any). The qcow2 spec requires refusing such an image.
    UnknownIncompatibleFeatures { bits: u64, names: String },
    /// A known qcow2 feature this crate does not implement (encryption, external data files,
    /// extended L2 entries, zstd compression).
    Unsupported(&'static str),
    /// The image's structures are inconsistent: what is wrong, with the offending numbers.
    Corrupt(String),
    /// A backing chain longer than [`crate::MAX_BACKING_DEPTH`].
    BackingChainTooDeep,
    /// A backing chain that comes back to an image already in it.
    BackingLoop(String),
    /// The image has a backing file but the opener given cannot open backing files.
    NoBackingOpener(String),
    /// A backing format other than raw and qcow2.
    UnknownBackingFormat(String),
    /// The image needs more host space than the format can address, or a table past its limit.
    ImageFull(&'static str),
    /// A create request that cannot be honoured (no size, a raw image with a backing file...).
    InvalidCreate(&'static str),
    /// A write of a qcow2 header into the first sector of a raw image whose format was guessed:
    /// reopened, it would be taken for a qcow2 image (and its backing file opened).
    RawHeaderWrite,
    /// An error in the backing file of an image.
    Backing { name: String, error: Box<Error> },
    /// An error in a named image file.
    InFile { name: String, error: Box<Error> },
    /// The other end of a transfer (`read_into`'s sink, `write_from`'s source) failed: a
    /// guest's buffer that is not in its memory, say.
    Transfer,
    /// A file offset past 2^64.
    OffsetOverflow,
}

impl Error {
    /// The same error, said of the file `name` (not twice: an error already in a file keeps it).
    pub fn in_file(self, name: &str) -> Error {
        match self {
            Error::InFile { .. } => self,
            error => Error::InFile { name: name.into(), error: Box::new(error) },
        }
    }

    /// A corruption error (short for the many checks that build one).
    pub(crate) fn corrupt(message: String) -> Error {
        Error::Corrupt(message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(message) => write!(f, "I/O error: {message}"),
            Error::OutOfRange { offset, len, size } => {
                write!(f, "request at {offset:#x} of {len} bytes reaches past the end of the disk ({size} bytes)")
            }
            Error::ReadOnly => write!(f, "the image is open read-only"),
            Error::NotQcow2 => write!(f, "not a qcow2 image (no QFI\\xfb magic)"),
            Error::UnsupportedVersion(v) => write!(f, "qcow2 version {v} is not supported (2 and 3 are)"),
            Error::UnknownIncompatibleFeatures { bits, names } if names.is_empty() => {
                write!(f, "unknown incompatible qcow2 features {bits:#x}")
            }
            Error::UnknownIncompatibleFeatures { bits, names } => {
                write!(f, "unknown incompatible qcow2 features {bits:#x} ({names})")
            }
            Error::Unsupported(what) => write!(f, "qcow2 {what} is not supported"),
            Error::Corrupt(message) => write!(f, "corrupt qcow2 image: {message}"),
            Error::BackingChainTooDeep => {
                write!(f, "backing chain deeper than {} images", crate::MAX_BACKING_DEPTH)
            }
            Error::BackingLoop(name) => write!(f, "backing chain loops back to {name}"),
            Error::NoBackingOpener(name) => {
                write!(f, "has a backing file {name}, and backing files cannot be opened here")
            }
            Error::UnknownBackingFormat(name) => {
                write!(f, "unknown backing file format '{name}' (raw and qcow2 are known)")
            }
            Error::ImageFull(what) => write!(f, "image full: {what}"),
            Error::InvalidCreate(what) => write!(f, "cannot create the image: {what}"),
            Error::RawHeaderWrite => write!(
                f,
                "refusing to write a qcow2 header into the first sector of a raw image whose format was guessed"
            ),
            Error::Backing { name, error } => write!(f, "backing file {name}: {error}"),
            Error::InFile { name, error } => write!(f, "{name}: {error}"),
            Error::Transfer => write!(f, "the buffer to transfer from or to failed"),
            Error::OffsetOverflow => write!(f, "file offset past 2^64"),
        }
    }
}

#[cfg(feature = "std")]
impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::Io(alloc::format!("{e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn messages_name_the_file_once() {
        let e = Error::UnknownIncompatibleFeatures { bits: 0x20, names: String::new() }.in_file("disk.qcow2");
        assert_eq!(e.to_string(), "disk.qcow2: unknown incompatible qcow2 features 0x20");
        assert_eq!(e.clone().in_file("other"), e);
        let e = Error::corrupt("L2 table offset 0x10200 is not cluster-aligned".into());
        assert_eq!(e.to_string(), "corrupt qcow2 image: L2 table offset 0x10200 is not cluster-aligned");
    }
}

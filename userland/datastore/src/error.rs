//! The one error type of the datastore file systems, with a `Display` a user can act on. It does
//! not log or retry: the storage service decides what to tell whom.

use keel_block::BlockError;

/// Why a file-system operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// No file or directory at that path.
    NotFound,
    /// Something already exists at that path.
    AlreadyExists,
    /// A path component, or the target of a directory operation, is a file.
    NotADirectory,
    /// A file operation named a directory.
    IsADirectory,
    /// `remove` of a directory that still holds entries.
    DirectoryNotEmpty,
    /// The volume has no free cluster left (nothing was changed).
    NoSpace,
    /// A name longer than the file system allows (255 UTF-16 units for exFAT and FAT32).
    NameTooLong,
    /// An empty name, `.` or `..`, or a character the file system forbids.
    InvalidName,
    /// The volume or the disk is read-only.
    ReadOnly,
    /// The size or offset exceeds what the file system can hold (4 GiB - 1 on FAT32).
    FileTooLarge,
    /// A rename that would move a directory into itself.
    InvalidMove,
    /// The volume's structures are inconsistent: what is wrong.
    Corrupt(&'static str),
    /// The volume uses a feature this implementation does not (what).
    Unsupported(&'static str),
    /// No exFAT or FAT32 file system on the device.
    NotAFileSystem,
    /// The disk failed the request.
    Disk(BlockError),
}

impl From<BlockError> for Error {
    fn from(e: BlockError) -> Self {
        match e {
            BlockError::ReadOnly => Error::ReadOnly,
            other => Error::Disk(other),
        }
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::NotFound => f.write_str("no such file or directory"),
            Error::AlreadyExists => f.write_str("file exists"),
            Error::NotADirectory => f.write_str("not a directory"),
            Error::IsADirectory => f.write_str("is a directory"),
            Error::DirectoryNotEmpty => f.write_str("directory not empty"),
            Error::NoSpace => f.write_str("no space left on the volume"),
            Error::NameTooLong => f.write_str("file name too long"),
            Error::InvalidName => f.write_str("invalid file name"),
            Error::ReadOnly => f.write_str("read-only volume"),
            Error::FileTooLarge => f.write_str("file too large for this file system"),
            Error::InvalidMove => f.write_str("cannot move a directory into itself"),
            Error::Corrupt(what) => write!(f, "corrupt volume: {what}"),
            Error::Unsupported(what) => write!(f, "unsupported volume: {what}"),
            Error::NotAFileSystem => f.write_str("no exFAT or FAT32 file system found"),
            Error::Disk(e) => write!(f, "disk error: {e}"),
        }
    }
}

/// Results of this crate.
pub type Result<T> = core::result::Result<T, Error>;

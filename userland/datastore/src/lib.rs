//! Keel's datastore file systems: files by path on any [`keel_block::BlockDevice`] (a disk, or a
//! partition through `keel_block::Window`), for the ring-3 storage service and the host's
//! `cargo xtask datastore`.
//!
//! - **exFAT** ([`exfat`]) is the datastore format: a user can write it from Windows, macOS or
//!   Linux, and it has no 4 GiB file limit. Written here from the Microsoft exFAT specification,
//!   because no crates.io crate fits: `hadris-fat`'s exFAT is an opt-in unstable preview without
//!   directory growth, `exfat` and `exfat-fs` read or format only, and none orders its metadata
//!   writes for power cuts or treats the disk as hostile.
//! - **FAT32** ([`fat`]) is read and written too (a stick formatted elsewhere).
//! - [`Volume`] mounts either, detecting which; [`Error`] says why an operation failed.
//!
//! Guarantees: nothing panics on any disk content (every length, cluster number and chain is
//! checked; fuzzed by `fuzz/`); a power cut at any point leaves a volume that fsck accepts, with
//! at worst lost clusters; after [`Volume::flush`] returns, every earlier write is on the disk.
//! What it does not do: cache data, lock (the storage service serialises calls), or keep handles
//! valid across a rename or remove of the same file.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
extern crate alloc;

mod disk;
mod error;
pub mod exfat;
pub mod fat;
pub mod path;
mod volume;

pub use error::{Error, Result};
pub use exfat::mkfs::mkfs_exfat;
pub use exfat::{ExfatFile, ExfatVolume};
pub use fat::{FatFile, FatVolume};
pub use volume::{File, Format, Volume};

/// What `stat` and `list` tell about a file or directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Metadata {
    pub is_dir: bool,
    /// Bytes (0 for a directory).
    pub len: u64,
    pub read_only: bool,
    /// Last modification, a DOS date and time (exFAT spec 7.4.8).
    pub modified: u32,
}

/// One entry of a directory listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    pub name: alloc::string::String,
    pub metadata: Metadata,
}

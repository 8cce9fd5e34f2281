//! Keel's datastore file systems: files by path on any [`keel_block::BlockDevice`] (a disk, or a
//! partition through `keel_block::Window`), for the ring-3 storage service and the host's
//! `cargo xtask datastore`.
//!
//! - **exFAT** ([`ExfatVolume`], [`mkfs_exfat`]) is the datastore format: a user can write it from
//!   Windows, macOS or Linux, and it has no 4 GiB file limit. Written here from the Microsoft
//!   exFAT specification because no crates.io crate fits: `hadris-fat`'s exFAT is an opt-in
//!   unstable preview without directory growth, `exfat` and `exfat-fs` read or format only
//!   (`exfat` 0.1, our tests' independent reader, panics on a full directory cluster without an
//!   end marker and stops a listing at the first deleted entry), and none orders its metadata
//!   writes for power cuts or is built to treat the disk as hostile.
//! - **FAT32** ([`FatVolume`]) is read and written too (a stick formatted elsewhere). Also our
//!   own, small: `fatfs` 0.3.6 is no_std only with `core_io`, which needs nightly; `hadris-fat`
//!   2.x builds no_std on stable, but works through its own byte-stream I/O traits (an adapter
//!   doing partial-sector read-modify-write), brings a dozen crates with it, and leaves the write
//!   order and the handling of a hostile disk to code we could not fix when fuzzing finds
//!   something; our FAT32 shares the exFAT code's byte layer, path rules and write ordering.
//! - [`Volume`] mounts either, detecting which; [`Error`] says why an operation failed.
//!
//! Guarantees: nothing panics on any disk content (every length, cluster number, chain and
//! checksum is checked; fuzzed by `fuzz/`); after `flush` returns, every earlier write is on the
//! disk; a power cut at any point leaves a volume that mounts and holds everything flushed before
//! it. Writes are ordered for that: clusters are marked (bitmap, FAT) and flushed before anything
//! points to them; file data is flushed before the entry set that makes it part of the file;
//! entry sets are placed so each lies in one disk block (one atomic write) when it fits in one;
//! on remove and rename the old entry set goes first (flushed), then clusters are freed or the
//! new set written. What fsck can still find after a cut: lost clusters, and (only for a file
//! already fragmented into a FAT chain, which contiguous allocation avoids) a chain one link
//! longer than the file's length, when the cut fell between the link and the entry set that
//! records the new length; `fsck.exfat -n` calls that "more clusters are allocated", its repair
//! truncates the chain, and no flushed data is lost (tests/exfat_power_cut.rs counts both).
//! What it does not do: cache data, lock (the storage service serialises calls), keep handles
//! valid across a rename or remove of the same file, or repair a volume (fsck's job).
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

//! Partition tables: find the partitions on a [`BlockDevice`] from its GPT (UEFI 2.10 chapter 5.3)
//! or MBR (5.2.1, with extended partitions' EBR chains), and write a GPT holding one partition (the
//! storage service's "make this disk a datastore").
//!
//! - [`read_partitions`]: the scheme, the partitions and what was wrong with the table. Every
//!   partition it returns lies on the disk, inside the GPT's usable range, and overlaps no other,
//!   so a [`keel_block::Window`] over each is safe to hand to a file system; an entry that breaks
//!   one of these rules is left out with a [`Warning`] saying why (both partitions of an
//!   overlapping pair are left out: neither may be written without harming the other).
//! - [`write_gpt`]: protective MBR, primary and backup GPT headers and entry arrays, CRCs.
//! - [`PartitionKind`]: what a partition holds, from its type and its first block.
//!
//! What it does not do: edit a table in place, repair a damaged primary GPT from its backup, read
//! BSD disklabels or Apple partition maps, or make GUIDs (the caller brings random ones). Nothing
//! here panics on any disk content: hostile tables (huge entry counts, CRC mismatches, entries past
//! the end, EBR loops) give warnings or a [`ReadError`], and every loop over disk data is bounded.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
extern crate alloc;

mod check;
pub mod crc32;
mod gpt;
pub mod guid;
mod kind;
mod mbr;
mod write;

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use keel_block::{BlockDevice, BlockError, Window};

pub use gpt::GptProblem;
pub use guid::{types, Guid};
pub use kind::{file_system_of_boot_block, kind_of_gpt_type, kind_of_mbr_type, PartitionKind};
pub use write::{write_gpt, NewGpt, WriteError};

/// The largest GPT partition entry array read (bytes): 8192 entries of 128 bytes. Tools write
/// 16 KiB; a header asking for more is refused rather than read (a hostile count would otherwise
/// cost gigabytes of reads and memory).
pub const MAX_GPT_ENTRY_ARRAY_BYTES: u64 = 1 << 20;

/// The most EBRs followed along an extended partition's chain (logical partitions 5 onwards).
pub const MAX_LOGICAL_PARTITIONS: usize = 128;

/// A partition's type as the table records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartitionType {
    /// A GPT partition type GUID.
    Gpt(Guid),
    /// An MBR partition type byte (the "system ID").
    Mbr(u8),
    /// No table: a file system on the whole disk.
    WholeDisk,
}

/// One partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// Its number as Linux counts: the GPT entry's index plus one; MBR primaries 1 to 4 by slot,
    /// logical partitions 5 onwards along the EBR chain; 0 for a whole-disk file system.
    pub index: u32,
    /// Its first block.
    pub first_lba: u64,
    /// Its length in blocks (at least 1).
    pub block_count: u64,
    pub type_id: PartitionType,
    /// The GPT entry's unique partition GUID (zero for MBR).
    pub unique_guid: Guid,
    /// The GPT entry's name (empty for MBR); invalid UTF-16 is replaced by U+FFFD.
    pub name: String,
    /// The GPT entry's attribute bits (UEFI 2.10 table 5.8); for MBR, bit 7 of the boot
    /// indicator: 0x80 when the partition is marked active.
    pub attributes: u64,
    pub kind: PartitionKind,
}

impl Partition {
    /// The last block (inclusive). (The reader never returns a partition of 0 blocks; one built
    /// by hand gets its first block.)
    pub fn last_lba(&self) -> u64 {
        self.first_lba.saturating_add(self.block_count.saturating_sub(1))
    }

    /// The partition as a device of its own.
    pub fn window<D: BlockDevice>(&self, disk: D) -> Result<Window<D>, BlockError> {
        Window::new(disk, self.first_lba, self.block_count)
    }
}

/// Which table (if any) the disk has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// The first two blocks are all zeros: nothing on the disk that Keel can see.
    Blank,
    /// Something is there, but neither a partition table nor a file system Keel knows.
    Unrecognized,
    /// No table: a file system starts at block 0 (a "superfloppy"); one partition, index 0.
    WholeDisk,
    /// A legacy MBR (its 32-bit disk signature at byte 440).
    Mbr { disk_signature: u32 },
    /// A GPT; `from_backup` when the primary was damaged and the backup at the end was used.
    Gpt { disk_guid: Guid, from_backup: bool },
}

/// What was wrong with a table that was still read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Warning {
    /// The primary GPT is damaged; the backup was used.
    PrimaryGptDamaged(GptProblem),
    /// The primary GPT is good but the backup is damaged (or missing).
    BackupGptDamaged(GptProblem),
    /// A GPT header at block 1 without a protective MBR (block 0 lacks 0x55AA); read anyway.
    NoProtectiveMbr,
    /// The protective MBR also holds other partitions (a hybrid MBR); the GPT was used.
    HybridMbr,
    /// A GPT entry whose last block is before its first.
    EndBeforeStart { index: u32 },
    /// A partition that reaches past the last block of the disk.
    PastTheEnd { index: u32 },
    /// A partition outside the GPT's usable range (or, for MBR, over block 0).
    OutsideUsableRange { index: u32 },
    /// Two partitions share blocks; both are left out.
    Overlap { index: u32, other: u32 },
    /// An MBR slot whose boot indicator is neither 0x00 nor 0x80; the slot is ignored.
    BadBootIndicator { index: u32 },
    /// A second extended partition in the MBR; only the first is followed.
    ExtraExtended { index: u32 },
    /// An EBR without the 0x55AA signature, or unreadable; the chain stops there.
    BadEbr { lba: u64 },
    /// An EBR link pointing outside the extended partition, or back to an EBR already read.
    EbrLinkRefused { lba: u64 },
    /// The EBR chain went past [`MAX_LOGICAL_PARTITIONS`]; the rest is ignored.
    TooManyLogical,
    /// A logical partition reaching outside its extended partition.
    LogicalOutsideExtended { index: u32 },
}

/// Why no table could be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadError {
    /// The disk failed a read Keel could not do without (block 0 or 1).
    Io(BlockError),
    /// A block size that is not a power of two from 512 to 65536.
    BlockSize(u32),
    /// The protective MBR announces a GPT, but neither header (with its entry array) is valid.
    Gpt { primary: GptProblem, backup: GptProblem },
}

impl From<BlockError> for ReadError {
    fn from(e: BlockError) -> Self {
        ReadError::Io(e)
    }
}

impl core::fmt::Display for ReadError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "cannot read the partition table: {e}"),
            ReadError::BlockSize(size) => write!(f, "unsupported block size {size}"),
            ReadError::Gpt { primary, backup } => {
                write!(f, "GPT damaged: primary: {primary}; backup: {backup}")
            }
        }
    }
}

/// A disk's partitions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionTable {
    pub scheme: Scheme,
    /// In index order; none overlaps another or leaves the disk.
    pub partitions: Vec<Partition>,
    pub warnings: Vec<Warning>,
}

/// Read the partition table of `disk`.
///
/// Block 0 decides (UEFI 2.10 5.2): a 0xEE entry means GPT; a valid MBR means MBR (its empty slots
/// are no partitions); a boot block of exFAT, FAT or NTFS means a whole-disk file system.
pub fn read_partitions<D: BlockDevice + ?Sized>(disk: &mut D) -> Result<PartitionTable, ReadError> {
    let block_size = disk.block_size();
    if !block_size.is_power_of_two() || !(512..=65536).contains(&block_size) {
        return Err(ReadError::BlockSize(block_size));
    }
    let mut warnings = Vec::new();
    let block0 = read_block(disk, 0)?;
    let has_signature = block0[510] == 0x55 && block0[511] == 0xAA;
    if has_signature {
        let slots = mbr::slots(&block0);
        if slots.iter().any(|s| s.type_byte == mbr::PROTECTIVE_TYPE) {
            if slots.iter().any(|s| s.is_used() && s.type_byte != mbr::PROTECTIVE_TYPE) {
                warnings.push(Warning::HybridMbr);
            }
            return gpt::read(disk, warnings);
        }
        let file_system = file_system_of_boot_block(&block0);
        if let Some(kind) = file_system.filter(|_| !mbr::looks_like_a_table(&slots)) {
            let whole = Partition {
                index: 0,
                first_lba: 0,
                block_count: disk.block_count(),
                type_id: PartitionType::WholeDisk,
                unique_guid: Guid::ZERO,
                name: String::new(),
                attributes: 0,
                kind,
            };
            return Ok(PartitionTable { scheme: Scheme::WholeDisk, partitions: vec![whole], warnings });
        }
        if slots.iter().all(|s| s.boot_indicator_valid() || !s.is_used()) {
            return Ok(mbr::read(disk, &block0, warnings));
        }
        return Ok(PartitionTable { scheme: Scheme::Unrecognized, partitions: Vec::new(), warnings });
    }
    let block1 = if disk.block_count() > 1 { read_block(disk, 1)? } else { vec![0; block_size as usize] };
    if block1.starts_with(gpt::SIGNATURE) {
        warnings.push(Warning::NoProtectiveMbr);
        return gpt::read(disk, warnings);
    }
    let blank = block0.iter().chain(&block1).all(|&b| b == 0);
    let scheme = if blank { Scheme::Blank } else { Scheme::Unrecognized };
    Ok(PartitionTable { scheme, partitions: Vec::new(), warnings })
}

/// One block at `lba`.
fn read_block<D: BlockDevice + ?Sized>(disk: &mut D, lba: u64) -> Result<Vec<u8>, BlockError> {
    let mut block = vec![0u8; disk.block_size() as usize];
    disk.read_blocks(lba, &mut block)?;
    Ok(block)
}

/// The partition's kind from its type and, where the type is shared, its first block.
fn kind_from_content<D: BlockDevice + ?Sized>(disk: &mut D, type_kind: PartitionKind, first_lba: u64) -> PartitionKind {
    let first_block = read_block(disk, first_lba).ok();
    PartitionKind::of(type_kind, first_block.as_deref())
}

#[cfg(test)]
mod tests;

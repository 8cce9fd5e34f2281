//! Writing a GPT with one partition over a whole disk (UEFI 2.10 5.3.1 layout): a protective MBR
//! (5.2.3), the primary header at block 1 with a 128-entry array after it, the backup array and
//! header at the end, both CRCs; the partition starts at 1 MiB (the alignment every partitioning
//! tool uses) and runs to the last usable block. The backup is written first and block 0 last,
//! then a flush, so a cut before the end leaves the old primary (if any) in charge.
//!
//! What it does not do: keep any existing partition, check that the disk is unused (the caller's
//! verb does, with [`crate::read_partitions`]), make GUIDs, or format the partition.

use alloc::vec;
use alloc::vec::Vec;

use keel_block::{BlockDevice, BlockError};

use crate::crc32::crc32;
use crate::gpt::{ENTRY_LEN, HEADER_LEN, SIGNATURE};
use crate::kind::kind_of_gpt_type;
use crate::mbr::PROTECTIVE_TYPE;
use crate::{Guid, Partition, PartitionType};

/// The GPT to write.
#[derive(Clone, Copy, Debug)]
pub struct NewGpt<'a> {
    /// The disk's GUID (random, from the caller).
    pub disk_guid: Guid,
    /// The partition's unique GUID (random, from the caller).
    pub partition_guid: Guid,
    /// The partition's type, e.g. [`crate::types::MICROSOFT_BASIC_DATA`] for an exFAT datastore.
    pub type_guid: Guid,
    /// The partition's name: at most 36 UTF-16 code units.
    pub name: &'a str,
}

/// Why the table was not written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteError {
    Io(BlockError),
    /// A block size that is not a power of two from 512 to 65536.
    BlockSize(u32),
    /// The disk has no room for the tables and a partition at 1 MiB.
    TooSmall,
    /// The name needs more than 36 UTF-16 code units.
    NameTooLong,
}

impl From<BlockError> for WriteError {
    fn from(e: BlockError) -> Self {
        WriteError::Io(e)
    }
}

impl core::fmt::Display for WriteError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            WriteError::Io(e) => write!(f, "cannot write the partition table: {e}"),
            WriteError::BlockSize(size) => write!(f, "unsupported block size {size}"),
            WriteError::TooSmall => f.write_str("disk too small for a partition table"),
            WriteError::NameTooLong => f.write_str("partition name longer than 36 characters"),
        }
    }
}

/// Entries in the array: 128 (16 KiB, UEFI 2.10 5.3.1's minimum), or a whole block of them.
const MIN_ENTRIES: u64 = 128;
/// Partitions start at 1 MiB.
const ALIGNMENT_BYTES: u64 = 1 << 20;

/// Replace the disk's partition table with a GPT holding one partition; returns the partition.
pub fn write_gpt<D: BlockDevice + ?Sized>(disk: &mut D, new: &NewGpt) -> Result<Partition, WriteError> {
    let block_size = disk.block_size();
    if !block_size.is_power_of_two() || !(512..=65536).contains(&block_size) {
        return Err(WriteError::BlockSize(block_size));
    }
    let bs = block_size as u64;
    let name: Vec<u16> = new.name.encode_utf16().collect();
    if name.len() > 36 {
        return Err(WriteError::NameTooLong);
    }
    let entry_count = MIN_ENTRIES.max(bs / ENTRY_LEN as u64);
    let array_blocks = entry_count * ENTRY_LEN as u64 / bs;
    let blocks = disk.block_count();
    let last_lba = blocks.checked_sub(1).ok_or(WriteError::TooSmall)?;
    let first_usable = 2 + array_blocks;
    let last_usable = last_lba.checked_sub(1 + array_blocks).ok_or(WriteError::TooSmall)?;
    let alignment = (ALIGNMENT_BYTES / bs).max(1);
    let first = first_usable.next_multiple_of(alignment);
    if first > last_usable {
        return Err(WriteError::TooSmall);
    }

    let mut array = vec![0u8; (array_blocks * bs) as usize];
    array[0..16].copy_from_slice(&new.type_guid.0);
    array[16..32].copy_from_slice(&new.partition_guid.0);
    array[32..40].copy_from_slice(&first.to_le_bytes());
    array[40..48].copy_from_slice(&last_usable.to_le_bytes());
    for (unit, at) in name.iter().zip((56..).step_by(2)) {
        array[at..at + 2].copy_from_slice(&unit.to_le_bytes());
    }
    let array_crc = crc32(&array);
    let backup_array_lba = last_lba - array_blocks;
    let header = |my_lba: u64, alternate_lba: u64, entry_lba: u64| {
        let mut block = vec![0u8; bs as usize];
        block[0..8].copy_from_slice(SIGNATURE);
        block[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes()); // revision 1.0
        block[12..16].copy_from_slice(&(HEADER_LEN as u32).to_le_bytes());
        block[24..32].copy_from_slice(&my_lba.to_le_bytes());
        block[32..40].copy_from_slice(&alternate_lba.to_le_bytes());
        block[40..48].copy_from_slice(&first_usable.to_le_bytes());
        block[48..56].copy_from_slice(&last_usable.to_le_bytes());
        block[56..72].copy_from_slice(&new.disk_guid.0);
        block[72..80].copy_from_slice(&entry_lba.to_le_bytes());
        block[80..84].copy_from_slice(&(entry_count as u32).to_le_bytes());
        block[84..88].copy_from_slice(&(ENTRY_LEN as u32).to_le_bytes());
        block[88..92].copy_from_slice(&array_crc.to_le_bytes());
        let crc = crc32(&block[..HEADER_LEN]);
        block[16..20].copy_from_slice(&crc.to_le_bytes());
        block
    };

    disk.write_blocks(backup_array_lba, &array)?;
    disk.write_blocks(last_lba, &header(last_lba, 1, backup_array_lba))?;
    disk.write_blocks(2, &array)?;
    disk.write_blocks(1, &header(1, last_lba, 2))?;
    disk.write_blocks(0, &protective_mbr(bs as usize, blocks))?;
    disk.flush()?;
    Ok(Partition {
        index: 1,
        first_lba: first,
        block_count: last_usable - first + 1,
        type_id: PartitionType::Gpt(new.type_guid),
        unique_guid: new.partition_guid,
        name: new.name.into(),
        attributes: 0,
        kind: kind_of_gpt_type(&new.type_guid),
    })
}

/// The protective MBR (UEFI 2.10 table 5.4): one 0xEE partition from block 1 to the end of the
/// disk (or 0xFFFFFFFF blocks when the disk is larger), CHS start 0/0/2 and end 0xFFFFFF.
fn protective_mbr(block_size: usize, disk_blocks: u64) -> Vec<u8> {
    let mut block = vec![0u8; block_size];
    let slot = &mut block[446..462];
    slot[1..4].copy_from_slice(&[0x00, 0x02, 0x00]);
    slot[4] = PROTECTIVE_TYPE;
    slot[5..8].copy_from_slice(&[0xFF, 0xFF, 0xFF]);
    slot[8..12].copy_from_slice(&1u32.to_le_bytes());
    let size = (disk_blocks - 1).min(u32::MAX as u64) as u32;
    slot[12..16].copy_from_slice(&size.to_le_bytes());
    block[510] = 0x55;
    block[511] = 0xAA;
    block
}

//! Reading a GPT (UEFI 2.10 5.3): the header at block 1 and its entry array, each checked as
//! 5.3.2 says (signature, header CRC32, MyLBA, the entry array's CRC32), plus the sanity checks a
//! hostile header needs (entry size, array size and placement, usable range); when the primary is
//! damaged, the backup at the primary's AlternateLBA or at the last block. It does not repair
//! either copy from the other (a read-only reader), nor write (see `write.rs`).

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use keel_block::{BlockDevice, BlockError};

use crate::crc32::crc32;
use crate::kind::kind_of_gpt_type;
use crate::{
    check, read_block, Guid, Partition, PartitionTable, PartitionType, ReadError, Scheme, Warning,
    MAX_GPT_ENTRY_ARRAY_BYTES,
};

/// "EFI PART" (UEFI 2.10 table 5.5).
pub(crate) const SIGNATURE: &[u8; 8] = b"EFI PART";
/// The header's defined length (UEFI 2.10 table 5.5: HeaderSize is at least 92).
pub(crate) const HEADER_LEN: usize = 92;
/// The length of the entry fields Keel reads (UEFI 2.10 table 5.6); SizeOfPartitionEntry is 128
/// times a power of two.
pub(crate) const ENTRY_LEN: usize = 128;

/// Why a GPT header (with its entry array) was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GptProblem {
    /// The block could not be read.
    Io(BlockError),
    /// No "EFI PART" signature.
    NoSignature,
    /// HeaderSize below 92 or above the block size.
    HeaderSize(u32),
    /// The header's CRC32 does not match.
    HeaderCrc,
    /// MyLBA is not the block the header was read from.
    WrongLba,
    /// SizeOfPartitionEntry is not 128 times a power of two.
    EntrySize(u32),
    /// The entry array is larger than [`MAX_GPT_ENTRY_ARRAY_BYTES`].
    EntryArrayTooLarge,
    /// The entry array lies off the disk, over a header, or over the usable range.
    EntryArrayPlacement,
    /// FirstUsableLBA..=LastUsableLBA is empty, off the disk, or over a header.
    UsableRange,
    /// The entry array's CRC32 does not match.
    EntryArrayCrc,
}

impl core::fmt::Display for GptProblem {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            GptProblem::Io(e) => write!(f, "{e}"),
            GptProblem::NoSignature => f.write_str("no GPT header"),
            GptProblem::HeaderSize(size) => write!(f, "header size {size} invalid"),
            GptProblem::HeaderCrc => f.write_str("header CRC mismatch"),
            GptProblem::WrongLba => f.write_str("header is not where it says it is"),
            GptProblem::EntrySize(size) => write!(f, "partition entry size {size} invalid"),
            GptProblem::EntryArrayTooLarge => f.write_str("partition entry array too large"),
            GptProblem::EntryArrayPlacement => f.write_str("partition entry array misplaced"),
            GptProblem::UsableRange => f.write_str("usable block range invalid"),
            GptProblem::EntryArrayCrc => f.write_str("partition entry array CRC mismatch"),
        }
    }
}

/// The fields of a GPT header Keel uses (UEFI 2.10 table 5.5).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Header {
    pub my_lba: u64,
    pub alternate_lba: u64,
    pub first_usable: u64,
    pub last_usable: u64,
    pub disk_guid: Guid,
    pub entry_lba: u64,
    pub entry_count: u32,
    pub entry_size: u32,
    pub entry_array_crc: u32,
}

impl Header {
    /// The entry array's length in bytes and in blocks (the header was checked: no overflow).
    fn array_len(&self, block_size: u64) -> (u64, u64) {
        let bytes = self.entry_count as u64 * self.entry_size as u64;
        (bytes, bytes.div_ceil(block_size))
    }
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

fn u64_at(b: &[u8], o: usize) -> u64 {
    u32_at(b, o) as u64 | (u32_at(b, o + 4) as u64) << 32
}

/// Parse and check the header in `block`, read from block `lba` of a disk of `disk_blocks` blocks
/// (UEFI 2.10 5.3.2: signature, CRC, MyLBA; then the fields a hostile header could abuse).
pub(crate) fn parse_header(block: &[u8], lba: u64, disk_blocks: u64) -> Result<Header, GptProblem> {
    if !block.starts_with(SIGNATURE) {
        return Err(GptProblem::NoSignature);
    }
    let header_size = u32_at(block, 12);
    if (header_size as usize) < HEADER_LEN || header_size as usize > block.len() {
        return Err(GptProblem::HeaderSize(header_size));
    }
    let mut copy = block[..header_size as usize].to_vec();
    copy[16..20].fill(0); // the CRC is computed with its own field zeroed
    if crc32(&copy) != u32_at(block, 16) {
        return Err(GptProblem::HeaderCrc);
    }
    let mut disk_guid = [0u8; 16];
    disk_guid.copy_from_slice(&block[56..72]);
    let header = Header {
        my_lba: u64_at(block, 24),
        alternate_lba: u64_at(block, 32),
        first_usable: u64_at(block, 40),
        last_usable: u64_at(block, 48),
        disk_guid: Guid(disk_guid),
        entry_lba: u64_at(block, 72),
        entry_count: u32_at(block, 80),
        entry_size: u32_at(block, 84),
        entry_array_crc: u32_at(block, 88),
    };
    if header.my_lba != lba {
        return Err(GptProblem::WrongLba);
    }
    let size = header.entry_size;
    if !size.is_multiple_of(ENTRY_LEN as u32) || !(size / ENTRY_LEN as u32).is_power_of_two() {
        return Err(GptProblem::EntrySize(size));
    }
    let block_size = block.len() as u64;
    let (array_bytes, array_blocks) = header.array_len(block_size);
    if array_bytes > MAX_GPT_ENTRY_ARRAY_BYTES {
        return Err(GptProblem::EntryArrayTooLarge);
    }
    let covers = |first: u64, last: u64, lba: u64| first <= lba && lba <= last;
    let (first, last) = (header.first_usable, header.last_usable);
    if first > last || last >= disk_blocks || covers(first, last, 0) || covers(first, last, lba) {
        return Err(GptProblem::UsableRange);
    }
    // An empty array may sit anywhere; a nonempty one must stay clear of block 0, this header and
    // the usable range.
    if array_blocks > 0 {
        let array_last = match header.entry_lba.checked_add(array_blocks - 1) {
            Some(array_last) if array_last < disk_blocks => array_last,
            _ => return Err(GptProblem::EntryArrayPlacement),
        };
        let array_first = header.entry_lba;
        if covers(array_first, array_last, 0)
            || covers(array_first, array_last, lba)
            || (array_first <= last && first <= array_last)
        {
            return Err(GptProblem::EntryArrayPlacement);
        }
    }
    Ok(header)
}

/// Read and check the header at `lba`.
fn read_header<D: BlockDevice + ?Sized>(disk: &mut D, lba: u64) -> Result<Header, GptProblem> {
    let block = read_block(disk, lba).map_err(GptProblem::Io)?;
    parse_header(&block, lba, disk.block_count())
}

/// Read a checked header's entry array and check its CRC.
fn read_array<D: BlockDevice + ?Sized>(disk: &mut D, header: Header) -> Result<(Header, Vec<u8>), GptProblem> {
    let block_size = disk.block_size() as u64;
    let (bytes, blocks) = header.array_len(block_size);
    let mut array = vec![0u8; (blocks * block_size) as usize];
    if blocks > 0 {
        disk.read_blocks(header.entry_lba, &mut array).map_err(GptProblem::Io)?;
    }
    array.truncate(bytes as usize);
    if crc32(&array) != header.entry_array_crc {
        return Err(GptProblem::EntryArrayCrc);
    }
    Ok((header, array))
}

/// Read the backup copy: at the primary header's AlternateLBA when a valid primary header names
/// one, else (or when that fails) at the last block. The first problem found is reported.
fn read_backup<D: BlockDevice + ?Sized>(disk: &mut D, alternate: Option<u64>) -> Result<(Header, Vec<u8>), GptProblem> {
    let last = disk.block_count().checked_sub(1);
    let alternate = alternate.filter(|&alt| alt > 1 && Some(alt) != last && alt < disk.block_count());
    let mut first_problem = None;
    for lba in [alternate, last].into_iter().flatten() {
        match read_header(disk, lba).and_then(|header| read_array(disk, header)) {
            Ok(copy) => return Ok(copy),
            Err(problem) => {
                first_problem.get_or_insert(problem);
            }
        }
    }
    Err(first_problem.unwrap_or(GptProblem::NoSignature))
}

/// Read a GPT disk: the primary, else the backup (UEFI 2.10 5.3.2).
pub(crate) fn read<D: BlockDevice + ?Sized>(
    disk: &mut D,
    mut warnings: Vec<Warning>,
) -> Result<PartitionTable, ReadError> {
    let primary_header = if disk.block_count() > 1 { read_header(disk, 1) } else { Err(GptProblem::NoSignature) };
    let alternate = primary_header.as_ref().ok().map(|header| header.alternate_lba);
    let primary = primary_header.and_then(|header| read_array(disk, header));
    let backup = read_backup(disk, alternate);
    let ((header, array), from_backup) = match (primary, backup) {
        (Ok(primary), Ok(_)) => (primary, false),
        (Ok(primary), Err(problem)) => {
            warnings.push(Warning::BackupGptDamaged(problem));
            (primary, false)
        }
        (Err(problem), Ok(backup)) => {
            warnings.push(Warning::PrimaryGptDamaged(problem));
            (backup, true)
        }
        (Err(primary), Err(backup)) => return Err(ReadError::Gpt { primary, backup }),
    };
    let mut candidates = Vec::new();
    for (entry, index) in array.chunks_exact(header.entry_size as usize).zip(1u32..) {
        let mut type_guid = [0u8; 16];
        type_guid.copy_from_slice(&entry[0..16]);
        let type_guid = Guid(type_guid);
        if type_guid.is_zero() {
            continue; // an unused entry (UEFI 2.10 table 5.6)
        }
        let first_lba = u64_at(entry, 32);
        let last_lba = u64_at(entry, 40);
        if last_lba < first_lba {
            warnings.push(Warning::EndBeforeStart { index });
            continue;
        }
        let mut unique = [0u8; 16];
        unique.copy_from_slice(&entry[16..32]);
        candidates.push(Partition {
            index,
            first_lba,
            // last - first + 1 overflows only for the range 0..=u64::MAX: then it saturates and
            // fails the bounds check anyway.
            block_count: (last_lba - first_lba).saturating_add(1),
            type_id: PartitionType::Gpt(type_guid),
            unique_guid: Guid(unique),
            name: name_of(&entry[56..128]),
            attributes: u64_at(entry, 48),
            kind: kind_of_gpt_type(&type_guid),
        });
    }
    let scheme = Scheme::Gpt { disk_guid: header.disk_guid, from_backup };
    Ok(check::finish(disk, scheme, candidates, (header.first_usable, header.last_usable), warnings))
}

/// The entry's name: UTF-16LE up to the first NUL (72 bytes, 36 code units).
fn name_of(bytes: &[u8]) -> String {
    let units = bytes.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).take_while(|&u| u != 0);
    char::decode_utf16(units).map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER)).collect()
}

//! exFAT directory entries (spec section 6 and 7): the File entry set (a File entry 7.4, a Stream
//! Extension 7.6 and File Name entries 7.7) parsed from and built into 32-byte slots, with its
//! SetChecksum (6.3.3). It knows nothing of where a set lives on disk (dir.rs does).

use alloc::vec;
use alloc::vec::Vec;

use crate::error::{Error, Result};

pub const ENTRY_SIZE: usize = 32;
/// Entry types (spec 6.2.1: bit 7 InUse, 6 secondary, 5 benign, 0..4 the code).
pub const TYPE_END: u8 = 0x00;
pub const TYPE_BITMAP: u8 = 0x81;
pub const TYPE_UPCASE: u8 = 0x82;
pub const TYPE_LABEL: u8 = 0x83;
pub const TYPE_FILE: u8 = 0x85;
pub const TYPE_STREAM: u8 = 0xC0;
pub const TYPE_NAME: u8 = 0xC1;
pub const IN_USE: u8 = 0x80;

/// FileAttributes bits (spec 7.4.4).
pub const ATTR_READ_ONLY: u16 = 0x01;
pub const ATTR_DIRECTORY: u16 = 0x10;
pub const ATTR_ARCHIVE: u16 = 0x20;

/// GeneralSecondaryFlags of the Stream Extension (spec 6.3.4.1, 6.3.4.2).
pub const FLAG_ALLOCATION_POSSIBLE: u8 = 0x01;
pub const FLAG_NO_FAT_CHAIN: u8 = 0x02;

/// Name characters per File Name entry (spec 7.7.3).
pub const NAME_UNITS_PER_ENTRY: usize = 15;

/// The contents of one File entry set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSet {
    pub attributes: u16,
    pub created: u32,
    pub modified: u32,
    pub accessed: u32,
    pub no_fat_chain: bool,
    pub first_cluster: u32,
    pub valid_data_length: u64,
    pub data_length: u64,
    pub name: Vec<u16>,
    /// Bytes of the original File entry 20..32 and Stream entry reserved fields are not kept:
    /// a rewritten set carries the fields this implementation understands (spec 6.3: the rest
    /// are reserved and zero).
    pub name_hash: u16,
}

impl FileSet {
    pub fn is_directory(&self) -> bool {
        self.attributes & ATTR_DIRECTORY != 0
    }

    /// Slots this set needs: File, Stream, and one File Name entry per 15 units (spec 7.4.2).
    pub fn slot_count(name_len: usize) -> usize {
        2 + name_len.div_ceil(NAME_UNITS_PER_ENTRY)
    }

    /// Build the set's bytes (`hash` is the NameHash of `name` on this volume).
    pub fn build(&self) -> Vec<u8> {
        let slots = Self::slot_count(self.name.len());
        let mut b = vec![0u8; slots * ENTRY_SIZE];
        b[0] = TYPE_FILE;
        b[1] = (slots - 1) as u8;
        b[4..6].copy_from_slice(&self.attributes.to_le_bytes());
        b[8..12].copy_from_slice(&self.created.to_le_bytes());
        b[12..16].copy_from_slice(&self.modified.to_le_bytes());
        b[16..20].copy_from_slice(&self.accessed.to_le_bytes());
        let s = &mut b[ENTRY_SIZE..2 * ENTRY_SIZE];
        s[0] = TYPE_STREAM;
        // Spec 7.6.2: AllocationPossible is 1 for files and directories; NoFatChain only with
        // clusters to describe.
        let no_fat_chain = self.no_fat_chain && self.first_cluster != 0;
        s[1] = FLAG_ALLOCATION_POSSIBLE | if no_fat_chain { FLAG_NO_FAT_CHAIN } else { 0 };
        s[3] = self.name.len() as u8;
        s[4..6].copy_from_slice(&self.name_hash.to_le_bytes());
        s[8..16].copy_from_slice(&self.valid_data_length.to_le_bytes());
        s[20..24].copy_from_slice(&self.first_cluster.to_le_bytes());
        s[24..32].copy_from_slice(&self.data_length.to_le_bytes());
        for (i, chunk) in self.name.chunks(NAME_UNITS_PER_ENTRY).enumerate() {
            let e = &mut b[(2 + i) * ENTRY_SIZE..(3 + i) * ENTRY_SIZE];
            e[0] = TYPE_NAME;
            for (j, unit) in chunk.iter().enumerate() {
                e[2 + 2 * j..4 + 2 * j].copy_from_slice(&unit.to_le_bytes());
            }
        }
        let sum = set_checksum(&b);
        b[2..4].copy_from_slice(&sum.to_le_bytes());
        b
    }

    /// Parse a set from its slots (`bytes` starts at the File entry and holds at least the
    /// File entry's SecondaryCount + 1 slots). Every length and the checksum are checked.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        if bytes.len() < 3 * ENTRY_SIZE || bytes[0] != TYPE_FILE {
            return Err(Error::Corrupt("truncated file entry set"));
        }
        let secondary = usize::from(bytes[1]);
        // Spec 7.4.2: SecondaryCount 2..=18.
        if !(2..=18).contains(&secondary) || bytes.len() < (secondary + 1) * ENTRY_SIZE {
            return Err(Error::Corrupt("file entry SecondaryCount out of range"));
        }
        let set = &bytes[..(secondary + 1) * ENTRY_SIZE];
        if u16::from_le_bytes([set[2], set[3]]) != set_checksum(set) {
            return Err(Error::Corrupt("file entry set checksum mismatch"));
        }
        let s = &set[ENTRY_SIZE..2 * ENTRY_SIZE];
        if s[0] != TYPE_STREAM {
            return Err(Error::Corrupt("file entry not followed by a stream extension"));
        }
        let name_len = usize::from(s[3]);
        if name_len == 0 || FileSet::slot_count(name_len) > secondary + 1 {
            return Err(Error::Corrupt("file name length does not fit its entry set"));
        }
        let mut name = Vec::with_capacity(name_len);
        for i in 0..name_len.div_ceil(NAME_UNITS_PER_ENTRY) {
            let e = &set[(2 + i) * ENTRY_SIZE..(3 + i) * ENTRY_SIZE];
            if e[0] != TYPE_NAME {
                return Err(Error::Corrupt("file name entry missing from its set"));
            }
            for j in 0..NAME_UNITS_PER_ENTRY {
                if name.len() < name_len {
                    name.push(u16::from_le_bytes([e[2 + 2 * j], e[3 + 2 * j]]));
                }
            }
        }
        let u32_at = |b: &[u8], at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        let u64_at = |b: &[u8], at: usize| u64::from(u32_at(b, at)) | u64::from(u32_at(b, at + 4)) << 32;
        let valid_data_length = u64_at(s, 8);
        let data_length = u64_at(s, 24);
        if valid_data_length > data_length {
            return Err(Error::Corrupt("ValidDataLength exceeds DataLength"));
        }
        let first_cluster = u32_at(s, 20);
        if first_cluster == 0 && data_length != 0 {
            return Err(Error::Corrupt("file has data but no first cluster"));
        }
        Ok(FileSet {
            attributes: u16::from_le_bytes([set[4], set[5]]),
            created: u32_at(set, 8),
            modified: u32_at(set, 12),
            accessed: u32_at(set, 16),
            no_fat_chain: s[1] & FLAG_NO_FAT_CHAIN != 0,
            first_cluster,
            valid_data_length,
            data_length,
            name,
            name_hash: u16::from_le_bytes([s[4], s[5]]),
        })
    }
}

/// SetChecksum (spec 6.3.3): every byte of the set except the checksum field itself.
pub fn set_checksum(set: &[u8]) -> u16 {
    let mut sum = 0u16;
    for (i, &b) in set.iter().enumerate() {
        if i == 2 || i == 3 {
            continue;
        }
        sum = sum.rotate_right(1).wrapping_add(u16::from(b));
    }
    sum
}

/// A critical primary entry with a cluster and length (Allocation Bitmap 7.1, Up-case Table
/// 7.2): (FirstCluster, DataLength).
pub fn cluster_and_length(entry: &[u8]) -> (u32, u64) {
    let first = u32::from_le_bytes([entry[20], entry[21], entry[22], entry[23]]);
    let len = u64::from_le_bytes(entry[24..32].try_into().unwrap_or([0; 8]));
    (first, len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_round_trips_and_a_flipped_bit_is_caught() {
        let set = FileSet {
            attributes: ATTR_ARCHIVE,
            created: 1,
            modified: 2,
            accessed: 3,
            no_fat_chain: true,
            first_cluster: 9,
            valid_data_length: 100,
            data_length: 5000,
            name: "a long name of twenty".encode_utf16().collect(),
            name_hash: 0xBEEF,
        };
        let mut bytes = set.build();
        assert_eq!(bytes.len(), 4 * ENTRY_SIZE);
        assert_eq!(FileSet::parse(&bytes), Ok(set));
        bytes[100] ^= 1;
        assert!(FileSet::parse(&bytes).is_err());
    }
}

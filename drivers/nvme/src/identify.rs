//! The Identify data structures the driver reads (NVMe 1.4 5.15.2): the controller's (names,
//! transfer limit, optional commands, write cache), a namespace's (size and LBA format), and the
//! active namespace list. Pure decoding of 4096 bytes the controller wrote, checked as hostile:
//! a field out of range makes a namespace unusable or a limit smaller, never a panic.

use alloc::string::String;
use alloc::vec::Vec;

/// The bytes of every Identify data structure.
pub const IDENTIFY_BYTES: usize = 4096;

/// What the driver keeps of Identify Controller. See: NVMe 1.4 5.15.2.2 (Figure 247)
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControllerIdentity {
    /// Serial Number (SN, bytes 23:04).
    pub serial: String,
    /// Model Number (MN, bytes 63:24).
    pub model: String,
    /// Firmware Revision (FR, bytes 71:64).
    pub firmware: String,
    /// Maximum Data Transfer Size (MDTS, byte 77): 2 ^ this minimum pages; 0 is no limit.
    pub max_transfer_shift: u8,
    /// Number of Namespaces (NN, bytes 519:516): the largest namespace identifier.
    pub namespace_count: u32,
    /// ONCS bit 3: the Write Zeroes command is supported.
    pub write_zeroes: bool,
    /// VWC bit 0: a volatile write cache is present, so Flush means something.
    pub volatile_write_cache: bool,
}

impl ControllerIdentity {
    pub fn decode(data: &[u8; IDENTIFY_BYTES]) -> Self {
        let oncs = u16::from_le_bytes([data[520], data[521]]);
        ControllerIdentity {
            serial: ascii_field(&data[4..24]),
            model: ascii_field(&data[24..64]),
            firmware: ascii_field(&data[64..72]),
            max_transfer_shift: data[77],
            namespace_count: u32::from_le_bytes([data[516], data[517], data[518], data[519]]),
            write_zeroes: oncs & 1 << 3 != 0,
            volatile_write_cache: data[525] & 1 != 0,
        }
    }

    /// The largest transfer in bytes the controller takes, for memory pages of 2 ^ `min_page_shift`
    /// bytes (MDTS is in units of CAP.MPSMIN), or `None` for no limit.
    pub fn max_transfer_bytes(&self, min_page_shift: u32) -> Option<u64> {
        match self.max_transfer_shift {
            0 => None,
            shift => 1u64.checked_shl(min_page_shift + shift as u32).or(Some(u64::MAX)),
        }
    }
}

/// A namespace the driver can use. See: NVMe 1.4 5.15.2.1 (Figure 245)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NamespaceIdentity {
    /// Namespace Size (NSZE) in logical blocks.
    pub block_count: u64,
    /// The logical block size of the format in use (2 ^ LBADS).
    pub block_size: u32,
}

/// Why a namespace is not offered as a disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NamespaceUnusable {
    /// NSZE is 0: the namespace is inactive.
    Empty,
    /// FLBAS names a format past NLBAF.
    NoSuchFormat,
    /// LBADS outside 512 bytes ..= 64 KiB (below 9 is not a legal format).
    BlockSize(u8),
    /// The format carries metadata with each block (MS not 0), which this driver does not give.
    Metadata,
}

/// The largest block size accepted (2 ^ 16): larger formats exist nowhere in practice.
const MAX_BLOCK_SHIFT: u8 = 16;

impl NamespaceIdentity {
    pub fn decode(data: &[u8; IDENTIFY_BYTES]) -> Result<Self, NamespaceUnusable> {
        let block_count = u64::from_le_bytes(data[0..8].try_into().unwrap_or_default());
        if block_count == 0 {
            return Err(NamespaceUnusable::Empty);
        }
        // NLBAF (byte 25) is 0-based; FLBAS bits 3:0 (byte 26) pick the format in use.
        let format_count = data[25] as usize + 1;
        let format = (data[26] & 0xf) as usize;
        if format >= format_count {
            return Err(NamespaceUnusable::NoSuchFormat);
        }
        // LBAF entries from byte 128: MS bits 15:0, LBADS bits 23:16. See: Figure 246
        let at = 128 + 4 * format;
        let entry = u32::from_le_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]);
        let metadata = entry & 0xffff;
        let block_shift = (entry >> 16) as u8;
        if !(9..=MAX_BLOCK_SHIFT).contains(&block_shift) {
            return Err(NamespaceUnusable::BlockSize(block_shift));
        }
        if metadata != 0 {
            return Err(NamespaceUnusable::Metadata);
        }
        Ok(NamespaceIdentity { block_count, block_size: 1 << block_shift })
    }
}

/// The active namespace list (CNS 02h): identifiers in increasing order, ended by a 0.
/// Out-of-order or repeated entries (a hostile controller) end the list. See: NVMe 1.4 5.15.2.3
pub fn active_namespaces(data: &[u8; IDENTIFY_BYTES]) -> Vec<u32> {
    let mut ids = Vec::new();
    for chunk in data.chunks_exact(4) {
        let id = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        if id == 0 || id == u32::MAX || ids.last().is_some_and(|&last| id <= last) {
            break;
        }
        ids.push(id);
    }
    ids
}

/// An ASCII field of an identify structure (space-padded) as a string: trailing spaces and
/// NULs dropped, anything not printable shown as `?`.
pub fn ascii_field(bytes: &[u8]) -> String {
    let text: String = bytes.iter().map(|&b| if (0x20..0x7f).contains(&b) { b as char } else { '?' }).collect();
    let end = bytes.iter().rposition(|&b| b != b' ' && b != 0).map_or(0, |last| last + 1);
    text.chars().take(end).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn namespace(size: u64, nlbaf: u8, flbas: u8, formats: &[u32]) -> [u8; IDENTIFY_BYTES] {
        let mut data = [0; IDENTIFY_BYTES];
        data[0..8].copy_from_slice(&size.to_le_bytes());
        data[25] = nlbaf;
        data[26] = flbas;
        for (index, format) in formats.iter().enumerate() {
            data[128 + 4 * index..132 + 4 * index].copy_from_slice(&format.to_le_bytes());
        }
        data
    }

    #[test]
    fn namespaces_decode_and_hostile_formats_are_refused() {
        let good = namespace(1000, 1, 1, &[9 << 16, 12 << 16]);
        assert_eq!(NamespaceIdentity::decode(&good), Ok(NamespaceIdentity { block_count: 1000, block_size: 4096 }));
        assert_eq!(NamespaceIdentity::decode(&namespace(0, 0, 0, &[9 << 16])), Err(NamespaceUnusable::Empty));
        assert_eq!(NamespaceIdentity::decode(&namespace(8, 0, 3, &[9 << 16])), Err(NamespaceUnusable::NoSuchFormat));
        assert_eq!(NamespaceIdentity::decode(&namespace(8, 0, 0, &[0])), Err(NamespaceUnusable::BlockSize(0)));
        assert_eq!(NamespaceIdentity::decode(&namespace(8, 0, 0, &[63 << 16])), Err(NamespaceUnusable::BlockSize(63)));
        assert_eq!(NamespaceIdentity::decode(&namespace(8, 0, 0, &[9 << 16 | 8])), Err(NamespaceUnusable::Metadata));
        // All ones: format 15 of 256 "formats", LBADS 255.
        let hostile = [0xff; IDENTIFY_BYTES];
        assert_eq!(NamespaceIdentity::decode(&hostile), Err(NamespaceUnusable::BlockSize(255)));
    }

    #[test]
    fn controller_fields_and_limits() {
        let mut data = [0u8; IDENTIFY_BYTES];
        data[4..24].copy_from_slice(b"SN123               ");
        data[24..34].copy_from_slice(b"QEMU NVMe\x01");
        data[77] = 5;
        data[516] = 2;
        data[520] = 1 << 3;
        data[525] = 1;
        let id = ControllerIdentity::decode(&data);
        assert_eq!((id.serial.as_str(), id.model.as_str()), ("SN123", "QEMU NVMe?"));
        assert_eq!(id.max_transfer_bytes(12), Some(128 * 1024));
        assert!(id.write_zeroes && id.volatile_write_cache);
        assert_eq!(id.namespace_count, 2);
        data[77] = 255;
        assert_eq!(ControllerIdentity::decode(&data).max_transfer_bytes(27), Some(u64::MAX));
        data[77] = 0;
        assert_eq!(ControllerIdentity::decode(&data).max_transfer_bytes(12), None);
    }

    #[test]
    fn the_active_list_stops_at_zero_or_disorder() {
        let mut data = [0u8; IDENTIFY_BYTES];
        for (index, id) in [1u32, 2, 5, 3, 9].iter().enumerate() {
            data[index * 4..index * 4 + 4].copy_from_slice(&id.to_le_bytes());
        }
        assert_eq!(active_namespaces(&data), [1, 2, 5]);
        assert!(active_namespaces(&[0; IDENTIFY_BYTES]).is_empty());
    }
}

//! The table entries of qcow2 (spec, "Cluster mapping", "Host cluster management"): L1 entries,
//! L2 entries decoded into what a guest cluster is ([`Cluster`]), refcount table entries, and the
//! refcount block entries of every width (1 to 64 bits).
//!
//! Not here: reading tables from the file or deciding what to write; only the bit layouts, each
//! checked (an unaligned offset is corruption, never rounded).

use alloc::format;

use crate::Error;

/// Bits 9-55 of an L1 or standard L2 entry: a host offset.
pub const OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
/// Bits 9-63 of a refcount table entry.
pub const REFTABLE_OFFSET_MASK: u64 = 0xffff_ffff_ffff_fe00;
/// Bit 63: the cluster's (or L2 table's) refcount is exactly one, so it is written in place.
pub const COPIED: u64 = 1 << 63;
/// Bit 62 of an L2 entry: a compressed cluster.
pub const COMPRESSED: u64 = 1 << 62;
/// Bit 0 of a standard L2 entry: the cluster reads as zeros (version 3).
pub const ZERO: u64 = 1;
/// Host offsets must stay below 2^56 (bits 9-55 of an entry).
pub const MAX_HOST_OFFSET: u64 = 1 << 56;

/// What a guest cluster is, from its L2 entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cluster {
    /// Reads from the backing file, or zeros without one.
    Unallocated,
    /// Reads as zeros, whatever the backing file holds; `prealloc` is a host cluster kept for it.
    Zero { prealloc: Option<u64> },
    /// Data at a host offset; `copied` says its refcount is one (written in place).
    Data { host: u64, copied: bool },
    /// Deflated data at `host` (not aligned), `len` bytes of it at most.
    Compressed { host: u64, len: u64 },
}

/// The L2 table (or `None`) an L1 entry points to.
pub fn l1_table(entry: u64, cluster_size: u64) -> Result<Option<u64>, Error> {
    let offset = entry & OFFSET_MASK;
    if !offset.is_multiple_of(cluster_size) {
        return Err(Error::corrupt(format!("L2 table offset {offset:#x} is not cluster-aligned")));
    }
    Ok((offset != 0).then_some(offset))
}

/// The refcount block (or `None`) a refcount table entry points to.
pub fn refcount_block(entry: u64, cluster_size: u64) -> Result<Option<u64>, Error> {
    let offset = entry & REFTABLE_OFFSET_MASK;
    if !offset.is_multiple_of(cluster_size) {
        return Err(Error::corrupt(format!("refcount block offset {offset:#x} is not cluster-aligned")));
    }
    Ok((offset != 0).then_some(offset))
}

/// Decodes an L2 entry of an image with `cluster_bits`.
pub fn decode_l2(entry: u64, cluster_bits: u32) -> Result<Cluster, Error> {
    if entry & COMPRESSED != 0 {
        // Compressed descriptor (spec): x = 62 - (cluster_bits - 8) bits of host offset, then
        // the count of 512-byte sectors beyond the first.
        let x = 62 - (cluster_bits - 8);
        let host = entry & ((1u64 << x) - 1);
        let sectors = (entry >> x) & ((1u64 << (cluster_bits - 8)) - 1);
        if host >= MAX_HOST_OFFSET {
            return Err(Error::corrupt(format!("compressed cluster at host offset {host:#x} past 2^56")));
        }
        let len = (sectors + 1) * 512 - (host % 512);
        return Ok(Cluster::Compressed { host, len });
    }
    let host = entry & OFFSET_MASK;
    if !host.is_multiple_of(1u64 << cluster_bits) {
        return Err(Error::corrupt(format!("data cluster offset {host:#x} is not cluster-aligned")));
    }
    // The zero flag is honoured in version 2 images too, as QEMU reads them; this crate never
    // writes it there.
    if entry & ZERO != 0 {
        return Ok(Cluster::Zero { prealloc: (host != 0).then_some(host) });
    }
    if host == 0 {
        return Ok(Cluster::Unallocated);
    }
    Ok(Cluster::Data { host, copied: entry & COPIED != 0 })
}

/// The L2 entry of a data cluster at `host` whose refcount is one.
pub fn data_entry(host: u64) -> u64 {
    host | COPIED
}

/// Reads entry `index` of a refcount block of `1 << order`-bit entries. Narrow entries are
/// packed from the least significant bit of each byte (spec, "Refcount block entry").
pub fn get_refcount(block: &[u8], index: usize, order: u32) -> u64 {
    let bits = 1usize << order;
    if bits < 8 {
        let per_byte = 8 / bits;
        let byte = block.get(index / per_byte).copied().unwrap_or(0);
        let shift = (index % per_byte) * bits;
        u64::from((byte >> shift) & ((1u8 << bits) - 1))
    } else {
        let bytes = bits / 8;
        let start = index * bytes;
        block.get(start..start + bytes).map_or(0, |b| b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
    }
}

/// Sets entry `index` to `value` (which must fit); the byte range of the block that changed.
pub fn set_refcount(block: &mut [u8], index: usize, order: u32, value: u64) -> core::ops::Range<usize> {
    let bits = 1usize << order;
    if bits < 8 {
        let per_byte = 8 / bits;
        let at = index / per_byte;
        let shift = (index % per_byte) * bits;
        let mask = ((1u8 << bits) - 1) << shift;
        if let Some(byte) = block.get_mut(at) {
            *byte = (*byte & !mask) | (((value as u8) << shift) & mask);
        }
        at..at + 1
    } else {
        let bytes = bits / 8;
        let start = index * bytes;
        if let Some(dest) = block.get_mut(start..start + bytes) {
            dest.copy_from_slice(&value.to_be_bytes()[8 - bytes..]);
        }
        start..start + bytes
    }
}

/// The largest refcount a `1 << order`-bit entry holds.
pub fn max_refcount(order: u32) -> u64 {
    if order >= 6 {
        u64::MAX
    } else {
        (1u64 << (1u32 << order)) - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn decodes_every_kind_of_l2_entry() {
        assert_eq!(decode_l2(0, 16).unwrap(), Cluster::Unallocated);
        assert_eq!(decode_l2(0x5_0000 | COPIED, 16).unwrap(), Cluster::Data { host: 0x5_0000, copied: true });
        assert_eq!(decode_l2(0x5_0000, 16).unwrap(), Cluster::Data { host: 0x5_0000, copied: false });
        assert_eq!(decode_l2(1, 16).unwrap(), Cluster::Zero { prealloc: None });
        assert_eq!(decode_l2(0x5_0001 | COPIED, 16).unwrap(), Cluster::Zero { prealloc: Some(0x5_0000) });
        assert!(decode_l2(0x5_0200, 16).unwrap_err().to_string().contains("not cluster-aligned"));
        // 64 KiB clusters: x = 54; two extra sectors at offset 0x12345.
        let entry = COMPRESSED | (2u64 << 54) | 0x12345;
        assert_eq!(decode_l2(entry, 16).unwrap(), Cluster::Compressed { host: 0x12345, len: 3 * 512 - 0x145 });
        // 512-byte clusters: one bit of sector count, at bit 61.
        let entry = COMPRESSED | (1u64 << 61) | 0x400;
        assert_eq!(decode_l2(entry, 9).unwrap(), Cluster::Compressed { host: 0x400, len: 1024 });
        assert!(decode_l2(COMPRESSED | (1u64 << 60), 9).is_err());
    }

    #[test]
    fn checks_table_offsets() {
        assert_eq!(l1_table(0x3_0000 | COPIED, 0x1_0000).unwrap(), Some(0x3_0000));
        assert_eq!(l1_table(0, 0x1_0000).unwrap(), None);
        assert!(l1_table(0x3_0200, 0x1_0000).unwrap_err().to_string().contains("L2 table offset 0x30200"));
        assert_eq!(refcount_block(0x2_0000, 0x1_0000).unwrap(), Some(0x2_0000));
        assert!(refcount_block(0x2_1000, 0x1_0000).is_err());
    }

    #[test]
    fn refcounts_of_every_width_round_trip() {
        for order in 0..=6u32 {
            let mut block = vec![0u8; 512];
            let entries = (512 * 8) >> order;
            let max = max_refcount(order);
            for i in 0..entries {
                set_refcount(&mut block, i, order, (i as u64 * 7) & max);
            }
            for i in 0..entries {
                assert_eq!(get_refcount(&block, i, order), (i as u64 * 7) & max, "order {order} entry {i}");
            }
        }
        // 1-bit: entry 0 is bit 0 of byte 0 (the least significant bit).
        let mut block = vec![0u8; 2];
        assert_eq!(set_refcount(&mut block, 9, 0, 1), 1..2);
        assert_eq!(block, [0, 2]);
        let mut block = vec![0u8; 4];
        set_refcount(&mut block, 1, 4, 0x1234);
        assert_eq!(block, [0, 0, 0x12, 0x34]);
    }
}

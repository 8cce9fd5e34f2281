//! The exFAT boot region (exFAT spec section 3): parsing and checking the main boot sector
//! (3.1), the boot checksum (3.4), and building a boot region for mkfs. It does not touch the
//! FAT, bitmap or directories.

use alloc::vec;
use alloc::vec::Vec;

use crate::error::{Error, Result};

/// Byte offset of VolumeFlags in the boot sector (spec 3.1.13).
pub const VOLUME_FLAGS_OFFSET: usize = 106;
/// VolumeFlags bit 1: the volume may be inconsistent (spec 3.1.13.2).
pub const VOLUME_DIRTY: u16 = 1 << 1;
/// The last valid cluster number's ceiling (spec 3.1.9: ClusterCount at most 2^32 - 11).
const MAX_CLUSTER_COUNT: u32 = 0xFFFF_FFF5;

/// What a mounted volume needs from the boot sector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub sector_shift: u32,
    pub cluster_shift: u32,
    pub volume_sectors: u64,
    pub fat_offset: u32,
    pub fat_length: u32,
    pub fat_count: u8,
    pub heap_offset: u32,
    pub cluster_count: u32,
    pub root_cluster: u32,
    pub serial: u32,
    pub flags: u16,
}

impl Geometry {
    pub fn sector_size(&self) -> u64 {
        1 << self.sector_shift
    }
    pub fn cluster_size(&self) -> u64 {
        1 << (self.sector_shift + self.cluster_shift)
    }
    /// The byte offset of the active FAT (VolumeFlags bit 0 picks the second of two, spec 3.1.13.1).
    pub fn fat_byte_offset(&self) -> u64 {
        let active = u64::from(self.fat_count == 2 && self.flags & 1 == 1);
        (u64::from(self.fat_offset) + active * u64::from(self.fat_length)) << self.sector_shift
    }
    /// Whether `cluster` names a cluster of the heap (spec 4.1: 2 ..= ClusterCount + 1).
    pub fn valid_cluster(&self, cluster: u32) -> bool {
        cluster >= 2 && cluster - 2 < self.cluster_count
    }
    /// The byte offset of a heap cluster (the caller checked it is valid).
    pub fn cluster_offset(&self, cluster: u32) -> u64 {
        (u64::from(self.heap_offset) << self.sector_shift)
            + (u64::from(cluster - 2) << (self.sector_shift + self.cluster_shift))
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or([0; 8]))
}

/// Whether the first sector looks like exFAT at all (its FileSystemName, spec 3.1.2).
pub fn is_exfat(sector: &[u8]) -> bool {
    sector.len() >= 512 && &sector[3..11] == b"EXFAT   "
}

/// Parse and check a boot sector (its first 512 bytes) against a device of `device_bytes`.
pub fn parse(sector: &[u8], device_bytes: u64) -> Result<Geometry> {
    if !is_exfat(sector) {
        return Err(Error::NotAFileSystem);
    }
    if sector[510] != 0x55 || sector[511] != 0xAA {
        return Err(Error::Corrupt("boot sector signature is not 55AA"));
    }
    // Spec 3.1.3: MustBeZero covers the BPB of FAT, so FAT drivers do not mount exFAT.
    if sector[11..64].iter().any(|&b| b != 0) {
        return Err(Error::Corrupt("boot sector MustBeZero field is not zero"));
    }
    let g = Geometry {
        volume_sectors: u64_at(sector, 72),
        fat_offset: u32_at(sector, 80),
        fat_length: u32_at(sector, 84),
        heap_offset: u32_at(sector, 88),
        cluster_count: u32_at(sector, 92),
        root_cluster: u32_at(sector, 96),
        serial: u32_at(sector, 100),
        flags: u16_at(sector, VOLUME_FLAGS_OFFSET),
        sector_shift: u32::from(sector[108]),
        cluster_shift: u32::from(sector[109]),
        fat_count: sector[110],
    };
    if u16_at(sector, 104) >> 8 != 1 {
        return Err(Error::Unsupported("exFAT revision other than 1.x"));
    }
    // Spec 3.1.14, 3.1.15: 512..4096-byte sectors, clusters of at most 32 MiB.
    if !(9..=12).contains(&g.sector_shift) || g.sector_shift + g.cluster_shift > 25 {
        return Err(Error::Corrupt("sector or cluster size out of range"));
    }
    if g.fat_count != 1 && g.fat_count != 2 {
        return Err(Error::Corrupt("NumberOfFats is neither 1 nor 2"));
    }
    let fat_end = u64::from(g.fat_offset) + u64::from(g.fat_length) * u64::from(g.fat_count);
    let heap_bytes = (u64::from(g.cluster_count)) << (g.sector_shift + g.cluster_shift);
    let heap_end = (u64::from(g.heap_offset) << g.sector_shift) + heap_bytes;
    if u64::from(g.fat_offset) < 24 || fat_end > u64::from(g.heap_offset) {
        return Err(Error::Corrupt("FAT region overlaps the boot region or the cluster heap"));
    }
    if g.cluster_count == 0 || g.cluster_count > MAX_CLUSTER_COUNT {
        return Err(Error::Corrupt("ClusterCount out of range"));
    }
    if (u64::from(g.cluster_count) + 2) * 4 > u64::from(g.fat_length) << g.sector_shift {
        return Err(Error::Corrupt("FAT is too short for ClusterCount"));
    }
    if heap_end > g.volume_sectors.saturating_mul(g.sector_size()) || heap_end > device_bytes {
        return Err(Error::Corrupt("cluster heap reaches past the end of the volume or disk"));
    }
    if !g.valid_cluster(g.root_cluster) {
        return Err(Error::Corrupt("root directory cluster out of range"));
    }
    Ok(g)
}

/// The boot checksum over the first 11 sectors of a boot region, skipping VolumeFlags and
/// PercentInUse (spec 3.4).
pub fn checksum(region: &[u8]) -> u32 {
    let mut sum = 0u32;
    for (i, &b) in region.iter().enumerate() {
        if i == VOLUME_FLAGS_OFFSET || i == VOLUME_FLAGS_OFFSET + 1 || i == 112 {
            continue;
        }
        sum = sum.rotate_right(1).wrapping_add(u32::from(b));
    }
    sum
}

/// Check a whole boot region's (12 sectors of `sector_size`) checksum sector.
pub fn checksum_matches(region: &[u8], sector_size: usize) -> bool {
    if region.len() < 12 * sector_size {
        return false;
    }
    let sum = checksum(&region[..11 * sector_size]);
    region[11 * sector_size..12 * sector_size].chunks_exact(4).all(|w| u32_at(w, 0) == sum)
}

/// Build a boot region (12 sectors of 512 bytes) for `g`.
pub fn build_region(g: &Geometry) -> Vec<u8> {
    let ss = 512usize;
    let mut r = vec![0u8; 12 * ss];
    let s = &mut r[..ss];
    s[0..3].copy_from_slice(&[0xEB, 0x76, 0x90]);
    s[3..11].copy_from_slice(b"EXFAT   ");
    s[72..80].copy_from_slice(&g.volume_sectors.to_le_bytes());
    s[80..84].copy_from_slice(&g.fat_offset.to_le_bytes());
    s[84..88].copy_from_slice(&g.fat_length.to_le_bytes());
    s[88..92].copy_from_slice(&g.heap_offset.to_le_bytes());
    s[92..96].copy_from_slice(&g.cluster_count.to_le_bytes());
    s[96..100].copy_from_slice(&g.root_cluster.to_le_bytes());
    s[100..104].copy_from_slice(&g.serial.to_le_bytes());
    s[104..106].copy_from_slice(&0x0100u16.to_le_bytes());
    s[106..108].copy_from_slice(&g.flags.to_le_bytes());
    s[108] = g.sector_shift as u8;
    s[109] = g.cluster_shift as u8;
    s[110] = g.fat_count;
    s[111] = 0x80;
    // Spec 3.1.19: BootCode; a halt loop (HLT; JMP $-1) for a machine that boots it by mistake.
    s[120..123].copy_from_slice(&[0xF4, 0xEB, 0xFD]);
    s[510] = 0x55;
    s[511] = 0xAA;
    // Spec 3.2.2: each extended boot sector ends in the signature AA550000h.
    for sector in 1..9 {
        r[sector * ss + ss - 2] = 0x55;
        r[sector * ss + ss - 1] = 0xAA;
    }
    let sum = checksum(&r[..11 * ss]);
    for word in r[11 * ss..].chunks_exact_mut(4) {
        word.copy_from_slice(&sum.to_le_bytes());
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geometry() -> Geometry {
        Geometry {
            sector_shift: 9,
            cluster_shift: 3,
            volume_sectors: 2048,
            fat_offset: 24,
            fat_length: 8,
            fat_count: 1,
            heap_offset: 32,
            cluster_count: 252,
            root_cluster: 4,
            serial: 0x1234,
            flags: 0,
        }
    }

    #[test]
    fn a_built_region_parses_and_its_checksum_ignores_the_flags() {
        let g = geometry();
        let mut region = build_region(&g);
        assert!(checksum_matches(&region, 512));
        assert_eq!(parse(&region[..512], 1 << 20), Ok(g));
        region[VOLUME_FLAGS_OFFSET] |= VOLUME_DIRTY as u8;
        assert!(checksum_matches(&region, 512));
        region[100] ^= 1;
        assert!(!checksum_matches(&region, 512));
    }

    #[test]
    fn hostile_geometry_is_refused() {
        let mut g = geometry();
        g.cluster_count = 10_000;
        assert!(parse(&build_region(&g)[..512], 1 << 20).is_err());
        let mut g = geometry();
        g.root_cluster = 1;
        assert!(parse(&build_region(&g)[..512], 1 << 20).is_err());
        let mut g = geometry();
        g.cluster_shift = 20;
        assert!(parse(&build_region(&g)[..512], 1 << 20).is_err());
    }
}

//! Formatting a whole device as exFAT (the layout of spec sections 2-3 and 7.1-7.3): boot
//! regions, one FAT, the Allocation Bitmap, an up-case table, and a root directory holding the
//! label. Cluster sizes follow the common defaults (4 KiB up to 256 MiB, 32 KiB up to 32 GiB,
//! 128 KiB above); large volumes align the FAT and the cluster heap to 1 MiB. The boot sector is
//! written last, so an interrupted format leaves no volume rather than a broken one. It does not
//! check what the device held before (the caller confirms with the user).

use alloc::vec;
use alloc::vec::Vec;
use keel_block::BlockDevice;

use super::boot::{build_region, Geometry};
use super::entry::{ENTRY_SIZE, TYPE_BITMAP, TYPE_LABEL, TYPE_UPCASE};
use super::upcase::{build_table, table_checksum};
use super::END_OF_CHAIN;
use crate::disk::ByteDisk;
use crate::error::{Error, Result};

const SECTOR: u64 = 512;

/// The longest label (spec 7.3.2: 11 UTF-16 units).
pub const MAX_LABEL_UNITS: usize = 11;

/// Choose the layout for a volume of `sectors` 512-byte sectors.
fn layout(sectors: u64, upcase_bytes: u64) -> Result<(Geometry, u32, u32)> {
    let bytes = sectors * SECTOR;
    let cluster_shift = match bytes {
        b if b < 8 << 20 => 0,
        b if b <= 256 << 20 => 3,
        b if b <= 32 << 30 => 6,
        _ => 8,
    };
    let spc = 1u64 << cluster_shift;
    let align = if bytes >= 64 << 20 { 2048 } else { 1 };
    let fat_offset = if align > 1 { 2048 } else { 24 };
    let mut fat_length = 1u64;
    let mut heap_offset;
    let mut cluster_count;
    loop {
        heap_offset = (fat_offset + fat_length).next_multiple_of(align.max(spc));
        cluster_count = sectors.saturating_sub(heap_offset) / spc;
        let need = ((cluster_count + 2) * 4).div_ceil(SECTOR);
        if need <= fat_length {
            break;
        }
        fat_length = need;
    }
    let cluster_count = cluster_count.min(0xFFFF_FFF5) as u32;
    let cluster_bytes = spc * SECTOR;
    let bitmap_clusters = u64::from(cluster_count).div_ceil(8).div_ceil(cluster_bytes) as u32;
    let upcase_clusters = upcase_bytes.div_ceil(cluster_bytes) as u32;
    if u64::from(cluster_count) < u64::from(bitmap_clusters + upcase_clusters) + 2 {
        return Err(Error::NoSpace);
    }
    let geo = Geometry {
        sector_shift: 9,
        cluster_shift,
        volume_sectors: sectors,
        fat_offset: fat_offset as u32,
        fat_length: fat_length as u32,
        fat_count: 1,
        heap_offset: heap_offset as u32,
        cluster_count,
        root_cluster: 2 + bitmap_clusters + upcase_clusters,
        serial: 0,
        flags: 0,
    };
    Ok((geo, bitmap_clusters, upcase_clusters))
}

/// Format all of `dev` as exFAT with `label` (at most 11 UTF-16 units) and volume serial number
/// `serial`.
pub fn mkfs_exfat<D: BlockDevice>(dev: D, label: &str, serial: u32) -> Result<()> {
    let label_units: Vec<u16> = label.encode_utf16().collect();
    if label_units.len() > MAX_LABEL_UNITS {
        return Err(Error::NameTooLong);
    }
    if label.is_empty() {
        // An empty label is simply no Volume Label entry.
    } else {
        crate::path::check_name(label)?;
    }
    let mut disk = ByteDisk::new(dev);
    if disk.read_only() {
        return Err(Error::ReadOnly);
    }
    let upcase = build_table();
    let (mut geo, bitmap_clusters, upcase_clusters) = layout(disk.len() / SECTOR, upcase.len() as u64)?;
    geo.serial = serial;
    let cs = geo.cluster_size();

    // Invalidate any old boot sector first, so a cut format never looks like a volume.
    disk.zero(0, SECTOR)?;
    disk.flush()?;

    // FAT (spec 4.1): media and reserved entries, then the chains of the three system objects.
    let fat_bytes = u64::from(geo.fat_length) * SECTOR;
    disk.zero(u64::from(geo.fat_offset) * SECTOR, fat_bytes)?;
    let system_clusters = 2 + bitmap_clusters + upcase_clusters + 1;
    let mut fat = vec![0u8; system_clusters as usize * 4];
    fat[0..4].copy_from_slice(&0xFFFF_FFF8u32.to_le_bytes());
    fat[4..8].copy_from_slice(&END_OF_CHAIN.to_le_bytes());
    let mut chain = |first: u32, count: u32| {
        for c in first..first + count {
            let next = if c + 1 == first + count { END_OF_CHAIN } else { c + 1 };
            fat[c as usize * 4..c as usize * 4 + 4].copy_from_slice(&next.to_le_bytes());
        }
    };
    chain(2, bitmap_clusters);
    chain(2 + bitmap_clusters, upcase_clusters);
    chain(geo.root_cluster, 1);
    disk.write(u64::from(geo.fat_offset) * SECTOR, &fat)?;

    // Allocation Bitmap (spec 7.1): the system objects' clusters are in use.
    let bitmap_len = u64::from(geo.cluster_count).div_ceil(8);
    let mut bitmap = vec![0u8; (u64::from(bitmap_clusters) * cs) as usize];
    for bit in 0..(system_clusters - 2) as usize {
        bitmap[bit / 8] |= 1 << (bit % 8);
    }
    disk.write(geo.cluster_offset(2), &bitmap)?;

    // Up-case table (spec 7.2), zero-padded to its clusters.
    let mut table = upcase.clone();
    table.resize((u64::from(upcase_clusters) * cs) as usize, 0);
    disk.write(geo.cluster_offset(2 + bitmap_clusters), &table)?;

    // Root directory: label, bitmap and up-case entries (spec 7.3, 7.1, 7.2).
    let mut root = vec![0u8; cs as usize];
    let mut at = 0;
    if !label_units.is_empty() {
        root[0] = TYPE_LABEL;
        root[1] = label_units.len() as u8;
        for (i, unit) in label_units.iter().enumerate() {
            root[2 + 2 * i..4 + 2 * i].copy_from_slice(&unit.to_le_bytes());
        }
        at += ENTRY_SIZE;
    }
    let e = &mut root[at..at + ENTRY_SIZE];
    e[0] = TYPE_BITMAP;
    e[20..24].copy_from_slice(&2u32.to_le_bytes());
    e[24..32].copy_from_slice(&bitmap_len.to_le_bytes());
    at += ENTRY_SIZE;
    let e = &mut root[at..at + ENTRY_SIZE];
    e[0] = TYPE_UPCASE;
    e[4..8].copy_from_slice(&table_checksum(&upcase).to_le_bytes());
    e[20..24].copy_from_slice(&(2 + bitmap_clusters).to_le_bytes());
    e[24..32].copy_from_slice(&(upcase.len() as u64).to_le_bytes());
    disk.write(geo.cluster_offset(geo.root_cluster), &root)?;

    // Boot regions last: backup, then main (spec 3.1, 3.2).
    let region = build_region(&geo);
    disk.write(12 * SECTOR, &region)?;
    disk.flush()?;
    disk.write(0, &region)?;
    disk.flush()
}

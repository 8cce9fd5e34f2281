//! FAT32 (Microsoft's FAT specification, "FAT: General Overview of On-Disk Format"; sections
//! named in comments): mounting from the BPB, the whole FAT held in memory (4 bytes a cluster)
//! and written through to every FAT copy, cluster chains, and allocation. `dir` reads and writes
//! directory entries with long names; `ops` has the path and file operations. Small on purpose:
//! FAT32 is here for sticks formatted elsewhere, exFAT is the datastore format. It does not do
//! FAT12 or FAT16, or a FAT copy other than the first as the one read (ExtFlags' active FAT).

mod dir;
mod ops;

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use keel_block::BlockDevice;

pub use self::dir::FatFile;
use crate::disk::ByteDisk;
use crate::error::{Error, Result};

/// FAT entry values (FAT spec section 4): free, bad, end of chain (>= 0x0FFFFFF8).
const FREE: u32 = 0;
const BAD: u32 = 0x0FFF_FFF7;
const END: u32 = 0x0FFF_FFFF;
const MASK: u32 = 0x0FFF_FFFF;

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Whether a first sector has a FAT BPB (section 3.1): signature, sector size, a power-of-two
/// cluster size, at least one FAT.
pub fn looks_like_fat(sector: &[u8]) -> bool {
    sector.len() >= 512
        && sector[510] == 0x55
        && sector[511] == 0xAA
        && matches!(u16_at(sector, 11), 512 | 1024 | 2048 | 4096)
        && sector[13].is_power_of_two()
        && sector[16] >= 1
}

/// A mounted FAT32 volume.
pub struct FatVolume<D> {
    pub(crate) disk: ByteDisk<D>,
    sector_size: u64,
    cluster_size: u64,
    fat_offset: u64,
    fat_bytes: u64,
    fat_count: u8,
    data_offset: u64,
    pub(crate) cluster_count: u32,
    pub(crate) root_cluster: u32,
    fsinfo_sector: u16,
    pub(crate) fat: Vec<u32>,
    free: u32,
    hint: u32,
    label: String,
    modified: bool,
    pub(crate) timestamp: u32,
}

impl<D: BlockDevice> FatVolume<D> {
    /// Mount the FAT32 volume on `dev`, checking the BPB and loading the FAT.
    pub fn mount(dev: D) -> Result<Self> {
        let mut disk = ByteDisk::new(dev);
        let mut bpb = vec![0u8; 512];
        disk.read(0, &mut bpb)?;
        if !looks_like_fat(&bpb) {
            return Err(Error::NotAFileSystem);
        }
        let sector_size = u64::from(u16_at(&bpb, 11));
        let cluster_size = sector_size * u64::from(bpb[13]);
        let reserved = u64::from(u16_at(&bpb, 14));
        let fat_count = bpb[16];
        if u16_at(&bpb, 22) != 0 || u16_at(&bpb, 17) != 0 {
            return Err(Error::Unsupported("FAT12 or FAT16 (only FAT32 is supported)"));
        }
        let fat_sectors = u64::from(u32_at(&bpb, 36));
        let total = match u16_at(&bpb, 19) {
            0 => u64::from(u32_at(&bpb, 32)),
            n => u64::from(n),
        };
        let data_sector = reserved + u64::from(fat_count) * fat_sectors;
        if reserved == 0 || fat_sectors == 0 || data_sector >= total || total * sector_size > disk.len() {
            return Err(Error::Corrupt("FAT32 BPB regions do not fit the volume"));
        }
        let cluster_count = ((total - data_sector) / u64::from(bpb[13])).min(0x0FFF_FFF5);
        let fat_bytes = fat_sectors * sector_size;
        if cluster_count == 0 || (cluster_count + 2) * 4 > fat_bytes {
            return Err(Error::Corrupt("FAT is too short for the cluster count"));
        }
        let cluster_count = cluster_count as u32;
        let root_cluster = u32_at(&bpb, 44);
        if root_cluster < 2 || root_cluster - 2 >= cluster_count {
            return Err(Error::Corrupt("root directory cluster out of range"));
        }
        let mut raw = vec![0u8; (cluster_count as usize + 2) * 4];
        disk.read(reserved * sector_size, &mut raw)?;
        let fat: Vec<u32> = raw.chunks_exact(4).map(|c| u32_at(c, 0)).collect();
        let free = fat[2..].iter().filter(|&&e| e & MASK == FREE).count() as u32;
        let label = core::str::from_utf8(&bpb[71..82]).unwrap_or("").trim_end().into();
        Ok(FatVolume {
            disk,
            sector_size,
            cluster_size,
            fat_offset: reserved * sector_size,
            fat_bytes,
            fat_count,
            data_offset: data_sector * sector_size,
            cluster_count,
            root_cluster,
            fsinfo_sector: u16_at(&bpb, 48),
            fat,
            free,
            hint: 2,
            label,
            modified: false,
            timestamp: crate::exfat::DEFAULT_TIMESTAMP,
        })
    }

    pub fn label(&self) -> &str {
        if self.label == "NO NAME" {
            ""
        } else {
            &self.label
        }
    }

    pub fn space(&self) -> (u64, u64) {
        (u64::from(self.cluster_count) * self.cluster_size, u64::from(self.free) * self.cluster_size)
    }

    pub fn set_timestamp(&mut self, timestamp: u32) {
        self.timestamp = timestamp;
    }

    pub fn into_device(self) -> D {
        self.disk.dev
    }

    /// The device underneath.
    pub fn device(&self) -> &D {
        &self.disk.dev
    }

    pub(crate) fn valid(&self, cluster: u32) -> bool {
        cluster >= 2 && cluster - 2 < self.cluster_count
    }

    pub(crate) fn cluster_offset(&self, cluster: u32) -> u64 {
        self.data_offset + u64::from(cluster - 2) * self.cluster_size
    }

    pub(crate) fn cluster_size(&self) -> u64 {
        self.cluster_size
    }

    /// The clusters of the chain from `first`, in order; loops and bad links are `Corrupt`.
    pub(crate) fn chain(&self, first: u32) -> Result<Vec<u32>> {
        let mut out = Vec::new();
        if first == 0 {
            return Ok(out);
        }
        let mut cluster = first;
        loop {
            if !self.valid(cluster) {
                return Err(Error::Corrupt("cluster chain holds an invalid cluster"));
            }
            out.push(cluster);
            if out.len() > self.cluster_count as usize {
                return Err(Error::Corrupt("cluster chain loops"));
            }
            let next = self.fat[cluster as usize] & MASK;
            if next >= 0x0FFF_FFF8 {
                // A cluster named twice is a loop that happened to end (section 4).
                let mut sorted = out.clone();
                sorted.sort_unstable();
                if sorted.windows(2).any(|w| w[0] == w[1]) {
                    return Err(Error::Corrupt("cluster chain loops"));
                }
                return Ok(out);
            }
            if next == BAD || next == FREE {
                return Err(Error::Corrupt("cluster chain runs into a free or bad cluster"));
            }
            cluster = next;
        }
    }

    /// Set FAT entries in memory and in every FAT copy on disk (upper 4 bits kept, section 4).
    pub(crate) fn set_fat(&mut self, entries: &[(u32, u32)]) -> Result<()> {
        self.mark_modified()?;
        for &(cluster, value) in entries {
            let old = self.fat[cluster as usize];
            let new = (old & !MASK) | (value & MASK);
            if (old & MASK == FREE) != (value & MASK == FREE) {
                if value & MASK == FREE {
                    self.free += 1;
                } else {
                    self.free -= 1;
                }
            }
            self.fat[cluster as usize] = new;
        }
        let mut blocks: Vec<u64> = entries.iter().map(|&(c, _)| u64::from(c) * 4 / self.sector_size).collect();
        blocks.sort_unstable();
        blocks.dedup();
        for block in blocks {
            let first = (block * self.sector_size / 4) as usize;
            let last = (first + (self.sector_size / 4) as usize).min(self.fat.len());
            let bytes: Vec<u8> = self.fat[first..last].iter().flat_map(|e| e.to_le_bytes()).collect();
            for copy in 0..u64::from(self.fat_count) {
                self.disk.write(self.fat_offset + copy * self.fat_bytes + block * self.sector_size, &bytes)?;
            }
        }
        Ok(())
    }

    /// `count` free clusters (first fit from the hint), not yet marked.
    pub(crate) fn find_free(&mut self, count: usize) -> Result<Vec<u32>> {
        if count > self.free as usize {
            return Err(Error::NoSpace);
        }
        let mut found = Vec::with_capacity(count);
        let n = self.cluster_count;
        let start = self.hint.clamp(2, n + 1) - 2;
        for i in 0..n {
            let cluster = (start + i) % n + 2;
            if self.fat[cluster as usize] & MASK == FREE {
                found.push(cluster);
                if found.len() == count {
                    self.hint = cluster + 1;
                    return Ok(found);
                }
            }
        }
        Err(Error::NoSpace)
    }

    /// Extend the chain ending at `last` (0: a new chain) by `count` clusters, optionally
    /// zeroed. The new clusters are chained and flushed before the link from `last`, so a cut
    /// leaves at worst lost clusters. Returns the new clusters.
    pub(crate) fn extend(&mut self, last: u32, count: usize, zero: bool) -> Result<Vec<u32>> {
        let new = self.find_free(count)?;
        if zero {
            for &c in &new {
                self.disk.zero(self.cluster_offset(c), self.cluster_size)?;
            }
        }
        let mut links: Vec<(u32, u32)> = new.windows(2).map(|w| (w[0], w[1])).collect();
        links.push((new[new.len() - 1], END));
        self.set_fat(&links)?;
        self.disk.flush()?;
        if last != 0 {
            self.set_fat(&[(last, new[0])])?;
        }
        Ok(new)
    }

    /// Cut the chain `clusters` to its first `keep`, freeing the rest (the caller already
    /// wrote and flushed the entry that no longer reaches them).
    pub(crate) fn cut(&mut self, clusters: &[u32], keep: usize) -> Result<()> {
        if keep >= clusters.len() {
            return Ok(());
        }
        let mut entries: Vec<(u32, u32)> = clusters[keep..].iter().map(|&c| (c, FREE)).collect();
        if keep > 0 {
            entries.push((clusters[keep - 1], END));
        }
        self.set_fat(&entries)
    }

    fn mark_modified(&mut self) -> Result<()> {
        if self.disk.read_only() {
            return Err(Error::ReadOnly);
        }
        self.modified = true;
        Ok(())
    }

    /// Write the FSInfo free count (section 5), then make everything durable.
    pub fn flush(&mut self) -> Result<()> {
        if !self.modified {
            return Ok(());
        }
        let at = u64::from(self.fsinfo_sector) * self.sector_size;
        if self.fsinfo_sector != 0 && at + 512 <= self.fat_offset {
            let mut info = vec![0u8; 512];
            self.disk.read(at, &mut info)?;
            if u32_at(&info, 0) == 0x4161_5252 && u32_at(&info, 484) == 0x6141_7272 {
                info[488..492].copy_from_slice(&self.free.to_le_bytes());
                info[492..496].copy_from_slice(&self.hint.to_le_bytes());
                self.disk.write(at, &info)?;
            }
        }
        self.disk.flush()?;
        self.modified = false;
        Ok(())
    }
}

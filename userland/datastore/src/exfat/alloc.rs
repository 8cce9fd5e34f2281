//! Clusters: the Allocation Bitmap (exFAT spec 7.1, held in memory and written back by the bytes
//! that change), the FAT (spec 4.1, read through a one-block cache), cluster chains as extents
//! (runs of consecutive clusters; a NoFatChain object is one extent, spec 6.3.4.2), and growing
//! and shrinking an object's clusters in the order that keeps a power cut harmless: bitmap and
//! new FAT entries first and flushed, only then the link from a live chain. Every chain walk is
//! bounded by the cluster count, and every cluster number is checked, so a hostile FAT yields
//! `Corrupt`, never a loop or a panic. It does not write directory entries (the caller does).

use alloc::vec;
use alloc::vec::Vec;
use keel_block::BlockDevice;

use super::ExfatVolume;
use crate::error::{Error, Result};

/// FAT entry values (spec 4.1.4).
pub const FAT_END: u32 = 0xFFFF_FFFF;

/// `count` consecutive clusters from `first`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    pub first: u32,
    pub count: u32,
}

impl Extent {
    pub fn end(&self) -> u32 {
        self.first + self.count
    }
}

/// The number of clusters in `extents`.
pub fn cluster_total(extents: &[Extent]) -> u64 {
    extents.iter().map(|e| u64::from(e.count)).sum()
}

/// The Allocation Bitmap in memory and where it lives on disk.
pub struct Bitmap {
    pub bits: Vec<u8>,
    pub extents: Vec<Extent>,
    /// Where to start looking for free clusters (the last allocation's end).
    pub hint: u32,
    pub free: u32,
}

impl Bitmap {
    /// Whether heap cluster `cluster` (2-based) is allocated.
    pub fn is_used(&self, cluster: u32) -> bool {
        let bit = (cluster - 2) as usize;
        self.bits[bit / 8] & (1 << (bit % 8)) != 0
    }

    fn set(&mut self, cluster: u32, used: bool) {
        let bit = (cluster - 2) as usize;
        if used {
            self.bits[bit / 8] |= 1 << (bit % 8);
        } else {
            self.bits[bit / 8] &= !(1 << (bit % 8));
        }
    }

    /// The length of the free run starting at `cluster`, looking no further than `want`.
    fn free_run_at(&self, cluster: u32, cluster_count: u32, want: u32) -> u32 {
        let mut n = 0;
        while n < want && cluster - 2 + n < cluster_count && !self.is_used(cluster + n) {
            n += 1;
        }
        n
    }

    /// Free runs, first fit from the hint, wrapping: one run of `want` if there is one,
    /// else the runs that together give `want`; `None` when the volume has fewer free clusters.
    fn find(&self, want: u32, cluster_count: u32) -> Option<Vec<Extent>> {
        if want > self.free {
            return None;
        }
        let mut runs = Vec::new();
        let start = if self.hint >= 2 && self.hint - 2 < cluster_count { self.hint - 2 } else { 0 };
        let mut bit = 0u32;
        while bit < cluster_count {
            let index = (start + bit) % cluster_count;
            // Skip whole allocated bytes quickly.
            if index.is_multiple_of(8) && self.bits[(index / 8) as usize] == 0xFF && index + 8 <= cluster_count {
                bit += 8;
                continue;
            }
            let cluster = index + 2;
            if self.is_used(cluster) {
                bit += 1;
                continue;
            }
            let run = self.free_run_at(cluster, cluster_count, want.min(cluster_count - bit));
            if run >= want {
                return Some(vec![Extent { first: cluster, count: want }]);
            }
            runs.push(Extent { first: cluster, count: run });
            bit += run.max(1);
        }
        // No single run is long enough: take runs in order until `want` is covered.
        let mut left = want;
        let mut taken = Vec::new();
        for run in runs {
            let n = run.count.min(left);
            taken.push(Extent { first: run.first, count: n });
            left -= n;
            if left == 0 {
                return Some(taken);
            }
        }
        None
    }
}

/// A chain that names a cluster twice loops (spec 4.1), even when it ends where its length
/// says: refuse it rather than read one cluster for two parts of a file.
fn check_no_repeats(extents: Vec<Extent>) -> Result<Vec<Extent>> {
    let mut sorted = extents.clone();
    sorted.sort_unstable_by_key(|e| e.first);
    if sorted.windows(2).any(|w| w[0].end() > w[1].first) {
        return Err(Error::Corrupt("cluster chain loops"));
    }
    Ok(extents)
}

impl<D: BlockDevice> ExfatVolume<D> {
    /// Read one FAT entry.
    pub(crate) fn fat_get(&mut self, cluster: u32) -> Result<u32> {
        let offset = self.geo.fat_byte_offset() + u64::from(cluster) * 4;
        let block = u64::from(self.disk.dev.block_size());
        let base = offset / block * block;
        if self.fat_cache.0 != Some(base) {
            let mut buf = vec![0u8; block as usize];
            self.disk.read(base, &mut buf)?;
            self.fat_cache = (Some(base), buf);
        }
        let at = (offset - base) as usize;
        let b = &self.fat_cache.1;
        Ok(u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]))
    }

    /// Write FAT entries: `(cluster, value)` pairs, each FAT block read and written once.
    pub(crate) fn fat_set(&mut self, entries: &[(u32, u32)]) -> Result<()> {
        let block = u64::from(self.disk.dev.block_size());
        let mut sorted = entries.to_vec();
        sorted.sort_unstable();
        let mut i = 0;
        let mut buf = vec![0u8; block as usize];
        while i < sorted.len() {
            let base = (self.geo.fat_byte_offset() + u64::from(sorted[i].0) * 4) / block * block;
            self.disk.read(base, &mut buf)?;
            while i < sorted.len() {
                let offset = self.geo.fat_byte_offset() + u64::from(sorted[i].0) * 4;
                if offset / block * block != base {
                    break;
                }
                let at = (offset - base) as usize;
                buf[at..at + 4].copy_from_slice(&sorted[i].1.to_le_bytes());
                i += 1;
            }
            self.disk.write(base, &buf)?;
        }
        self.fat_cache.0 = None;
        Ok(())
    }

    /// The clusters of an object: `len` bytes from `first`, contiguous if `no_fat_chain`, else
    /// following the FAT; `len` of `None` follows the chain to its end (the root directory and
    /// the system files, which have no stream entry).
    pub(crate) fn extents_of(&mut self, first: u32, no_fat_chain: bool, len: Option<u64>) -> Result<Vec<Extent>> {
        let cs = self.geo.cluster_size();
        let want = match len {
            Some(len) => {
                let n = len.div_ceil(cs);
                if n > u64::from(self.geo.cluster_count) {
                    return Err(Error::Corrupt("file is longer than the volume"));
                }
                n as u32
            }
            None => u32::MAX,
        };
        if first == 0 || want == 0 {
            return if want == 0 || len.is_none() && first == 0 {
                Ok(Vec::new())
            } else {
                Err(Error::Corrupt("file has data but no first cluster"))
            };
        }
        if !self.geo.valid_cluster(first) {
            return Err(Error::Corrupt("first cluster out of range"));
        }
        if no_fat_chain {
            if u64::from(first - 2) + u64::from(want) > u64::from(self.geo.cluster_count) {
                return Err(Error::Corrupt("contiguous file runs past the cluster heap"));
            }
            return Ok(vec![Extent { first, count: want }]);
        }
        let mut extents: Vec<Extent> = Vec::new();
        let mut cluster = first;
        let mut seen = 0u32;
        loop {
            match extents.last_mut() {
                Some(e) if e.end() == cluster => e.count += 1,
                _ => extents.push(Extent { first: cluster, count: 1 }),
            }
            seen += 1;
            if seen == want {
                return check_no_repeats(extents);
            }
            // A chain longer than the heap has a loop (spec 4.1: each cluster appears once).
            if seen >= self.geo.cluster_count {
                return Err(Error::Corrupt("cluster chain loops"));
            }
            let next = self.fat_get(cluster)?;
            if next == FAT_END {
                return match len {
                    None => check_no_repeats(extents),
                    Some(_) => Err(Error::Corrupt("cluster chain is shorter than the file")),
                };
            }
            if !self.geo.valid_cluster(next) {
                return Err(Error::Corrupt("cluster chain holds an invalid cluster"));
            }
            cluster = next;
        }
    }

    /// Write back the bitmap bytes covering clusters `first..first + count`.
    fn write_bitmap(&mut self, first: u32, count: u32) -> Result<()> {
        let lo = ((first - 2) / 8) as u64;
        let hi = ((first - 2 + count - 1) / 8) as u64 + 1;
        let cs = self.geo.cluster_size();
        let mut byte = lo;
        let mut file_pos = 0u64;
        let bitmap_extents = self.bitmap.extents.clone();
        for e in &bitmap_extents {
            let len = u64::from(e.count) * cs;
            let (from, to) = (byte.max(file_pos), hi.min(file_pos + len));
            if from < to {
                let disk = self.geo.cluster_offset(e.first) + (from - file_pos);
                let bytes = self.bitmap.bits[from as usize..to as usize].to_vec();
                self.disk.write(disk, &bytes)?;
                byte = to;
            }
            file_pos += len;
        }
        Ok(())
    }

    /// Mark clusters allocated or free, in memory and on disk.
    fn mark(&mut self, extents: &[Extent], used: bool) -> Result<()> {
        for e in extents {
            for c in e.first..e.end() {
                if self.bitmap.is_used(c) != used {
                    self.bitmap.set(c, used);
                    if used {
                        self.bitmap.free -= 1;
                    } else {
                        self.bitmap.free += 1;
                    }
                }
            }
            if e.count > 0 {
                self.write_bitmap(e.first, e.count)?;
            }
        }
        Ok(())
    }

    /// Grow an object from its `extents` to `want` clusters. The new clusters are marked in the
    /// bitmap and chained, and the device flushed, before anything points to them: a power cut
    /// leaves at worst lost clusters. A contiguous object stays NoFatChain (`no_fat_chain` may
    /// become false: the caller records that in the entry set, which is what commits the
    /// conversion, since the FAT of a NoFatChain object is ignored, spec 6.3.4.2). With
    /// `zero`, the new clusters are zeroed first (directories, spec 6.2: unused entries are 0).
    /// Returns the link from a live FAT chain to the new clusters, which the caller writes with
    /// the entry set that records the new length ([`ExfatVolume::commit`]).
    pub(crate) fn grow(
        &mut self,
        extents: &mut Vec<Extent>,
        no_fat_chain: &mut bool,
        want: u64,
        zero: bool,
    ) -> Result<Option<(u32, u32)>> {
        let have = cluster_total(extents);
        if want <= have {
            return Ok(None);
        }
        if want > u64::from(self.geo.cluster_count) {
            return Err(Error::NoSpace);
        }
        let need = (want - have) as u32;
        let cc = self.geo.cluster_count;
        let last_end = extents.last().map(|e| e.end());
        // Prefer continuing the last extent, so big files stay one NoFatChain run.
        let new = match last_end {
            Some(end) if end - 2 < cc && self.bitmap.free_run_at(end, cc, need) == need => {
                vec![Extent { first: end, count: need }]
            }
            _ => self.bitmap.find(need, cc).ok_or(Error::NoSpace)?,
        };
        self.mark_dirty()?;
        self.mark(&new, true)?;
        if let Some(e) = new.last() {
            self.bitmap.hint = e.end();
        }
        if zero {
            for e in &new {
                self.disk.zero(self.geo.cluster_offset(e.first), u64::from(e.count) * self.geo.cluster_size())?;
            }
        }
        let mut link = None;
        let contiguous = new.len() == 1 && (have == 0 || (*no_fat_chain && last_end == Some(new[0].first)));
        let was_chain = have > 0 && !*no_fat_chain;
        if contiguous && (*no_fat_chain || have == 0) && self.may_skip_fat {
            *no_fat_chain = true;
        } else {
            // Chain every cluster that the FAT does not describe yet: the old extents when they
            // were NoFatChain, and the new ones; the live link (old last -> new first) last.
            let mut fat = Vec::new();
            let mut all: Vec<Extent> = Vec::new();
            if !was_chain {
                all.extend_from_slice(extents);
            }
            all.extend_from_slice(&new);
            let clusters: Vec<u32> = all.iter().flat_map(|e| e.first..e.end()).collect();
            for pair in clusters.windows(2) {
                fat.push((pair[0], pair[1]));
            }
            if let Some(&last) = clusters.last() {
                fat.push((last, FAT_END));
            }
            self.fat_set(&fat)?;
            self.disk.flush()?;
            if was_chain {
                // The link into a live chain waits for the entry set (`commit`).
                let old_last = extents.last().map(|e| e.end() - 1).unwrap_or(0);
                link = Some((old_last, new[0].first));
            }
            *no_fat_chain = false;
        }
        self.disk.flush()?;
        for e in new {
            match extents.last_mut() {
                Some(last) if last.end() == e.first => last.count += e.count,
                _ => extents.push(e),
            }
        }
        Ok(link)
    }

    /// Cut an object to `keep` clusters, freeing the rest. The caller has just written the entry
    /// set with the smaller size; it is flushed before the chain's new end is written, and that
    /// before the clusters are freed: a power cut loses clusters, never data.
    pub(crate) fn shrink(&mut self, extents: &mut Vec<Extent>, no_fat_chain: bool, keep: u64) -> Result<()> {
        let mut freed = Vec::new();
        let mut kept = 0u64;
        let mut remaining = Vec::new();
        for e in extents.iter() {
            if kept >= keep {
                freed.push(*e);
            } else if kept + u64::from(e.count) > keep {
                let n = (keep - kept) as u32;
                remaining.push(Extent { first: e.first, count: n });
                freed.push(Extent { first: e.first + n, count: e.count - n });
                kept = keep;
            } else {
                remaining.push(*e);
                kept += u64::from(e.count);
            }
        }
        if freed.is_empty() {
            return Ok(());
        }
        self.mark_dirty()?;
        if !no_fat_chain {
            if let Some(last) = remaining.last() {
                // The smaller entry set is durable before the chain gets shorter than it was.
                self.disk.flush()?;
                self.fat_set(&[(last.end() - 1, FAT_END)])?;
            }
        }
        // The smaller entry set (written just before) and the chain's new end are durable
        // before the clusters are free for another file.
        self.disk.flush()?;
        self.mark(&freed, false)?;
        *extents = remaining;
        Ok(())
    }
}

//! Refcounts and cluster allocation (spec, "Host cluster management").
//!
//! Every change is written through at once, and ordered so that a crash leaves at worst a leak
//! (a cluster counted but not referenced), never a reference to a cluster counted zero:
//! - a cluster is counted (refcount 1) before anything is written into it or points to it;
//! - a new refcount block is written, holding its own count, and flushed before the refcount
//!   table points to it;
//! - a grown refcount table (with the new blocks that count it) is written and flushed before
//!   the header points to it, and the header is flushed before the old table is freed;
//! - a count is lowered only after the references to the cluster are gone from the file
//!   (`write.rs` flushes before calling [`Qcow2::free_range`]).
//!
//! Not here: deciding what to allocate or free (`write.rs`), and lazy refcounts (never used:
//! the dirty bit is never set by this crate).

use alloc::format;
use alloc::vec;

use super::entry::{self, MAX_HOST_OFFSET};
use super::{header, Qcow2, MAX_REFTABLE_BYTES};
use crate::Error;

impl Qcow2 {
    fn refblock_entries(&self) -> u64 {
        1u64 << self.refblock_bits
    }

    /// The refcount of host cluster `cluster` (0 where no block counts it).
    pub(super) fn refcount(&mut self, cluster: u64) -> Result<u64, Error> {
        let index = cluster >> self.refblock_bits;
        let Some(&table_entry) = usize::try_from(index).ok().and_then(|i| self.reftable.get(i)) else {
            return Ok(0);
        };
        let Some(block) = entry::refcount_block(table_entry, self.cluster_size)? else {
            return Ok(0);
        };
        let within = (cluster & (self.refblock_entries() - 1)) as usize;
        let order = self.header.refcount_order;
        let data = self.refblock_cache.get(&mut *self.file, block)?;
        Ok(entry::get_refcount(data, within, order))
    }

    /// Sets the refcount of `cluster`, whose block must exist, in the file and the cache.
    fn set_refcount(&mut self, cluster: u64, value: u64) -> Result<(), Error> {
        let index = (cluster >> self.refblock_bits) as usize;
        let block = self
            .reftable
            .get(index)
            .and_then(|&e| entry::refcount_block(e, self.cluster_size).ok().flatten())
            .ok_or_else(|| Error::corrupt(format!("no refcount block for cluster {cluster:#x}")))?;
        if value > entry::max_refcount(self.header.refcount_order) {
            return Err(Error::ImageFull("a refcount would overflow its width"));
        }
        let within = (cluster & (self.refblock_entries() - 1)) as usize;
        let order = self.header.refcount_order;
        let data = self.refblock_cache.get(&mut *self.file, block)?;
        let changed = entry::set_refcount(data, within, order, value);
        let bytes = data[changed.clone()].to_vec();
        self.file.write_at(block + changed.start as u64, &bytes)
    }

    /// Whether host cluster `cluster` holds metadata whose place the header fixes.
    fn is_fixed(&self, cluster: u64) -> Option<u64> {
        let at = cluster.checked_mul(self.cluster_size)?;
        self.fixed
            .iter()
            .find(|&&(start, end)| at >= start && at < end)
            .map(|&(_, end)| end.div_ceil(self.cluster_size))
    }

    /// The first cluster at or after `start` whose refcount is zero (and is no fixed metadata).
    fn find_free(&mut self, start: u64) -> Result<u64, Error> {
        let mut c = start.max(1);
        loop {
            if c.checked_mul(self.cluster_size).is_none_or(|at| at >= MAX_HOST_OFFSET) {
                return Err(Error::ImageFull("no free cluster below 2^56 bytes"));
            }
            if let Some(end) = self.is_fixed(c) {
                c = end;
                continue;
            }
            let index = c >> self.refblock_bits;
            let block = usize::try_from(index)
                .ok()
                .and_then(|i| self.reftable.get(i))
                .map(|&e| entry::refcount_block(e, self.cluster_size))
                .transpose()?
                .flatten();
            let Some(block) = block else { return Ok(c) };
            // Scan the rest of this block in memory rather than one lookup per cluster.
            let order = self.header.refcount_order;
            let entries = self.refblock_entries();
            let first = (c & (entries - 1)) as usize;
            let data = self.refblock_cache.get(&mut *self.file, block)?;
            match (first..entries as usize).find(|&i| entry::get_refcount(data, i, order) == 0) {
                Some(i) => {
                    let found = (index << self.refblock_bits) + i as u64;
                    match self.is_fixed(found) {
                        Some(end) => c = end,
                        None => return Ok(found),
                    }
                }
                None => c = (index + 1) << self.refblock_bits,
            }
        }
    }

    /// Allocates one host cluster: its refcount is 1 in the file when this returns (not yet
    /// flushed: the caller flushes before anything points to it). Returns its byte offset.
    pub(super) fn alloc_cluster(&mut self) -> Result<u64, Error> {
        // A new refcount block may take the cluster found (it sits at the start of the range it
        // counts), so look again; the second look finds a cluster the block does not use.
        for _ in 0..4 {
            let c = self.find_free(self.free_hint)?;
            self.ensure_refblock(c)?;
            if self.refcount(c)? != 0 {
                self.free_hint = c + 1;
                continue;
            }
            self.set_refcount(c, 1)?;
            self.free_hint = c + 1;
            return Ok(c * self.cluster_size);
        }
        Err(Error::corrupt("the allocator found no cluster a new refcount block left free".into()))
    }

    /// Lowers by one the refcount of every host cluster that `[offset, offset + len)` touches
    /// (a compressed cluster may straddle two). The caller has made the references to them
    /// durable-gone first.
    pub(super) fn free_range(&mut self, offset: u64, len: u64) -> Result<(), Error> {
        if len == 0 {
            return Ok(());
        }
        let first = offset / self.cluster_size;
        let last = offset.saturating_add(len - 1) / self.cluster_size;
        for c in first..=last {
            let count = self.refcount(c)?;
            if count == 0 {
                return Err(Error::corrupt(format!(
                    "cluster at {:#x} is in use but its refcount is zero",
                    c * self.cluster_size
                )));
            }
            self.set_refcount(c, count - 1)?;
            if count == 1 {
                self.free_hint = self.free_hint.min(c);
            }
        }
        Ok(())
    }

    /// Makes sure a refcount block counts `cluster`: a new one goes at the first cluster of the
    /// range it counts (all of whose counts were zero, so it is free), counting itself.
    fn ensure_refblock(&mut self, cluster: u64) -> Result<(), Error> {
        let index = cluster >> self.refblock_bits;
        if index >= self.reftable.len() as u64 {
            self.grow_reftable(index)?;
        }
        let i = index as usize;
        if entry::refcount_block(self.reftable[i], self.cluster_size)?.is_some() {
            return Ok(());
        }
        let first = index << self.refblock_bits;
        let offset = first * self.cluster_size;
        if self.is_fixed(first).is_some() {
            return Err(Error::corrupt(format!("metadata at {offset:#x} has no refcount block")));
        }
        let mut block = vec![0u8; self.cluster_size as usize];
        entry::set_refcount(&mut block, 0, self.header.refcount_order, 1);
        self.file.write_at(offset, &block)?;
        self.file.flush()?;
        self.file.write_at(self.reftable_offset + index * 8, &offset.to_be_bytes())?;
        self.reftable[i] = offset;
        self.refblock_cache.insert(offset, block);
        Ok(())
    }

    /// Replaces the refcount table by a larger one that has an entry for range `need`.
    ///
    /// The new table and the blocks counting it go in fresh ranges past everything in use
    /// (ranges the old table does not cover, past the end of the file): there every count is
    /// zero, so the new blocks count only the new clusters.
    fn grow_reftable(&mut self, need: u64) -> Result<(), Error> {
        let cs = self.cluster_size;
        let entries = self.refblock_entries();
        let per_table_cluster = cs / 8;
        let old_len = self.reftable.len() as u64;
        let file_clusters = self.file.len()?.div_ceil(cs);
        let first_range = old_len.max(file_clusters.div_ceil(entries));
        // r blocks followed by n table clusters, the r blocks counting all r + n of them.
        let mut blocks = 1u64;
        let mut table_clusters;
        let mut rounds = 0;
        loop {
            let needed_entries = (need + 1).max(first_range + blocks);
            // At least double, so a growing image moves its table O(log n) times.
            table_clusters = needed_entries.div_ceil(per_table_cluster).max(self.reftable_clusters * 2);
            if table_clusters * cs > MAX_REFTABLE_BYTES {
                table_clusters = needed_entries.div_ceil(per_table_cluster);
            }
            if table_clusters * cs > MAX_REFTABLE_BYTES {
                return Err(Error::ImageFull("the refcount table would pass 8 MiB"));
            }
            let more = (blocks + table_clusters).div_ceil(entries);
            if more <= blocks {
                break;
            }
            blocks = more;
            rounds += 1;
            if rounds > 64 {
                return Err(Error::ImageFull("cannot lay out a larger refcount table"));
            }
        }
        let start = first_range
            .checked_mul(entries)
            .filter(|s| {
                s.checked_add(blocks + table_clusters)
                    .and_then(|e| e.checked_mul(cs))
                    .is_some_and(|e| e < MAX_HOST_OFFSET)
            })
            .ok_or(Error::ImageFull("no room for a larger refcount table below 2^56 bytes"))?;
        let total = blocks + table_clusters;
        let order = self.header.refcount_order;

        let mut table = self.reftable.clone();
        table.resize((table_clusters * per_table_cluster) as usize, 0);
        for b in 0..blocks {
            let mut block = vec![0u8; cs as usize];
            let range_start = (first_range + b) * entries;
            for c in start.max(range_start)..(start + total).min(range_start + entries) {
                entry::set_refcount(&mut block, (c - range_start) as usize, order, 1);
            }
            let at = (start + b) * cs;
            self.file.write_at(at, &block)?;
            self.refblock_cache.insert(at, block);
            table[(first_range + b) as usize] = at;
        }
        let table_at = (start + blocks) * cs;
        let mut raw = vec![0u8; table.len() * 8];
        for (dest, e) in raw.chunks_exact_mut(8).zip(&table) {
            dest.copy_from_slice(&e.to_be_bytes());
        }
        self.file.write_at(table_at, &raw)?;
        self.file.flush()?;
        // refcount_table_offset and refcount_table_clusters, one write inside the first sector.
        let mut field = [0u8; 12];
        field[..8].copy_from_slice(&table_at.to_be_bytes());
        field[8..].copy_from_slice(&(table_clusters as u32).to_be_bytes());
        self.file.write_at(header::REFCOUNT_TABLE_FIELD, &field)?;
        self.file.flush()?;

        let (old_at, old_clusters) = (self.reftable_offset, self.reftable_clusters);
        self.reftable = table;
        self.reftable_offset = table_at;
        self.reftable_clusters = table_clusters;
        self.header.refcount_table_offset = table_at;
        self.header.refcount_table_clusters = table_clusters as u32;
        self.set_fixed();
        self.free_range(old_at, old_clusters * cs)
    }
}

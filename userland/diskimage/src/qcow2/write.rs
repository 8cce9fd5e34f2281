//! Writing a qcow2 image, in the order that keeps it consistent across a crash:
//!
//! 1. A cluster written in place (its entry says refcount one) is simply written.
//! 2. Otherwise a new cluster is counted (`refcount.rs`), then written whole: the guest's bytes
//!    over what the cluster read as before (backing file, zeros, inflated data: copy-on-write).
//! 3. Once every new cluster of the request is written, the file is flushed, and only then do
//!    the L2 entries point to them. A crash before that leaves counted, unreferenced clusters:
//!    a leak, which `qemu-img check` reports as such and nothing worse.
//! 4. Clusters no longer referenced (an old compressed or shared cluster, a discarded one) have
//!    their counts lowered only after another flush has made the L2 change durable.
//!
//! Discard and write-zeroes change whole clusters' entries (to unallocated, or to the v3 zero
//! flag where a backing file would otherwise show through) and free what they referenced; the
//! partial clusters at either end are zeroed by writing zeros (write-zeroes) or left alone
//! (discard). Version 2 has no zero flag: with a backing file, write-zeroes writes zeros and
//! discard leaves whole clusters alone.
//!
//! Not here: the guest's flush (the `Image` front passes it to the file).

use alloc::vec;
use alloc::vec::Vec;

use super::entry::{self, Cluster};
use super::Qcow2;
use crate::file::Source;
use crate::Error;

/// An L2 entry to write once the data it points to is durable.
struct Update {
    table: u64,
    index: usize,
    value: u64,
}

/// What discard and write-zeroes have in common, and where they differ.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unmap {
    Discard,
    Zeroes,
}

impl Qcow2 {
    pub(crate) fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), Error> {
        self.write_from(offset, data.len() as u64, &mut |at, piece| {
            piece.copy_from_slice(&data[at as usize..at as usize + piece.len()]);
            true
        })
    }

    /// Writes `len` bytes at `offset` taken from `source` (see `ImageFile::write_from`): in
    /// place straight from it, or into the new cluster's buffer.
    pub(crate) fn write_from(&mut self, offset: u64, len: u64, source: &mut Source<'_>) -> Result<(), Error> {
        if self.read_only {
            return Err(Error::ReadOnly);
        }
        let cs = self.cluster_size;
        let mut updates = Vec::new();
        let mut frees = Vec::new();
        let mut done = 0u64;
        while done < len {
            let pos = offset + done;
            let within = (pos % cs) as usize;
            let n = (cs - within as u64).min(len - done) as usize;
            let guest_cluster = pos >> self.cluster_bits;
            let state = self.lookup(guest_cluster)?;
            if let Some(host) = self.in_place(state)? {
                self.file.write_from(host + within as u64, n as u64, &mut |at, piece| source(done + at, piece))?;
            } else {
                let slot = self.slot(guest_cluster);
                let table = self.writable_l2(slot)?;
                let mut cluster = vec![0u8; cs as usize];
                if n != cs as usize {
                    let start = pos - within as u64;
                    self.read_cluster_part(start, state, &mut cluster)?;
                }
                if !source(done, &mut cluster[within..within + n]) {
                    return Err(Error::Transfer);
                }
                let (host, free) = match state {
                    // A preallocated zero cluster of our own is filled in place.
                    Cluster::Zero { prealloc: Some(host) } if self.refcount(host / cs)? == 1 => (host, None),
                    Cluster::Zero { prealloc: Some(host) } => (self.alloc_cluster()?, Some((host, cs))),
                    Cluster::Data { host, .. } => (self.alloc_cluster()?, Some((host, cs))),
                    Cluster::Compressed { host, len } => (self.alloc_cluster()?, Some((host, len))),
                    Cluster::Zero { prealloc: None } | Cluster::Unallocated => (self.alloc_cluster()?, None),
                };
                self.file.write_at(host, &cluster)?;
                updates.push(Update { table, index: slot.l2, value: entry::data_entry(host) });
                frees.extend(free);
            }
            done += n as u64;
        }
        self.commit(updates, frees, true)
    }

    /// The host offset to write a cluster in `state` in place at, if it may be.
    fn in_place(&mut self, state: Cluster) -> Result<Option<u64>, Error> {
        match state {
            Cluster::Data { host, copied: true } => Ok(Some(host)),
            Cluster::Data { host, copied: false } if self.refcount(host / self.cluster_size)? == 1 => Ok(Some(host)),
            _ => Ok(None),
        }
    }

    /// Points the L2 entries at their new clusters (after a flush, when data was written), then
    /// frees what they no longer reference (after another flush).
    fn commit(&mut self, updates: Vec<Update>, frees: Vec<(u64, u64)>, data_written: bool) -> Result<(), Error> {
        if !updates.is_empty() {
            if data_written {
                self.file.flush()?;
            }
            // Neighbouring entries of one table go in one write (each entry stands alone, so a
            // torn write leaves every entry old or new, both consistent).
            let mut start = 0;
            while start < updates.len() {
                let mut end = start + 1;
                while end < updates.len()
                    && updates[end].table == updates[start].table
                    && updates[end].index == updates[end - 1].index + 1
                {
                    end += 1;
                }
                let values: Vec<u64> = updates[start..end].iter().map(|u| u.value).collect();
                self.set_l2_entries(updates[start].table, updates[start].index, &values)?;
                start = end;
            }
        }
        if !frees.is_empty() {
            self.file.flush()?;
            self.inflate.forget();
            for (host, len) in frees {
                self.free_range(host, len)?;
            }
        }
        Ok(())
    }

    pub(crate) fn unmap(&mut self, offset: u64, len: u64, mode: Unmap) -> Result<(), Error> {
        if self.read_only {
            return Err(Error::ReadOnly);
        }
        let cs = self.cluster_size;
        let end = offset + len;
        let has_backing = self.backing.is_some();
        if self.header.version < 3 && has_backing {
            // No zero flag: unallocating would show the backing file.
            return match mode {
                Unmap::Zeroes => self.write_zero_bytes(offset, len),
                Unmap::Discard => Ok(()),
            };
        }
        // Whole clusters in the range; the disk's last cluster counts as whole when the range
        // reaches the end of the disk.
        let first_whole = offset.div_ceil(cs);
        let end_whole = if end == self.header.size { end.div_ceil(cs) } else { end / cs };
        if first_whole >= end_whole {
            return match mode {
                Unmap::Zeroes => self.write_zero_bytes(offset, len),
                Unmap::Discard => Ok(()),
            };
        }
        if mode == Unmap::Zeroes {
            self.write_zero_bytes(offset, first_whole * cs - offset)?;
            let tail = (end_whole * cs).min(end);
            self.write_zero_bytes(tail, end - tail)?;
        }
        // Version 3 with a backing file: the zero flag; otherwise unallocated reads as zeros.
        let target = if has_backing { entry::ZERO } else { 0 };
        let mut updates = Vec::new();
        let mut frees = Vec::new();
        let mut guest_cluster = first_whole;
        while guest_cluster < end_whole {
            if (!has_backing || mode == Unmap::Discard) && self.l2_missing(guest_cluster) {
                // No L2 table: nothing to free, and every cluster it would map reads as zeros
                // (or, for a discard, may keep reading from the backing file). Skipping it keeps
                // a guest's discard of a whole large disk quick.
                guest_cluster = self.next_l2_range(guest_cluster);
                continue;
            }
            let state = self.lookup(guest_cluster)?;
            let this = guest_cluster;
            guest_cluster += 1;
            let free = match state {
                // A discard may leave the backing file showing through: nothing is freed.
                Cluster::Unallocated if !has_backing || mode == Unmap::Discard => continue,
                Cluster::Zero { prealloc: None } => continue,
                Cluster::Unallocated => None,
                Cluster::Zero { prealloc: Some(host) } | Cluster::Data { host, .. } => Some((host, cs)),
                Cluster::Compressed { host, len } => Some((host, len)),
            };
            let slot = self.slot(this);
            let table = self.writable_l2(slot)?;
            updates.push(Update { table, index: slot.l2, value: target });
            frees.extend(free);
        }
        self.commit(updates, frees, false)
    }

    /// Writes zeros over `[offset, offset + len)`, a cluster at a time.
    fn write_zero_bytes(&mut self, offset: u64, len: u64) -> Result<(), Error> {
        let cs = self.cluster_size;
        let zeros = vec![0u8; cs.min(len) as usize];
        let mut done = 0;
        while done < len {
            let pos = offset + done;
            let n = (cs - pos % cs).min(len - done);
            self.write(pos, &zeros[..n as usize])?;
            done += n;
        }
        Ok(())
    }
}

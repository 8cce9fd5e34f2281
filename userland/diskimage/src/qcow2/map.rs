//! Guest cluster to host: the L1 table (in memory) and L2 tables (cached), looked up
//! ([`Qcow2::lookup`]), made writable ([`Qcow2::writable_l2`]: a new L2 table is counted,
//! written and flushed before the L1 entry points to it) and updated ([`Qcow2::set_l2_entries`],
//! written through).
//!
//! Not here: what an entry should become (`write.rs`), or shared L2 tables (internal
//! snapshots), which are refused for writing.

use alloc::format;
use alloc::vec;
use alloc::vec::Vec;

use super::entry::{self, Cluster, COPIED};
use super::Qcow2;
use crate::Error;

/// Where a guest cluster's entry lives: the L1 index and the index within its L2 table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Slot {
    pub l1: usize,
    pub l2: usize,
}

impl Qcow2 {
    pub(super) fn slot(&self, guest_cluster: u64) -> Slot {
        Slot {
            l1: (guest_cluster >> self.l2_bits) as usize,
            l2: (guest_cluster & ((1u64 << self.l2_bits) - 1)) as usize,
        }
    }

    /// Whether no L2 table maps `guest_cluster` (its L1 entry is empty or out of the table).
    pub(super) fn l2_missing(&self, guest_cluster: u64) -> bool {
        self.l1.get(self.slot(guest_cluster).l1).is_none_or(|&e| e & entry::OFFSET_MASK == 0)
    }

    /// The first guest cluster of the next L2 table's range.
    pub(super) fn next_l2_range(&self, guest_cluster: u64) -> u64 {
        ((guest_cluster >> self.l2_bits) + 1) << self.l2_bits
    }

    /// What guest cluster `guest_cluster` is.
    pub(super) fn lookup(&mut self, guest_cluster: u64) -> Result<Cluster, Error> {
        let slot = self.slot(guest_cluster);
        let Some(&l1_entry) = self.l1.get(slot.l1) else { return Ok(Cluster::Unallocated) };
        let Some(table) = entry::l1_table(l1_entry, self.cluster_size)? else {
            return Ok(Cluster::Unallocated);
        };
        let data = self.l2_cache.get(&mut *self.file, table)?;
        let raw = read_entry(data, slot.l2);
        entry::decode_l2(raw, self.cluster_bits)
    }

    /// The L2 table for `slot`, allocated if there is none; refused if it is shared.
    pub(super) fn writable_l2(&mut self, slot: Slot) -> Result<u64, Error> {
        let l1_entry = *self
            .l1
            .get(slot.l1)
            .ok_or_else(|| Error::corrupt(format!("L1 index {} is past the L1 table", slot.l1)))?;
        if let Some(table) = entry::l1_table(l1_entry, self.cluster_size)? {
            if l1_entry & COPIED == 0 && self.refcount(table / self.cluster_size)? != 1 {
                return Err(Error::Unsupported("writing an L2 table shared with an internal snapshot"));
            }
            return Ok(table);
        }
        // Counted, zeroed and flushed before the L1 entry points to it.
        let table = self.alloc_cluster()?;
        let zeros = vec![0u8; self.cluster_size as usize];
        self.file.write_at(table, &zeros)?;
        self.file.flush()?;
        let l1_entry = table | COPIED;
        self.file.write_at(self.header.l1_table_offset + slot.l1 as u64 * 8, &l1_entry.to_be_bytes())?;
        self.l1[slot.l1] = l1_entry;
        self.l2_cache.insert(table, zeros);
        Ok(table)
    }

    /// Writes entries `first..` of the L2 table at `table` (through the cache, then the file).
    pub(super) fn set_l2_entries(&mut self, table: u64, first: usize, values: &[u64]) -> Result<(), Error> {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_be_bytes()).collect();
        let data = self.l2_cache.get(&mut *self.file, table)?;
        let Some(dest) = data.get_mut(first * 8..first * 8 + bytes.len()) else {
            return Err(Error::corrupt(format!("L2 index {first} is past the table")));
        };
        dest.copy_from_slice(&bytes);
        self.file.write_at(table + first as u64 * 8, &bytes)
    }
}

fn read_entry(table: &[u8], index: usize) -> u64 {
    table.get(index * 8..index * 8 + 8).map_or(0, |b| {
        let mut x = [0u8; 8];
        x.copy_from_slice(b);
        u64::from_be_bytes(x)
    })
}

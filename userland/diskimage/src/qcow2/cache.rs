//! A small read cache of one-cluster tables (L2 tables, refcount blocks), least recently used
//! out first, bounded in bytes so a 2 MiB-cluster image cannot make it large.
//!
//! Not a write cache: every change is written to the file by the caller at the moment the
//! ordering rules allow (`qcow2::write`), and mirrored here with [`TableCache::get`]'s `&mut`.
//! So a crash never finds a change in this cache that the file lacks, or the other way round.

use alloc::vec;
use alloc::vec::Vec;

use crate::{Error, ImageFile};

struct Slot {
    offset: u64,
    data: Vec<u8>,
    last_used: u64,
}

pub struct TableCache {
    slots: Vec<Slot>,
    capacity: usize,
    cluster_size: usize,
    clock: u64,
}

impl TableCache {
    /// A cache of at most `budget` bytes of `cluster_size` tables (always at least one).
    pub fn new(cluster_size: usize, budget: usize) -> TableCache {
        TableCache { slots: Vec::new(), capacity: (budget / cluster_size).max(1), cluster_size, clock: 0 }
    }

    /// The table at `offset`, read from `file` if it is not cached.
    pub fn get(&mut self, file: &mut dyn ImageFile, offset: u64) -> Result<&mut [u8], Error> {
        self.clock += 1;
        let index = match self.slots.iter().position(|s| s.offset == offset) {
            Some(i) => i,
            None => {
                let mut data = vec![0u8; self.cluster_size];
                file.read_at(offset, &mut data)?;
                self.put(offset, data)
            }
        };
        let slot = &mut self.slots[index];
        slot.last_used = self.clock;
        Ok(&mut slot.data)
    }

    /// Caches `data` (a table just written) as the table at `offset`.
    pub fn insert(&mut self, offset: u64, data: Vec<u8>) {
        self.clock += 1;
        self.put(offset, data);
    }

    fn put(&mut self, offset: u64, data: Vec<u8>) -> usize {
        let slot = Slot { offset, data, last_used: self.clock };
        if let Some(i) = self.slots.iter().position(|s| s.offset == offset) {
            self.slots[i] = slot;
            return i;
        }
        if self.slots.len() < self.capacity {
            self.slots.push(slot);
            return self.slots.len() - 1;
        }
        let oldest = self.slots.iter().enumerate().min_by_key(|(_, s)| s.last_used).map_or(0, |(i, _)| i);
        self.slots[oldest] = slot;
        oldest
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemFile;

    #[test]
    fn evicts_the_least_recently_used() {
        let mut file = MemFile::new((0..4096u32).map(|i| (i / 512) as u8).collect());
        let mut cache = TableCache::new(512, 1024);
        assert_eq!(cache.get(&mut file, 0).unwrap()[0], 0);
        assert_eq!(cache.get(&mut file, 512).unwrap()[0], 1);
        cache.get(&mut file, 0).unwrap()[0] = 99; // mirrored change, kept while cached
        assert_eq!(cache.get(&mut file, 1024).unwrap()[0], 2); // evicts 512
        assert_eq!(cache.slots.len(), 2);
        assert_eq!(cache.get(&mut file, 0).unwrap()[0], 99);
        cache.insert(2048, vec![7; 512]);
        assert_eq!(cache.get(&mut file, 2048).unwrap()[0], 7);
    }
}

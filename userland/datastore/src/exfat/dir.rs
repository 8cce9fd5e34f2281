//! exFAT directories (spec section 6): loading a directory's entries, scanning them into file
//! entry sets (skipping deleted entries and sets whose checksum or shape is wrong, as spec 6.3.3
//! says an invalid set is to be treated), finding a name (NameHash first, then the up-cased name,
//! spec 7.6.4), finding free slots and growing a directory when there are none, and writing or
//! deleting a set. Path walking and the operations that combine these are in ops.rs.

use alloc::vec;
use alloc::vec::Vec;
use keel_block::BlockDevice;

use super::alloc::{cluster_total, Extent};
use super::entry::{FileSet, ENTRY_SIZE, IN_USE, TYPE_END, TYPE_FILE};
use super::ExfatVolume;
use crate::error::{Error, Result};

/// The largest directory this implementation loads (the spec allows 256 MiB, 6.2; a hostile
/// disk must not make the storage service allocate that much).
const MAX_DIR_BYTES: u64 = 64 << 20;

/// Where a directory's entries are: its first cluster, chain kind, and length (`None` for the
/// root, whose length is its FAT chain's, spec 7.6.6 does not apply to it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirRef {
    pub first: u32,
    pub no_fat_chain: bool,
    pub len: Option<u64>,
}

/// A file or directory found in a directory: where its entry set is, and what it says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub parent: DirRef,
    pub slot: u32,
    pub set: FileSet,
}

impl Node {
    /// This node as a directory to look into.
    pub fn as_dir(&self) -> Result<DirRef> {
        if !self.set.is_directory() {
            return Err(Error::NotADirectory);
        }
        Ok(DirRef {
            first: self.set.first_cluster,
            no_fat_chain: self.set.no_fat_chain,
            len: Some(self.set.data_length),
        })
    }

    /// Slots the set takes now.
    pub fn slots(&self) -> u32 {
        FileSet::slot_count(self.set.name.len()) as u32
    }
}

/// A directory's entries in memory.
pub struct LoadedDir {
    pub extents: Vec<Extent>,
    pub bytes: Vec<u8>,
}

impl LoadedDir {
    pub fn slot_count(&self) -> u32 {
        (self.bytes.len() / ENTRY_SIZE) as u32
    }

    fn slot(&self, slot: u32) -> &[u8] {
        let at = slot as usize * ENTRY_SIZE;
        &self.bytes[at..at + ENTRY_SIZE]
    }

    /// Every valid file entry set, in order, as (slot, set).
    pub fn files(&self) -> Vec<(u32, FileSet)> {
        let mut found = Vec::new();
        let mut slot = 0;
        while slot < self.slot_count() {
            let kind = self.slot(slot)[0];
            if kind == TYPE_END {
                break;
            }
            if kind == TYPE_FILE {
                let count = 1 + u32::from(self.slot(slot)[1]);
                let end = (slot as usize + count as usize) * ENTRY_SIZE;
                if end <= self.bytes.len() {
                    if let Ok(set) = FileSet::parse(&self.bytes[slot as usize * ENTRY_SIZE..end]) {
                        found.push((slot, set));
                        slot += count;
                        continue;
                    }
                }
            }
            slot += 1;
        }
        found
    }

    /// Whether each slot is taken: in use (spec 6.2.1.4), and before the end marker.
    fn used(&self) -> Vec<bool> {
        let mut used = vec![false; self.slot_count() as usize];
        for (slot, flag) in used.iter_mut().enumerate() {
            let kind = self.slot(slot as u32)[0];
            if kind == TYPE_END {
                break;
            }
            *flag = kind & IN_USE != 0;
        }
        used
    }

    /// The first run of `count` free slots that stays within one `unit` of slots (a disk block,
    /// so that writing the set is one atomic block write) when `count` fits in one; and the
    /// first end-of-directory slot before it, if any (those slots must be filled with unused
    /// entries first, or the set would sit past the end marker, spec 6.2.1.1).
    pub fn free_run(&self, count: u32, unit: u32) -> Option<(u32, Option<u32>)> {
        let used = self.used();
        let end_marker = self.bytes.chunks_exact(ENTRY_SIZE).position(|e| e[0] == TYPE_END).map(|p| p as u32);
        let n = used.len() as u32;
        let mut start = 0;
        while start + count <= n {
            let crosses = count <= unit && start / unit != (start + count - 1) / unit;
            if crosses {
                start = (start / unit + 1) * unit;
                continue;
            }
            match (start..start + count).find(|&s| used[s as usize]) {
                Some(taken) => start = taken + 1,
                None => return Some((start, end_marker.filter(|&e| e < start))),
            }
        }
        None
    }
}

impl<D: BlockDevice> ExfatVolume<D> {
    /// Read a directory's entries.
    pub(crate) fn load_dir(&mut self, dir: &DirRef) -> Result<LoadedDir> {
        let extents = self.extents_of(dir.first, dir.no_fat_chain, dir.len)?;
        let cs = self.geo.cluster_size();
        let total = cluster_total(&extents) * cs;
        if total > MAX_DIR_BYTES {
            return Err(Error::Unsupported("directory larger than 64 MiB"));
        }
        let mut bytes = vec![0u8; total as usize];
        let mut at = 0usize;
        for e in &extents {
            let len = (u64::from(e.count) * cs) as usize;
            self.disk.read(self.geo.cluster_offset(e.first), &mut bytes[at..at + len])?;
            at += len;
        }
        Ok(LoadedDir { extents, bytes })
    }

    /// Find `name` in a directory.
    pub(crate) fn find(&mut self, dir: &DirRef, name: &[u16]) -> Result<Option<Node>> {
        let loaded = self.load_dir(dir)?;
        Ok(self.find_in(&loaded, dir, name))
    }

    pub(crate) fn find_in(&self, loaded: &LoadedDir, dir: &DirRef, name: &[u16]) -> Option<Node> {
        let hash = self.upcase.name_hash(name);
        loaded
            .files()
            .into_iter()
            .find(|(_, set)| set.name_hash == hash && self.upcase.names_equal(&set.name, name))
            .map(|(slot, set)| Node { parent: *dir, slot, set })
    }

    /// Write `bytes` (whole entries) at `slot` of a directory with `extents`.
    pub(crate) fn write_slots(&mut self, extents: &[Extent], slot: u32, bytes: &[u8]) -> Result<()> {
        let cs = self.geo.cluster_size();
        let mut pos = u64::from(slot) * ENTRY_SIZE as u64;
        let mut done = 0usize;
        while done < bytes.len() {
            // Find the extent holding `pos`, then write up to its end in one request.
            let mut base = 0u64;
            let mut target = None;
            for e in extents {
                let len = u64::from(e.count) * cs;
                if pos < base + len {
                    target = Some((self.geo.cluster_offset(e.first) + (pos - base), base + len - pos));
                    break;
                }
                base += len;
            }
            let (disk, room) = target.ok_or(Error::Corrupt("directory entry past the directory's end"))?;
            let n = room.min((bytes.len() - done) as u64) as usize;
            self.disk.write(disk, &bytes[done..done + n])?;
            done += n;
            pos += n as u64;
        }
        Ok(())
    }

    /// Write a node's entry set where it is.
    pub(crate) fn store(&mut self, node: &Node) -> Result<()> {
        let extents = self.extents_of(node.parent.first, node.parent.no_fat_chain, node.parent.len)?;
        self.mark_dirty()?;
        self.write_slots(&extents, node.slot, &node.set.build())
    }

    /// Write a node's entry set after the FAT link `grow` returned, if any. The link goes
    /// first and durable: a cut before the entry set leaves a chain longer than the file
    /// (fsck: "more clusters are allocated"; the file reads as before), never one shorter than
    /// its entry set says.
    pub(crate) fn commit(&mut self, node: &Node, link: Option<(u32, u32)>) -> Result<()> {
        if let Some(link) = link {
            self.mark_dirty()?;
            self.fat_set(&[link])?;
            self.disk.flush()?;
        }
        self.store(node)
    }

    /// Mark a node's entry set deleted (spec 6.2.1.4: InUse cleared in every entry of the set).
    pub(crate) fn delete_set(&mut self, node: &Node) -> Result<()> {
        let loaded = self.load_dir(&node.parent)?;
        let from = node.slot as usize * ENTRY_SIZE;
        let to = from + node.slots() as usize * ENTRY_SIZE;
        let mut bytes =
            loaded.bytes.get(from..to).ok_or(Error::Corrupt("entry set past the directory's end"))?.to_vec();
        for entry in bytes.chunks_exact_mut(ENTRY_SIZE) {
            entry[0] &= !IN_USE;
        }
        self.mark_dirty()?;
        self.write_slots(&loaded.extents, node.slot, &bytes)
    }

    /// A run of `count` free slots in a directory, growing it by zeroed clusters when it has
    /// none; `owner` is the directory's own node (`None` for the root), whose entry set records
    /// the new length.
    pub(crate) fn reserve_slots(
        &mut self,
        dir: &mut DirRef,
        owner: Option<&mut Node>,
        count: u32,
    ) -> Result<(LoadedDir, u32)> {
        let unit = (u64::from(self.disk.dev.block_size()).min(self.geo.cluster_size()) / ENTRY_SIZE as u64) as u32;
        let mut loaded = self.load_dir(dir)?;
        if loaded.free_run(count, unit).is_none() {
            let cs = self.geo.cluster_size();
            let mut extents = loaded.extents.clone();
            let mut no_fat_chain = dir.no_fat_chain;
            let want = cluster_total(&extents) + (count as u64 * ENTRY_SIZE as u64).div_ceil(cs);
            let link = self.grow(&mut extents, &mut no_fat_chain, want, true)?;
            let new_len = cluster_total(&extents) * cs;
            if let Some(owner) = owner {
                owner.set.data_length = new_len;
                owner.set.valid_data_length = new_len;
                owner.set.no_fat_chain = no_fat_chain;
                self.commit(owner, link)?;
                self.disk.flush()?;
                *dir = owner.as_dir()?;
            } else if let Some(link) = link {
                // The root has no entry set: the link is its commit.
                self.fat_set(&[link])?;
                self.disk.flush()?;
            }
            loaded = self.load_dir(dir)?;
        }
        let (slot, end_marker) =
            loaded.free_run(count, unit).ok_or(Error::Corrupt("grown directory has no free slots"))?;
        if let Some(end) = end_marker {
            // Unused entries (InUse clear, spec 6.2.1.4) up to the set, made durable first.
            let mut filler = vec![0u8; (slot - end) as usize * ENTRY_SIZE];
            for entry in filler.chunks_exact_mut(ENTRY_SIZE) {
                entry[0] = TYPE_FILE & !IN_USE;
            }
            self.mark_dirty()?;
            self.write_slots(&loaded.extents, end, &filler)?;
            self.disk.flush()?;
            loaded.bytes[end as usize * ENTRY_SIZE..slot as usize * ENTRY_SIZE].copy_from_slice(&filler);
        }
        Ok((loaded, slot))
    }
}

//! Path operations on an exFAT volume: open, create, mkdir, stat, list, rename, remove. Each
//! walks the path from the root (no cache of directories between calls, so what the disk says
//! is what counts) and orders its writes so that a power cut leaves at worst lost clusters:
//! clusters before the entry set that points to them; on remove and rename, the old entry set
//! is deleted (and flushed) before clusters are freed or the new set is written.

use alloc::vec;
use alloc::vec::Vec;
use keel_block::BlockDevice;

use super::dir::{DirRef, Node};
use super::entry::{FileSet, ATTR_ARCHIVE, ATTR_DIRECTORY, ATTR_READ_ONLY, ENTRY_SIZE, IN_USE};
use super::{ExfatFile, ExfatVolume};
use crate::error::{Error, Result};
use crate::path::{check_name, components, name_to_string, split_last};
use crate::{DirEntry, Metadata};

impl Node {
    pub(crate) fn metadata(&self) -> Metadata {
        Metadata {
            is_dir: self.set.is_directory(),
            len: if self.set.is_directory() { 0 } else { self.set.data_length },
            read_only: self.set.attributes & ATTR_READ_ONLY != 0,
            modified: self.set.modified,
        }
    }
}

impl<D: BlockDevice> ExfatVolume<D> {
    /// Walk `names` from the root: the node found (`None`: the root itself) and the first
    /// clusters of the directories passed through (to refuse moving a directory into itself).
    fn walk(&mut self, names: &[&str]) -> Result<(Option<Node>, Vec<u32>)> {
        let mut node: Option<Node> = None;
        let mut through = vec![self.geo.root_cluster];
        for name in names {
            let dir = match &node {
                None => self.root_ref(),
                Some(n) => n.as_dir()?,
            };
            through.push(dir.first);
            let units = check_name(name)?;
            node = Some(self.find(&dir, &units)?.ok_or(Error::NotFound)?);
        }
        Ok((node, through))
    }

    fn dir_of(&self, node: &Option<Node>) -> Result<DirRef> {
        match node {
            None => Ok(self.root_ref()),
            Some(n) => n.as_dir(),
        }
    }

    /// Open a file or directory.
    pub fn open(&mut self, path: &str) -> Result<ExfatFile> {
        let names = components(path)?;
        let (node, _) = self.walk(&names)?;
        let extents = match &node {
            Some(n) if !n.set.is_directory() => {
                self.extents_of(n.set.first_cluster, n.set.no_fat_chain, Some(n.set.data_length))?
            }
            _ => Vec::new(),
        };
        Ok(ExfatFile { node, extents })
    }

    /// Stat a path.
    pub fn stat(&mut self, path: &str) -> Result<Metadata> {
        let names = components(path)?;
        Ok(match self.walk(&names)?.0 {
            None => Metadata { is_dir: true, len: 0, read_only: false, modified: 0 },
            Some(node) => node.metadata(),
        })
    }

    /// The entries of a directory, in on-disk order.
    pub fn list(&mut self, path: &str) -> Result<Vec<DirEntry>> {
        let names = components(path)?;
        let (node, _) = self.walk(&names)?;
        let dir = self.dir_of(&node)?;
        let loaded = self.load_dir(&dir)?;
        Ok(loaded
            .files()
            .into_iter()
            .map(|(slot, set)| {
                let node = Node { parent: dir, slot, set };
                DirEntry { name: name_to_string(&node.set.name), metadata: node.metadata() }
            })
            .collect())
    }

    /// Write a new entry set for `name` in the directory at `parent_names`.
    fn add_entry(&mut self, parent_names: &[&str], units: Vec<u16>, mut set: FileSet) -> Result<Node> {
        let (mut owner, _) = self.walk(parent_names)?;
        let mut dir = self.dir_of(&owner)?;
        set.name_hash = self.upcase.name_hash(&units);
        set.name = units;
        let (loaded, slot) =
            self.reserve_slots(&mut dir, owner.as_mut(), FileSet::slot_count(set.name.len()) as u32)?;
        let node = Node { parent: dir, slot, set };
        self.mark_dirty()?;
        self.write_slots(&loaded.extents, slot, &node.set.build())?;
        Ok(node)
    }

    fn check_absent(&mut self, parent_names: &[&str], units: &[u16]) -> Result<()> {
        let (owner, _) = self.walk(parent_names)?;
        let dir = self.dir_of(&owner)?;
        match self.find(&dir, units)? {
            Some(_) => Err(Error::AlreadyExists),
            None => Ok(()),
        }
    }

    fn new_set(&self, attributes: u16) -> FileSet {
        FileSet {
            attributes,
            created: self.timestamp,
            modified: self.timestamp,
            accessed: self.timestamp,
            no_fat_chain: false,
            first_cluster: 0,
            valid_data_length: 0,
            data_length: 0,
            name: Vec::new(),
            name_hash: 0,
        }
    }

    /// Create an empty file; `AlreadyExists` if the name is taken.
    pub fn create(&mut self, path: &str) -> Result<ExfatFile> {
        let (parent, name) = split_last(path)?;
        let units = check_name(name)?;
        self.check_absent(&parent, &units)?;
        let set = self.new_set(ATTR_ARCHIVE);
        let node = self.add_entry(&parent, units, set)?;
        Ok(ExfatFile { node: Some(node), extents: Vec::new() })
    }

    /// Create a directory (one zeroed cluster, allocated before its entry set is written).
    pub fn mkdir(&mut self, path: &str) -> Result<()> {
        let (parent, name) = split_last(path)?;
        let units = check_name(name)?;
        self.check_absent(&parent, &units)?;
        let mut extents = Vec::new();
        let mut no_fat_chain = false;
        self.grow(&mut extents, &mut no_fat_chain, 1, true)?;
        let mut set = self.new_set(ATTR_DIRECTORY);
        set.first_cluster = extents[0].first;
        set.no_fat_chain = no_fat_chain;
        set.data_length = self.geo.cluster_size();
        set.valid_data_length = set.data_length;
        match self.add_entry(&parent, units, set) {
            Ok(_) => Ok(()),
            Err(e) => {
                // Nothing points to the cluster: give it back (best effort; a failure leaves a
                // lost cluster).
                let _ = self.shrink(&mut extents, no_fat_chain, 0);
                Err(e)
            }
        }
    }

    /// Remove a file, or an empty directory: its entry set first (flushed), then its clusters.
    pub fn remove(&mut self, path: &str) -> Result<()> {
        let names = components(path)?;
        let node = self.walk(&names)?.0.ok_or(Error::InvalidName)?;
        if node.set.is_directory() {
            let dir = node.as_dir()?;
            if !self.load_dir(&dir)?.files().is_empty() {
                return Err(Error::DirectoryNotEmpty);
            }
        }
        let mut extents = self.extents_of(node.set.first_cluster, node.set.no_fat_chain, Some(node.set.data_length))?;
        self.delete_set(&node)?;
        self.disk.flush()?;
        self.shrink(&mut extents, node.set.no_fat_chain, 0)
    }

    /// Rename or move a file or directory. `to` must not exist (a case-only rename of the same
    /// entry is allowed). Within one directory, when the new set is no larger, it is rewritten in
    /// place in one write; otherwise the old set is deleted and flushed before the new one is
    /// written, so a power cut at worst loses the entry (its clusters become lost clusters),
    /// never leaves two entries sharing clusters.
    pub fn rename(&mut self, from: &str, to: &str) -> Result<()> {
        let from_names = components(from)?;
        let (to_parent, to_name) = split_last(to)?;
        let units = check_name(to_name)?;
        let node = self.walk(&from_names)?.0.ok_or(Error::InvalidName)?;
        let (mut owner, through) = self.walk(&to_parent)?;
        let mut dir = self.dir_of(&owner)?;
        if node.set.is_directory() && (through.contains(&node.set.first_cluster) || dir.first == node.set.first_cluster)
        {
            return Err(Error::InvalidMove);
        }
        if let Some(existing) = self.find(&dir, &units)? {
            if existing.parent.first != node.parent.first || existing.slot != node.slot {
                return Err(Error::AlreadyExists);
            }
        }
        let mut set = node.set.clone();
        set.name_hash = self.upcase.name_hash(&units);
        set.name = units;
        let new_slots = FileSet::slot_count(set.name.len()) as u32;
        if dir.first == node.parent.first && new_slots <= node.slots() {
            let loaded = self.load_dir(&node.parent)?;
            let mut bytes = set.build();
            let old_end = (node.slot + node.slots()) as usize * ENTRY_SIZE;
            let tail_start = node.slot as usize * ENTRY_SIZE + bytes.len();
            let mut tail = loaded
                .bytes
                .get(tail_start..old_end)
                .ok_or(Error::Corrupt("entry set past the directory's end"))?
                .to_vec();
            for entry in tail.chunks_exact_mut(ENTRY_SIZE) {
                entry[0] &= !IN_USE;
            }
            bytes.extend_from_slice(&tail);
            self.mark_dirty()?;
            return self.write_slots(&loaded.extents, node.slot, &bytes);
        }
        let (loaded, slot) = self.reserve_slots(&mut dir, owner.as_mut(), new_slots)?;
        self.delete_set(&node)?;
        self.disk.flush()?;
        self.write_slots(&loaded.extents, slot, &set.build())?;
        self.disk.flush()
    }
}

//! FAT32 path and file operations, ordered like exFAT's (see `exfat::ops`): clusters chained and
//! flushed before an entry points to them; an entry deleted and flushed before its clusters are
//! freed or a renamed entry written elsewhere. FAT has no ValidDataLength, so growing a file
//! zeroes the new bytes (with `write_zeroes`), and files stop at 4 GiB - 1.

use alloc::vec::Vec;
use keel_block::BlockDevice;

use super::dir::{build_entries, short_alias, FatFile, Node, ATTR_ARCHIVE, ATTR_DIRECTORY, ENTRY};
use super::FatVolume;
use crate::error::{Error, Result};
use crate::path::{check_name, components, name_to_string, split_last};
use crate::{DirEntry, Metadata};

impl<D: BlockDevice> FatVolume<D> {
    /// Walk `names`: the node (`None`: the root) and the directories passed through.
    fn walk(&mut self, names: &[&str]) -> Result<(Option<Node>, Vec<u32>)> {
        let mut node: Option<Node> = None;
        let mut through = alloc::vec![self.root_cluster];
        for name in names {
            let dir = self.dir_cluster(&node)?;
            through.push(dir);
            check_name(name)?;
            node = Some(self.find(dir, name)?.ok_or(Error::NotFound)?);
        }
        Ok((node, through))
    }

    fn dir_cluster(&self, node: &Option<Node>) -> Result<u32> {
        match node {
            None => Ok(self.root_cluster),
            Some(n) if n.is_dir() => match n.first_cluster() {
                // Section 6.1: ".." of a root child holds 0; a directory entry never does.
                0 => Err(Error::Corrupt("directory without a cluster")),
                c => Ok(c),
            },
            Some(_) => Err(Error::NotADirectory),
        }
    }

    pub fn open(&mut self, path: &str) -> Result<FatFile> {
        let names = components(path)?;
        let (node, _) = self.walk(&names)?;
        let clusters = match &node {
            Some(n) if !n.is_dir() => {
                let chain = self.chain(n.first_cluster())?;
                if (chain.len() as u64) < n.size().div_ceil(self.cluster_size()) {
                    return Err(Error::Corrupt("cluster chain is shorter than the file"));
                }
                chain
            }
            _ => Vec::new(),
        };
        Ok(FatFile { node, clusters })
    }

    pub fn stat(&mut self, path: &str) -> Result<Metadata> {
        Ok(self.open(path)?.metadata())
    }

    pub fn list(&mut self, path: &str) -> Result<Vec<DirEntry>> {
        let names = components(path)?;
        let (node, _) = self.walk(&names)?;
        let dir = self.dir_cluster(&node)?;
        let loaded = self.load_dir(dir)?;
        Ok(loaded
            .nodes(dir)
            .iter()
            .map(|n| DirEntry { name: name_to_string(&n.name), metadata: n.metadata() })
            .collect())
    }

    /// A short entry for a new file or directory: attributes, first cluster, times now.
    fn new_short(&self, attr: u8, first_cluster: u32) -> [u8; 32] {
        let mut short = [0u8; 32];
        short[11] = attr;
        let (date, time) = ((self.timestamp >> 16) as u16, self.timestamp as u16);
        for at in [14, 22] {
            short[at..at + 2].copy_from_slice(&time.to_le_bytes());
        }
        for at in [16, 18, 24] {
            short[at..at + 2].copy_from_slice(&date.to_le_bytes());
        }
        short[20..22].copy_from_slice(&((first_cluster >> 16) as u16).to_le_bytes());
        short[26..28].copy_from_slice(&(first_cluster as u16).to_le_bytes());
        short
    }

    /// Write a new entry (long name, then `short` under a fresh alias) for `name` in `dir`, in
    /// one write.
    fn add_entry(&mut self, dir: u32, name: &str, mut short: [u8; 32]) -> Result<Node> {
        let units = check_name(name)?;
        let loaded = self.load_dir(dir)?;
        let taken: Vec<[u8; 11]> =
            loaded.bytes.chunks_exact(ENTRY).map(|e| e[..11].try_into().unwrap_or([0; 11])).collect();
        short[..11].copy_from_slice(&short_alias(name, &taken)?);
        // Section 6.1: NTRes case bits do not apply to an alias.
        short[12] = 0;
        let bytes = build_entries(&units, &short);
        let count = (bytes.len() / ENTRY) as u32;
        let (loaded, slot) = self.reserve(dir, count)?;
        self.write_slots(&loaded.clusters, slot, &bytes)?;
        Ok(Node { dir, first_slot: slot, short_slot: slot + count - 1, name: units, short })
    }

    pub fn create(&mut self, path: &str) -> Result<FatFile> {
        let (parent, name) = split_last(path)?;
        check_name(name)?;
        let (owner, _) = self.walk(&parent)?;
        let dir = self.dir_cluster(&owner)?;
        if self.find(dir, name)?.is_some() {
            return Err(Error::AlreadyExists);
        }
        self.ensure_writable()?;
        let node = self.add_entry(dir, name, self.new_short(ATTR_ARCHIVE, 0))?;
        Ok(FatFile { node: Some(node), clusters: Vec::new() })
    }

    fn ensure_writable(&self) -> Result<()> {
        if self.disk.read_only() {
            Err(Error::ReadOnly)
        } else {
            Ok(())
        }
    }

    /// Create a directory: its cluster with `.` and `..` (section 6.1) first, then its entry.
    pub fn mkdir(&mut self, path: &str) -> Result<()> {
        let (parent, name) = split_last(path)?;
        check_name(name)?;
        let (owner, _) = self.walk(&parent)?;
        let dir = self.dir_cluster(&owner)?;
        if self.find(dir, name)?.is_some() {
            return Err(Error::AlreadyExists);
        }
        self.ensure_writable()?;
        let new = self.extend(0, 1, true)?;
        let cluster = new[0];
        let mut dots = alloc::vec![0u8; 2 * ENTRY];
        let parent_ref = if dir == self.root_cluster { 0 } else { dir };
        for (i, (name, target)) in [(b".          ", cluster), (b"..         ", parent_ref)].into_iter().enumerate() {
            let e = &mut dots[i * ENTRY..(i + 1) * ENTRY];
            e[..11].copy_from_slice(name);
            e[11] = ATTR_DIRECTORY;
            e[20..22].copy_from_slice(&((target >> 16) as u16).to_le_bytes());
            e[26..28].copy_from_slice(&(target as u16).to_le_bytes());
        }
        self.disk.write(self.cluster_offset(cluster), &dots)?;
        self.disk.flush()?;
        self.add_entry(dir, name, self.new_short(ATTR_DIRECTORY, new[0]))?;
        Ok(())
    }

    pub fn remove(&mut self, path: &str) -> Result<()> {
        let names = components(path)?;
        let node = self.walk(&names)?.0.ok_or(Error::InvalidName)?;
        self.ensure_writable()?;
        let clusters = self.chain(node.first_cluster())?;
        if node.is_dir() && !self.load_dir(node.first_cluster())?.nodes(node.first_cluster()).is_empty() {
            return Err(Error::DirectoryNotEmpty);
        }
        self.delete_entries(&node)?;
        self.disk.flush()?;
        self.cut(&clusters, 0)
    }

    pub fn rename(&mut self, from: &str, to: &str) -> Result<()> {
        let from_names = components(from)?;
        let (to_parent, to_name) = split_last(to)?;
        let node = self.walk(&from_names)?.0.ok_or(Error::InvalidName)?;
        let (owner, through) = self.walk(&to_parent)?;
        let dir = self.dir_cluster(&owner)?;
        if node.is_dir() && (through.contains(&node.first_cluster()) || dir == node.first_cluster()) {
            return Err(Error::InvalidMove);
        }
        if let Some(existing) = self.find(dir, to_name)? {
            if existing.dir != node.dir || existing.short_slot != node.short_slot {
                return Err(Error::AlreadyExists);
            }
        }
        self.ensure_writable()?;
        self.delete_entries(&node)?;
        self.disk.flush()?;
        self.add_entry(dir, to_name, node.short)?;
        if node.is_dir() && dir != node.dir {
            // The moved directory's ".." names its new parent (0 for the root).
            let parent_ref = if dir == self.root_cluster { 0u32 } else { dir };
            let first =
                *self.chain(node.first_cluster())?.first().ok_or(Error::Corrupt("directory without a cluster"))?;
            let mut e = [0u8; 4];
            e[..2].copy_from_slice(&((parent_ref >> 16) as u16).to_le_bytes());
            e[2..].copy_from_slice(&(parent_ref as u16).to_le_bytes());
            let at = self.cluster_offset(first) + ENTRY as u64;
            self.disk.write(at + 20, &e[..2])?;
            self.disk.write(at + 26, &e[2..])?;
        }
        self.disk.flush()
    }

    pub fn read(&mut self, file: &FatFile, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let node = match &file.node {
            Some(n) if !n.is_dir() => n,
            _ => return Err(Error::IsADirectory),
        };
        if offset >= node.size() {
            return Ok(0);
        }
        let n = (buf.len() as u64).min(node.size() - offset) as usize;
        let cs = self.cluster_size();
        let mut done = 0;
        while done < n {
            let pos = offset + done as u64;
            let cluster =
                *file.clusters.get((pos / cs) as usize).ok_or(Error::Corrupt("file is longer than its chain"))?;
            let len = ((cs - pos % cs) as usize).min(n - done);
            self.disk.read(self.cluster_offset(cluster) + pos % cs, &mut buf[done..done + len])?;
            done += len;
        }
        Ok(n)
    }

    /// Write `data` at `offset` of the file's clusters (which cover it).
    fn write_clusters(&mut self, clusters: &[u32], offset: u64, data: Option<&[u8]>, len: u64) -> Result<()> {
        let cs = self.cluster_size();
        let mut done = 0u64;
        while done < len {
            let pos = offset + done;
            let cluster = *clusters.get((pos / cs) as usize).ok_or(Error::Corrupt("file is longer than its chain"))?;
            let n = (cs - pos % cs).min(len - done);
            let at = self.cluster_offset(cluster) + pos % cs;
            match data {
                Some(d) => self.disk.write(at, &d[done as usize..(done + n) as usize])?,
                None => self.disk.zero(at, n)?,
            }
            done += n;
        }
        Ok(())
    }

    fn grow_to(&mut self, file: &mut FatFile, end: u64) -> Result<()> {
        let want = end.div_ceil(self.cluster_size()) as usize;
        if want > file.clusters.len() {
            let last = file.clusters.last().copied().unwrap_or(0);
            let new = self.extend(last, want - file.clusters.len(), false)?;
            file.clusters.extend(new);
        }
        Ok(())
    }

    pub fn write(&mut self, file: &mut FatFile, offset: u64, data: &[u8]) -> Result<()> {
        if !matches!(&file.node, Some(n) if !n.is_dir()) {
            return Err(Error::IsADirectory);
        }
        if data.is_empty() {
            return Ok(());
        }
        self.ensure_writable()?;
        let end =
            offset.checked_add(data.len() as u64).filter(|&e| e <= u64::from(u32::MAX)).ok_or(Error::FileTooLarge)?;
        self.grow_to(file, end)?;
        let Some(node) = file.node.as_mut() else { return Err(Error::IsADirectory) };
        let size = node.size();
        if offset > size {
            let clusters = file.clusters.clone();
            self.write_clusters(&clusters, size, None, offset - size)?;
        }
        let clusters = file.clusters.clone();
        self.write_clusters(&clusters, offset, Some(data), data.len() as u64)?;
        let Some(node) = file.node.as_mut() else { return Err(Error::IsADirectory) };
        if end > size || node.first_cluster() != file.clusters[0] {
            node.set_size(end.max(size) as u32);
            node.set_first_cluster(file.clusters[0]);
            let node = node.clone();
            self.disk.flush()?;
            self.store(&node)?;
        }
        Ok(())
    }

    pub fn truncate(&mut self, file: &mut FatFile, len: u64) -> Result<()> {
        let size = match &file.node {
            Some(n) if !n.is_dir() => n.size(),
            _ => return Err(Error::IsADirectory),
        };
        if len > u64::from(u32::MAX) {
            return Err(Error::FileTooLarge);
        }
        self.ensure_writable()?;
        if len > size {
            self.grow_to(file, len)?;
            let clusters = file.clusters.clone();
            self.write_clusters(&clusters, size, None, len - size)?;
            self.disk.flush()?;
        }
        let keep = len.div_ceil(self.cluster_size()) as usize;
        let Some(node) = file.node.as_mut() else { return Err(Error::IsADirectory) };
        node.set_size(len as u32);
        node.set_first_cluster(if keep == 0 { 0 } else { file.clusters[0] });
        let node = node.clone();
        self.store(&node)?;
        self.disk.flush()?;
        let clusters = file.clusters.clone();
        self.cut(&clusters, keep)?;
        file.clusters.truncate(keep);
        Ok(())
    }
}

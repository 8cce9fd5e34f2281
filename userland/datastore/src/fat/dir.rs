//! FAT directories (FAT spec section 6 and the long-name extension, section 7): parsing
//! short entries and the long-name entries before them (checksum and ordinals checked; a
//! mismatch falls back to the short name, as the spec says), building a long name's entries
//! with a unique `~N` short alias, and finding free slots. Path operations are in ops.rs.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use keel_block::BlockDevice;

use super::FatVolume;
use crate::error::{Error, Result};
use crate::path::name_to_string;
use crate::Metadata;

pub const ENTRY: usize = 32;
pub const ATTR_READ_ONLY: u8 = 0x01;
pub const ATTR_VOLUME_ID: u8 = 0x08;
pub const ATTR_DIRECTORY: u8 = 0x10;
pub const ATTR_ARCHIVE: u8 = 0x20;
pub const ATTR_LONG_NAME: u8 = 0x0F;
pub const DELETED: u8 = 0xE5;
const UNITS_PER_LFN: usize = 13;
/// The UTF-16 positions of a long-name entry's 13 characters (section 7.1).
const LFN_OFFSETS: [usize; 13] = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];
/// A hostile directory must not make us allocate without bound (FAT allows 65536 entries).
const MAX_DIR_BYTES: usize = 65536 * ENTRY;

/// An open FAT file or directory.
#[derive(Clone, Debug)]
pub struct FatFile {
    pub(crate) node: Option<Node>,
    pub(crate) clusters: Vec<u32>,
}

impl FatFile {
    pub fn metadata(&self) -> Metadata {
        match &self.node {
            Some(n) => n.metadata(),
            None => Metadata { is_dir: true, len: 0, read_only: false, modified: 0 },
        }
    }
}

/// A directory entry found: the directory it is in (its first cluster), the slots of its
/// long-name entries and short entry, and what the short entry says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub dir: u32,
    pub first_slot: u32,
    pub short_slot: u32,
    pub name: Vec<u16>,
    pub short: [u8; 32],
}

impl Node {
    pub fn attr(&self) -> u8 {
        self.short[11]
    }
    pub fn is_dir(&self) -> bool {
        self.attr() & ATTR_DIRECTORY != 0
    }
    pub fn first_cluster(&self) -> u32 {
        u32::from(u16::from_le_bytes([self.short[20], self.short[21]])) << 16
            | u32::from(u16::from_le_bytes([self.short[26], self.short[27]]))
    }
    pub fn set_first_cluster(&mut self, cluster: u32) {
        self.short[20..22].copy_from_slice(&((cluster >> 16) as u16).to_le_bytes());
        self.short[26..28].copy_from_slice(&(cluster as u16).to_le_bytes());
    }
    pub fn size(&self) -> u64 {
        u64::from(u32::from_le_bytes([self.short[28], self.short[29], self.short[30], self.short[31]]))
    }
    pub fn set_size(&mut self, size: u32) {
        self.short[28..32].copy_from_slice(&size.to_le_bytes());
    }
    pub fn metadata(&self) -> Metadata {
        let date = u32::from(u16::from_le_bytes([self.short[24], self.short[25]]));
        let time = u32::from(u16::from_le_bytes([self.short[22], self.short[23]]));
        Metadata {
            is_dir: self.is_dir(),
            len: if self.is_dir() { 0 } else { self.size() },
            read_only: self.attr() & ATTR_READ_ONLY != 0,
            modified: date << 16 | time,
        }
    }
}

/// The short-name checksum the long-name entries carry (section 7.2).
pub fn short_checksum(name: &[u8]) -> u8 {
    name[..11].iter().fold(0u8, |sum, &b| sum.rotate_right(1).wrapping_add(b))
}

/// A short entry's name as text: "NAME.EXT", lower-cased where NTRes says so.
fn short_name_text(e: &[u8]) -> Vec<u16> {
    let mut base: Vec<u8> = e[0..8].to_vec();
    if base[0] == 0x05 {
        base[0] = 0xE5;
    }
    let lower = |bytes: &[u8], on: bool| -> Vec<u16> {
        let text = bytes.iter().rev().skip_while(|&&b| b == b' ').collect::<Vec<_>>();
        text.into_iter().rev().map(|&b| u16::from(if on { b.to_ascii_lowercase() } else { b })).collect()
    };
    let mut name = lower(&base, e[12] & 0x08 != 0);
    let ext = lower(&e[8..11], e[12] & 0x10 != 0);
    if !ext.is_empty() {
        name.push(u16::from(b'.'));
        name.extend(ext);
    }
    name
}

/// A directory's bytes and clusters.
pub struct LoadedDir {
    pub clusters: Vec<u32>,
    pub bytes: Vec<u8>,
}

impl LoadedDir {
    /// Every file and directory in it (not `.`, `..` or the volume label).
    pub fn nodes(&self, dir: u32) -> Vec<Node> {
        let mut out = Vec::new();
        let mut long: Vec<(u8, [u16; 13], u8)> = Vec::new();
        for (slot, e) in self.bytes.chunks_exact(ENTRY).enumerate() {
            match e[0] {
                0 => break,
                DELETED => {
                    long.clear();
                    continue;
                }
                _ => {}
            }
            if e[11] & 0x3F == ATTR_LONG_NAME {
                if e[0] & 0x40 != 0 {
                    long.clear();
                }
                let mut units = [0u16; 13];
                for (i, &at) in LFN_OFFSETS.iter().enumerate() {
                    units[i] = u16::from_le_bytes([e[at], e[at + 1]]);
                }
                long.push((e[0] & 0x1F, units, e[13]));
                continue;
            }
            if e[11] & ATTR_VOLUME_ID != 0 || e[0] == b'.' {
                long.clear();
                continue;
            }
            // Long entries are valid when numbered N..1 down to this entry, all carrying its
            // checksum (section 7.2); otherwise the short name stands.
            let sum = short_checksum(e);
            let n = long.len();
            let valid = n > 0
                && n <= 20
                && long.iter().enumerate().all(|(i, (ord, _, s))| usize::from(*ord) == n - i && *s == sum);
            let name = if valid {
                let mut units: Vec<u16> = long.iter().rev().flat_map(|(_, u, _)| u.iter().copied()).collect();
                if let Some(end) = units.iter().position(|&u| u == 0) {
                    units.truncate(end);
                }
                units
            } else {
                short_name_text(e)
            };
            let first_slot = if valid { slot as u32 - n as u32 } else { slot as u32 };
            let mut short = [0u8; 32];
            short.copy_from_slice(e);
            if !name.is_empty() {
                out.push(Node { dir, first_slot, short_slot: slot as u32, name, short });
            }
            long.clear();
        }
        out
    }

    fn slot_count(&self) -> u32 {
        (self.bytes.len() / ENTRY) as u32
    }

    /// A run of `count` free slots within one `unit` (when it fits), and the end marker before
    /// it if the run lies past the end of the directory (those slots get `DELETED` first).
    pub fn free_run(&self, count: u32, unit: u32) -> Option<(u32, Option<u32>)> {
        let end = self.bytes.chunks_exact(ENTRY).position(|e| e[0] == 0).map(|p| p as u32);
        let used = |s: u32| {
            let b = self.bytes[s as usize * ENTRY];
            end.is_none_or(|end| s < end) && b != DELETED
        };
        let mut start = 0;
        while start + count <= self.slot_count() {
            if count <= unit && start / unit != (start + count - 1) / unit {
                start = (start / unit + 1) * unit;
                continue;
            }
            match (start..start + count).find(|&s| used(s)) {
                Some(taken) => start = taken + 1,
                None => return Some((start, end.filter(|&e| e < start))),
            }
        }
        None
    }
}

/// The short-name characters allowed as they are (section 6.1).
fn short_char(c: char) -> Option<u8> {
    match c {
        'A'..='Z' | '0'..='9' => Some(c as u8),
        'a'..='z' => Some(c.to_ascii_uppercase() as u8),
        '!' | '#' | '$' | '%' | '&' | '\'' | '(' | ')' | '-' | '@' | '^' | '_' | '`' | '{' | '}' | '~' => Some(c as u8),
        ' ' | '.' => None,
        _ => Some(b'_'),
    }
}

/// A `BASE~N.EXT` alias for `name` not among `taken` (section 6.1's numeric tail).
pub fn short_alias(name: &str, taken: &[[u8; 11]]) -> Result<[u8; 11]> {
    let (stem, ext) = match name.rfind('.') {
        Some(dot) if dot > 0 => (&name[..dot], &name[dot + 1..]),
        _ => (name, ""),
    };
    let base: Vec<u8> = stem.chars().filter_map(short_char).take(6).collect();
    let ext: Vec<u8> = ext.chars().filter_map(short_char).take(3).collect();
    for n in 1..1_000_000u32 {
        let tail = alloc::format!("~{n}");
        let keep = base.len().min(8 - tail.len());
        let mut short = [b' '; 11];
        let stem: Vec<u8> = if base.is_empty() { b"KEEL".to_vec() } else { base[..keep].to_vec() };
        let stem = &stem[..stem.len().min(8 - tail.len())];
        short[..stem.len()].copy_from_slice(stem);
        short[stem.len()..stem.len() + tail.len()].copy_from_slice(tail.as_bytes());
        short[8..8 + ext.len()].copy_from_slice(&ext);
        if !taken.contains(&short) {
            return Ok(short);
        }
    }
    Err(Error::NoSpace)
}

/// A file's long-name entries and short entry (section 7.1: last part first, ordinal N|0x40).
pub fn build_entries(name: &[u16], short: &[u8; 32]) -> Vec<u8> {
    let parts = name.len().div_ceil(UNITS_PER_LFN);
    let sum = short_checksum(short);
    let mut out = vec![0u8; (parts + 1) * ENTRY];
    for part in 0..parts {
        let ord = parts - part;
        let e = &mut out[part * ENTRY..(part + 1) * ENTRY];
        e[0] = ord as u8 | if part == 0 { 0x40 } else { 0 };
        e[11] = ATTR_LONG_NAME;
        e[13] = sum;
        for (i, &at) in LFN_OFFSETS.iter().enumerate() {
            let index = (ord - 1) * UNITS_PER_LFN + i;
            // After the name: one 0x0000, then 0xFFFF padding.
            let unit = match index.cmp(&name.len()) {
                core::cmp::Ordering::Less => name[index],
                core::cmp::Ordering::Equal => 0,
                core::cmp::Ordering::Greater => 0xFFFF,
            };
            e[at..at + 2].copy_from_slice(&unit.to_le_bytes());
        }
    }
    out[parts * ENTRY..].copy_from_slice(short);
    out
}

impl<D: BlockDevice> FatVolume<D> {
    pub(crate) fn load_dir(&mut self, first: u32) -> Result<LoadedDir> {
        let clusters = self.chain(first)?;
        let cs = self.cluster_size() as usize;
        if clusters.len() * cs > MAX_DIR_BYTES {
            return Err(Error::Unsupported("directory larger than 2 MiB"));
        }
        let mut bytes = vec![0u8; clusters.len() * cs];
        for (i, &c) in clusters.iter().enumerate() {
            self.disk.read(self.cluster_offset(c), &mut bytes[i * cs..(i + 1) * cs])?;
        }
        Ok(LoadedDir { clusters, bytes })
    }

    /// Write whole entries at `slot` of a directory with `clusters`.
    pub(crate) fn write_slots(&mut self, clusters: &[u32], slot: u32, bytes: &[u8]) -> Result<()> {
        let cs = self.cluster_size();
        let mut pos = u64::from(slot) * ENTRY as u64;
        let mut done = 0;
        while done < bytes.len() {
            let cluster = *clusters.get((pos / cs) as usize).ok_or(Error::Corrupt("entry past the directory's end"))?;
            let within = pos % cs;
            let n = ((cs - within) as usize).min(bytes.len() - done);
            self.disk.write(self.cluster_offset(cluster) + within, &bytes[done..done + n])?;
            done += n;
            pos += n as u64;
        }
        Ok(())
    }

    /// Rewrite a node's short entry where it is.
    pub(crate) fn store(&mut self, node: &Node) -> Result<()> {
        let clusters = self.chain(node.dir)?;
        let short = node.short;
        self.write_slots(&clusters, node.short_slot, &short)
    }

    /// Mark all of a node's entries deleted.
    pub(crate) fn delete_entries(&mut self, node: &Node) -> Result<()> {
        let clusters = self.chain(node.dir)?;
        for slot in node.first_slot..=node.short_slot {
            self.write_slots(&clusters, slot, &[DELETED])?;
        }
        Ok(())
    }

    /// Find a name (case-insensitive, simple case folding) in a directory.
    pub(crate) fn find(&mut self, dir: u32, name: &str) -> Result<Option<Node>> {
        let loaded = self.load_dir(dir)?;
        let wanted: String = name.chars().flat_map(char::to_uppercase).collect();
        Ok(loaded
            .nodes(dir)
            .into_iter()
            .find(|n| name_to_string(&n.name).chars().flat_map(char::to_uppercase).eq(wanted.chars())))
    }

    /// Reserve `count` slots in directory `dir`, growing it by a zeroed cluster if needed.
    pub(crate) fn reserve(&mut self, dir: u32, count: u32) -> Result<(LoadedDir, u32)> {
        let unit = (u64::from(self.disk.dev.block_size()).min(self.cluster_size()) / ENTRY as u64) as u32;
        let mut loaded = self.load_dir(dir)?;
        if loaded.free_run(count, unit).is_none() {
            let last = *loaded.clusters.last().ok_or(Error::Corrupt("directory without clusters"))?;
            let need = (u64::from(count) * ENTRY as u64).div_ceil(self.cluster_size()) as usize;
            self.extend(last, need, true)?;
            self.disk.flush()?;
            loaded = self.load_dir(dir)?;
        }
        let (slot, end) = loaded.free_run(count, unit).ok_or(Error::Corrupt("grown directory has no free slots"))?;
        if let Some(end) = end {
            let filler = vec![DELETED; 1];
            for s in end..slot {
                self.write_slots(&loaded.clusters, s, &filler)?;
                loaded.bytes[s as usize * ENTRY] = DELETED;
            }
            self.disk.flush()?;
        }
        Ok((loaded, slot))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_are_unique_and_long_names_round_trip() {
        let a = short_alias("My Document.text", &[]).unwrap();
        assert_eq!(&a, b"MYDOCU~1TEX");
        assert_eq!(&short_alias("My Document.text", &[a]).unwrap(), b"MYDOCU~2TEX");
        assert_eq!(&short_alias(".hidden", &[]).unwrap(), b"HIDDEN~1   ");
        let name: Vec<u16> = "a name of exactly 27 chars!".encode_utf16().collect();
        let mut short = [0u8; 32];
        short[..11].copy_from_slice(&a);
        short[11] = ATTR_ARCHIVE;
        let bytes = build_entries(&name, &short);
        assert_eq!(bytes.len(), 4 * ENTRY);
        let dir = LoadedDir { clusters: vec![2], bytes };
        let nodes = dir.nodes(2);
        assert_eq!(nodes.len(), 1);
        assert_eq!(nodes[0].name, name);
        assert_eq!((nodes[0].first_slot, nodes[0].short_slot), (0, 3));
    }
}

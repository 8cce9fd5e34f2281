//! Reading, writing and truncating exFAT files at any u64 offset. ValidDataLength (spec 7.6.5)
//! makes growth cheap: truncating up allocates clusters (contiguous where the bitmap allows, so
//! the file stays NoFatChain) without writing them, reads at or past ValidDataLength return
//! zeros, and a write past it zeroes only the gap, with one `write_zeroes` per run. A write is
//! ordered: clusters allocated and flushed, data written, then flushed again before the entry
//! set that makes it part of the file is written. It does not cache file data.

use alloc::vec::Vec;
use keel_block::BlockDevice;

use super::alloc::{cluster_total, Extent};
use super::boot::Geometry;
use super::dir::Node;
use super::{ExfatFile, ExfatVolume};
use crate::error::{Error, Result};
use crate::Metadata;

impl ExfatFile {
    /// Size, kind and attributes as of the last operation through this handle.
    pub fn metadata(&self) -> Metadata {
        match &self.node {
            Some(node) => node.metadata(),
            None => Metadata { is_dir: true, len: 0, read_only: false, modified: 0 },
        }
    }

    fn file_node(&self) -> Result<&Node> {
        match &self.node {
            Some(node) if !node.set.is_directory() => Ok(node),
            _ => Err(Error::IsADirectory),
        }
    }
}

/// The disk byte ranges `(offset, len)` holding file bytes `offset..offset + len`, in order,
/// found as they are used (a read allocates nothing: this runs on every storage request). A
/// file whose clusters end before the range does gives an error as its last item.
struct Runs<'a> {
    geo: Geometry,
    extents: core::slice::Iter<'a, Extent>,
    /// The file offset where the next extent starts.
    base: u64,
    pos: u64,
    end: u64,
    failed: bool,
}

fn runs(geo: Geometry, extents: &[Extent], offset: u64, len: u64) -> Runs<'_> {
    Runs { geo, extents: extents.iter(), base: 0, pos: offset, end: offset.saturating_add(len), failed: false }
}

impl Iterator for Runs<'_> {
    type Item = Result<(u64, u64)>;

    fn next(&mut self) -> Option<Result<(u64, u64)>> {
        while self.pos < self.end {
            let Some(e) = self.extents.next() else {
                if self.failed {
                    return None;
                }
                self.failed = true;
                return Some(Err(Error::Corrupt("file is longer than its clusters")));
            };
            let (base, e_len) = (self.base, u64::from(e.count) * self.geo.cluster_size());
            self.base += e_len;
            if self.pos < base + e_len {
                let n = (base + e_len - self.pos).min(self.end - self.pos);
                let run = (self.geo.cluster_offset(e.first) + (self.pos - base), n);
                self.pos += n;
                return Some(Ok(run));
            }
        }
        None
    }
}

/// Every run of a range, or the error, before any is used (writes check the whole range first).
fn all_runs(geo: Geometry, extents: &[Extent], offset: u64, len: u64) -> Result<Vec<(u64, u64)>> {
    runs(geo, extents, offset, len).collect()
}

impl<D: BlockDevice> ExfatVolume<D> {
    /// Read up to `buf.len()` bytes at `offset`; returns how many (0 at or past the end).
    pub fn read(&mut self, file: &ExfatFile, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let set = &file.file_node()?.set;
        if offset >= set.data_length {
            return Ok(0);
        }
        let n = (buf.len() as u64).min(set.data_length - offset);
        let valid = set.valid_data_length.saturating_sub(offset).min(n);
        let mut at = 0usize;
        for run in runs(self.geo, &file.extents, offset, valid) {
            let (disk, len) = run?;
            self.disk.read(disk, &mut buf[at..at + len as usize])?;
            at += len as usize;
        }
        // Spec 7.6.5: bytes past ValidDataLength read as zero.
        buf[valid as usize..n as usize].fill(0);
        Ok(n as usize)
    }

    /// Write all of `data` at `offset`, growing the file as needed. On an error the handle is
    /// as it was (clusters allocated for the failed write are lost clusters, never part of it).
    pub fn write(&mut self, file: &mut ExfatFile, offset: u64, data: &[u8]) -> Result<()> {
        file.file_node()?;
        if data.is_empty() {
            return Ok(());
        }
        let end = offset.checked_add(data.len() as u64).ok_or(Error::FileTooLarge)?;
        let ExfatFile { node: Some(node), extents } = file else { return Err(Error::IsADirectory) };
        // An overwrite of bytes the file already holds (every guest disk write to an image once
        // it is written) changes no metadata: no copy to restore, no list of runs to check
        // first, as the clusters are known to cover the range (so no run can fail midway).
        if end <= node.set.valid_data_length && end.div_ceil(self.geo.cluster_size()) <= cluster_total(extents) {
            self.mark_dirty()?;
            let mut at = 0usize;
            for run in runs(self.geo, extents, offset, data.len() as u64) {
                let (disk, len) = run?;
                self.disk.write(disk, &data[at..at + len as usize])?;
                at += len as usize;
            }
            return Ok(());
        }
        let saved = (node.set.clone(), extents.clone());
        let result = self.write_at(node, extents, offset, end, data);
        if result.is_err() {
            (node.set, *extents) = saved;
        }
        result
    }

    fn write_at(
        &mut self,
        node: &mut Node,
        extents: &mut Vec<Extent>,
        offset: u64,
        end: u64,
        data: &[u8],
    ) -> Result<()> {
        let cs = self.geo.cluster_size();
        let before = node.set.clone();
        let mut link = None;
        if end.div_ceil(cs) > cluster_total(extents) {
            link = self.grow(extents, &mut node.set.no_fat_chain, end.div_ceil(cs), false)?;
            node.set.first_cluster = extents[0].first;
        }
        self.mark_dirty()?;
        let set = &mut node.set;
        if offset > set.valid_data_length {
            for (disk, len) in all_runs(self.geo, extents, set.valid_data_length, offset - set.valid_data_length)? {
                self.disk.zero(disk, len)?;
            }
        }
        let mut at = 0usize;
        for (disk, len) in all_runs(self.geo, extents, offset, data.len() as u64)? {
            self.disk.write(disk, &data[at..at + len as usize])?;
            at += len as usize;
        }
        set.valid_data_length = set.valid_data_length.max(end);
        set.data_length = set.data_length.max(end);
        if *set != before {
            set.modified = self.timestamp;
            // The data (and zeroed gap) is durable before the entry set claims it.
            self.disk.flush()?;
            self.commit(node, link)?;
        }
        Ok(())
    }

    /// Set the file's length. Growing allocates without writing data (ValidDataLength stays);
    /// shrinking writes the smaller entry set first, then frees the clusters past the end. On an
    /// error the handle is as it was.
    pub fn truncate(&mut self, file: &mut ExfatFile, len: u64) -> Result<()> {
        file.file_node()?;
        let ExfatFile { node: Some(node), extents } = file else { return Err(Error::IsADirectory) };
        if len == node.set.data_length {
            return Ok(());
        }
        let saved = (node.set.clone(), extents.clone());
        let result = self.truncate_to(node, extents, len);
        if result.is_err() {
            (node.set, *extents) = saved;
        }
        result
    }

    fn truncate_to(&mut self, node: &mut Node, extents: &mut Vec<Extent>, len: u64) -> Result<()> {
        let cs = self.geo.cluster_size();
        let old_no_fat_chain = node.set.no_fat_chain;
        let mut link = None;
        if len > node.set.data_length {
            link = self.grow(extents, &mut node.set.no_fat_chain, len.div_ceil(cs), false)?;
            node.set.first_cluster = extents[0].first;
            node.set.data_length = len;
        } else {
            node.set.data_length = len;
            node.set.valid_data_length = node.set.valid_data_length.min(len);
            if len == 0 {
                node.set.first_cluster = 0;
                node.set.no_fat_chain = false;
            }
        }
        node.set.modified = self.timestamp;
        self.commit(node, link)?;
        if len.div_ceil(cs) < cluster_total(extents) {
            self.shrink(extents, old_no_fat_chain, len.div_ceil(cs))
        } else {
            self.disk.flush()
        }
    }
}

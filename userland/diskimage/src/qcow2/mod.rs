//! qcow2 images, versions 2 and 3 (QEMU's docs/interop/qcow2.txt, "the spec" in comments):
//! opening with every table checked against the file ([`Qcow2::open`]), reading through L1/L2
//! tables to data, zero, compressed and backing clusters, and writing in the order that keeps
//! the image consistent across a crash (`write.rs` says the order).
//!
//! Split by concern: `header` (header and extensions), `entry` (bit layouts), `cache` (table read
//! cache), `refcount` (refcounts and cluster allocation), `map` (L1/L2 lookups and updates),
//! `read`, `write` (writes, discard, write-zeroes), `compressed` (inflate), `create`.
//!
//! Not supported, refused at open with a clear error: encryption, external data files, extended
//! L2 entries, zstd compression, unknown incompatible features. Internal snapshots are neither
//! read nor written (an image that has some opens read-only); compressed clusters are read, and
//! rewritten uncompressed when a guest writes to them.

mod cache;
mod compressed;
pub(crate) mod create;
pub(crate) mod entry;
pub(crate) mod header;
mod map;
mod read;
mod refcount;
pub(crate) mod write;

#[cfg(test)]
mod tests;

use alloc::boxed::Box;
use alloc::collections::BTreeSet;
use alloc::format;
use alloc::vec;
use alloc::vec::Vec;

use crate::{Error, Image, ImageFile, ReadOnlyReason};
use cache::TableCache;
use header::Header;

/// QEMU's limits on table sizes (spec, "size" and "Host cluster management" notes): a larger
/// table is refused rather than read into memory.
const MAX_L1_BYTES: u64 = 32 << 20;
pub(crate) const MAX_REFTABLE_BYTES: u64 = 8 << 20;
/// Virtual sizes beyond 2^61 bytes are refused (QEMU cannot populate them either).
const MAX_VIRTUAL_SIZE: u64 = 1 << 61;
/// Memory for each table cache.
const CACHE_BUDGET: usize = 2 << 20;

/// An open qcow2 image.
pub(crate) struct Qcow2 {
    file: Box<dyn ImageFile>,
    header: Header,
    cluster_bits: u32,
    cluster_size: u64,
    /// log2 of the entries in an L2 table (8-byte entries in one cluster).
    l2_bits: u32,
    /// log2 of the entries in a refcount block.
    refblock_bits: u32,
    l1: Vec<u64>,
    reftable: Vec<u64>,
    reftable_offset: u64,
    reftable_clusters: u64,
    l2_cache: TableCache,
    refblock_cache: TableCache,
    backing: Option<Box<Image>>,
    read_only: bool,
    /// Where the search for a free cluster starts (a cluster index).
    free_hint: u64,
    /// Host byte ranges of metadata whose place is fixed by the header (header cluster, L1
    /// table, refcount table): never handed out by the allocator, whatever the refcounts say.
    fixed: Vec<(u64, u64)>,
    inflate: compressed::Inflater,
}

impl Qcow2 {
    /// Opens a qcow2 image; writable unless `read_only` (or a [`ReadOnlyReason`], returned, says
    /// it must not be written). The backing file, if any, is opened by the caller
    /// ([`Qcow2::backing_file`], [`Qcow2::set_backing`]).
    pub(crate) fn open(
        mut file: Box<dyn ImageFile>,
        read_only: bool,
    ) -> Result<(Qcow2, Option<ReadOnlyReason>), Error> {
        let file_len = file.len()?;
        let mut head = vec![0u8; 4096.min(file_len) as usize];
        file.read_at(0, &mut head)?;
        let cluster_bits = header::peek_cluster_bits(&head)?;
        let cluster_size = 1u64 << cluster_bits;
        if cluster_size > head.len() as u64 && file_len > head.len() as u64 {
            head = vec![0u8; cluster_size.min(file_len) as usize];
            file.read_at(0, &mut head)?;
        }
        let header = header::parse(&head)?;

        let reason = if read_only {
            None
        } else if header.incompatible & header::INCOMPAT_CORRUPT != 0 {
            Some(ReadOnlyReason::MarkedCorrupt)
        } else if header.incompatible & header::INCOMPAT_DIRTY != 0 {
            Some(ReadOnlyReason::Dirty)
        } else if header.nb_snapshots != 0 {
            Some(ReadOnlyReason::Snapshots)
        } else {
            None
        };
        let read_only = read_only || reason.is_some();

        if header.size > MAX_VIRTUAL_SIZE {
            return Err(Error::corrupt(format!("virtual size {:#x} is beyond 2^61 bytes", header.size)));
        }
        let l2_bits = cluster_bits - 3;
        let l1 = load_l1(&mut *file, &header, file_len, cluster_bits, l2_bits)?;
        let refblock_bits = cluster_bits + 3 - header.refcount_order;
        let reftable = load_reftable(&mut *file, &header, file_len, cluster_size)?;

        let mut image = Qcow2 {
            file,
            cluster_bits,
            cluster_size,
            l2_bits,
            refblock_bits,
            l1,
            reftable,
            reftable_offset: header.refcount_table_offset,
            reftable_clusters: u64::from(header.refcount_table_clusters),
            l2_cache: TableCache::new(cluster_size as usize, CACHE_BUDGET),
            refblock_cache: TableCache::new(cluster_size as usize, CACHE_BUDGET),
            backing: None,
            read_only,
            free_hint: 1,
            fixed: Vec::new(),
            inflate: compressed::Inflater::default(),
            header,
        };
        image.set_fixed();
        if !read_only && image.header.autoclear != 0 {
            // Unknown auto-clear bits must be cleared before writing (spec, "autoclear_features");
            // this crate knows none it keeps (it does not maintain bitmaps).
            image.file.write_at(header::AUTOCLEAR_FIELD, &0u64.to_be_bytes())?;
            image.file.flush()?;
            image.header.autoclear = 0;
        }
        Ok((image, reason))
    }

    /// The metadata whose place the header fixes.
    fn set_fixed(&mut self) {
        let cs = self.cluster_size;
        let round = |len: u64| len.div_ceil(cs) * cs;
        self.fixed = vec![
            (0, cs),
            (self.header.l1_table_offset, self.header.l1_table_offset + round(self.l1.len() as u64 * 8)),
            (self.reftable_offset, self.reftable_offset + self.reftable_clusters * cs),
        ];
    }

    pub(crate) fn size(&self) -> u64 {
        self.header.size
    }

    pub(crate) fn version(&self) -> u32 {
        self.header.version
    }

    pub(crate) fn cluster_size(&self) -> u64 {
        self.cluster_size
    }

    /// The backing file's name as the image records it, and its recorded format.
    pub(crate) fn backing_file(&self) -> Option<(&str, Option<&str>)> {
        self.header.backing_file.as_deref().map(|name| (name, self.header.backing_format.as_deref()))
    }

    pub(crate) fn set_backing(&mut self, backing: Image) {
        self.backing = Some(Box::new(backing));
    }

    pub(crate) fn backing(&self) -> Option<&Image> {
        self.backing.as_deref()
    }

    pub(crate) fn flush(&mut self) -> Result<(), Error> {
        self.file.flush()
    }
}

/// Reads the L1 table: aligned, within QEMU's size limit and the file, large enough for the
/// virtual size, and every entry's offset aligned.
fn load_l1(
    file: &mut dyn ImageFile,
    h: &Header,
    file_len: u64,
    cluster_bits: u32,
    l2_bits: u32,
) -> Result<Vec<u64>, Error> {
    let cluster_size = 1u64 << cluster_bits;
    let bytes = u64::from(h.l1_size) * 8;
    if bytes > MAX_L1_BYTES {
        return Err(Error::corrupt(format!("L1 table of {} entries is above 32 MiB", h.l1_size)));
    }
    let needed = h.size.div_ceil(1u64 << (cluster_bits + l2_bits));
    if u64::from(h.l1_size) < needed {
        return Err(Error::corrupt(format!(
            "L1 table of {} entries is too small for a {}-byte disk ({needed} needed)",
            h.l1_size, h.size
        )));
    }
    if bytes == 0 {
        return Ok(Vec::new());
    }
    check_table_place("L1 table", h.l1_table_offset, bytes, cluster_size, file_len)?;
    let mut raw = vec![0u8; bytes as usize];
    file.read_at(h.l1_table_offset, &mut raw)?;
    let l1: Vec<u64> = raw.chunks_exact(8).map(|e| u64::from_be_bytes(e.try_into().unwrap_or([0; 8]))).collect();
    for &e in &l1 {
        entry::l1_table(e, cluster_size)?;
    }
    Ok(l1)
}

/// Reads the refcount table: aligned, within QEMU's limit and the file, every block aligned and
/// none listed twice (a block shared by two ranges would count two sets of clusters at once).
fn load_reftable(file: &mut dyn ImageFile, h: &Header, file_len: u64, cluster_size: u64) -> Result<Vec<u64>, Error> {
    let bytes = u64::from(h.refcount_table_clusters) * cluster_size;
    if bytes > MAX_REFTABLE_BYTES {
        return Err(Error::corrupt(format!("refcount table of {} clusters is above 8 MiB", h.refcount_table_clusters)));
    }
    if bytes == 0 {
        return Ok(Vec::new());
    }
    check_table_place("refcount table", h.refcount_table_offset, bytes, cluster_size, file_len)?;
    let mut raw = vec![0u8; bytes as usize];
    file.read_at(h.refcount_table_offset, &mut raw)?;
    let table: Vec<u64> = raw.chunks_exact(8).map(|e| u64::from_be_bytes(e.try_into().unwrap_or([0; 8]))).collect();
    let mut seen = BTreeSet::new();
    for &e in &table {
        if let Some(block) = entry::refcount_block(e, cluster_size)? {
            if block >= entry::MAX_HOST_OFFSET {
                return Err(Error::corrupt(format!("refcount block offset {block:#x} is past 2^56")));
            }
            if !seen.insert(block) {
                return Err(Error::corrupt(format!("refcount block at {block:#x} is listed twice")));
            }
        }
    }
    Ok(table)
}

/// A table must start on a cluster, not at the header, and lie within the file.
fn check_table_place(what: &str, offset: u64, bytes: u64, cluster_size: u64, file_len: u64) -> Result<(), Error> {
    if !offset.is_multiple_of(cluster_size) {
        return Err(Error::corrupt(format!("{what} offset {offset:#x} is not cluster-aligned")));
    }
    if offset == 0 {
        return Err(Error::corrupt(format!("{what} overlaps the header")));
    }
    match offset.checked_add(bytes) {
        Some(end) if end <= file_len => Ok(()),
        _ => Err(Error::corrupt(format!(
            "{what} at {offset:#x} ({bytes} bytes) reaches past the end of the file ({file_len} bytes)"
        ))),
    }
}

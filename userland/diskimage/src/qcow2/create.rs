//! A new qcow2 image: version 3, 16-bit refcounts, 64 KiB clusters unless told otherwise (QEMU's
//! defaults). The layout is QEMU's: the header in cluster 0, the refcount table in cluster 1, one
//! refcount block in cluster 2 counting clusters 0 to the end of the L1 table, which starts at
//! cluster 3 and is all zeros (every guest cluster unallocated).
//!
//! Not here: opening the result (the caller opens it like any image, which checks it).

use alloc::vec;

use super::header::{self, NewHeader, MAX_CLUSTER_BITS, MIN_CLUSTER_BITS};
use super::{entry, MAX_L1_BYTES, MAX_VIRTUAL_SIZE};
use crate::{Error, ImageFile};

/// Writes a new, empty qcow2 image of `size` bytes over `file` (truncated first), with an
/// optional backing file (name as it is to be recorded, and its format's name).
pub(crate) fn write_new(
    file: &mut dyn ImageFile,
    size: u64,
    cluster_bits: u32,
    backing: Option<(&str, &str)>,
) -> Result<(), Error> {
    if !(MIN_CLUSTER_BITS..=MAX_CLUSTER_BITS).contains(&cluster_bits) {
        return Err(Error::InvalidCreate("cluster size must be a power of two from 512 bytes to 2 MiB"));
    }
    if size > MAX_VIRTUAL_SIZE {
        return Err(Error::InvalidCreate("size is beyond 2^61 bytes"));
    }
    let cs = 1u64 << cluster_bits;
    let l1_size = size.div_ceil(1u64 << (2 * cluster_bits - 3));
    if l1_size * 8 > MAX_L1_BYTES {
        return Err(Error::InvalidCreate("size needs an L1 table above 32 MiB: use larger clusters"));
    }
    let l1_clusters = (l1_size * 8).div_ceil(cs).max(1);
    // Clusters 0..3 and the L1 table must all be counted by the one refcount block (order 4).
    let block_entries = cs * 8 / 16;
    let used = 3 + l1_clusters;
    if used > block_entries {
        return Err(Error::InvalidCreate("size needs an L1 table too large for this cluster size"));
    }
    let head = header::encode_new(&NewHeader {
        cluster_bits,
        size,
        l1_size: l1_size as u32,
        l1_table_offset: 3 * cs,
        refcount_table_offset: cs,
        refcount_table_clusters: 1,
        backing,
    })?;

    file.set_len(0)?;
    let mut block = vec![0u8; cs as usize];
    for c in 0..used as usize {
        entry::set_refcount(&mut block, c, 4, 1);
    }
    file.write_at(2 * cs, &block)?;
    let mut table = vec![0u8; cs as usize];
    table[..8].copy_from_slice(&(2 * cs).to_be_bytes());
    file.write_at(cs, &table)?;
    // The L1 table's clusters, zero (set_len keeps them sparse).
    file.set_len(used * cs)?;
    file.write_at(0, &head)?;
    file.flush()
}

//! Unit tests of the qcow2 layout this crate writes and of mapping and allocation: where new
//! clusters go, which flags their entries carry, how frees are reused, where new refcount blocks
//! land, and that broken tables are errors. (QEMU checks the same images in `tests/`.)

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;

use super::create::write_new;
use super::entry::{Cluster, COPIED, ZERO};
use super::Qcow2;
use crate::{Error, Image, ImageFile, MemFile, NoBacking, OpenOptions};

fn new_image(size: u64, cluster_bits: u32) -> Qcow2 {
    let mut file = MemFile::new(Vec::new());
    write_new(&mut file, size, cluster_bits, None).unwrap();
    Qcow2::open(Box::new(file), false).unwrap().0
}

fn file_u64(q: &mut Qcow2, at: u64) -> u64 {
    let mut b = [0u8; 8];
    q.file.read_at(at, &mut b).unwrap();
    u64::from_be_bytes(b)
}

#[test]
fn a_new_image_counts_its_metadata() {
    let mut q = new_image(1 << 30, 16);
    assert_eq!((q.l1.len(), q.reftable.len(), q.reftable_clusters), (2, 8192, 1));
    assert_eq!(q.reftable[0], 0x2_0000);
    for c in 0..4 {
        assert_eq!(q.refcount(c).unwrap(), 1, "cluster {c}");
    }
    assert_eq!(q.refcount(4).unwrap(), 0);
    assert_eq!(q.alloc_cluster().unwrap(), 4 << 16);
    assert_eq!(q.refcount(4).unwrap(), 1);
}

#[test]
fn a_write_allocates_an_l2_table_then_data_with_copied_flags() {
    let mut q = new_image(1 << 30, 16);
    q.write(0x1_0010, &[7; 100]).unwrap();
    let l1 = file_u64(&mut q, 0x3_0000);
    assert_eq!(l1, 0x4_0000 | COPIED, "the L2 table is the first free cluster");
    let l2 = file_u64(&mut q, 0x4_0000 + 8);
    assert_eq!(l2, 0x5_0000 | COPIED);
    assert_eq!(q.lookup(1).unwrap(), Cluster::Data { host: 0x5_0000, copied: true });
    assert_eq!(q.lookup(0).unwrap(), Cluster::Unallocated);
    let mut buf = [1u8; 120];
    q.read(0x1_0000, &mut buf).unwrap();
    assert_eq!(buf[..0x10], [0; 16]);
    assert_eq!(buf[0x10..0x74], [7; 100]);
    assert_eq!(buf[0x74..], [0; 4]);
    // A second write to the cluster goes in place: no new cluster.
    q.write(0x1_0000, &[8; 4]).unwrap();
    assert_eq!(q.refcount(6).unwrap(), 0);
}

#[test]
fn discarded_clusters_are_freed_and_reused() {
    let mut q = new_image(1 << 30, 16);
    q.write(0, &[1; 0x2_0000]).unwrap(); // L2 at cluster 4, data at 5 and 6
    q.unmap(0, 0x1_0000, super::write::Unmap::Discard).unwrap();
    assert_eq!(q.lookup(0).unwrap(), Cluster::Unallocated);
    assert_eq!(q.refcount(5).unwrap(), 0);
    q.write(0x10_0000, &[2; 512]).unwrap();
    assert_eq!(q.lookup(16).unwrap(), Cluster::Data { host: 0x5_0000, copied: true });
    // A partial discard leaves the data alone.
    q.unmap(0x1_0000, 0x8000, super::write::Unmap::Discard).unwrap();
    let mut b = [0u8; 1];
    q.read(0x1_0000, &mut b).unwrap();
    assert_eq!(b, [1]);
}

#[test]
fn write_zeroes_over_a_backing_file_sets_the_zero_flag() {
    let mut file = MemFile::new(Vec::new());
    write_new(&mut file, 1 << 20, 12, None).unwrap();
    let (mut q, _) = Qcow2::open(Box::new(file), false).unwrap();
    let base = MemFile::new(vec![0xee; 1 << 20]);
    let backing = Image::open(Box::new(base), "base", OpenOptions { read_only: true, format: None }, &mut NoBacking);
    q.set_backing(backing.unwrap());
    let mut b = [0u8; 2];
    q.read(0x2fff, &mut b).unwrap();
    assert_eq!(b, [0xee, 0xee]);
    q.unmap(0x1000, 0x3000, super::write::Unmap::Zeroes).unwrap();
    assert_eq!(q.lookup(1).unwrap(), Cluster::Zero { prealloc: None });
    q.read(0x3fff, &mut b).unwrap();
    assert_eq!(b, [0, 0xee]);
    // A partial write into a zero cluster copies zeros, not the backing file.
    q.write(0x1100, &[3]).unwrap();
    let mut c = [9u8; 3];
    q.read(0x10ff, &mut c).unwrap();
    assert_eq!(c, [0, 3, 0]);
    // Copy-on-write from the backing file for a partial write to an unallocated cluster.
    q.write(0x5000, &[4]).unwrap();
    q.read(0x4fff, &mut c).unwrap();
    assert_eq!(c, [0xee, 4, 0xee]);
    assert_eq!(ZERO, 1);
}

#[test]
fn new_refcount_blocks_go_at_the_start_of_their_range() {
    // 512-byte clusters, 16-bit refcounts: a block counts 256 clusters.
    let mut q = new_image(8 << 20, 9);
    let mut last = 0;
    while last < 256 * 512 {
        last = q.alloc_cluster().unwrap();
    }
    assert_eq!(q.reftable[1], 256 * 512, "the second block counts itself");
    assert_eq!(last, 257 * 512);
    assert_eq!(q.refcount(256).unwrap(), 1);
    assert_eq!(file_u64(&mut q, 512 + 8), 256 * 512);
}

#[test]
fn the_refcount_table_grows_and_the_old_one_is_freed() {
    // 512-byte clusters: one table cluster has 64 entries, each block counts 256 clusters.
    let mut q = new_image(64 << 20, 9);
    let old = q.reftable_offset;
    while q.reftable_offset == old {
        q.alloc_cluster().unwrap();
    }
    assert!(q.reftable_clusters >= 2);
    assert_eq!(file_u64(&mut q, 48), q.reftable_offset);
    assert_eq!(q.refcount(old / 512).unwrap(), 0, "the old table is freed");
    let table_cluster = q.reftable_offset / 512;
    assert_eq!(q.refcount(table_cluster).unwrap(), 1);
    // Allocation goes on past the table's old reach.
    let next = q.alloc_cluster().unwrap();
    assert_eq!(q.refcount(next / 512).unwrap(), 1);
}

#[test]
fn broken_tables_are_errors_not_panics() {
    let mut file = MemFile::new(Vec::new());
    write_new(&mut file, 1 << 30, 16, None).unwrap();
    // The refcount table lists block 0x20000 twice.
    let mut twice = file.clone();
    twice.write_at(0x1_0008, &0x2_0000u64.to_be_bytes()).unwrap();
    let e = Qcow2::open(Box::new(twice), false).err().unwrap();
    assert!(matches!(&e, Error::Corrupt(m) if m.contains("listed twice")), "{e}");
    // An L2 entry that says compressed, over garbage.
    let mut q = Qcow2::open(Box::new(file), false).unwrap().0;
    q.write(0, &[1; 512]).unwrap();
    let garbage = super::entry::COMPRESSED | 0x5_0000;
    q.set_l2_entries(0x4_0000, 0, &[garbage]).unwrap();
    q.file.write_at(0x5_0000, &[0xff; 512]).unwrap();
    let mut b = [0u8; 16];
    assert!(matches!(q.read(0, &mut b), Err(Error::Corrupt(_))));
    assert!(q.write(0, &[1; 16]).is_err());
}

#[test]
fn discarding_a_whole_large_disk_skips_unmapped_ranges() {
    // 2 TiB of 64 KiB clusters: 32 M clusters, of which two are mapped.
    let mut q = new_image(2 << 40, 16);
    q.write(1 << 40, &[1; 512]).unwrap();
    q.write((2 << 40) - 512, &[2; 512]).unwrap();
    assert_eq!(q.block_status(0, 1 << 40).unwrap(), (512 << 20, crate::BlockStatus::Zero));
    q.unmap(0, 2 << 40, super::write::Unmap::Discard).unwrap();
    assert_eq!(q.lookup((1 << 40) >> 16).unwrap(), Cluster::Unallocated);
    assert_eq!(q.lookup(((2 << 40) >> 16) - 1).unwrap(), Cluster::Unallocated);
}

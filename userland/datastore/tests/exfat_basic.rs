//! exFAT against Linux's tools: images made by mkfs.exfat are mounted, written through this
//! crate, then `fsck.exfat -n` must pass and the files read back identically.

mod common;

use common::*;
use keel_block::MemDisk;
use keel_datastore::{Error, ExfatVolume};

fn mount(image: Vec<u8>) -> ExfatVolume<MemDisk> {
    ExfatVolume::mount(MemDisk::from_bytes(512, image)).expect("mount")
}

#[test]
fn write_files_then_fsck_and_read_back() {
    let Some(image) = linux_mkfs_exfat(4 << 20, "4K") else { return };
    let mut vol = mount(image);
    assert_eq!(vol.label(), "TEST");
    vol.mkdir("/dir").unwrap();
    let mut f = vol.create("/dir/hello.txt").unwrap();
    let data = pattern(1, 10_000);
    vol.write(&mut f, 0, &data).unwrap();
    vol.flush().unwrap();
    let image = vol.into_device().into_bytes();
    assert_fsck_clean("fsck.exfat", &image);
    let mut vol = mount(image);
    let f = vol.open("/DIR/Hello.TXT").unwrap();
    let mut buf = vec![0u8; 20_000];
    assert_eq!(vol.read(&f, 0, &mut buf).unwrap(), 10_000);
    assert_eq!(&buf[..10_000], &data[..]);
    assert_eq!(vol.create("/dir/hello.txt").err(), Some(Error::AlreadyExists));
}

#[test]
fn fsck_does_catch_a_broken_entry_set() {
    // The fsck checks above mean something only if fsck sees damage: break a set's checksum.
    let Some(image) = linux_mkfs_exfat(1 << 20, "512") else { return };
    let mut vol = mount(image);
    let mut f = vol.create("/victim").unwrap();
    vol.write(&mut f, 0, b"data").unwrap();
    vol.flush().unwrap();
    let mut image = vol.into_device().into_bytes();
    let at = image.windows(6).position(|w| w == b"v\0i\0c\0").expect("name entry");
    image[at] ^= 0x20;
    if let Some((ok, text)) = fsck("fsck.exfat", &image) {
        assert!(!ok, "fsck.exfat missed a bad checksum:\n{text}");
    }
    // And we skip the invalid set (spec 6.3.3) rather than fail the directory.
    let mut vol = mount(image);
    assert_eq!(vol.open("/victim").err(), Some(Error::NotFound));
    assert!(vol.list("/").unwrap().is_empty());
}

/// Every file under `items`, as (path, contents), read by the `exfat` crate.
fn read_tree<I: std::io::Read + std::io::Seek>(
    items: Vec<exfat::directory::Item<I>>,
    prefix: &str,
    out: &mut Vec<(String, Vec<u8>)>,
) {
    use std::io::Read;
    for item in items {
        match item {
            exfat::directory::Item::Directory(dir) => {
                let path = format!("{prefix}/{}", dir.name());
                read_tree(dir.open().expect("exfat crate: open directory"), &path, out);
            }
            exfat::directory::Item::File(mut file) => {
                let path = format!("{prefix}/{}", file.name());
                let mut data = Vec::new();
                if let Some(mut reader) = file.open().expect("exfat crate: open file") {
                    reader.read_to_end(&mut data).unwrap();
                }
                out.push((path, data));
            }
        }
    }
}

#[test]
fn an_independent_reader_reads_what_we_wrote() {
    // Another implementation (the `exfat` crate, written from the same specification by other
    // people) walks the volume and reads every file: long names, deep directories, contiguous
    // (NoFatChain) and fragmented (FAT-chained) files, many entries. 4 KiB clusters: the crate
    // (0.1.0) panics reading a directory whose last cluster is full with no end marker (valid,
    // spec 6.2.1.1 does not require one), which 512-byte clusters soon give.
    // The crate also ends a listing at the first unused entry (InUse clear, which spec 6.2.1.4
    // says to skip), so nothing here may leave one: a disk of 4 KiB blocks means no entry set
    // needs moving past a block boundary (that leaves unused entries before it).
    let Some(image) = linux_mkfs_exfat(2 << 20, "4K") else { return };
    let mut vol = ExfatVolume::mount(MemDisk::from_bytes(4096, image)).unwrap();
    let mut expected = Vec::new();
    let long = "ü".repeat(100) + " long name";
    vol.mkdir("/a").unwrap();
    vol.mkdir("/a/b").unwrap();
    vol.mkdir(&format!("/a/b/{long}")).unwrap();
    let deep = format!("/a/b/{long}/deep file.txt");
    let mut f = vol.create(&deep).unwrap();
    vol.write(&mut f, 0, b"deep data").unwrap();
    expected.push((deep, b"deep data".to_vec()));
    let mut x = vol.create("/x.bin").unwrap();
    let mut y = vol.create("/y.bin").unwrap();
    let (mut dx, mut dy) = (Vec::new(), Vec::new());
    for i in 0..10 {
        let (cx, cy) = (pattern(i, 600), pattern(i + 20, 900));
        vol.write(&mut x, dx.len() as u64, &cx).unwrap();
        vol.write(&mut y, dy.len() as u64, &cy).unwrap();
        dx.extend(cx);
        dy.extend(cy);
    }
    expected.push(("/x.bin".into(), dx));
    expected.push(("/y.bin".into(), dy));
    let mut big = vol.create("/contiguous.bin").unwrap();
    vol.write(&mut big, 0, &pattern(99, 100_000)).unwrap();
    expected.push(("/contiguous.bin".into(), pattern(99, 100_000)));
    for i in 0..40 {
        let path = format!("/a/many {i}");
        let mut f = vol.create(&path).unwrap();
        vol.write(&mut f, 0, &pattern(i, 10)).unwrap();
        expected.push((path, pattern(i, 10)));
    }
    vol.flush().unwrap();
    let image = vol.into_device().into_bytes();
    assert_fsck_clean("fsck.exfat", &image);
    let fs = exfat::ExFat::open(std::io::Cursor::new(image)).expect("exfat crate: open volume");
    assert_eq!(fs.volume_label(), Some("TEST"));
    let mut found = Vec::new();
    read_tree(fs.into_iter().collect(), "", &mut found);
    found.sort();
    expected.sort();
    assert_eq!(found.len(), expected.len());
    for ((fp, fd), (ep, ed)) in found.iter().zip(&expected) {
        assert_eq!(fp, ep);
        assert!(fd == ed, "{fp}: contents differ");
    }
}

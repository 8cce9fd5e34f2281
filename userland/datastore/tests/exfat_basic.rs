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

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

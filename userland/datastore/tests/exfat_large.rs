//! A file past 4 GiB on a sparse 8 GiB image made by mkfs.exfat: growing it and writing past the
//! old end never writes gigabytes (the gap is zeroed with `write_zeroes`, one device command on
//! a real driver, here dropping chunks of a sparse in-memory disk); the image, saved as a sparse
//! host file, passes fsck.exfat, and the file reads back.

mod common;

use std::io::Read;

use common::*;
use keel_datastore::ExfatVolume;

const GIB: u64 = 1 << 30;

#[test]
fn a_file_past_4_gib_on_a_sparse_image() {
    let Some(mkfs) = need("mkfs.exfat") else { return };
    let path = temp_path("large");
    std::fs::File::create(&path).unwrap().set_len(8 * GIB).unwrap();
    assert!(std::process::Command::new(mkfs).arg(&path).output().unwrap().status.success());
    // mkfs.exfat writes only the metadata at the front (the FAT, bitmap, up-case table and root
    // of an 8 GiB volume fit in the first 64 MiB); the rest of the image is a hole.
    let mut prefix = vec![0u8; 64 << 20];
    std::fs::File::open(&path).unwrap().read_exact(&mut prefix).unwrap();
    let mut vol = ExfatVolume::mount(SparseDisk::new(8 * GIB, &prefix)).unwrap();
    let mut f = vol.create("/big.img").unwrap();
    vol.truncate(&mut f, 6 * GIB).unwrap();
    let tail = pattern(9, 100_000);
    let at = 4 * GIB + 12_345;
    vol.write(&mut f, at, &tail).unwrap();
    vol.write(&mut f, 0, b"first bytes").unwrap();
    vol.flush().unwrap();
    let disk = vol.into_device();
    assert!(disk.bytes_written < 4 << 20, "growing wrote {} bytes", disk.bytes_written);
    disk.save(&path);
    if let Some((ok, text)) = fsck_file("fsck.exfat", &path) {
        assert!(ok, "fsck.exfat:\n{text}");
    }
    let mut vol = ExfatVolume::mount(disk).unwrap();
    let f = vol.open("/big.img").unwrap();
    assert_eq!(f.metadata().len, 6 * GIB);
    let mut buf = vec![0u8; tail.len() + 20];
    assert_eq!(vol.read(&f, at - 10, &mut buf).unwrap(), buf.len());
    assert_eq!(&buf[..10], &[0u8; 10]);
    assert_eq!(&buf[10..10 + tail.len()], &tail[..]);
    assert_eq!(&buf[10 + tail.len()..], &[0u8; 10]);
    let mut head = [0u8; 11];
    vol.read(&f, 0, &mut head).unwrap();
    assert_eq!(&head, b"first bytes");
    assert_eq!(vol.read(&f, 6 * GIB, &mut head).unwrap(), 0);
    std::fs::remove_file(&path).unwrap();
}

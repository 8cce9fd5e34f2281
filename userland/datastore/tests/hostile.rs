//! Hostile and failing disks: a FAT chain that loops, a file longer than the heap, a damaged
//! main boot region (the backup is used, read-only), a read-only disk, a disk that vanishes
//! mid-write. Each must give an error, never a panic or a hang.

mod common;

use common::*;
use keel_block::{BlockDevice, MemDisk};
use keel_datastore::{mkfs_exfat, Error, ExfatVolume, Volume};

fn formatted() -> MemDisk {
    let mut disk = MemDisk::new(512, 2048);
    mkfs_exfat(&mut disk, "HOSTILE", 1).unwrap();
    disk
}

/// A volume with a fragmented (FAT-chained) file "/frag" and a contiguous one "/flat".
fn with_files() -> Vec<u8> {
    let mut vol = ExfatVolume::mount(formatted()).unwrap();
    let mut a = vol.create("/frag").unwrap();
    let mut b = vol.create("/flat").unwrap();
    for i in 0..4u64 {
        vol.write(&mut a, i * 512, &pattern(i, 512)).unwrap();
        vol.write(&mut b, i * 512, &pattern(i + 9, 512)).unwrap();
    }
    vol.flush().unwrap();
    vol.into_device().into_bytes()
}

#[test]
fn a_looping_chain_is_corrupt_not_a_hang() {
    let mut image = with_files();
    // Past the system objects (bitmap, up-case table, root: clusters 2..=15 of this volume),
    // every FAT entry points at itself: the fragmented file's chain loops.
    let fat = 24 * 512;
    for cluster in 16..64usize {
        image[fat + cluster * 4..fat + cluster * 4 + 4].copy_from_slice(&(cluster as u32).to_le_bytes());
    }
    let mut vol = ExfatVolume::mount(MemDisk::from_bytes(512, image)).unwrap();
    assert_eq!(vol.open("/frag").err(), Some(Error::Corrupt("cluster chain loops")));
    // The directory itself still lists.
    assert_eq!(vol.list("/").unwrap().len(), 2);
}

#[test]
fn a_damaged_main_boot_region_falls_back_to_the_backup_read_only() {
    let mut image = with_files();
    image[100] ^= 0xFF; // VolumeSerialNumber: the main region's checksum no longer holds
    let mut vol = ExfatVolume::mount(MemDisk::from_bytes(512, image.clone())).unwrap();
    let f = vol.open("/flat").unwrap();
    let mut buf = [0u8; 512];
    vol.read(&f, 512, &mut buf).unwrap();
    assert_eq!(buf.to_vec(), pattern(10, 512));
    assert_eq!(vol.mkdir("/x").err(), Some(Error::ReadOnly));
    // Both regions damaged: a clear error.
    image[12 * 512 + 100] ^= 0xFF;
    assert!(matches!(ExfatVolume::mount(MemDisk::from_bytes(512, image)).err(), Some(Error::Corrupt(_))));
}

#[test]
fn read_only_and_vanishing_disks_give_errors() {
    let mut disk = MemDisk::from_bytes(512, with_files());
    disk.set_read_only(true);
    let mut vol = Volume::mount(disk).unwrap();
    assert_eq!(vol.create("/new").err(), Some(Error::ReadOnly));
    assert!(vol.list("/").unwrap().len() == 2);
    for budget in [0u64, 5, 20, 40, 80] {
        let mut disk = MemDisk::from_bytes(512, with_files());
        disk.fail_after(budget);
        let Ok(mut vol) = Volume::mount(disk) else { continue };
        let result = vol.create("/new").and_then(|mut f| vol.write(&mut f, 0, &[1; 5000]));
        assert!(matches!(result, Err(Error::Disk(_)) | Ok(())), "{result:?}");
    }
}

#[test]
fn garbage_is_not_a_file_system() {
    let mut disk = MemDisk::new(512, 64);
    disk.write_blocks(0, &pattern(5, 512)).unwrap();
    assert_eq!(Volume::mount(disk).err(), Some(Error::NotAFileSystem));
}

#[test]
fn offsets_at_the_far_end_of_u64_are_errors() {
    let mut vol = Volume::mount(formatted()).unwrap();
    let mut f = vol.create("/far").unwrap();
    assert_eq!(vol.write(&mut f, u64::MAX - 1, b"xy").err(), Some(Error::FileTooLarge));
    assert_eq!(vol.write(&mut f, 1 << 60, b"xy").err(), Some(Error::NoSpace));
    assert_eq!(vol.truncate(&mut f, u64::MAX).err(), Some(Error::NoSpace));
    let mut buf = [0u8; 4];
    assert_eq!(vol.read(&f, u64::MAX, &mut buf), Ok(0));
    // Nothing was allocated by the refused requests.
    let (total, free) = vol.space();
    assert!(free > total - 64 * 1024);
}

#[test]
fn fat16_is_refused_with_a_reason() {
    let Some(image) = make_image("mkfs.vfat", &["-F", "16", "-s", "1"], 8 << 20) else { return };
    assert!(matches!(Volume::mount(MemDisk::from_bytes(512, image)).err(), Some(Error::Unsupported(_))));
}

//! exFAT structure cases on mkfs.exfat images, each checked by `fsck.exfat -n` and read back:
//! long and non-ASCII names, deep directories, directories growing past a cluster, fragmented
//! files (FAT chains), a full volume, rename and remove, truncation and ValidDataLength, and our
//! own mkfs.

mod common;

use common::*;
use keel_block::MemDisk;
use keel_datastore::{mkfs_exfat, Error, ExfatVolume};

fn mount(image: Vec<u8>) -> ExfatVolume<MemDisk> {
    ExfatVolume::mount(MemDisk::from_bytes(512, image)).expect("mount")
}

/// Flush, fsck, and remount.
fn check(vol: ExfatVolume<MemDisk>) -> ExfatVolume<MemDisk> {
    let mut vol = vol;
    vol.flush().unwrap();
    let image = vol.into_device().into_bytes();
    assert_fsck_clean("fsck.exfat", &image);
    mount(image)
}

fn read_all(vol: &mut ExfatVolume<MemDisk>, path: &str) -> Vec<u8> {
    let f = vol.open(path).unwrap();
    let mut buf = vec![0u8; f.metadata().len as usize];
    assert_eq!(vol.read(&f, 0, &mut buf).unwrap(), buf.len());
    buf
}

fn put(vol: &mut ExfatVolume<MemDisk>, path: &str, data: &[u8]) {
    let mut f = vol.create(path).unwrap();
    vol.write(&mut f, 0, data).unwrap();
}

#[test]
fn long_and_non_ascii_names() {
    let Some(image) = linux_mkfs_exfat(2 << 20, "512") else { return };
    let mut vol = mount(image);
    let long: String = "é".repeat(200) + &"x".repeat(55);
    assert_eq!(long.encode_utf16().count(), 255);
    let names = [long.clone(), "日本語のファイル名.txt".to_string(), "Ünïcødé 🚀 emoji".to_string()];
    for (i, name) in names.iter().enumerate() {
        put(&mut vol, &format!("/{name}"), &pattern(i as u64, 700));
    }
    assert_eq!(vol.create(&format!("/{}", "x".repeat(256))).err(), Some(Error::NameTooLong));
    assert_eq!(vol.create("/a?b").err(), Some(Error::InvalidName));
    let mut vol = check(vol);
    let listed: Vec<String> = vol.list("/").unwrap().into_iter().map(|e| e.name).collect();
    for (i, name) in names.iter().enumerate() {
        assert!(listed.contains(name), "{name} missing from {listed:?}");
        assert_eq!(read_all(&mut vol, &format!("/{name}")), pattern(i as u64, 700));
    }
    // Case-insensitive through the volume's up-case table.
    assert!(vol.open(&format!("/{}", long.to_uppercase())).is_ok());
}

#[test]
fn deep_directories_and_directories_past_one_cluster() {
    let Some(image) = linux_mkfs_exfat(4 << 20, "512") else { return };
    let mut vol = mount(image);
    let mut path = String::new();
    for depth in 0..40 {
        path += &format!("/level{depth}");
        vol.mkdir(&path).unwrap();
    }
    put(&mut vol, &format!("{path}/deep.bin"), b"at the bottom");
    // 512-byte clusters hold 16 entries: 60 files with 3-entry sets fill ~11 clusters.
    vol.mkdir("/wide").unwrap();
    for i in 0..60 {
        put(&mut vol, &format!("/wide/file number {i:03}"), &pattern(i, 10 + i as usize));
        put(&mut vol, &format!("/root file {i:03}"), &[i as u8]);
    }
    let mut vol = check(vol);
    assert_eq!(read_all(&mut vol, &format!("{path}/deep.bin")), b"at the bottom");
    assert_eq!(vol.list("/wide").unwrap().len(), 60);
    for i in 0..60 {
        assert_eq!(read_all(&mut vol, &format!("/wide/file number {i:03}")), pattern(i, 10 + i as usize));
        assert_eq!(read_all(&mut vol, &format!("/root file {i:03}")), [i as u8]);
    }
    assert_eq!(vol.open(&format!("{path}/deep.bin/x")).err(), Some(Error::NotADirectory));
    assert_eq!(vol.open("/nope").err(), Some(Error::NotFound));
}

#[test]
fn fragmented_files_use_fat_chains() {
    for no_fat_chain in [true, false] {
        let Some(image) = linux_mkfs_exfat(2 << 20, "512") else { return };
        let mut vol = mount(image);
        vol.set_no_fat_chain(no_fat_chain);
        let mut a = vol.create("/a").unwrap();
        let mut b = vol.create("/b").unwrap();
        let (mut da, mut db) = (Vec::new(), Vec::new());
        // Interleaved appends: each file's clusters alternate with the other's.
        for round in 0..20 {
            let chunk_a = pattern(round, 700);
            let chunk_b = pattern(round + 100, 300);
            vol.write(&mut a, da.len() as u64, &chunk_a).unwrap();
            vol.write(&mut b, db.len() as u64, &chunk_b).unwrap();
            da.extend_from_slice(&chunk_a);
            db.extend_from_slice(&chunk_b);
        }
        // Overwrite across fragment boundaries.
        let patch = pattern(7, 3000);
        vol.write(&mut a, 1000, &patch).unwrap();
        da[1000..4000].copy_from_slice(&patch);
        let mut vol = check(vol);
        assert_eq!(read_all(&mut vol, "/a"), da);
        assert_eq!(read_all(&mut vol, "/b"), db);
        // Shrinking a chained file frees its tail; fsck still passes.
        let mut a = vol.open("/a").unwrap();
        vol.truncate(&mut a, 1500).unwrap();
        let mut vol = check(vol);
        assert_eq!(read_all(&mut vol, "/a"), &da[..1500]);
    }
}

#[test]
fn a_full_volume_says_no_space_and_stays_consistent() {
    let Some(image) = linux_mkfs_exfat(1 << 20, "512") else { return };
    let mut vol = mount(image);
    put(&mut vol, "/keep", b"kept");
    let (_, free) = vol.space();
    let mut f = vol.create("/big").unwrap();
    let mut written = 0u64;
    // Big writes until one does not fit, then cluster-sized ones to fill the rest.
    for size in [64 * 1024, 512] {
        let chunk = pattern(3, size);
        loop {
            match vol.write(&mut f, written, &chunk) {
                Ok(()) => written += chunk.len() as u64,
                Err(Error::NoSpace) => break,
                Err(e) => panic!("unexpected {e}"),
            }
        }
    }
    assert_eq!(vol.space().1, 0);
    assert!(written > 0 && written <= free);
    assert_eq!(vol.mkdir("/more").err(), Some(Error::NoSpace));
    let mut vol = check(vol);
    assert_eq!(read_all(&mut vol, "/keep"), b"kept");
    assert_eq!(vol.open("/big").unwrap().metadata().len, written);
    // Removing the big file gives the space back.
    vol.remove("/big").unwrap();
    assert_eq!(vol.space().1, free);
    check(vol);
}

#[test]
fn rename_across_directories_and_remove() {
    let Some(image) = linux_mkfs_exfat(2 << 20, "512") else { return };
    let mut vol = mount(image);
    vol.mkdir("/src").unwrap();
    vol.mkdir("/dst").unwrap();
    vol.mkdir("/src/sub").unwrap();
    put(&mut vol, "/src/sub/file.txt", b"moving data");
    put(&mut vol, "/src/short", b"short");
    vol.rename("/src/sub/file.txt", "/dst/renamed with a much longer name than before.txt").unwrap();
    vol.rename("/src/short", "/src/s").unwrap();
    vol.rename("/src/s", "/src/S").unwrap();
    vol.rename("/src/sub", "/dst/sub").unwrap();
    assert_eq!(vol.rename("/dst", "/dst/sub/inside").err(), Some(Error::InvalidMove));
    assert_eq!(vol.rename("/src/S", "/dst/sub").err(), Some(Error::AlreadyExists));
    assert_eq!(vol.remove("/dst").err(), Some(Error::DirectoryNotEmpty));
    let mut vol = check(vol);
    assert_eq!(read_all(&mut vol, "/dst/renamed with a much longer name than before.txt"), b"moving data");
    assert_eq!(read_all(&mut vol, "/src/S"), b"short");
    assert!(vol.stat("/dst/sub").unwrap().is_dir);
    assert_eq!(vol.open("/src/sub").err(), Some(Error::NotFound));
    let free = vol.space().1;
    vol.remove("/dst/renamed with a much longer name than before.txt").unwrap();
    vol.remove("/dst/sub").unwrap();
    vol.remove("/dst").unwrap();
    assert!(vol.space().1 > free);
    let mut vol = check(vol);
    let names: Vec<String> = vol.list("/").unwrap().into_iter().map(|e| e.name).collect();
    assert_eq!(names, ["src"]);
}

#[test]
fn truncate_grows_cheaply_and_reads_zeros_past_valid_data() {
    let Some(image) = linux_mkfs_exfat(4 << 20, "4K") else { return };
    let mut vol = mount(image);
    let mut f = vol.create("/sparse").unwrap();
    vol.write(&mut f, 0, b"head").unwrap();
    vol.truncate(&mut f, 1 << 20).unwrap();
    vol.write(&mut f, 600_000, b"middle").unwrap();
    let mut vol = check(vol);
    let data = read_all(&mut vol, "/sparse");
    assert_eq!(data.len(), 1 << 20);
    assert_eq!(&data[..4], b"head");
    assert!(data[4..600_000].iter().all(|&b| b == 0));
    assert_eq!(&data[600_000..600_006], b"middle");
    assert!(data[600_006..].iter().all(|&b| b == 0));
    let mut f = vol.open("/sparse").unwrap();
    vol.truncate(&mut f, 2).unwrap();
    vol.truncate(&mut f, 10).unwrap();
    let mut vol = check(vol);
    assert_eq!(read_all(&mut vol, "/sparse"), b"he\0\0\0\0\0\0\0\0");
    let mut f = vol.open("/sparse").unwrap();
    vol.truncate(&mut f, 0).unwrap();
    check(vol);
}

#[test]
fn our_mkfs_passes_fsck() {
    for size in [256u64 << 10, 3 << 20, 80 << 20] {
        let mut disk = MemDisk::new(512, size / 512);
        mkfs_exfat(&mut disk, "KEEL", 0x1234_5678).unwrap();
        assert_fsck_clean("fsck.exfat", disk.bytes());
        let mut vol = ExfatVolume::mount(disk).unwrap();
        assert_eq!(vol.label(), "KEEL");
        vol.mkdir("/etc").unwrap();
        put(&mut vol, "/etc/vm.conf", b"vm \"linux\" {}\n");
        let mut vol = check(vol);
        assert_eq!(read_all(&mut vol, "/etc/vm.conf"), b"vm \"linux\" {}\n");
    }
}

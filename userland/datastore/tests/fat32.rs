//! FAT32 against Linux's tools: mkfs.vfat images written through this crate pass
//! `fsck.vfat -n` and read back with mtools' `mtype` (an independent reader); files mtools'
//! `mcopy` put in read back here. Long and non-ASCII names, deep and growing directories,
//! fragmented files, a full volume, rename across directories, remove.

mod common;

use std::process::Command;

use common::*;
use keel_block::MemDisk;
use keel_datastore::{Error, Format, Volume};

fn fat_image(size: u64) -> Option<Vec<u8>> {
    make_image("mkfs.vfat", &["-F", "32", "-s", "1", "-n", "FATTEST"], size)
}

fn mount(image: Vec<u8>) -> Volume<MemDisk> {
    let vol = Volume::mount(MemDisk::from_bytes(512, image)).expect("mount");
    assert_eq!(vol.format(), Format::Fat32);
    vol
}

fn check(vol: Volume<MemDisk>) -> Volume<MemDisk> {
    let mut vol = vol;
    vol.flush().unwrap();
    let image = vol.into_device().into_bytes();
    assert_fsck_clean("fsck.vfat", &image);
    mount(image)
}

fn put(vol: &mut Volume<MemDisk>, path: &str, data: &[u8]) {
    let mut f = vol.create(path).unwrap();
    vol.write(&mut f, 0, data).unwrap();
}

fn read_all(vol: &mut Volume<MemDisk>, path: &str) -> Vec<u8> {
    let f = vol.open(path).unwrap();
    let mut buf = vec![0u8; f.metadata().len as usize];
    assert_eq!(vol.read(&f, 0, &mut buf).unwrap(), buf.len());
    buf
}

/// mtools on an image file: `mtype` of a path, or `None` when mtools is missing.
fn mtype(image: &[u8], path: &str) -> Option<Vec<u8>> {
    let tool = need("mtype")?;
    let file = temp_path("mtype");
    std::fs::write(&file, image).unwrap();
    let out = Command::new(tool)
        .env("MTOOLS_SKIP_CHECK", "1")
        .arg("-i")
        .arg(&file)
        .arg(format!("::{path}"))
        .output()
        .unwrap();
    std::fs::remove_file(&file).unwrap();
    assert!(out.status.success(), "mtype {path}: {}", String::from_utf8_lossy(&out.stderr));
    Some(out.stdout)
}

#[test]
fn written_here_passes_fsck_and_reads_back_with_mtools() {
    let Some(image) = fat_image(40 << 20) else { return };
    let mut vol = mount(image);
    assert_eq!(vol.label(), "FATTEST");
    let long = "é".repeat(200) + &"y".repeat(55);
    vol.mkdir("/Deep").unwrap();
    let mut path = "/Deep".to_string();
    for i in 0..12 {
        path += &format!("/level {i}");
        vol.mkdir(&path).unwrap();
    }
    put(&mut vol, &format!("{path}/bottom.txt"), b"bottom");
    put(&mut vol, &format!("/{long}"), &pattern(1, 5000));
    put(&mut vol, "/日本語.bin", &pattern(2, 777));
    // 300 files in one directory: past many clusters of 512 bytes.
    vol.mkdir("/wide").unwrap();
    for i in 0..300u64 {
        put(&mut vol, &format!("/wide/File Number {i}.dat"), &pattern(i, 20));
    }
    // Fragmented: two files growing in turns.
    let mut a = vol.create("/a.bin").unwrap();
    let mut b = vol.create("/b.bin").unwrap();
    let (mut da, mut db) = (Vec::new(), Vec::new());
    for round in 0..30 {
        let (ca, cb) = (pattern(round, 700), pattern(round + 50, 300));
        vol.write(&mut a, da.len() as u64, &ca).unwrap();
        vol.write(&mut b, db.len() as u64, &cb).unwrap();
        da.extend(ca);
        db.extend(cb);
    }
    let mut vol = check(vol);
    assert_eq!(read_all(&mut vol, &format!("/{long}")), pattern(1, 5000));
    assert_eq!(read_all(&mut vol, &format!("{path}/bottom.txt")), b"bottom");
    assert_eq!(read_all(&mut vol, "/a.bin"), da);
    assert_eq!(vol.list("/wide").unwrap().len(), 300);
    assert_eq!(read_all(&mut vol, "/wide/file number 299.DAT"), pattern(299, 20));
    // Rename across directories (a directory too: its ".." follows), truncate, remove.
    vol.rename("/a.bin", "/Deep/moved a.bin").unwrap();
    vol.rename("/Deep/level 0", "/level zero").unwrap();
    let mut f = vol.open("/b.bin").unwrap();
    vol.truncate(&mut f, 1000).unwrap();
    vol.truncate(&mut f, 3000).unwrap();
    vol.remove("/日本語.bin").unwrap();
    assert_eq!(vol.remove("/wide").err(), Some(Error::DirectoryNotEmpty));
    let vol = check(vol);
    let image = vol.into_device().into_bytes();
    if let Some(data) = mtype(&image, "/Deep/moved a.bin") {
        assert_eq!(data, da);
    }
    if let Some(data) = mtype(&image, "/b.bin") {
        assert_eq!(&data[..1000], &db[..1000]);
        assert!(data[1000..3000].iter().all(|&b| b == 0));
    }
    let mut vol = mount(image);
    assert_eq!(read_all(&mut vol, "/level zero/level 1/level 2/level 3/level 4/level 5/level 6/level 7/level 8/level 9/level 10/level 11/bottom.txt"), b"bottom");
    assert_eq!(vol.open("/日本語.bin").err(), Some(Error::NotFound));
}

#[test]
fn files_mtools_wrote_read_back() {
    let Some(image) = fat_image(34 << 20) else { return };
    let Some(mcopy) = need("mcopy") else { return };
    let Some(mmd) = need("mmd") else { return };
    let file = temp_path("mcopy");
    std::fs::write(&file, &image).unwrap();
    let src = temp_path("src");
    let data = pattern(42, 300_000);
    std::fs::write(&src, &data).unwrap();
    let mtools = |tool: &std::path::Path, args: &[&str]| {
        let out = Command::new(tool).env("MTOOLS_SKIP_CHECK", "1").arg("-i").arg(&file).args(args).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    mtools(&mmd, &["::/Sub Dir"]);
    mtools(&mcopy, &[src.to_str().unwrap(), "::/Sub Dir/A Long Mixed Name.iso"]);
    mtools(&mcopy, &[src.to_str().unwrap(), "::/SHORT.TXT"]);
    let image = std::fs::read(&file).unwrap();
    std::fs::remove_file(&file).unwrap();
    std::fs::remove_file(&src).unwrap();
    let mut vol = mount(image);
    assert_eq!(read_all(&mut vol, "/Sub Dir/A Long Mixed Name.iso"), data);
    assert_eq!(read_all(&mut vol, "/short.txt"), data);
    let names: Vec<String> = vol.list("/").unwrap().into_iter().map(|e| e.name).collect();
    assert!(names.contains(&"Sub Dir".to_string()) && names.contains(&"SHORT.TXT".to_string()), "{names:?}");
}

#[test]
fn a_full_fat32_volume_says_no_space_and_stays_consistent() {
    let Some(image) = make_image("mkfs.vfat", &["-F", "32", "-s", "8"], 2 << 20) else { return };
    let mut vol = mount(image);
    put(&mut vol, "/keep", b"kept");
    let mut f = vol.create("/big").unwrap();
    let mut written = 0u64;
    for size in [64 * 1024, 4096] {
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
    let mut f = vol.create("/big2").unwrap();
    assert_eq!(vol.write(&mut f, 0, b"x").err(), Some(Error::NoSpace));
    assert_eq!(vol.truncate(&mut f, 1 << 32).err(), Some(Error::FileTooLarge));
    let mut vol = check(vol);
    assert_eq!(read_all(&mut vol, "/keep"), b"kept");
    vol.remove("/big").unwrap();
    check(vol);
}

//! Images that must be refused or opened read-only, each with a message a user can act on:
//! backing chains that loop or go too deep, unknown incompatible features, features not
//! implemented (external data files, extended L2 entries, zstd), the corrupt and dirty bits,
//! internal snapshots, tables that are misaligned or lie past the end of the file. And a guessed
//! raw image refuses a guest write that would make it look like qcow2.

mod common;

use std::path::Path;

use common::*;
use keel_diskimage::{Error, Format, HostOpener, Image, MemFile, NoBacking, OpenOptions, ReadOnlyReason};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn open_path(path: &Path) -> Result<Image, Error> {
    let file = std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
    Image::open(Box::new(file), s(path), OpenOptions::default(), &mut HostOpener)
}

fn patch(path: &Path, at: usize, bytes: &[u8]) {
    let mut b = std::fs::read(path).unwrap();
    b[at..at + bytes.len()].copy_from_slice(bytes);
    std::fs::write(path, b).unwrap();
}

#[test]
fn backing_loops_and_deep_chains_are_refused() {
    let dir = temp_dir("chains");
    let a = dir.join("a.qcow2");
    let b = dir.join("b.qcow2");
    qemu_img_ok(&["create", "-f", "qcow2", "-u", "-b", "b.qcow2", "-F", "qcow2", s(&a), "1M"]);
    qemu_img_ok(&["create", "-f", "qcow2", "-u", "-b", "a.qcow2", "-F", "qcow2", s(&b), "1M"]);
    let e = open_path(&a).err().unwrap();
    assert!(e.to_string().contains("backing chain loops back to"), "{e}");
    let self_loop = dir.join("self.qcow2");
    qemu_img_ok(&["create", "-f", "qcow2", "-u", "-b", "self.qcow2", "-F", "qcow2", s(&self_loop), "1M"]);
    assert!(open_path(&self_loop).err().unwrap().to_string().contains("loops"));

    let mut below = "base.img".to_string();
    std::fs::write(dir.join(&below), [0u8; 4096]).unwrap();
    for i in 0..20 {
        let name = format!("level{i}.qcow2");
        let format = if i == 0 { "raw" } else { "qcow2" };
        qemu_img_ok(&["create", "-f", "qcow2", "-u", "-b", &below, "-F", format, s(&dir.join(&name)), "4K"]);
        let opened = open_path(&dir.join(&name));
        if i < 16 {
            opened.unwrap();
        } else {
            assert!(opened.err().unwrap().to_string().contains("backing chain deeper than 16"));
        }
        below = name;
    }
    // Without an opener for backing files, an overlay is refused by name.
    let file = std::fs::File::open(dir.join("level3.qcow2")).unwrap();
    let e = Image::open(Box::new(file), "level3.qcow2", OpenOptions::default(), &mut NoBacking).err().unwrap();
    assert_eq!(e.to_string(), "level3.qcow2: has a backing file level2.qcow2, and backing files cannot be opened here");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn features_refused_with_clear_messages() {
    let dir = temp_dir("features");
    let disk = dir.join("disk.qcow2");
    qemu_img_ok(&["create", "-f", "qcow2", s(&disk), "1M"]);
    patch(&disk, 72, &0x80u64.to_be_bytes());
    let e = open_path(&disk).err().unwrap().to_string();
    assert_eq!(e, format!("{}: unknown incompatible qcow2 features 0x80", s(&disk)));

    let cases: [(&str, &str); 3] = [
        ("data_file=data.raw", "external data file"),
        ("extended_l2=on", "extended L2 entries"),
        ("compression_type=zstd", "zstd"),
    ];
    for (i, (opts, want)) in cases.into_iter().enumerate() {
        let path = dir.join(format!("f{i}.qcow2"));
        let (code, text) = qemu_img(&["create", "-f", "qcow2", "-o", opts, s(&path), "1M"]);
        if code != 0 && opts.contains("zstd") {
            // A QEMU built without zstd: set the field and bit by hand.
            qemu_img_ok(&["create", "-f", "qcow2", s(&path), "1M"]);
            patch(&path, 72, &8u64.to_be_bytes());
            patch(&path, 104, &[1]);
        } else {
            assert_eq!(code, 0, "{text}");
        }
        let e = open_path(&path).err().unwrap().to_string();
        assert!(e.contains(want) && e.contains("not supported"), "{opts}: {e}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn corrupt_dirty_and_snapshot_images_open_read_only() {
    let dir = temp_dir("readonly");
    for (bit, reason) in [(2u64, ReadOnlyReason::MarkedCorrupt), (1u64, ReadOnlyReason::Dirty)] {
        let path = dir.join(format!("bit{bit}.qcow2"));
        qemu_img_ok(&["create", "-f", "qcow2", s(&path), "1M"]);
        patch(&path, 72, &bit.to_be_bytes());
        let mut image = open_path(&path).unwrap();
        assert!(image.read_only());
        assert_eq!(image.read_only_reason(), Some(reason));
        assert!(reason.to_string().contains("read-only"));
        assert_eq!(image.write(0, &[1]), Err(Error::ReadOnly));
        let mut buf = [1u8; 512];
        image.read(0, &mut buf).unwrap();
        assert_eq!(buf, [0; 512]);
    }
    let snap = dir.join("snap.qcow2");
    qemu_img_ok(&["create", "-f", "qcow2", s(&snap), "1M"]);
    qemu_img_ok(&["snapshot", "-c", "one", s(&snap)]);
    let image = open_path(&snap).unwrap();
    assert_eq!(image.read_only_reason(), Some(ReadOnlyReason::Snapshots));

    // A dirty bitmap sets an auto-clear bit, which a writer clears (the bitmap is then stale).
    let bitmap = dir.join("bitmap.qcow2");
    qemu_img_ok(&["create", "-f", "qcow2", s(&bitmap), "1M"]);
    qemu_img_ok(&["bitmap", "--add", s(&bitmap), "b0"]);
    assert_ne!(std::fs::read(&bitmap).unwrap()[88..96], [0; 8]);
    let mut image = open_path(&bitmap).unwrap();
    image.write(0, &[1; 512]).unwrap();
    image.flush().unwrap();
    drop(image);
    assert_eq!(std::fs::read(&bitmap).unwrap()[88..96], [0; 8]);
    // qemu-img counts an inconsistent bitmap's clusters as leaked: that, and nothing worse.
    assert_check(&bitmap, true);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bad_tables_are_corruption() {
    let dir = temp_dir("tables");
    let path = dir.join("disk.qcow2");
    qemu_img_ok(&["create", "-f", "qcow2", s(&path), "1G"]);
    qemu_io(&path, "qcow2", &["write -P 1 0 4k"]);
    let good = std::fs::read(&path).unwrap();
    let l1_at = u64::from_be_bytes(good[40..48].try_into().unwrap()) as usize;

    let mut bad = good.clone();
    let l1 = u64::from_be_bytes(bad[l1_at..l1_at + 8].try_into().unwrap());
    bad[l1_at..l1_at + 8].copy_from_slice(&(l1 + 0x200).to_be_bytes());
    std::fs::write(&path, &bad).unwrap();
    let e = open_path(&path).err().unwrap().to_string();
    assert!(e.contains("corrupt qcow2 image: L2 table offset") && e.contains("is not cluster-aligned"), "{e}");

    let mut bad = good.clone();
    bad[40..48].copy_from_slice(&(1u64 << 40).to_be_bytes());
    std::fs::write(&path, &bad).unwrap();
    assert!(open_path(&path).err().unwrap().to_string().contains("reaches past the end of the file"));

    let mut bad = good.clone();
    bad[36..40].copy_from_slice(&1u32.to_be_bytes());
    std::fs::write(&path, &bad).unwrap();
    assert!(open_path(&path).err().unwrap().to_string().contains("too small"));

    let mut bad = good;
    bad[56..60].copy_from_slice(&u32::MAX.to_be_bytes());
    std::fs::write(&path, &bad).unwrap();
    assert!(open_path(&path).err().unwrap().to_string().contains("above 8 MiB"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_guessed_raw_image_keeps_its_first_sector_from_looking_like_qcow2() {
    let raw = MemFile::new(vec![0u8; 1 << 20]);
    let mut image = Image::open(Box::new(raw.clone()), "disk.img", OpenOptions::default(), &mut NoBacking).unwrap();
    assert_eq!(image.format(), Format::Raw);
    assert_eq!(image.write(0, b"QFI\xfb\0\0\0\x03"), Err(Error::RawHeaderWrite));
    image.write(1, b"FI\xfb").unwrap();
    assert_eq!(image.write(0, b"Q"), Err(Error::RawHeaderWrite));
    image.write(512, b"QFI\xfb").unwrap();
    // Named raw, the guest may write what it likes.
    let options = OpenOptions { read_only: false, format: Some(Format::Raw) };
    let mut image = Image::open(Box::new(raw), "disk.img", options, &mut NoBacking).unwrap();
    image.write(0, b"QFI\xfb").unwrap();
}

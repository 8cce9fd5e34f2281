//! Differential test: an image and a plain in-memory shadow take the same seeded random mix of
//! writes, discards, write-zeroes, flushes and reads; every read must agree. Afterwards the
//! image must pass `qemu-img check` with no error and no leak, and `qemu-img compare` must find
//! it equal to the shadow written as a raw file.
//!
//! Images: made here (qcow2 v3, 64 KiB clusters), made by qemu-img (512-byte clusters, whose
//! small refcount blocks make the refcount table grow; version 2; 1-bit refcounts; compressed),
//! and overlays over backing chains (raw and compressed bases, an overlay made here).

mod common;

use std::path::{Path, PathBuf};

use common::*;
use keel_diskimage::{create, CreateOptions, Format, HostOpener, Image, OpenOptions};

const SIZE: u64 = 12 * 1024 * 1024;

fn open_rw(path: &Path) -> Image {
    let file = std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
    let options = OpenOptions { read_only: false, format: Some(Format::Qcow2) };
    let image = Image::open(Box::new(file), path.to_str().unwrap(), options, &mut HostOpener).unwrap();
    assert!(!image.read_only());
    image
}

fn raw_with_data(path: &Path, seed: u64) {
    let mut rng = Rng::new(seed);
    let mut bytes = vec![0u8; SIZE as usize];
    for _ in 0..30 {
        let at = rng.below(SIZE - 300_000) as usize;
        let len = 1 + rng.below(300_000) as usize;
        bytes[at..at + len].copy_from_slice(&rng.bytes(len));
    }
    std::fs::write(path, bytes).unwrap();
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `Image::read_into` gathered into a buffer, checking that the pieces come in order.
fn read_piecewise(image: &mut Image, offset: u64, len: u64) -> Vec<u8> {
    let mut buf = Vec::new();
    image
        .read_into(offset, len, &mut |at, piece| {
            assert_eq!(at, buf.len() as u64, "pieces come in order");
            buf.extend_from_slice(piece);
            true
        })
        .unwrap();
    assert_eq!(buf.len() as u64, len);
    buf
}

/// Runs `ops` random operations on the image at `path` against a shadow, then checks it.
fn run(path: &Path, seed: u64, ops: usize) {
    let mut shadow = qemu_read_all(path);
    let mut image = open_rw(path);
    assert_eq!(image.size(), shadow.len() as u64);
    let size = image.size();
    let mut rng = Rng::new(seed);
    let pick_range = |rng: &mut Rng, max: u64| -> (u64, u64) {
        let aligned = rng.below(4) != 0;
        let len = 1 + rng.below(max);
        let len = if aligned { len.div_ceil(512) * 512 } else { len };
        let len = len.min(size);
        let mut offset = rng.below(size - len + 1);
        if aligned {
            offset -= offset % 512;
        }
        (offset, len)
    };
    for op in 0..ops {
        match rng.below(10) {
            0..=3 => {
                let (offset, len) = pick_range(&mut rng, 200_000);
                let data = rng.bytes(len as usize);
                let written = if rng.below(2) == 0 {
                    image.write(offset, &data)
                } else {
                    // The piecewise path (the monitor's: guest buffers straight to the file).
                    let mut next = 0u64;
                    image.write_from(offset, len, &mut |at, piece| {
                        assert_eq!(at, next, "pieces come in order");
                        next += piece.len() as u64;
                        piece.copy_from_slice(&data[at as usize..at as usize + piece.len()]);
                        true
                    })
                };
                written.unwrap_or_else(|e| panic!("op {op}: write {offset:#x}+{len}: {e}"));
                shadow[offset as usize..(offset + len) as usize].copy_from_slice(&data);
            }
            4..=5 => {
                let (offset, len) = pick_range(&mut rng, 300_000);
                let buf = if rng.below(2) == 0 {
                    let mut buf = vec![0u8; len as usize];
                    image.read(offset, &mut buf).unwrap();
                    buf
                } else {
                    read_piecewise(&mut image, offset, len)
                };
                let want = &shadow[offset as usize..(offset + len) as usize];
                if let Some(i) = buf.iter().zip(want).position(|(a, b)| a != b) {
                    panic!("op {op}: read {offset:#x}+{len} differs at {:#x}", offset + i as u64);
                }
            }
            6 => {
                let (offset, len) = pick_range(&mut rng, 400_000);
                image.discard(offset, len).unwrap_or_else(|e| panic!("op {op}: discard: {e}"));
                // A discarded byte reads as before or as zero.
                let mut buf = vec![0u8; len as usize];
                image.read(offset, &mut buf).unwrap();
                let old = &mut shadow[offset as usize..(offset + len) as usize];
                for (i, (new, old)) in buf.iter().zip(old.iter_mut()).enumerate() {
                    assert!(*new == *old || *new == 0, "op {op}: discard changed byte {:#x}", offset + i as u64);
                    *old = *new;
                }
            }
            7..=8 => {
                let (offset, len) = pick_range(&mut rng, 400_000);
                image.write_zeroes(offset, len).unwrap_or_else(|e| panic!("op {op}: write_zeroes: {e}"));
                shadow[offset as usize..(offset + len) as usize].fill(0);
            }
            _ => image.flush().unwrap(),
        }
    }
    let mut all = vec![0u8; size as usize];
    image.read(0, &mut all).unwrap();
    assert!(all == shadow, "final read differs from the shadow");
    assert!(read_piecewise(&mut image, 0, size) == shadow, "final piecewise read differs from the shadow");
    image.flush().unwrap();
    drop(image);
    assert_check(path, false);
    let raw = path.with_extension("shadow.raw");
    std::fs::write(&raw, &shadow).unwrap();
    assert_same_as_raw(path, &raw);
}

fn qemu_create(path: &Path, opts: &str, backing: Option<(&str, &str)>) {
    let size = SIZE.to_string();
    let mut args = vec!["create", "-f", "qcow2", "-o", opts];
    if let Some((name, format)) = backing {
        args.extend(["-b", name, "-F", format]);
    }
    args.push(s(path));
    if backing.is_none() {
        args.push(&size);
    }
    qemu_img_ok(&args);
}

fn made_here(dir: &Path, name: &str, options: CreateOptions<'_>) -> PathBuf {
    let path = dir.join(name);
    let file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path).unwrap();
    let image = create(Box::new(file), s(&path), options, &mut HostOpener).unwrap();
    drop(image);
    assert_check(&path, false);
    path
}

#[test]
fn made_here_v3_64k() {
    let dir = temp_dir("diff-here");
    let path = made_here(&dir, "disk.qcow2", CreateOptions::new(Format::Qcow2, SIZE));
    run(&path, 11, 300);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn qemu_v3_512_byte_clusters_grow_the_refcount_table() {
    let dir = temp_dir("diff-512");
    let reftable = |path: &Path| std::fs::read(path).unwrap()[48..60].to_vec();
    for (i, opts) in ["cluster_size=512", "cluster_size=512,refcount_bits=64"].into_iter().enumerate() {
        let path = dir.join(format!("disk{i}.qcow2"));
        qemu_create(&path, opts, None);
        let before = reftable(&path);
        run(&path, 12 + i as u64 * 100, 300);
        if opts.contains("refcount_bits=64") {
            // 64 refcounts per block: one table cluster counts 2 MiB of file, so it must grow.
            assert_ne!(reftable(&path), before, "{opts}: the refcount table did not move");
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn qemu_v2_and_narrow_and_wide_refcounts() {
    let dir = temp_dir("diff-v2");
    for (i, opts) in
        ["compat=0.10,cluster_size=4096", "cluster_size=4096,refcount_bits=1", "cluster_size=2048,refcount_bits=64"]
            .into_iter()
            .enumerate()
    {
        let path = dir.join(format!("disk{i}.qcow2"));
        qemu_create(&path, opts, None);
        run(&path, 13 + i as u64, 150);
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn compressed_image_rewritten() {
    let dir = temp_dir("diff-compressed");
    let raw = dir.join("src.raw");
    raw_with_data(&raw, 5);
    let path = dir.join("disk.qcow2");
    qemu_img_ok(&["convert", "-c", "-O", "qcow2", "-o", "cluster_size=4096", s(&raw), s(&path)]);
    run(&path, 14, 200);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn backing_chains() {
    let dir = temp_dir("diff-chain");
    let raw = dir.join("base.raw");
    raw_with_data(&raw, 6);
    // raw base <- qemu v3 mid (written by qemu-io) <- overlay made here.
    let mid = dir.join("mid.qcow2");
    qemu_create(&mid, "cluster_size=16384", Some(("base.raw", "raw")));
    qemu_io(&mid, "qcow2", &["write -P 0xab 100k 70k", "write -z 1M 128k", "write -P 3 5M 1M"]);
    let top = made_here(&dir, "top.qcow2", CreateOptions::overlay("mid.qcow2"));
    run(&top, 15, 250);
    // A compressed base under a version 2 overlay with 4 KiB clusters (no zero flag).
    let comp = dir.join("comp.qcow2");
    qemu_img_ok(&["convert", "-c", "-O", "qcow2", s(&raw), s(&comp)]);
    let v2 = dir.join("v2.qcow2");
    qemu_create(&v2, "compat=0.10,cluster_size=4096", Some(("comp.qcow2", "qcow2")));
    run(&v2, 16, 200);
    // The lower images were only read.
    assert_check(&mid, false);
    assert_check(&comp, false);
    std::fs::remove_dir_all(dir).unwrap();
}

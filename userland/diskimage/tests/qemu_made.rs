//! Images QEMU made read the same through this crate as through `qemu-img convert -O raw`:
//! qcow2 v2 (`compat=0.10`) and v3, cluster sizes from 512 bytes to 2 MiB, refcount widths from 1
//! to 64 bits, compressed images (`convert -c`), zero clusters and discards written by qemu-io,
//! and backing chains over qcow2 and raw base images.

mod common;

use std::path::Path;

use common::*;
use keel_diskimage::{HostOpener, Image, OpenOptions};

const SIZE: u64 = 6 * 1024 * 1024 + 3 * 512;

/// A raw file with data in some places and zeros in others.
fn pattern_raw(path: &Path, seed: u64) {
    let mut rng = Rng::new(seed);
    let mut bytes = vec![0u8; SIZE as usize];
    for _ in 0..40 {
        let at = rng.below(SIZE - 100_000) as usize;
        let len = 1 + rng.below(90_000) as usize;
        bytes[at..at + len].copy_from_slice(&rng.bytes(len));
    }
    // The last sector, so the odd tail is covered.
    let tail = bytes.len() - 512;
    bytes[tail..].fill(0x5a);
    std::fs::write(path, bytes).unwrap();
}

/// The whole image read through this crate, in pieces that straddle clusters.
fn read_via_crate(path: &Path) -> Vec<u8> {
    let file = std::fs::File::open(path).unwrap();
    let name = path.to_str().unwrap();
    let options = OpenOptions { read_only: true, format: None };
    let mut image = Image::open(Box::new(file), name, options, &mut HostOpener).unwrap();
    let mut out = vec![0u8; image.size() as usize];
    for (i, chunk) in out.chunks_mut(100_003).enumerate() {
        image.read(i as u64 * 100_003, chunk).unwrap();
    }
    // The piecewise path (the monitor's) reads the same.
    let mut pieces = Vec::with_capacity(out.len());
    for offset in (0..image.size()).step_by(100_003) {
        let len = (image.size() - offset).min(100_003);
        image
            .read_into(offset, len, &mut |_, piece| {
                pieces.extend_from_slice(piece);
                true
            })
            .unwrap();
    }
    assert!(pieces == out, "{}: read_into differs from read", path.display());
    out
}

fn assert_reads_like_qemu(path: &Path) {
    let ours = read_via_crate(path);
    let qemu = qemu_read_all(path);
    assert_eq!(ours.len(), qemu.len(), "{}: size", path.display());
    if let Some(i) = ours.iter().zip(&qemu).position(|(a, b)| a != b) {
        panic!("{}: first difference at byte {i:#x}", path.display());
    }
}

#[test]
fn plain_images_of_every_version_and_cluster_size() {
    let dir = temp_dir("plain");
    let raw = dir.join("src.raw");
    pattern_raw(&raw, 1);
    let cases = [
        ("0.10", "512", "16"),
        ("0.10", "65536", "16"),
        ("1.1", "512", "16"),
        ("1.1", "4096", "1"),
        ("1.1", "65536", "64"),
        ("1.1", "2M", "8"),
        ("1.1", "16384", "2"),
    ];
    for (compat, cluster, refbits) in cases {
        let img = dir.join(format!("v{compat}-{cluster}-{refbits}.qcow2"));
        let opts = if compat == "0.10" {
            format!("compat={compat},cluster_size={cluster}")
        } else {
            format!("compat={compat},cluster_size={cluster},refcount_bits={refbits}")
        };
        qemu_img_ok(&["convert", "-O", "qcow2", "-o", &opts, raw.to_str().unwrap(), img.to_str().unwrap()]);
        assert_reads_like_qemu(&img);
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn compressed_images() {
    let dir = temp_dir("compressed");
    let raw = dir.join("src.raw");
    pattern_raw(&raw, 2);
    for (compat, cluster) in [("1.1", "65536"), ("1.1", "4096"), ("0.10", "512"), ("1.1", "2M")] {
        let img = dir.join(format!("c-{compat}-{cluster}.qcow2"));
        let opts = format!("compat={compat},cluster_size={cluster}");
        qemu_img_ok(&["convert", "-c", "-O", "qcow2", "-o", &opts, raw.to_str().unwrap(), img.to_str().unwrap()]);
        assert_reads_like_qemu(&img);
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn backing_chains_with_zero_clusters_and_discards() {
    let dir = temp_dir("chain");
    let raw = dir.join("base.raw");
    pattern_raw(&raw, 3);
    let base = dir.join("base.qcow2");
    qemu_img_ok(&["convert", "-O", "qcow2", "-o", "cluster_size=4096", raw.to_str().unwrap(), base.to_str().unwrap()]);
    for compat in ["1.1", "0.10"] {
        // mid over the qcow2 base (relative name), top over mid; each written by qemu-io.
        let mid = dir.join(format!("mid-{compat}.qcow2"));
        let top = dir.join(format!("top-{compat}.qcow2"));
        let opts = format!("compat={compat},cluster_size=65536");
        qemu_img_ok(&["create", "-f", "qcow2", "-o", &opts, "-b", "base.qcow2", "-F", "qcow2", mid.to_str().unwrap()]);
        qemu_io(
            &mid,
            "qcow2",
            &["write -P 0xab 100k 70k", "write -z 1M 128k", "discard 2M 64k", "write -P 7 3000k 5k"],
        );
        let mid_name = mid.file_name().unwrap().to_str().unwrap();
        qemu_img_ok(&["create", "-f", "qcow2", "-o", &opts, "-b", mid_name, "-F", "qcow2", top.to_str().unwrap()]);
        qemu_io(&top, "qcow2", &["write -P 0xcd 120k 8k", "write -z 4M 64k", "write -z 4100k 1k"]);
        assert_reads_like_qemu(&mid);
        assert_reads_like_qemu(&top);
    }
    // A raw base, its format recorded.
    let top = dir.join("over-raw.qcow2");
    qemu_img_ok(&["create", "-f", "qcow2", "-b", "base.raw", "-F", "raw", top.to_str().unwrap()]);
    qemu_io(&top, "qcow2", &["write -P 0x11 64k 64k", "write -z 0 4k"]);
    assert_reads_like_qemu(&top);
    std::fs::remove_dir_all(dir).unwrap();
}

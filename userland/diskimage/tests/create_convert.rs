//! `create` and `copy` as vmctl uses them: new raw and qcow2 images (QEMU reads what they are),
//! overlays that take their size from the backing image and record its format, and copies
//! between formats (raw to qcow2, qcow2 to raw, a qcow2 chain flattened into qcow2) that are
//! equal to their source by `qemu-img compare` and stay sparse.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use common::*;
use keel_diskimage::{copy, create, format_for_path, CreateOptions, Format, HostOpener, Image, OpenOptions};

fn rw_file(path: &Path) -> std::fs::File {
    std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path).unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn new_image(path: &Path, options: CreateOptions<'_>) -> Image {
    create(Box::new(rw_file(path)), s(path), options, &mut HostOpener).unwrap()
}

fn open(path: &Path, read_only: bool) -> Image {
    let options = OpenOptions { read_only, format: None };
    Image::open(Box::new(rw_file(path)), s(path), options, &mut HostOpener).unwrap()
}

#[test]
fn new_images_are_what_qemu_expects() {
    let dir = temp_dir("create");
    let raw = dir.join("disk.img");
    let qcow = dir.join("disk.qcow2");
    assert_eq!(format_for_path(s(&raw)), Format::Raw);
    assert_eq!(format_for_path(s(&qcow)), Format::Qcow2);
    let size = 10 << 30;
    let mut image = new_image(&raw, CreateOptions::new(format_for_path(s(&raw)), size));
    assert_eq!((image.format(), image.size()), (Format::Raw, size));
    image.write(5 << 30, b"hello").unwrap();
    image.flush().unwrap();
    let meta = std::fs::metadata(&raw).unwrap();
    assert_eq!(meta.len(), size);
    assert!(meta.blocks() * 512 < 1 << 20, "a new raw image is sparse");

    let mut image = new_image(&qcow, CreateOptions::new(format_for_path(s(&qcow)), size));
    assert_eq!(image.qcow2_geometry(), Some((3, 65536)));
    image.write(5 << 30, b"hello").unwrap();
    image.flush().unwrap();
    drop(image);
    assert_check(&qcow, false);
    let info = qemu_img_ok(&["info", s(&qcow)]);
    for want in ["virtual size: 10 GiB", "cluster_size: 65536", "compat: 1.1", "refcount bits: 16"] {
        assert!(info.contains(want), "qemu-img info lacks '{want}':\n{info}");
    }
    // Reopened, the image reads what was written.
    let mut image = open(&qcow, true);
    let mut buf = [0u8; 7];
    image.read((5 << 30) - 1, &mut buf).unwrap();
    assert_eq!(&buf, b"\0hello\0");
    // A raw image cannot have a backing file; a size is needed without one.
    let no = create(
        Box::new(rw_file(&dir.join("x"))),
        "x",
        CreateOptions { backing: Some("disk.img"), ..CreateOptions::new(Format::Raw, 1) },
        &mut HostOpener,
    );
    assert!(no.is_err());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn overlays_take_the_base_size_and_record_its_format() {
    let dir = temp_dir("overlay");
    let base = dir.join("base.qcow2");
    qemu_img_ok(&["create", "-f", "qcow2", s(&base), "96M"]);
    qemu_io(&base, "qcow2", &["write -P 0x42 0 1M", "write -P 0x43 90M 64k"]);
    let top = dir.join("top.qcow2");
    let mut image = new_image(&top, CreateOptions::overlay("base.qcow2"));
    assert_eq!(image.size(), 96 << 20);
    assert_eq!(image.backing().map(|b| b.format()), Some(Format::Qcow2));
    let mut buf = vec![0u8; 4096];
    image.read(90 << 20, &mut buf).unwrap();
    assert!(buf.iter().all(|&b| b == 0x43));
    image.write(1000, &[9; 3000]).unwrap();
    image.flush().unwrap();
    drop(image);
    assert_check(&top, false);
    let info = qemu_img_ok(&["info", s(&top)]);
    assert!(info.contains("backing file: base.qcow2") && info.contains("backing file format: qcow2"), "{info}");
    let expected = dir.join("expected.raw");
    qemu_img_ok(&["convert", "-O", "raw", s(&base), s(&expected)]);
    qemu_io(&expected, "raw", &["write -P 9 1000 3000"]);
    assert_same_as_raw(&top, &expected);

    // Over a raw base: "raw" recorded; an explicit size wins.
    let raw = dir.join("base.raw");
    std::fs::write(&raw, vec![0x77u8; 1 << 20]).unwrap();
    let over_raw = dir.join("over-raw.qcow2");
    let image = new_image(&over_raw, CreateOptions { size: Some(2 << 20), ..CreateOptions::overlay("base.raw") });
    assert_eq!(image.size(), 2 << 20);
    drop(image);
    let info = qemu_img_ok(&["info", s(&over_raw)]);
    assert!(info.contains("backing file format: raw"), "{info}");
    assert_check(&over_raw, false);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn copies_between_formats_stay_sparse_and_equal() {
    let dir = temp_dir("convert");
    let size: u64 = 64 << 20;
    // A sparse raw source with data in a few places.
    let src_raw = dir.join("src.img");
    {
        let mut image = new_image(&src_raw, CreateOptions::new(Format::Raw, size));
        let mut rng = Rng::new(3);
        for i in 0..8u64 {
            let data = rng.bytes(100_000);
            image.write(i * (7 << 20) + 12345, &data).unwrap();
        }
        image.flush().unwrap();
    }
    // raw -> qcow2
    let q = dir.join("copy.qcow2");
    let mut reports = Vec::new();
    {
        let mut src = open(&src_raw, true);
        let mut dst = new_image(&q, CreateOptions::new(Format::Qcow2, src.size()));
        copy(&mut src, &mut dst, &mut |done, total| reports.push((done, total))).unwrap();
    }
    assert_eq!(reports.len(), 64, "one report per MiB");
    assert!(reports.windows(2).all(|w| w[0].0 < w[1].0) && reports.last() == Some(&(size, size)));
    assert_check(&q, false);
    assert_same_as_raw(&q, &src_raw);
    assert!(std::fs::metadata(&q).unwrap().len() < 4 << 20, "zeros were copied into the qcow2 image");

    // qcow2 (an overlay over it, with its own writes) -> qcow2, flattened.
    let top = dir.join("top.qcow2");
    {
        let mut image = new_image(&top, CreateOptions::overlay("copy.qcow2"));
        image.write(3 << 20, &[5; 70_000]).unwrap();
        image.write_zeroes(0, 4 << 20).unwrap();
        image.flush().unwrap();
    }
    let flat = dir.join("flat.qcow2");
    {
        let mut src = open(&top, true);
        let mut dst = new_image(&flat, CreateOptions::new(Format::Qcow2, src.size()));
        copy(&mut src, &mut dst, &mut |_, _| {}).unwrap();
        assert!(dst.backing().is_none());
    }
    assert_check(&flat, false);
    let (code, text) = qemu_img(&["compare", s(&top), s(&flat)]);
    assert_eq!(code, 0, "{text}");

    // qcow2 -> raw
    let back = dir.join("back.img");
    {
        let mut src = open(&flat, true);
        let mut dst = new_image(&back, CreateOptions::new(Format::Raw, src.size()));
        copy(&mut src, &mut dst, &mut |_, _| {}).unwrap();
    }
    assert_same_as_raw(&flat, &back);
    assert!(std::fs::metadata(&back).unwrap().blocks() * 512 < 4 << 20, "the raw copy is not sparse");
    std::fs::remove_dir_all(dir).unwrap();
}

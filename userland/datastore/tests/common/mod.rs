//! Helpers the datastore tests share: Linux's mkfs and fsck tools on temporary image files
//! (a test that needs a missing tool is skipped with a loud message), and image plumbing.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// Where a tool is, looking in PATH and the sbin directories (root's tools live there).
pub fn tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let dirs: Vec<&str> = path.split(':').chain(["/usr/sbin", "/sbin", "/usr/bin"]).collect();
    dirs.iter().map(|dir| Path::new(dir).join(name)).find(|p| p.is_file())
}

/// The tool, or `None` after saying loudly that the test is skipped.
pub fn need(name: &str) -> Option<PathBuf> {
    let found = tool(name);
    if found.is_none() {
        eprintln!("\n*** SKIPPED: `{name}` is not installed (apt-get install exfatprogs dosfstools mtools; `cargo xtask test` installs them) ***\n");
    }
    found
}

/// A fresh temporary file path.
pub fn temp_path(tag: &str) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("keel-datastore-{}-{tag}-{n}.img", std::process::id()))
}

/// Run `tool args... image` on a sparse image of `size` bytes; the image's bytes.
pub fn make_image(tool_name: &str, args: &[&str], size: u64) -> Option<Vec<u8>> {
    let tool = need(tool_name)?;
    let path = temp_path("mkfs");
    std::fs::File::create(&path).unwrap().set_len(size).unwrap();
    let out = Command::new(tool).args(args).arg(&path).output().unwrap();
    assert!(out.status.success(), "{tool_name} failed: {}", String::from_utf8_lossy(&out.stderr));
    let bytes = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    Some(bytes)
}

/// A small exFAT image made by mkfs.exfat (512-byte clusters unless told).
pub fn linux_mkfs_exfat(size: u64, cluster: &str) -> Option<Vec<u8>> {
    make_image("mkfs.exfat", &["-L", "TEST", "-b", "4K", "-c", cluster], size)
}

/// Run a checker (`fsck.exfat -n` or `fsck.vfat -n`) on a file; its verdict and output.
pub fn fsck_file(tool_name: &str, path: &Path) -> Option<(bool, String)> {
    let tool = need(tool_name)?;
    let out = Command::new(tool).arg("-n").arg(path).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    Some((out.status.success(), text))
}

/// Run a checker on image bytes.
pub fn fsck(tool_name: &str, image: &[u8]) -> Option<(bool, String)> {
    let path = temp_path("fsck");
    std::fs::write(&path, image).unwrap();
    let result = fsck_file(tool_name, &path);
    std::fs::remove_file(&path).unwrap();
    result
}

/// Assert the checker accepts the image.
pub fn assert_fsck_clean(tool_name: &str, image: &[u8]) {
    if let Some((ok, text)) = fsck(tool_name, image) {
        assert!(ok, "{tool_name} -n failed:\n{text}");
    }
}

/// A deterministic pseudo-random byte pattern.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

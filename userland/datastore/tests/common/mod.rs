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

/// A sparse disk in memory: 64 KiB chunks, absent ones read as zero; `write_zeroes` drops whole
/// chunks (like a driver's one WRITE ZEROES command) and counts the bytes written by
/// `write_blocks`, so a test can show that growing a file wrote no gigabytes.
pub struct SparseDisk {
    pub chunks: std::collections::BTreeMap<u64, Vec<u8>>,
    pub blocks: u64,
    pub bytes_written: u64,
}

const CHUNK: u64 = 64 * 1024;

impl SparseDisk {
    /// A disk of `size` bytes whose first `prefix.len()` bytes are `prefix`.
    pub fn new(size: u64, prefix: &[u8]) -> Self {
        let mut disk = SparseDisk { chunks: Default::default(), blocks: size / 512, bytes_written: 0 };
        for (i, chunk) in prefix.chunks(CHUNK as usize).enumerate() {
            if chunk.iter().any(|&b| b != 0) {
                let mut c = chunk.to_vec();
                c.resize(CHUNK as usize, 0);
                disk.chunks.insert(i as u64, c);
            }
        }
        disk
    }

    /// Write the disk to a sparse host file.
    pub fn save(&self, path: &Path) {
        use std::os::unix::fs::FileExt;
        let file = std::fs::File::create(path).unwrap();
        file.set_len(self.blocks * 512).unwrap();
        for (index, chunk) in &self.chunks {
            file.write_all_at(chunk, index * CHUNK).unwrap();
        }
    }

    fn copy(&mut self, offset: u64, data: Option<&[u8]>, out: Option<&mut [u8]>, len: usize) {
        let mut out = out;
        let mut done = 0usize;
        while done < len {
            let at = offset + done as u64;
            let (index, within) = (at / CHUNK, (at % CHUNK) as usize);
            let n = (CHUNK as usize - within).min(len - done);
            match (&data, &mut out) {
                (Some(data), _) => {
                    let chunk = self.chunks.entry(index).or_insert_with(|| vec![0; CHUNK as usize]);
                    chunk[within..within + n].copy_from_slice(&data[done..done + n]);
                }
                (None, Some(out)) => match self.chunks.get(&index) {
                    Some(chunk) => out[done..done + n].copy_from_slice(&chunk[within..within + n]),
                    None => out[done..done + n].fill(0),
                },
                (None, None) => {
                    if within == 0 && n == CHUNK as usize {
                        self.chunks.remove(&index);
                    } else if let Some(chunk) = self.chunks.get_mut(&index) {
                        chunk[within..within + n].fill(0);
                    }
                }
            }
            done += n;
        }
    }
}

impl keel_block::BlockDevice for SparseDisk {
    fn block_size(&self) -> u32 {
        512
    }
    fn block_count(&self) -> u64 {
        self.blocks
    }
    fn read_blocks(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), keel_block::BlockError> {
        keel_block::check_request(512, self.blocks, lba, buf.len())?;
        let len = buf.len();
        self.copy(lba * 512, None, Some(buf), len);
        Ok(())
    }
    fn write_blocks(&mut self, lba: u64, buf: &[u8]) -> Result<(), keel_block::BlockError> {
        keel_block::check_request(512, self.blocks, lba, buf.len())?;
        self.bytes_written += buf.len() as u64;
        self.copy(lba * 512, Some(buf), None, buf.len());
        Ok(())
    }
    fn flush(&mut self) -> Result<(), keel_block::BlockError> {
        Ok(())
    }
    fn write_zeroes(&mut self, lba: u64, blocks: u64) -> Result<(), keel_block::BlockError> {
        match lba.checked_add(blocks) {
            Some(end) if end <= self.blocks => {}
            _ => return Err(keel_block::BlockError::OutOfRange),
        }
        self.copy(lba * 512, None, None, (blocks * 512) as usize);
        Ok(())
    }
}

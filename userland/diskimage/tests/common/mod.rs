//! Helpers the image tests share: QEMU's `qemu-img` and `qemu-io` (package qemu-utils; a test
//! that needs them fails with a message saying how to install them, never skips), temporary
//! files, a seeded PRNG, and an [`ImageFile`] that records every write and flush.
#![allow(dead_code)]

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};

use keel_diskimage::{Error, ImageFile, MemFile};

/// The tool from qemu-utils, or a failed test that says how to get it.
pub fn qemu_tool(name: &str) -> PathBuf {
    let path = std::env::var("PATH").unwrap_or_default();
    let found =
        path.split(':').chain(["/usr/bin", "/usr/local/bin"]).map(|d| Path::new(d).join(name)).find(|p| p.is_file());
    found.unwrap_or_else(|| {
        panic!("`{name}` is not installed: apt-get install qemu-utils (`cargo xtask test` installs it)")
    })
}

/// Runs `qemu-img args...`; its exit code and output.
pub fn qemu_img(args: &[&str]) -> (i32, String) {
    let out = Command::new(qemu_tool("qemu-img")).args(args).output().expect("run qemu-img");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

/// Runs `qemu-img args...` and asserts it succeeded.
pub fn qemu_img_ok(args: &[&str]) -> String {
    let (code, text) = qemu_img(args);
    assert_eq!(code, 0, "qemu-img {args:?} failed:\n{text}");
    text
}

/// Runs `qemu-io -c CMD... IMAGE` (writes into an image the way QEMU does).
pub fn qemu_io(image: &Path, format: &str, commands: &[&str]) {
    let mut cmd = Command::new(qemu_tool("qemu-io"));
    cmd.args(["-f", format]);
    for c in commands {
        cmd.args(["-c", c]);
    }
    let out = cmd.arg(image).output().expect("run qemu-io");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && !text.contains("failed"), "qemu-io {commands:?} failed:\n{text}");
}

/// `qemu-img check`: 0 clean, 3 leaks only; anything else fails the test.
pub fn assert_check(path: &Path, leaks_allowed: bool) {
    let (code, text) = qemu_img(&["check", "-f", "qcow2", path.to_str().unwrap()]);
    let ok = code == 0 || (leaks_allowed && code == 3);
    assert!(ok, "qemu-img check {} exited {code}:\n{text}", path.display());
}

/// `qemu-img compare` of a qcow2 image and a raw file: identical contents.
pub fn assert_same_as_raw(image: &Path, raw: &Path) {
    let (code, text) =
        qemu_img(&["compare", "-f", "qcow2", "-F", "raw", image.to_str().unwrap(), raw.to_str().unwrap()]);
    assert_eq!(code, 0, "qemu-img compare {} {}:\n{text}", image.display(), raw.display());
}

/// What qemu-img reads from an image, as raw bytes.
pub fn qemu_read_all(image: &Path) -> Vec<u8> {
    let out = temp_path("raw-out");
    qemu_img_ok(&["convert", "-O", "raw", image.to_str().unwrap(), out.to_str().unwrap()]);
    let bytes = std::fs::read(&out).unwrap();
    std::fs::remove_file(&out).unwrap();
    bytes
}

/// A fresh temporary directory for one test.
pub fn temp_dir(tag: &str) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("keel-diskimage-{}-{tag}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn temp_path(tag: &str) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("keel-diskimage-{}-{tag}-{n}.img", std::process::id()))
}

/// A small xorshift PRNG: the same seed, the same test.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let fill = self.next() as u8;
        let mut v = vec![fill; len];
        // Mostly a repeated byte (so clusters differ), with some noise.
        for _ in 0..len / 64 {
            let i = self.below(len as u64) as usize;
            v[i] = self.next() as u8;
        }
        v
    }
}

/// One thing the image code did to its file.
#[derive(Clone, Debug)]
pub enum Event {
    Write(u64, Vec<u8>),
    SetLen(u64),
    Flush,
}

/// An in-memory file that logs every write, set_len and flush, shared with the test.
#[derive(Clone)]
pub struct Recorder {
    pub file: Rc<RefCell<MemFile>>,
    pub log: Rc<RefCell<Vec<Event>>>,
}

impl Recorder {
    pub fn new(bytes: Vec<u8>) -> Recorder {
        Recorder { file: Rc::new(RefCell::new(MemFile::new(bytes))), log: Rc::default() }
    }
}

impl ImageFile for Recorder {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        self.file.borrow_mut().read_at(offset, buf)
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), Error> {
        self.log.borrow_mut().push(Event::Write(offset, data.to_vec()));
        self.file.borrow_mut().write_at(offset, data)
    }
    fn flush(&mut self) -> Result<(), Error> {
        self.log.borrow_mut().push(Event::Flush);
        Ok(())
    }
    fn len(&mut self) -> Result<u64, Error> {
        self.file.borrow_mut().len()
    }
    fn set_len(&mut self, len: u64) -> Result<(), Error> {
        self.log.borrow_mut().push(Event::SetLen(len));
        self.file.borrow_mut().set_len(len)
    }
}

/// A shared in-memory file (the test keeps a handle to save it after the image is dropped).
#[derive(Clone, Default)]
pub struct Shared(pub Rc<RefCell<MemFile>>);

impl Shared {
    pub fn new(bytes: Vec<u8>) -> Shared {
        Shared(Rc::new(RefCell::new(MemFile::new(bytes))))
    }
    pub fn bytes(&self) -> Vec<u8> {
        self.0.borrow().bytes.clone()
    }
}

impl ImageFile for Shared {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        self.0.borrow_mut().read_at(offset, buf)
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), Error> {
        self.0.borrow_mut().write_at(offset, data)
    }
    fn flush(&mut self) -> Result<(), Error> {
        Ok(())
    }
    fn len(&mut self) -> Result<u64, Error> {
        self.0.borrow_mut().len()
    }
    fn set_len(&mut self, len: u64) -> Result<(), Error> {
        self.0.borrow_mut().set_len(len)
    }
}

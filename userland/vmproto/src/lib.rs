//! The control area that `vmd` shares with each VM's monitor (a shared-memory object vmd creates
//! and grants at spawn): the VM's configuration, the monitor's status, vmd's requests (stop,
//! pause), and the console byte rings in both directions.
//!
//! Every field is an atomic, so both processes may touch the area at any time without undefined
//! behaviour, and every index is reduced modulo the ring size: a misbehaving monitor (its guest is
//! hostile) can garble its own VM's status and console, never make vmd read out of bounds.
//! Each side still validates what it reads (lengths are clamped).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;
use alloc::string::String;
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};

pub const MAGIC: u32 = 0x4b56_4d43; // "KVMC"
pub const VERSION: u32 = 2;
/// Pages vmd allocates for the area.
pub const CONTROL_PAGES: u64 = 8;
pub const OUT_RING: usize = 16 * 1024;
pub const IN_RING: usize = 4 * 1024;
pub const NAME_MAX: usize = 64;
/// The longest image path (keel-vmlimits' rule for paths).
pub const IMAGE_PATH_MAX: usize = keel_vmlimits::PATH_MAX;
pub const CMDLINE_MAX: usize = 2048;
/// A disk's entry: its format prefix (`qcow2:`) and path.
pub const DISK_SPEC_MAX: usize = IMAGE_PATH_MAX + 8;
/// The monitor's exit code (and `exit_code`) when the guest asked for a reset: vmd starts the
/// VM again.
pub const EXIT_REBOOT: u32 = 0x100;
pub const REASON_MAX: usize = 160;

/// Monitor states (`ControlArea::state`).
pub mod state {
    pub const STARTING: u32 = 0;
    pub const RUNNING: u32 = 1;
    pub const PAUSED: u32 = 2;
    pub const STOPPED: u32 = 3;
}

/// Request bits (`ControlArea::request`), set by vmd, taken by the monitor.
pub mod request {
    pub const STOP: u32 = 1;
    pub const PAUSE: u32 = 2;
    pub const UNPAUSE: u32 = 4;
}

/// A single-producer single-consumer byte ring.
#[repr(C)]
pub struct Ring<const N: usize> {
    head: AtomicU32,
    tail: AtomicU32,
    dropped: AtomicU64,
    buf: [AtomicU8; N],
}

impl<const N: usize> Ring<N> {
    pub const fn new() -> Self {
        Self {
            head: AtomicU32::new(0),
            tail: AtomicU32::new(0),
            dropped: AtomicU64::new(0),
            buf: [const { AtomicU8::new(0) }; N],
        }
    }

    /// Bytes waiting (clamped to N whatever the other side wrote).
    pub fn len(&self) -> usize {
        let head = self.head.load(Ordering::Acquire);
        let tail = self.tail.load(Ordering::Acquire);
        (head.wrapping_sub(tail) as usize).min(N)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Producer: append what fits; the rest is counted as dropped. Returns bytes taken.
    pub fn push(&self, data: &[u8]) -> usize {
        let head = self.head.load(Ordering::Relaxed);
        let free = N - self.len();
        let n = data.len().min(free);
        for (i, &b) in data[..n].iter().enumerate() {
            self.buf[(head.wrapping_add(i as u32) as usize) % N].store(b, Ordering::Relaxed);
        }
        self.head.store(head.wrapping_add(n as u32), Ordering::Release);
        if n < data.len() {
            self.dropped.fetch_add((data.len() - n) as u64, Ordering::Relaxed);
        }
        n
    }

    /// Consumer: take up to `out.len()` bytes. Returns bytes taken.
    pub fn pop(&self, out: &mut [u8]) -> usize {
        let tail = self.tail.load(Ordering::Relaxed);
        let n = self.len().min(out.len());
        for (i, slot) in out[..n].iter_mut().enumerate() {
            *slot = self.buf[(tail.wrapping_add(i as u32) as usize) % N].load(Ordering::Relaxed);
        }
        self.tail.store(tail.wrapping_add(n as u32), Ordering::Release);
        n
    }

    pub fn take_dropped(&self) -> u64 {
        self.dropped.swap(0, Ordering::Relaxed)
    }
}

impl<const N: usize> Default for Ring<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// A short text field (name, reason).
#[repr(C)]
pub struct Text<const N: usize> {
    len: AtomicU32,
    bytes: [AtomicU8; N],
}

impl<const N: usize> Text<N> {
    pub const fn new() -> Self {
        Self { len: AtomicU32::new(0), bytes: [const { AtomicU8::new(0) }; N] }
    }

    /// Store `s`, cut to N bytes (at a character boundary).
    pub fn set(&self, s: &str) {
        let mut n = s.len().min(N);
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        for (i, &b) in s.as_bytes()[..n].iter().enumerate() {
            self.bytes[i].store(b, Ordering::Relaxed);
        }
        self.len.store(n as u32, Ordering::Release);
    }

    /// Copy out into `out` (at most N bytes); returns the length. Not trusted to be UTF-8.
    pub fn get(&self, out: &mut [u8; N]) -> usize {
        let n = (self.len.load(Ordering::Acquire) as usize).min(N);
        for (i, slot) in out[..n].iter_mut().enumerate() {
            *slot = self.bytes[i].load(Ordering::Relaxed);
        }
        n
    }
}

impl<const N: usize> Default for Text<N> {
    fn default() -> Self {
        Self::new()
    }
}

#[repr(C)]
pub struct ControlArea {
    pub magic: AtomicU32,
    pub version: AtomicU32,
    // Configuration, written by vmd before it spawns the monitor.
    pub vm_id: AtomicU32,
    pub vcpus: AtomicU32,
    pub memory: AtomicU64,
    pub name: Text<NAME_MAX>,
    /// The boot image: a boot module's name, or (starting with `/`) a path on the datastore,
    /// which the monitor reads through the storage channel vmd granted it.
    pub image: Text<IMAGE_PATH_MAX>,
    /// For a Linux kernel: the initrd (named as the image; empty: none) and the command line.
    pub initrd: Text<IMAGE_PATH_MAX>,
    pub cmdline: Text<CMDLINE_MAX>,
    /// The guest's disks, in order (empty: none), each a datastore path with its format:
    /// `raw:/path`, `qcow2:/path`, or `/path` (the format read from the image). Read-write.
    pub disks: [Text<DISK_SPEC_MAX>; keel_vmlimits::MAX_DISKS_PER_VM],
    /// The CD-ROM's ISO image, a datastore path (empty: none). Read-only.
    pub cdrom: Text<IMAGE_PATH_MAX>,
    // Status, written by the monitor.
    pub state: AtomicU32,
    pub exit_code: AtomicU32,
    pub reason: Text<REASON_MAX>,
    pub kernel_exits: AtomicU64,
    pub monitor_exits: AtomicU64,
    // Requests from vmd.
    pub request: AtomicU32,
    // Console: guest output for vmd, and input for the guest.
    pub to_vmd: Ring<OUT_RING>,
    pub to_guest: Ring<IN_RING>,
}

const _: () = assert!(core::mem::size_of::<ControlArea>() as u64 <= CONTROL_PAGES * 4096);

impl ControlArea {
    pub const fn new() -> Self {
        Self {
            magic: AtomicU32::new(0),
            version: AtomicU32::new(0),
            vm_id: AtomicU32::new(0),
            vcpus: AtomicU32::new(0),
            memory: AtomicU64::new(0),
            name: Text::new(),
            image: Text::new(),
            initrd: Text::new(),
            cmdline: Text::new(),
            disks: [const { Text::new() }; keel_vmlimits::MAX_DISKS_PER_VM],
            cdrom: Text::new(),
            state: AtomicU32::new(state::STARTING),
            exit_code: AtomicU32::new(0),
            reason: Text::new(),
            kernel_exits: AtomicU64::new(0),
            monitor_exits: AtomicU64::new(0),
            request: AtomicU32::new(0),
            to_vmd: Ring::new(),
            to_guest: Ring::new(),
        }
    }

    /// vmd: fill in the configuration (the area is zeroed shared memory).
    pub fn configure(&self, vm_id: u32, name: &str, image: &str, memory: u64) {
        self.configure_linux(vm_id, name, image, memory, "", "");
    }

    /// vmd: the configuration with a Linux initrd and command line.
    pub fn configure_linux(&self, vm_id: u32, name: &str, image: &str, memory: u64, initrd: &str, cmdline: &str) {
        self.initrd.set(initrd);
        self.cmdline.set(cmdline);
        self.vm_id.store(vm_id, Ordering::Relaxed);
        self.vcpus.store(1, Ordering::Relaxed);
        self.memory.store(memory, Ordering::Relaxed);
        self.name.set(name);
        self.image.set(image);
        self.version.store(VERSION, Ordering::Relaxed);
        self.magic.store(MAGIC, Ordering::Release);
    }

    /// vmd: the guest's disks (`raw:/path`, `qcow2:/path` or `/path`, at most
    /// MAX_DISKS_PER_VM; more are left out) and CD-ROM image (`""`: none). Before `configure`.
    pub fn configure_storage(&self, disks: &[String], cdrom: &str) {
        for (slot, disk) in self.disks.iter().zip(disks) {
            slot.set(disk);
        }
        self.cdrom.set(cdrom);
    }

    pub fn is_configured(&self) -> bool {
        self.magic.load(Ordering::Acquire) == MAGIC && self.version.load(Ordering::Relaxed) == VERSION
    }

    /// vmd: ask for something.
    pub fn ask(&self, bits: u32) {
        self.request.fetch_or(bits, Ordering::AcqRel);
    }

    /// monitor: take the pending requests.
    pub fn take_requests(&self) -> u32 {
        self.request.swap(0, Ordering::AcqRel)
    }

    /// monitor: say the VM stopped, why, with which code.
    pub fn stopped(&self, code: u32, reason: &str) {
        self.exit_code.store(code, Ordering::Relaxed);
        self.reason.set(reason);
        self.state.store(state::STOPPED, Ordering::Release);
    }
}

impl Default for ControlArea {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_wraps_and_drops() {
        let r: Ring<8> = Ring::new();
        assert_eq!(r.push(b"hello"), 5);
        let mut out = [0u8; 3];
        assert_eq!(r.pop(&mut out), 3);
        assert_eq!(&out, b"hel");
        assert_eq!(r.push(b"world!!"), 6); // 2 left + 6 = 8 = capacity
        assert_eq!(r.take_dropped(), 1);
        let mut out = [0u8; 16];
        let n = r.pop(&mut out);
        assert_eq!(&out[..n], b"loworld!");
        assert!(r.is_empty());
    }

    #[test]
    fn hostile_indices_stay_in_bounds() {
        let r: Ring<8> = Ring::new();
        // The other side writes nonsense indices.
        r.head.store(u32::MAX, Ordering::Relaxed);
        r.tail.store(3, Ordering::Relaxed);
        assert!(r.len() <= 8);
        let mut out = [0u8; 64];
        assert!(r.pop(&mut out) <= 8);
        r.push(&[1; 100]);
    }

    #[test]
    fn text_and_config() {
        let c = Box::new(ControlArea::new());
        assert!(!c.is_configured());
        c.configure(3, "web", "hello", 16 << 20);
        assert!(c.is_configured());
        let mut buf = [0u8; IMAGE_PATH_MAX];
        let n = c.image.get(&mut buf);
        assert_eq!(&buf[..n], b"hello");
        c.reason.set(&"é".repeat(200));
        let mut buf = [0u8; REASON_MAX];
        let n = c.reason.get(&mut buf);
        assert!(core::str::from_utf8(&buf[..n]).is_ok());
        c.ask(request::STOP | request::PAUSE);
        assert_eq!(c.take_requests(), 3);
        assert_eq!(c.take_requests(), 0);
        c.stopped(7, "debug exit");
        assert_eq!(c.state.load(Ordering::Relaxed), state::STOPPED);
    }
}

//! Kernel objects that are not tasks: shared memory (ordinary, DMA, or a device's registers),
//! the console's input side, and the boot modules table.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use spin::Mutex;

use crate::mm;
use crate::task::notify::Notification;

/// Frames that several address spaces may map. Freed when the last handle and mapping go.
///
/// Kept compact (guest RAM is the big user): whole 2 MiB pieces as aligned, contiguous 2 MiB
/// chunks (one entry each), then single 4 KiB frames for the rest, in that order. Page `i` of
/// the object is in chunk `i / 512` while `i < 512 * chunks`, else a single frame. (One entry
/// per 4 KiB page cost 512 KiB of kernel heap per 256 MiB of guest RAM.)
///
/// Two other kinds list their pages as single frames too, so that `frame` and `pages` (on the
/// exit path: the kernel reads guest code through them) take no extra branch: DMA memory
/// (contiguous frames of RAM, pinned, freed on drop) and device memory (a device's registers:
/// never RAM, never freed, mapped uncached). See: SDM Vol 3A 13.3 (PCD for device registers).
pub struct SharedMemory {
    chunks: Vec<u64>,
    frames: Vec<u64>,
    kind: Kind,
}

/// What the frames are.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ram,
    /// Physically contiguous RAM from this address.
    Dma(u64),
    /// A device's registers from this address.
    Device(u64),
}

/// Pages in a 2 MiB chunk.
const CHUNK: usize = 512;

/// The largest device-memory object (4096 pages): a disk or network controller's BAR is KiBs.
pub const MAX_DEVICE_MEMORY: u64 = 16 << 20;

impl SharedMemory {
    /// Zeroed frames for `len` bytes (rounded up to pages). Whole 2 MiB pieces come as aligned,
    /// contiguous 2 MiB chunks when memory allows, so guest RAM can use 2 MiB nested pages.
    pub fn new(len: u64) -> Option<Self> {
        let pages = len.div_ceil(keel_mm::PAGE_SIZE) as usize;
        let mut shm = SharedMemory { chunks: Vec::new(), frames: Vec::new(), kind: Kind::Ram };
        shm.chunks.try_reserve(pages / CHUNK).ok()?;
        while pages - shm.pages() >= CHUNK {
            let chunk_bytes = CHUNK as u64 * keel_mm::PAGE_SIZE;
            let Some(base) = mm::alloc_contiguous_zeroed(CHUNK as u64, chunk_bytes) else { break };
            shm.chunks.push(base);
        }
        shm.frames.try_reserve(pages - shm.pages()).ok()?;
        while shm.pages() < pages {
            // On failure, Drop frees what was allocated.
            shm.frames.push(mm::alloc_zeroed_frame()?);
        }
        Some(shm)
    }

    /// `pages` pages from `base`, one entry each.
    fn span(base: u64, pages: u64, kind: Kind) -> Option<Self> {
        let mut frames = Vec::new();
        frames.try_reserve(pages as usize).ok()?;
        frames.extend((0..pages).map(|i| base + i * keel_mm::PAGE_SIZE));
        Some(SharedMemory { chunks: Vec::new(), frames, kind })
    }

    /// Zeroed, physically contiguous frames for `len` bytes (DMA memory): `None` when no
    /// contiguous run is free.
    pub fn contiguous(len: u64) -> Option<Self> {
        let pages = len.div_ceil(keel_mm::PAGE_SIZE);
        let base = mm::alloc_contiguous_zeroed(pages, keel_mm::PAGE_SIZE)?;
        let shm = Self::span(base, pages, Kind::Dma(base));
        if shm.is_none() {
            mm::free_contiguous(base, pages);
        }
        shm
    }

    /// A device's registers at `range` (checked by the caller with `mm::check_device_range`,
    /// and at most MAX_DEVICE_MEMORY).
    pub fn device(range: keel_mm::range::PhysRange) -> Option<Self> {
        Self::span(range.start, range.len() / keel_mm::PAGE_SIZE, Kind::Device(range.start))
    }

    /// Whether this is a device's registers (mapped uncached, never into a VM).
    pub fn is_device(&self) -> bool {
        matches!(self.kind, Kind::Device(_))
    }

    /// The physical address of a contiguous object (DMA or device memory).
    pub fn span_base(&self) -> Option<u64> {
        match self.kind {
            Kind::Ram => None,
            Kind::Dma(base) | Kind::Device(base) => Some(base),
        }
    }

    /// The object's size in pages.
    pub fn pages(&self) -> usize {
        self.chunks.len() * CHUNK + self.frames.len()
    }

    /// The frame behind page `i` (`i < pages()`).
    pub fn frame(&self, i: usize) -> u64 {
        match self.chunks.get(i / CHUNK) {
            Some(&base) => base + (i % CHUNK) as u64 * keel_mm::PAGE_SIZE,
            None => self.frames[i - self.chunks.len() * CHUNK],
        }
    }

    /// Whether pages `i..i + 512` form one aligned, contiguous 2 MiB page.
    pub fn is_large_at(&self, i: usize) -> bool {
        i.is_multiple_of(CHUNK) && i / CHUNK < self.chunks.len()
    }
}

impl Drop for SharedMemory {
    fn drop(&mut self) {
        if self.is_device() {
            // A device's registers are not RAM: nothing to free.
            self.frames.clear();
        }
        self.chunks.drain(..).for_each(|base| mm::free_contiguous(base, CHUNK as u64));
        self.frames.drain(..).for_each(mm::free_frame);
    }
}

/// Console input typed on the serial port, waiting for vmd (bounded: older bytes are dropped
/// when vmd does not read, and counted).
pub struct ConsoleInput {
    buf: [u8; 4096],
    head: usize,
    len: usize,
    pub dropped: u64,
    listener: Option<(Arc<Notification>, u64)>,
}

pub static CONSOLE_INPUT: Mutex<ConsoleInput> =
    Mutex::new(ConsoleInput { buf: [0; 4096], head: 0, len: 0, dropped: 0, listener: None });

impl ConsoleInput {
    pub fn push(&mut self, byte: u8) {
        if self.len == self.buf.len() {
            self.head = (self.head + 1) % self.buf.len();
            self.len -= 1;
            self.dropped += 1;
        }
        let at = (self.head + self.len) % self.buf.len();
        self.buf[at] = byte;
        self.len += 1;
    }

    pub fn pop_into(&mut self, out: &mut [u8]) -> usize {
        let n = self.len.min(out.len());
        for slot in out.iter_mut().take(n) {
            *slot = self.buf[self.head];
            self.head = (self.head + 1) % self.buf.len();
        }
        self.len -= n;
        n
    }

    pub fn bind(&mut self, notification: Arc<Notification>, bits: u64) {
        self.listener = Some((notification, bits));
    }

    pub fn listener(&self) -> Option<(Arc<Notification>, u64)> {
        self.listener.clone()
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Drain the UART into the console input and wake its listener. Called from the UART interrupt
/// and, as a fallback, the boot CPU's timer tick (never with the scheduler lock held).
pub fn poll_console_input() {
    let mut got = false;
    let listener = {
        let mut input = CONSOLE_INPUT.lock();
        while let Some(b) = crate::serial::try_read_byte() {
            input.push(b);
            got = true;
        }
        input.listener()
    };
    if got {
        if let Some((n, bits)) = listener {
            n.signal(bits);
        }
    }
}

/// A boot module: a file GRUB loaded, named by the first word of its command line.
pub struct BootModule {
    pub name: String,
    pub start: u64,
    pub end: u64,
}

pub static MODULES: Mutex<Vec<BootModule>> = Mutex::new(Vec::new());

/// The bytes of a module, through the direct map.
pub fn module_bytes(name: &[u8]) -> Option<&'static [u8]> {
    let modules = MODULES.lock();
    let m = modules.iter().find(|m| m.name.as_bytes() == name)?;
    let len = m.end.saturating_sub(m.start) as usize;
    // SAFETY: module memory is reserved from the frame allocator for the kernel's lifetime, is
    // mapped by the direct map, and nothing writes to it after boot.
    Some(unsafe { core::slice::from_raw_parts(mm::phys_to_virt(m.start) as *const u8, len) })
}

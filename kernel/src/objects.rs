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
/// Two other kinds are one physically contiguous span instead (`span`): DMA memory (frames of
/// RAM, pinned, freed on drop) and device memory (a device's registers: never RAM, never freed,
/// mapped uncached). See: SDM Vol 3A 13.3 (memory types; PCD for device registers).
pub struct SharedMemory {
    chunks: Vec<u64>,
    frames: Vec<u64>,
    span: Option<Span>,
}

/// A physically contiguous object: `pages` pages from `base`.
struct Span {
    base: u64,
    pages: usize,
    device: bool,
}

/// Pages in a 2 MiB chunk.
const CHUNK: usize = 512;

impl SharedMemory {
    /// Zeroed frames for `len` bytes (rounded up to pages). Whole 2 MiB pieces come as aligned,
    /// contiguous 2 MiB chunks when memory allows, so guest RAM can use 2 MiB nested pages.
    pub fn new(len: u64) -> Option<Self> {
        let pages = len.div_ceil(keel_mm::PAGE_SIZE) as usize;
        let mut shm = SharedMemory { chunks: Vec::new(), frames: Vec::new(), span: None };
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

    /// Zeroed, physically contiguous frames for `len` bytes (DMA memory): `None` when no
    /// contiguous run is free.
    pub fn contiguous(len: u64) -> Option<Self> {
        let pages = len.div_ceil(keel_mm::PAGE_SIZE);
        let base = mm::alloc_contiguous_zeroed(pages, keel_mm::PAGE_SIZE)?;
        let span = Span { base, pages: pages as usize, device: false };
        Some(SharedMemory { chunks: Vec::new(), frames: Vec::new(), span: Some(span) })
    }

    /// A device's registers at `range` (checked by the caller with `mm::check_device_range`).
    pub fn device(range: keel_mm::range::PhysRange) -> Self {
        let span = Span { base: range.start, pages: (range.len() / keel_mm::PAGE_SIZE) as usize, device: true };
        SharedMemory { chunks: Vec::new(), frames: Vec::new(), span: Some(span) }
    }

    /// Whether this is a device's registers (mapped uncached, never into a VM).
    pub fn is_device(&self) -> bool {
        self.span.as_ref().is_some_and(|s| s.device)
    }

    /// The physical address of a contiguous object (DMA or device memory).
    pub fn span_base(&self) -> Option<u64> {
        self.span.as_ref().map(|s| s.base)
    }

    /// The object's size in pages.
    pub fn pages(&self) -> usize {
        match &self.span {
            Some(span) => span.pages,
            None => self.chunks.len() * CHUNK + self.frames.len(),
        }
    }

    /// The frame behind page `i` (`i < pages()`).
    pub fn frame(&self, i: usize) -> u64 {
        if let Some(span) = &self.span {
            return span.base + i as u64 * keel_mm::PAGE_SIZE;
        }
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
        match self.span.take() {
            // A device's registers are not RAM: nothing to free.
            Some(Span { device: true, .. }) => {}
            Some(span) => mm::free_contiguous(span.base, span.pages as u64),
            None => {}
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

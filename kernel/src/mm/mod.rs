//! Kernel memory: the direct map of physical memory, the global frame allocator, the kernel's
//! page tables and its heap.
//!
//! Layout (upper half only; the lower half is left for ring-3 processes):
//! - `0xffff_8000_0000_0000 + pa`: every physical address up to max(4 GiB, end of RAM), 2 MiB
//!   pages, no-execute; ranges the firmware map does not list as RAM/ACPI are uncached (MMIO).
//! - `0xffff_ffff_8000_0000 + pa`: the kernel image, 4 KiB/2 MiB pages with per-section rights
//!   (text RX, rodata R, data/bss RW).
//!
//! Until `init` switches CR3, the boot tables from entry.S are live: they map the first 4 GiB at
//! both places, so everything `init` touches (boot info, bitmap, new tables) is kept below 4 GiB.

mod frame;
pub mod heap;

pub use frame::Frame;

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use keel_bootinfo::{BootInfo, MemoryKind};
use keel_mm::frames::{bitmap_words, FrameAllocator, LOW_MEMORY_END};
use keel_mm::paging::{Access, PageTable, TableMemory, X86};
use keel_mm::range::{find_free_span, PhysRange};
use keel_mm::PAGE_SIZE;
use spin::Mutex;

use crate::arch::x86_64::instructions::{self, EFER_NXE, MSR_EFER};

pub const DIRECT_MAP_BASE: u64 = 0xffff_8000_0000_0000;
pub const KERNEL_VMA: u64 = 0xffff_ffff_8000_0000;
const FOUR_GIB: u64 = 1 << 32;
const TWO_MIB: u64 = 2 << 20;
/// One PML4 slot of direct map (512 GiB); more RAM than this is left unused, with a warning.
const MAX_PHYS: u64 = 512 << 30;

extern "C" {
    static __kernel_phys_start: u8;
    static __kernel_phys_end: u8;
    static __text_start: u8;
    static __text_end: u8;
    static __rodata_end: u8;
    static __kernel_end: u8;
}

static FRAMES: Mutex<Option<FrameAllocator<'static>>> = Mutex::new(None);
static KERNEL_ROOT: AtomicU64 = AtomicU64::new(0);
static NX: AtomicBool = AtomicBool::new(false);
static USABLE_BYTES: AtomicU64 = AtomicU64::new(0);
/// RAM and firmware tables (what the direct map maps write-back): never a driver's device memory.
static RAM_LIKE: Mutex<Ranges> = Mutex::new(Ranges::new());
/// The interrupt controllers' registers (local APIC, I/O APICs): the kernel's alone.
static INTERRUPT_CONTROLLERS: Mutex<Ranges> = Mutex::new(Ranges::new());

pub fn phys_to_virt(pa: u64) -> u64 {
    DIRECT_MAP_BASE + pa
}

pub fn nx_enabled() -> bool {
    NX.load(Ordering::Relaxed)
}

/// The kernel image's physical range, from the linker script.
pub fn kernel_phys_range() -> PhysRange {
    PhysRange::new((&raw const __kernel_phys_start) as u64, (&raw const __kernel_phys_end) as u64)
}

/// The boot information GRUB left at `mbi_phys` (below 4 GiB, so the boot tables map it).
///
/// # Safety
/// `mbi_phys` must be the address GRUB passed in EBX, and nothing may write to that memory while
/// the slice lives (the frame allocator reserves it).
pub unsafe fn boot_info_bytes(mbi_phys: u32) -> &'static [u8] {
    let virt = phys_to_virt(u64::from(mbi_phys));
    // SAFETY: GRUB put the MBI here; its first 8 bytes are the header (total_size, reserved).
    let header = unsafe { core::ptr::read_unaligned(virt as *const [u8; 8]) };
    let len = BootInfo::total_size(header).max(8);
    // SAFETY: the MBI spans `total_size` bytes from its start, below 4 GiB and mapped by the boot
    // tables (and later the direct map); the caller guarantees nobody writes to it.
    unsafe { core::slice::from_raw_parts(virt as *const u8, len) }
}

/// Table memory reached through the direct map, with frames from the allocator below `limit`.
struct DirectMapTables<'a, 'b> {
    frames: &'a mut FrameAllocator<'b>,
    limit: u64,
}

impl TableMemory for DirectMapTables<'_, '_> {
    fn alloc_table(&mut self) -> Option<u64> {
        let frame = self.frames.alloc_in(LOW_MEMORY_END, self.limit)?;
        // SAFETY: the frame was just allocated (nobody else uses it) and is mapped by the direct
        // map (below `limit`, which the live tables cover).
        unsafe { core::ptr::write_bytes(phys_to_virt(frame) as *mut u8, 0, PAGE_SIZE as usize) };
        Some(frame)
    }
    fn read_entry(&self, table: u64, index: usize) -> u64 {
        // SAFETY: `table` is a page-table frame owned by this table, mapped by the direct map.
        unsafe { core::ptr::read_volatile(table_entry(table, index)) }
    }
    fn write_entry(&mut self, table: u64, index: usize, value: u64) {
        // SAFETY: as in read_entry; the caller (PageTable) writes well-formed entries.
        unsafe { core::ptr::write_volatile(table_entry(table, index), value) }
    }
    fn free_table(&mut self, table: u64) {
        if let Err(e) = self.frames.free(table) {
            log::error!("mm: bad page-table free: {e:?}");
        }
    }
}

/// Memory figures for the prompt's `mem` command.
pub struct MemoryStats {
    pub usable_bytes: u64,
    pub free_bytes: u64,
    pub heap: heap::HeapStats,
}

pub fn stats() -> MemoryStats {
    let free_frames = FRAMES.lock().as_ref().map_or(0, |f| f.free_frames());
    MemoryStats {
        usable_bytes: USABLE_BYTES.load(Ordering::Relaxed),
        free_bytes: free_frames * PAGE_SIZE,
        heap: heap::stats(),
    }
}

/// Fixed-capacity list of ranges (no heap exists yet while these are collected).
#[derive(Clone, Copy)]
struct Ranges {
    items: [PhysRange; 128],
    len: usize,
}

impl Ranges {
    const fn new() -> Self {
        Self { items: [PhysRange::new(0, 0); 128], len: 0 }
    }
    fn push(&mut self, r: PhysRange) {
        if self.len < self.items.len() && !r.is_empty() {
            self.items[self.len] = r;
            self.len += 1;
        } else if !r.is_empty() {
            log::warn!("mm: more than 128 memory ranges; ignoring {:#x}..{:#x}", r.start, r.end);
        }
    }
    fn as_slice(&self) -> &[PhysRange] {
        &self.items[..self.len]
    }
}

/// Set up the frame allocator, switch to the kernel's own page tables, and start the heap.
pub fn init(info: &BootInfo, mbi_phys: u64) -> Result<(), &'static str> {
    // No-execute, if the CPU has it. See: SDM Vol 3A 5.1.1 (EFER.NXE), CPUID 80000001H EDX[20].
    if instructions::cpuid(0x8000_0001, 0).edx & (1 << 20) != 0 {
        // SAFETY: setting EFER.NXE is allowed when CPUID reports NX; the boot tables set no
        // bit 63, so nothing changes meaning.
        let efer = unsafe { instructions::rdmsr(MSR_EFER) };
        // SAFETY: as above.
        unsafe { instructions::wrmsr(MSR_EFER, efer | EFER_NXE) };
        NX.store(true, Ordering::Relaxed);
    }

    let mut usable = Ranges::new();
    let mut ram_like = Ranges::new(); // usable + ACPI: mapped write-back
    let mut max_addr = 0;
    for region in info.memory_regions() {
        let range = PhysRange::new(region.start, region.end().min(MAX_PHYS));
        if region.end() > MAX_PHYS && region.kind == MemoryKind::Usable {
            log::warn!("mm: ignoring RAM above {} GiB", MAX_PHYS >> 30);
        }
        match region.kind {
            MemoryKind::Usable => {
                usable.push(range);
                ram_like.push(range);
                max_addr = max_addr.max(range.end);
            }
            MemoryKind::AcpiReclaimable | MemoryKind::AcpiNvs => ram_like.push(range),
            _ => {}
        }
    }
    if usable.len == 0 {
        return Err("the memory map lists no usable RAM");
    }
    *RAM_LIKE.lock() = ram_like;
    USABLE_BYTES.store(usable.as_slice().iter().map(|r| r.len()).sum(), Ordering::Relaxed);

    let mut reserved = Ranges::new();
    reserved.push(PhysRange::new(0, PAGE_SIZE)); // real-mode IVT and BIOS data
    reserved.push(kernel_phys_range());
    reserved.push(PhysRange::new(mbi_phys, mbi_phys + info.len() as u64));
    for module in info.modules() {
        reserved.push(PhysRange::new(module.start, module.end));
    }

    // The bitmap goes in the first big-enough free span between 1 MiB and 4 GiB.
    let words = bitmap_words(max_addr);
    let bitmap_bytes = (words as u64 * 8).div_ceil(PAGE_SIZE) * PAGE_SIZE;
    let mut low_usable = Ranges::new();
    for r in usable.as_slice() {
        low_usable.push(PhysRange::new(r.start, r.end.min(FOUR_GIB)));
    }
    let bitmap_phys =
        find_free_span(low_usable.as_slice(), reserved.as_slice(), bitmap_bytes, LOW_MEMORY_END, PAGE_SIZE)
            .ok_or("no room below 4 GiB for the frame bitmap")?;
    // SAFETY: the span is usable RAM overlapping no reserved range (kernel, MBI, modules), below
    // 4 GiB so the boot tables map it; it is reserved in the allocator below, and this is the only
    // reference to it for the rest of the kernel's life.
    let bitmap: &'static mut [u64] =
        unsafe { core::slice::from_raw_parts_mut(phys_to_virt(bitmap_phys) as *mut u64, words) };
    log::debug!("mm: frame bitmap at {bitmap_phys:#x} ({bitmap_bytes} bytes for memory up to {max_addr:#x})");
    let mut frames = FrameAllocator::new(bitmap);
    for r in usable.as_slice() {
        frames.add_usable(*r);
    }
    for r in reserved.as_slice() {
        frames.reserve(*r);
    }
    frames.reserve(PhysRange::new(bitmap_phys, bitmap_phys + bitmap_bytes));

    let root = build_kernel_tables(&mut frames, ram_like.as_slice(), max_addr)?;
    KERNEL_ROOT.store(root, Ordering::SeqCst);
    *FRAMES.lock() = Some(frames);
    switch_to_kernel_tables();
    heap::init()?;
    log::info!(
        "mm: {} MiB usable, {} MiB free, kernel at {:#x}..{:#x}, direct map up to {:#x}",
        USABLE_BYTES.load(Ordering::Relaxed) >> 20,
        stats().free_bytes >> 20,
        kernel_phys_range().start,
        kernel_phys_range().end,
        max_addr.max(FOUR_GIB)
    );
    Ok(())
}

fn build_kernel_tables(
    frames: &mut FrameAllocator,
    ram_like: &[PhysRange],
    max_addr: u64,
) -> Result<u64, &'static str> {
    const OOM: &str = "out of memory while building the kernel page tables";
    let nx = nx_enabled();
    let mut mem = DirectMapTables { frames, limit: FOUR_GIB };
    let table = PageTable::new(&mut mem, X86 { nx }).ok_or(OOM)?;

    // Direct map, 2 MiB at a time: write-back where the firmware says RAM/ACPI, uncached elsewhere.
    let end = max_addr.max(FOUR_GIB).div_ceil(TWO_MIB) * TWO_MIB;
    let mut pa = 0;
    while pa < end {
        let chunk = PhysRange::new(pa, pa + TWO_MIB);
        let is_ram = ram_like.iter().any(|r| r.overlaps(&chunk));
        let access = if is_ram { Access::KERNEL_DATA } else { Access::KERNEL_MMIO };
        table.map_range(&mut mem, phys_to_virt(pa), pa, TWO_MIB, access).map_err(|_| OOM)?;
        pa += TWO_MIB;
    }

    // The kernel image, section by section.
    let kernel = kernel_phys_range();
    let virt = |sym: *const u8| sym as u64;
    let text_start = virt(&raw const __text_start) - KERNEL_VMA;
    let text_end = virt(&raw const __text_end) - KERNEL_VMA;
    let rodata_end = virt(&raw const __rodata_end) - KERNEL_VMA;
    let image_end = virt(&raw const __kernel_end) - KERNEL_VMA;
    let sections = [
        (kernel.start, text_start, Access::KERNEL_DATA), // boot stub, boot stack, boot page tables
        (text_start, text_end, Access::KERNEL_CODE),
        (text_end, rodata_end, Access::KERNEL_RODATA),
        (rodata_end, image_end, Access::KERNEL_DATA),
    ];
    for (start, end, access) in sections {
        table.map_range(&mut mem, KERNEL_VMA + start, start, end - start, access).map_err(|_| OOM)?;
    }
    Ok(table.root)
}

/// Load the kernel's page tables on this CPU.
pub fn switch_to_kernel_tables() {
    let root = KERNEL_ROOT.load(Ordering::SeqCst);
    // SAFETY: the kernel tables map the kernel image (code, stacks in .bss/.boot.bss, data) at the
    // addresses it runs at, and the heap through the direct map: everything in use stays mapped.
    unsafe { instructions::write_cr3(root) };
}

pub fn alloc_frame_below(limit: u64) -> Option<u64> {
    FRAMES.lock().as_mut()?.alloc_below(limit)
}

/// One zeroed frame anywhere in RAM (reached through the direct map).
pub fn alloc_zeroed_frame() -> Option<u64> {
    let frame = FRAMES.lock().as_mut()?.alloc()?;
    // SAFETY: the frame was just allocated (nobody else uses it) and the direct map covers all RAM.
    unsafe { core::ptr::write_bytes(phys_to_virt(frame) as *mut u8, 0, PAGE_SIZE as usize) };
    Some(frame)
}

/// Page-table memory for address spaces built after boot: frames anywhere in RAM.
pub struct KernelTableMemory;

impl TableMemory for KernelTableMemory {
    fn alloc_table(&mut self) -> Option<u64> {
        alloc_zeroed_frame()
    }
    fn read_entry(&self, table: u64, index: usize) -> u64 {
        // SAFETY: `table` is a page-table frame of a live address space, in the direct map.
        unsafe { core::ptr::read_volatile(table_entry(table, index)) }
    }
    fn write_entry(&mut self, table: u64, index: usize, value: u64) {
        // SAFETY: as in read_entry; PageTable writes well-formed entries.
        unsafe { core::ptr::write_volatile(table_entry(table, index), value) }
    }
    fn free_table(&mut self, table: u64) {
        free_frame(table);
    }
}

/// Entry `index % 512` of the page-table frame `table`, through the direct map.
fn table_entry(table: u64, index: usize) -> *mut u64 {
    // SAFETY: `index % 512` entries of 8 bytes stay inside the 4 KiB frame's direct-map address.
    unsafe { (phys_to_virt(table) as *mut u64).add(index % 512) }
}

/// Record an interrupt controller's registers, which no driver may map.
pub fn reserve_interrupt_controller(base: u64) {
    INTERRUPT_CONTROLLERS.lock().push(PhysRange::new(base, base + PAGE_SIZE).grow_to_pages(PAGE_SIZE));
}

/// Whether `[start, start + len)` may be mapped into a driver as device memory: the rule is
/// `keel_mm::range::check_device_range`, over the firmware's RAM ranges, the interrupt
/// controllers and the CPU's physical address width (CPUID 80000008H EAX[7:0]).
pub fn check_device_range(start: u64, len: u64) -> Result<PhysRange, keel_mm::range::DeviceRangeError> {
    let width = instructions::cpuid(0x8000_0008, 0).eax & 0xff;
    let limit = if (32..=52).contains(&width) { 1u64 << width } else { FOUR_GIB };
    let ram = RAM_LIKE.lock();
    let ics = INTERRUPT_CONTROLLERS.lock();
    keel_mm::range::check_device_range(start, len, limit, ram.as_slice(), ics.as_slice(), PAGE_SIZE)
}

pub fn kernel_root() -> u64 {
    KERNEL_ROOT.load(Ordering::SeqCst)
}

pub fn alloc_contiguous(count: u64) -> Option<u64> {
    FRAMES.lock().as_mut()?.alloc_contiguous(count, PAGE_SIZE)
}

/// `count` contiguous frames starting at a multiple of `align` bytes (zeroed).
pub fn alloc_contiguous_zeroed(count: u64, align: u64) -> Option<u64> {
    let base = FRAMES.lock().as_mut()?.alloc_contiguous(count, align)?;
    // SAFETY: the frames were just allocated (nobody else uses them); the direct map covers RAM.
    unsafe { core::ptr::write_bytes(phys_to_virt(base) as *mut u8, 0, (count * PAGE_SIZE) as usize) };
    Some(base)
}

pub fn free_contiguous(base: u64, count: u64) {
    for i in 0..count {
        free_frame(base + i * PAGE_SIZE);
    }
}

pub fn free_frame(frame: u64) {
    if let Some(frames) = FRAMES.lock().as_mut() {
        if let Err(e) = frames.free(frame) {
            log::error!("mm: bad frame free: {e:?}");
        }
    }
}

/// Temporary tables for starting APs: the kernel half shared, plus the low 2 MiB identity-mapped
/// (where the trampoline runs). All below 4 GiB, because the AP loads CR3 in 32-bit mode.
pub fn build_ap_boot_tables() -> Option<u64> {
    let mut guard = FRAMES.lock();
    let frames = guard.as_mut()?;
    let mut mem = DirectMapTables { frames, limit: FOUR_GIB };
    let table = PageTable::new(&mut mem, X86 { nx: nx_enabled() })?;
    table.share_top_level(&mut mem, KERNEL_ROOT.load(Ordering::SeqCst), 256, 512);
    // Executable identity map of the first 2 MiB, for the real-mode trampoline's page.
    let low = Access { writable: true, executable: true, user: false, uncached: false };
    table.map(&mut mem, 0, 0, keel_mm::paging::PageSize::Size2M, low).ok()?;
    Some(table.root)
}

/// Free the temporary AP tables (root, PDPT and PD of the low identity map).
pub fn free_ap_boot_tables(root: u64) {
    let read = |table: u64, i: usize| {
        // SAFETY: the tables were built by build_ap_boot_tables and are still intact; i < 512.
        unsafe { core::ptr::read_volatile(table_entry(table, i)) }
    };
    let pdpt = read(root, 0) & 0x000f_ffff_ffff_f000;
    let pd = read(pdpt, 0) & 0x000f_ffff_ffff_f000;
    for frame in [pd, pdpt, root] {
        free_frame(frame);
    }
}

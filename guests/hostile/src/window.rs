//! A window onto any guest-physical address: the start state identity-maps only 0-4 GiB
//! (docs/guests.md), so this module adds its own page tables under PML4 slot 1 (virtual
//! 512 GiB) and re-points one entry per probe.
//!
//! - [`map_2m`]: a 2 MiB page at `BASE` (PD entry 0);
//! - [`map_4k`]: a 4 KiB page at `BASE + 2 MiB` (PD entry 1 points at a page table);
//! - [`map_table`]: PD entry 2 points at a "page table" at any guest-physical address (for a
//!   walk through memory that is not RAM); its first page is at `BASE + 4 MiB`.
//!
//! Each change is followed by INVLPG of the page it maps.

use core::cell::UnsafeCell;

/// Where the window starts: PML4 slot 1.
pub const BASE: u64 = 1 << 39;
const PRESENT_WRITABLE: u64 = 0x3;
const LARGE: u64 = 0x80;
const ADDRESS_MASK: u64 = 0x000F_FFFF_FFFF_F000;

#[repr(C, align(4096))]
struct Table(UnsafeCell<[u64; 512]>);

// SAFETY: the guest runs on one CPU and only this module writes the tables (the CPU reads them).
unsafe impl Sync for Table {}

impl Table {
    const fn new() -> Self {
        Table(UnsafeCell::new([0; 512]))
    }

    fn addr(&self) -> u64 {
        self.0.get() as u64
    }

    fn set(&self, index: usize, entry: u64) {
        // SAFETY: in bounds (callers use fixed indices below 512).
        let slot = unsafe { (self.0.get() as *mut u64).add(index) };
        // SAFETY: `slot` is in the table; a volatile write, because the CPU's page walker reads
        // the table behind the compiler's back.
        unsafe { core::ptr::write_volatile(slot, entry) };
    }
}

static PDPT: Table = Table::new();
static PD: Table = Table::new();
static PT: Table = Table::new();

fn invlpg(va: u64) {
    // SAFETY: INVLPG only drops a TLB entry.
    unsafe { core::arch::asm!("invlpg [{}]", in(reg) va, options(nostack, preserves_flags)) };
}

/// Hooks the window's tables into the current PML4 (slot 1). The image is identity-mapped, so
/// the tables' addresses are their guest-physical addresses.
pub fn init() {
    let cr3: u64;
    // SAFETY: reading CR3 has no side effect.
    unsafe { core::arch::asm!("mov {}, cr3", out(reg) cr3, options(nomem, nostack, preserves_flags)) };
    let pml4 = cr3 & ADDRESS_MASK;
    PD.set(1, PT.addr() | PRESENT_WRITABLE);
    PDPT.set(0, PD.addr() | PRESENT_WRITABLE);
    // SAFETY: the PML4 is a 4 KiB table, slot 1 is inside it.
    let slot1 = unsafe { (pml4 as *mut u64).add(1) };
    // SAFETY: the PML4 is the monitor's, in guest RAM below 1 MiB and identity-mapped; slot 1
    // (512 GiB-1 TiB) is unused by the start state, which maps only 0-4 GiB through slot 0.
    unsafe { core::ptr::write_volatile(slot1, PDPT.addr() | PRESENT_WRITABLE) };
    // SAFETY: reloading CR3 with its own value flushes the TLB and changes nothing else.
    unsafe { core::arch::asm!("mov cr3, {}", in(reg) cr3, options(nostack, preserves_flags)) };
}

/// Maps the 2 MiB page at `gpa` (2 MiB-aligned) at [`BASE`]; returns BASE.
pub fn map_2m(gpa: u64) -> u64 {
    PD.set(0, (gpa & ADDRESS_MASK & !0x1F_FFFF) | PRESENT_WRITABLE | LARGE);
    invlpg(BASE);
    BASE
}

/// Maps the 4 KiB page holding `gpa`; returns the virtual address of `gpa` itself.
pub fn map_4k(gpa: u64) -> u64 {
    let va = BASE + (2 << 20);
    PT.set(0, (gpa & ADDRESS_MASK) | PRESENT_WRITABLE);
    invlpg(va);
    va + (gpa & 0xFFF)
}

/// Points PD entry 2 at a page table at `gpa`; returns the virtual address that page table
/// entry 0 would map.
pub fn map_table(gpa: u64) -> u64 {
    let va = BASE + (4 << 20);
    PD.set(2, (gpa & ADDRESS_MASK) | PRESENT_WRITABLE);
    invlpg(va);
    va
}

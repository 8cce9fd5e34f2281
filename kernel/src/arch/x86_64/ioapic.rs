//! The I/O APIC: route a global system interrupt (GSI) to a vector on one CPU, mask and unmask
//! an input, and read how many inputs a chip has. COM1's IRQ 4 and the drivers' lines (hw.rs)
//! use it.
//!
//! Does not: balance interrupts across CPUs or remap them. See: Intel 82093AA I/O APIC datasheet
//! 3.2.2 (IOAPICVER), 3.2.4 (redirection table), ACPI MADT interrupt overrides.

use crate::mm;

const IOREGSEL: u64 = 0x00;
const IOWIN: u64 = 0x10;
const VERSION: u32 = 0x01;
const REDIRECTION_BASE: u32 = 0x10;
/// Redirection entry bit 16: the input is masked.
const MASKED: u32 = 1 << 16;

fn write(base_phys: u64, reg: u32, value: u32) {
    let base = mm::phys_to_virt(base_phys);
    // SAFETY: `base_phys` is an I/O APIC from the MADT (mapped uncached by the direct map);
    // IOREGSEL/IOWIN is its documented indirect register access: select the register,
    unsafe { core::ptr::write_volatile((base + IOREGSEL) as *mut u32, reg) };
    // SAFETY: as above: then write it.
    unsafe { core::ptr::write_volatile((base + IOWIN) as *mut u32, value) };
}

fn read(base_phys: u64, reg: u32) -> u32 {
    let base = mm::phys_to_virt(base_phys);
    // SAFETY: as in `write`: select the register,
    unsafe { core::ptr::write_volatile((base + IOREGSEL) as *mut u32, reg) };
    // SAFETY: as above: then read it.
    unsafe { core::ptr::read_volatile((base + IOWIN) as *const u32) }
}

/// The number of inputs of the I/O APIC at `base_phys` (IOAPICVER bits 16-23 hold the last
/// redirection entry's index).
pub fn inputs(base_phys: u64) -> u32 {
    ((read(base_phys, VERSION) >> 16) & 0xff) + 1
}

/// Route GSI `gsi` of the I/O APIC at `base_phys` (whose first GSI is `gsi_base`) to `vector` on
/// the CPU with `apic_id`. `flags` are the MADT override's MPS INTI flags (0: ISA defaults:
/// edge-triggered, active high).
pub fn route(base_phys: u64, gsi_base: u32, gsi: u32, vector: u8, apic_id: u32, flags: u16) {
    let pin = gsi - gsi_base;
    let mut low = u32::from(vector);
    if flags & 0b11 == 0b11 {
        low |= 1 << 13; // active low
    }
    if (flags >> 2) & 0b11 == 0b11 {
        low |= 1 << 15; // level-triggered
    }
    write(base_phys, REDIRECTION_BASE + 2 * pin + 1, apic_id << 24);
    write(base_phys, REDIRECTION_BASE + 2 * pin, low);
}

/// Mask or unmask input `pin`, keeping the rest of its routing.
pub fn set_masked(base_phys: u64, pin: u32, masked: bool) {
    let reg = REDIRECTION_BASE + 2 * pin;
    let low = read(base_phys, reg);
    write(base_phys, reg, if masked { low | MASKED } else { low & !MASKED });
}

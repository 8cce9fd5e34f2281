//! The I/O APIC, just enough to route one legacy ISA interrupt (COM1's IRQ 4) to the boot CPU.
//!
//! Does not: handle more than one I/O APIC for routing, or level-triggered PCI interrupts.
//! See: Intel 82093AA I/O APIC datasheet 3.2.4 (redirection table), ACPI MADT interrupt overrides.

use crate::mm;

const IOREGSEL: u64 = 0x00;
const IOWIN: u64 = 0x10;
const REDIRECTION_BASE: u32 = 0x10;

fn write(base_phys: u64, reg: u32, value: u32) {
    let base = mm::phys_to_virt(base_phys);
    // SAFETY: `base_phys` is an I/O APIC from the MADT (mapped uncached by the direct map);
    // IOREGSEL/IOWIN is its documented indirect register access: select the register,
    unsafe { core::ptr::write_volatile((base + IOREGSEL) as *mut u32, reg) };
    // SAFETY: as above: then write it.
    unsafe { core::ptr::write_volatile((base + IOWIN) as *mut u32, value) };
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

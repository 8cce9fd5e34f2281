//! ACPI discovery with the `acpi` crate: from the RSDP (found in the boot information) to the
//! MADT, which lists the CPUs' local APICs and the I/O APICs.
//!
//! The handler maps tables through the direct map, so "mapping" is address arithmetic and
//! "unmapping" is nothing. Does not: parse the DSDT/AML, or use the FADT (reboot uses the
//! keyboard controller and port 0xcf9).

use alloc::vec::Vec;
use core::ptr::NonNull;

use acpi::madt::{Madt, MadtEntry};
use acpi::{AcpiHandler, AcpiTables, PhysicalMapping};

#[derive(Clone, Copy)]
struct DirectMapHandler;

impl AcpiHandler for DirectMapHandler {
    unsafe fn map_physical_region<T>(&self, physical_address: usize, size: usize) -> PhysicalMapping<Self, T> {
        let virt = crate::mm::phys_to_virt(physical_address as u64) as *mut T;
        // SAFETY: the direct map covers all of physical memory up to 4 GiB and all RAM (ACPI tables
        // live in RAM or firmware-reserved ranges below 4 GiB, which are mapped); the pointer is
        // non-null because the direct map starts in the upper half.
        unsafe { PhysicalMapping::new(physical_address, NonNull::new_unchecked(virt), size, size, *self) }
    }

    fn unmap_physical_region<T>(_region: &PhysicalMapping<Self, T>) {}
}

/// What the MADT says about the machine.
pub struct Platform {
    /// Local APIC IDs of the enabled processors, in MADT order.
    pub apic_ids: Vec<u32>,
    /// (I/O APIC id, MMIO address, first GSI).
    pub io_apics: Vec<(u8, u32, u32)>,
}

/// LocalApicEntry/LocalX2ApicEntry flags. See: ACPI 6.5 Table 5.23 (Local APIC flags).
const APIC_ENABLED: u32 = 1 << 0;

pub fn discover(rsdp_phys: Option<u64>) -> Result<Platform, &'static str> {
    let rsdp = rsdp_phys.ok_or("the boot loader gave no ACPI RSDP")?;
    // SAFETY: the address is the RSDP copy inside the boot information (reserved from the frame
    // allocator, mapped by the direct map); the acpi crate validates its signature and checksum.
    let tables = unsafe { AcpiTables::from_rsdp(DirectMapHandler, rsdp as usize) }.map_err(|_| "the ACPI RSDP is invalid")?;
    let madt = tables.find_table::<Madt>().map_err(|_| "no valid ACPI MADT (APIC table)")?;
    let mut platform = Platform { apic_ids: Vec::new(), io_apics: Vec::new() };
    for entry in madt.get().entries() {
        match entry {
            MadtEntry::LocalApic(e) => {
                let flags = e.flags;
                if flags & APIC_ENABLED != 0 {
                    platform.apic_ids.push(u32::from(e.apic_id));
                }
            }
            MadtEntry::LocalX2Apic(e) => {
                let (flags, id) = (e.flags, e.x2apic_id);
                if flags & APIC_ENABLED != 0 && !platform.apic_ids.contains(&id) {
                    platform.apic_ids.push(id);
                }
            }
            MadtEntry::IoApic(e) => {
                platform.io_apics.push((e.io_apic_id, e.io_apic_address, e.global_system_interrupt_base));
            }
            _ => {}
        }
    }
    Ok(platform)
}

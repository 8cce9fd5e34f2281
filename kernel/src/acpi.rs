//! ACPI glue: maps tables through the direct map for `keel-acpi`, which finds the MADT and
//! describes the platform. "Mapping" is address arithmetic and "unmapping" is nothing.

use core::ptr::NonNull;

use acpi::{AcpiHandler, PhysicalMapping};
pub use keel_acpi::Platform;

#[derive(Clone, Copy)]
struct DirectMapHandler;

impl AcpiHandler for DirectMapHandler {
    unsafe fn map_physical_region<T>(&self, physical_address: usize, size: usize) -> PhysicalMapping<Self, T> {
        let virt = crate::mm::phys_to_virt(physical_address as u64) as *mut T;
        // SAFETY: the pointer is non-null because the direct map is in the upper half.
        let virt = unsafe { NonNull::new_unchecked(virt) };
        // SAFETY: the direct map covers all physical memory below 4 GiB and all RAM, where ACPI
        // tables live.
        unsafe { PhysicalMapping::new(physical_address, virt, size, size, *self) }
    }

    fn unmap_physical_region<T>(_region: &PhysicalMapping<Self, T>) {}
}

pub fn discover(rsdp_phys: Option<u64>) -> Result<Platform, &'static str> {
    let rsdp = rsdp_phys.ok_or("the boot loader gave no ACPI RSDP")?;
    // SAFETY: DirectMapHandler maps physical memory faithfully; `rsdp` is the RSDP copy inside the
    // boot information, which is reserved and mapped.
    unsafe { keel_acpi::discover(DirectMapHandler, rsdp as usize) }.map_err(|e| match e {
        keel_acpi::AcpiSetupError::BadRootTables => "the ACPI root tables (RSDP/XSDT) are invalid",
        keel_acpi::AcpiSetupError::NoMadt => "no valid ACPI MADT (APIC table)",
    })
}

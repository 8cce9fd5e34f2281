//! The machine's topology from ACPI: which CPUs exist (local APIC IDs), where the I/O APICs are,
//! and how legacy IRQs map onto GSIs. Tables are found and checksummed by the `acpi` crate
//! (RSDP -> XSDT or RSDT -> MADT); this crate turns the MADT into a plain [`Platform`].
//!
//! Generic over the `AcpiHandler` that maps physical memory, so the host tests run it over fake
//! tables in a buffer and the kernel over its direct map. The only unsafe is the contract of
//! `acpi::AcpiTables::from_rsdp`, passed on to the caller of [`discover`].
//! Does not: parse AML, or use any table but the MADT.
//! See: ACPI 6.5 sections 5.2.5 (RSDP), 5.2.8 (XSDT), 5.2.12 (MADT).
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;
use core::fmt;

use acpi::madt::{Madt, MadtEntry};
use acpi::{AcpiHandler, AcpiTables};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoApic {
    pub id: u8,
    pub address: u32,
    pub gsi_base: u32,
}

/// A legacy ISA IRQ routed to another GSI (e.g. the PIT's IRQ 0 on GSI 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IrqOverride {
    pub irq: u8,
    pub gsi: u32,
    pub flags: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// Local APIC IDs of the enabled processors, in MADT order (the BSP is usually first).
    pub apic_ids: Vec<u32>,
    pub local_apic_address: u64,
    pub io_apics: Vec<IoApic>,
    pub irq_overrides: Vec<IrqOverride>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcpiSetupError {
    /// The RSDP, XSDT or RSDT is missing or fails its signature or checksum.
    BadRootTables,
    /// No MADT, or a MADT that fails its checksum.
    NoMadt,
}

impl fmt::Display for AcpiSetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadRootTables => write!(f, "the ACPI root tables (RSDP/XSDT) are invalid"),
            Self::NoMadt => write!(f, "no valid ACPI MADT (APIC table)"),
        }
    }
}

/// Local APIC flags. See: ACPI 6.5 Table 5.23.
const LAPIC_ENABLED: u32 = 1 << 0;

/// Find the MADT from the RSDP at physical address `rsdp` and describe the platform.
///
/// # Safety
/// `handler` must map physical memory faithfully, and `rsdp` must be readable physical memory
/// (the acpi crate checks that it holds a valid RSDP).
#[allow(unsafe_code)]
pub unsafe fn discover<H: AcpiHandler>(handler: H, rsdp: usize) -> Result<Platform, AcpiSetupError> {
    // SAFETY: passed on to our caller (see # Safety); the crate validates what it reads.
    let tables = unsafe { AcpiTables::from_rsdp(handler, rsdp) }.map_err(|_| AcpiSetupError::BadRootTables)?;
    let madt = tables.find_table::<Madt>().map_err(|_| AcpiSetupError::NoMadt)?;
    let madt = madt.get();
    let mut platform = Platform {
        apic_ids: Vec::new(),
        local_apic_address: u64::from(madt.local_apic_address),
        io_apics: Vec::new(),
        irq_overrides: Vec::new(),
    };
    for entry in madt.entries() {
        match entry {
            MadtEntry::LocalApic(e) => {
                let (flags, id) = (e.flags, u32::from(e.apic_id));
                if flags & LAPIC_ENABLED != 0 && !platform.apic_ids.contains(&id) {
                    platform.apic_ids.push(id);
                }
            }
            MadtEntry::LocalX2Apic(e) => {
                let (flags, id) = (e.flags, e.x2apic_id);
                if flags & LAPIC_ENABLED != 0 && !platform.apic_ids.contains(&id) {
                    platform.apic_ids.push(id);
                }
            }
            MadtEntry::IoApic(e) => platform.io_apics.push(IoApic {
                id: e.io_apic_id,
                address: e.io_apic_address,
                gsi_base: e.global_system_interrupt_base,
            }),
            MadtEntry::InterruptSourceOverride(e) => {
                platform.irq_overrides.push(IrqOverride { irq: e.irq, gsi: e.global_system_interrupt, flags: e.flags })
            }
            MadtEntry::LocalApicAddressOverride(e) => platform.local_apic_address = e.local_apic_address,
            _ => {}
        }
    }
    Ok(platform)
}

#[cfg(test)]
mod tests;

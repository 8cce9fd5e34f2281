//! The MADT ("APIC" table) of a one-CPU Keel VM: a local APIC at 0xFEE00000, one I/O APIC with
//! 24 pins from GSI 0, the ISA interrupt source overrides, and LINT1 as the NMI input.
//!
//! Overrides (as QEMU's PC machine and most firmware describe a PIIX/ICH board): IRQ 0 (the PIT)
//! is GSI 2, edge-triggered, active high; the PCI and SCI IRQs given in [`MadtLayout::level_irqs`]
//! are level-triggered, active high (keel-devices' I/O APIC ignores polarity, and the monitor
//! drives logical levels). Every other ISA IRQ n is GSI n, edge, active high (the default).
//! This matches keel-devices' `irqchip` wiring.
//!
//! Does not: describe more than one CPU, x2APIC entries, or NMI sources on I/O APIC pins.
//!
//! See: ACPI 6.5 5.2.12 (MADT, Table 5.19), 5.2.12.2 (Processor Local APIC), 5.2.12.3 (I/O APIC),
//! 5.2.12.5 (Interrupt Source Override, Table 5.26 MPS INTI flags), 5.2.12.7 (Local APIC NMI).

use alloc::vec::Vec;

use crate::sdt;

/// Where the local APIC's registers are (and the value of IA32_APIC_BASE's base field).
pub const LOCAL_APIC_ADDR: u32 = 0xFEE0_0000;
/// Where the I/O APIC's registers are.
pub const IO_APIC_ADDR: u32 = 0xFEC0_0000;
/// MADT flag: the PC has 8259A PICs too (they must be masked to use the APICs).
pub const PCAT_COMPAT: u32 = 1;
/// MPS INTI flags for an edge-triggered, active-high line (Table 5.26).
pub const INTI_EDGE_HIGH: u16 = 0b0101;
/// MPS INTI flags for a level-triggered, active-high line (Table 5.26).
pub const INTI_LEVEL_HIGH: u16 = 0b1101;

/// What the MADT describes beyond the fixed parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MadtLayout {
    /// ISA IRQs (other than 0 and 2) wired level-triggered: PCI INTx and the SCI.
    pub level_irqs: Vec<u8>,
    /// The I/O APIC's ID (its ID register must read the same).
    pub io_apic_id: u8,
}

impl Default for MadtLayout {
    /// Keel's platform: PCI on IRQ 11 (keel-acpitables' default `_PRT`) and the SCI on IRQ 9.
    fn default() -> Self {
        Self { level_irqs: alloc::vec![9, 11], io_apic_id: 0 }
    }
}

fn interrupt_source_override(irq: u8, gsi: u32, flags: u16) -> [u8; 10] {
    let mut e = [0u8; 10];
    e[0] = 2; // type: Interrupt Source Override
    e[1] = 10; // length
    e[2] = 0; // bus: ISA
    e[3] = irq;
    e[4..8].copy_from_slice(&gsi.to_le_bytes());
    e[8..10].copy_from_slice(&flags.to_le_bytes());
    e
}

/// The complete MADT (header and checksum included), ready for `Layout::extra_tables`.
pub fn madt(layout: &MadtLayout, oem_id: &[u8; 6]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&LOCAL_APIC_ADDR.to_le_bytes());
    body.extend_from_slice(&PCAT_COMPAT.to_le_bytes());
    // Processor Local APIC: ACPI processor UID 0, APIC ID 0, enabled.
    body.extend_from_slice(&[0, 8, 0, 0]);
    body.extend_from_slice(&1u32.to_le_bytes());
    // I/O APIC: its ID, reserved, address, GSI base 0.
    body.extend_from_slice(&[1, 12, layout.io_apic_id, 0]);
    body.extend_from_slice(&IO_APIC_ADDR.to_le_bytes());
    body.extend_from_slice(&0u32.to_le_bytes());
    body.extend_from_slice(&interrupt_source_override(0, 2, INTI_EDGE_HIGH));
    let mut level: Vec<u8> =
        layout.level_irqs.iter().copied().filter(|&irq| irq != 0 && irq != 2 && irq < 16).collect();
    level.sort_unstable();
    level.dedup();
    for irq in level {
        body.extend_from_slice(&interrupt_source_override(irq, u32::from(irq), INTI_LEVEL_HIGH));
    }
    // Local APIC NMI: all processors (UID 0xFF), flags conforming, LINT1.
    body.extend_from_slice(&[4, 6, 0xFF, 0, 0, 1]);
    sdt(b"APIC", 6, oem_id, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The entries after the 44-byte fixed part, as (type, bytes).
    fn entries(t: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let mut out = Vec::new();
        let mut at = 44;
        while at < t.len() {
            let len = usize::from(t[at + 1]);
            assert!(len >= 2 && at + len <= t.len(), "entry at {at} overruns the table");
            out.push((t[at], t[at..at + len].to_vec()));
            at += len;
        }
        out
    }

    #[test]
    fn default_madt() {
        let t = madt(&MadtLayout::default(), b"KEEL  ");
        assert_eq!(&t[..4], b"APIC");
        assert_eq!(u32::from_le_bytes(t[4..8].try_into().unwrap()) as usize, t.len());
        assert!(crate::sums_to_zero(&t));
        assert_eq!(u32::from_le_bytes(t[36..40].try_into().unwrap()), 0xFEE0_0000);
        assert_eq!(u32::from_le_bytes(t[40..44].try_into().unwrap()), PCAT_COMPAT);
        let e = entries(&t);
        let types: Vec<u8> = e.iter().map(|(ty, _)| *ty).collect();
        assert_eq!(types, [0, 1, 2, 2, 2, 4]);
        assert_eq!(e[0].1, [0, 8, 0, 0, 1, 0, 0, 0], "CPU 0, APIC ID 0, enabled");
        assert_eq!(&e[1].1[4..8], &0xFEC0_0000u32.to_le_bytes());
        // IRQ 0 -> GSI 2, edge; IRQ 9 and 11 level.
        assert_eq!(e[2].1, [2, 10, 0, 0, 2, 0, 0, 0, 5, 0]);
        assert_eq!(e[3].1, [2, 10, 0, 9, 9, 0, 0, 0, 0xd, 0]);
        assert_eq!(e[4].1, [2, 10, 0, 11, 11, 0, 0, 0, 0xd, 0]);
        assert_eq!(e[5].1, [4, 6, 0xFF, 0, 0, 1]);
    }

    #[test]
    fn odd_level_irqs_are_filtered() {
        let layout = MadtLayout { level_irqs: alloc::vec![11, 0, 2, 11, 200, 5], io_apic_id: 3 };
        let t = madt(&layout, b"KEEL  ");
        let e = entries(&t);
        let isos: Vec<u8> = e.iter().filter(|(ty, _)| *ty == 2).map(|(_, b)| b[3]).collect();
        assert_eq!(isos, [0, 5, 11]);
        assert_eq!(e[1].1[2], 3);
    }

    #[test]
    fn builds_into_the_blob() {
        let layout = crate::Layout {
            extra_tables: alloc::vec![madt(&MadtLayout::default(), b"KEEL  ")],
            ..crate::Layout::default()
        };
        assert!(crate::build(crate::RSDP_ADDR, &layout).is_ok());
    }
}

//! Host tests for the I/O APIC: identification registers, Linux's redirection-entry programming,
//! edge and level pins with Remote IRR and EOI, masking, destinations, the path through the local
//! APIC, and a random register stream.

use super::*;
use crate::lapic::{Lapic, LapicEffect};
use crate::testutil::Rng;

fn reg_read(io: &mut Ioapic, index: u8) -> u32 {
    io.write(IOREGSEL, &u32::from(index).to_le_bytes(), 0);
    let mut data = [0u8; 4];
    io.read(IOWIN, &mut data, 0);
    u32::from_le_bytes(data)
}

fn reg_write(io: &mut Ioapic, index: u8, value: u32) {
    io.write(IOREGSEL, &u32::from(index).to_le_bytes(), 0);
    io.write(IOWIN, &value.to_le_bytes(), 0);
}

/// Linux's ioapic_write_entry: the high dword, then the low dword.
fn program(io: &mut Ioapic, pin: u8, low: u32, dest: u8) {
    reg_write(io, 0x11 + 2 * pin, u32::from(dest) << 24);
    reg_write(io, 0x10 + 2 * pin, low);
}

const LEVEL: u32 = 1 << 15;
const ACTIVE_LOW: u32 = 1 << 13;
const MASK: u32 = 1 << 16;

#[test]
fn identification_registers() {
    let mut io = Ioapic::new();
    assert_eq!(reg_read(&mut io, 0x01), 0x0017_0011);
    assert_eq!(reg_read(&mut io, 0x00), 0);
    reg_write(&mut io, 0x00, 0xFFFF_FFFF);
    assert_eq!(reg_read(&mut io, 0x00), 0x0F00_0000);
    assert_eq!(reg_read(&mut io, 0x02), 0x0F00_0000);
    reg_write(&mut io, 0x01, 0);
    assert_eq!(reg_read(&mut io, 0x01), VERSION);
    assert_eq!(reg_read(&mut io, 0x40), 0);
    assert_eq!(reg_read(&mut io, 0xFF), 0);
    let mut data = [0u8; 4];
    io.read(IOREGSEL, &mut data, 0);
    assert_eq!(data, [0xFF, 0, 0, 0]);
    for pin in 0..24 {
        assert_eq!(reg_read(&mut io, 0x10 + 2 * pin), MASK);
        assert_eq!(reg_read(&mut io, 0x11 + 2 * pin), 0);
    }
}

#[test]
fn entries_keep_only_writable_bits() {
    let mut io = Ioapic::new();
    reg_write(&mut io, 0x13, 0xFFFF_FFFF);
    reg_write(&mut io, 0x12, 0xFFFF_FFFF);
    assert_eq!(reg_read(&mut io, 0x13), 0xFF00_0000);
    assert_eq!(reg_read(&mut io, 0x12), 0x1_AFFF);
    assert_eq!(io.entry(1), 0xFF00_0000_0001_AFFF);
    assert_eq!(io.entry(24), 0);
}

#[test]
fn odd_accesses_are_ignored() {
    let mut io = Ioapic::new();
    io.write(IOREGSEL, &[0x01], 0);
    let mut data = [0xAAu8; 2];
    io.read(IOWIN, &mut data, 0);
    assert_eq!(data, [0, 0]);
    let mut data = [0xAAu8; 4];
    io.read(0x20, &mut data, 0);
    assert_eq!(data, [0; 4]);
    io.read(u64::MAX, &mut data, 0);
    io.write(IOWIN, &[1, 2], 0);
    io.write(IOWIN, &[], 0);
    io.write(IOREGSEL, &[], 0);
    io.write(u64::MAX, &[1, 2, 3, 4], 0);
    io.read(IOWIN, &mut data, 0);
    assert_eq!(u32::from_le_bytes(data), VERSION, "a byte write selects a register");
    io.set_irq(24, true);
    io.set_irq(255, true);
    io.eoi(0);
    assert!(!io.has_delivery());
}

#[test]
fn edge_pin() {
    let mut io = Ioapic::new();
    // The UART on IRQ 4, edge, active high, physical destination 0.
    program(&mut io, 4, 0x34, 0);
    io.set_irq(4, true);
    assert_eq!(io.pop_delivery(), Some(Delivery { vector: 0x34, level: false }));
    assert_eq!(io.pop_delivery(), None);
    // Held high: no more edges.
    io.set_irq(4, true);
    assert_eq!(io.pop_delivery(), None);
    io.set_irq(4, false);
    assert_eq!(io.pop_delivery(), None);
    // Two edges before the monitor drains merge into one message.
    io.set_irq(4, true);
    io.set_irq(4, false);
    io.set_irq(4, true);
    assert_eq!(io.pop_delivery(), Some(Delivery { vector: 0x34, level: false }));
    assert_eq!(io.pop_delivery(), None);
    // An edge while masked is lost, also after unmasking.
    io.set_irq(4, false);
    program(&mut io, 4, 0x34 | MASK, 0);
    io.set_irq(4, true);
    program(&mut io, 4, 0x34, 0);
    assert_eq!(io.pop_delivery(), None);
    assert_eq!(io.entry(4) & REMOTE_IRR, 0);
}

#[test]
fn pit_through_the_isa_override() {
    // The PIT's IRQ 0 arrives on pin 2 (MADT interrupt source override); Linux's check_timer.
    let mut io = Ioapic::new();
    program(&mut io, 2, 0x30, 0);
    for _ in 0..3 {
        io.set_irq(2, true);
        io.set_irq(2, false);
        assert_eq!(io.pop_delivery(), Some(Delivery { vector: 0x30, level: false }));
    }
}

#[test]
fn level_pin_remote_irr_and_eoi() {
    let mut io = Ioapic::new();
    // PCI INTx: level, active low (the polarity is stored, the input is the asserted state).
    program(&mut io, 11, 0x3B | LEVEL | ACTIVE_LOW, 0);
    io.set_irq(11, true);
    assert_eq!(io.pop_delivery(), Some(Delivery { vector: 0x3B, level: true }));
    assert_ne!(reg_read(&mut io, 0x10 + 22) & (1 << 14), 0, "Remote IRR");
    // Still asserted, awaiting EOI: nothing more.
    io.set_irq(11, true);
    assert_eq!(io.pop_delivery(), None);
    // An EOI for another vector does nothing.
    io.eoi(0x3C);
    assert_eq!(io.pop_delivery(), None);
    // EOI with the line still asserted sends again.
    io.eoi(0x3B);
    assert_eq!(io.pop_delivery(), Some(Delivery { vector: 0x3B, level: true }));
    // Deasserted before the EOI: the EOI only clears Remote IRR.
    io.set_irq(11, false);
    io.eoi(0x3B);
    assert_eq!(io.pop_delivery(), None);
    assert_eq!(reg_read(&mut io, 0x10 + 22) & (1 << 14), 0);
    // Remote IRR is read-only.
    io.set_irq(11, true);
    assert!(io.pop_delivery().is_some());
    program(&mut io, 11, 0x3B | LEVEL | ACTIVE_LOW, 0);
    assert_ne!(io.entry(11) & REMOTE_IRR, 0);
    assert_eq!(io.pop_delivery(), None);
}

#[test]
fn masked_level_pin_sends_when_unmasked() {
    let mut io = Ioapic::new();
    program(&mut io, 10, 0x3A | LEVEL | MASK, 0);
    io.set_irq(10, true);
    assert_eq!(io.pop_delivery(), None);
    assert_eq!(io.entry(10) & REMOTE_IRR, 0);
    program(&mut io, 10, 0x3A | LEVEL, 0);
    assert_eq!(io.pop_delivery(), Some(Delivery { vector: 0x3A, level: true }));
    // Masked while awaiting the EOI: the EOI clears Remote IRR, nothing is sent until unmasked.
    program(&mut io, 10, 0x3A | LEVEL | MASK, 0);
    io.eoi(0x3A);
    assert_eq!(io.pop_delivery(), None);
    program(&mut io, 10, 0x3A | LEVEL, 0);
    assert_eq!(io.pop_delivery(), Some(Delivery { vector: 0x3A, level: true }));
}

#[test]
fn switching_to_edge_clears_remote_irr() {
    let mut io = Ioapic::new();
    program(&mut io, 9, 0x39 | LEVEL, 0);
    io.set_irq(9, true);
    assert!(io.pop_delivery().is_some());
    // Linux's clear_IO_APIC_pin: a stuck level entry is turned to edge and masked.
    program(&mut io, 9, 0x39 | MASK, 0);
    assert_eq!(io.entry(9) & REMOTE_IRR, 0);
}

#[test]
fn destinations_and_delivery_modes() {
    let mut io = Ioapic::new();
    program(&mut io, 5, 0x35, 1); // physical id 1: nobody
    io.set_irq(5, true);
    assert_eq!(io.pop_delivery(), None);
    io.set_irq(5, false);
    program(&mut io, 5, 0x35, 0xFF); // physical broadcast
    io.set_irq(5, true);
    assert!(io.pop_delivery().is_some());
    io.set_irq(5, false);
    program(&mut io, 5, 0x35 | 1 << 11, 0); // logical, no bits
    io.set_irq(5, true);
    assert_eq!(io.pop_delivery(), None);
    io.set_irq(5, false);
    program(&mut io, 5, 0x35 | 1 << 11 | 1 << 8, 0x01); // logical, lowest priority
    io.set_irq(5, true);
    assert_eq!(io.pop_delivery(), Some(Delivery { vector: 0x35, level: false }));
    for mode in [2u32, 4, 5, 7] {
        io.set_irq(5, false);
        program(&mut io, 5, 0x35 | mode << 8, 0);
        io.set_irq(5, true);
        assert_eq!(io.pop_delivery(), None, "delivery mode {mode}");
    }
    // A level entry that delivers nowhere does not get stuck in Remote IRR.
    program(&mut io, 6, 0x36 | LEVEL, 3);
    io.set_irq(6, true);
    assert_eq!(io.entry(6) & REMOTE_IRR, 0);
}

#[test]
fn deliveries_come_lowest_pin_first() {
    let mut io = Ioapic::new();
    program(&mut io, 7, 0x37, 0);
    program(&mut io, 3, 0x33, 0);
    io.set_irq(7, true);
    io.set_irq(3, true);
    assert!(io.has_delivery());
    assert_eq!(io.pop_delivery().map(|d| d.vector), Some(0x33));
    assert_eq!(io.pop_delivery().map(|d| d.vector), Some(0x37));
    assert!(!io.has_delivery());
}

/// The monitor's loop in miniature: a level-triggered PCI interrupt through the local APIC and
/// back through its EOI broadcast.
#[test]
fn level_interrupt_through_the_local_apic() {
    let mut io = Ioapic::new();
    let mut apic = Lapic::new();
    apic.write(0xF0, &0x1FFu32.to_le_bytes(), 0);
    program(&mut io, 11, 0x3B | LEVEL, 0);
    io.set_irq(11, true);
    let mut injected = 0;
    for _ in 0..3 {
        while let Some(d) = io.pop_delivery() {
            apic.accept(d.vector, d.level);
        }
        let Some(vector) = apic.acknowledge() else { break };
        assert_eq!(vector, 0x3B);
        injected += 1;
        if injected == 2 {
            io.set_irq(11, false); // the driver's handler quiets the device
        }
        match apic.write(0xB0, &[0; 4], 0) {
            LapicEffect::LevelEoi(v) => io.eoi(v),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(injected, 2);
    assert_eq!(io.entry(11) & REMOTE_IRR, 0);
}

/// A hostile register stream: random selectors, values, sizes, pins and EOIs never panic, and
/// Remote IRR is only ever set on level-triggered entries.
#[test]
fn random_register_stream() {
    let mut rng = Rng::new(0x10A_91C);
    let mut io = Ioapic::new();
    for _ in 0..200_000 {
        match rng.below(6) {
            0 => {
                let _ = io.write(IOREGSEL, &[rng.below(0x48) as u8], 0);
            }
            1 => {
                let value = rng.next_u64().to_le_bytes();
                let size = [4, 4, 1, 2, 8][rng.below(5) as usize];
                let offset = if rng.below(8) == 0 { rng.next_u64() } else { IOWIN };
                io.write(offset, &value[..size], 0);
            }
            2 => {
                let mut data = [0u8; 8];
                let size = [4, 4, 1, 8][rng.below(4) as usize];
                io.read(if rng.below(2) == 0 { IOWIN } else { rng.below(0x20) }, &mut data[..size], 0);
            }
            3 => io.set_irq(rng.below(30) as u8, rng.below(2) == 0),
            4 => io.eoi(rng.byte()),
            _ => {
                let _ = io.pop_delivery();
            }
        }
        for pin in 0..PINS {
            let entry = io.entry(pin);
            assert!(entry & REMOTE_IRR == 0 || entry & TRIGGER_LEVEL != 0);
        }
    }
}

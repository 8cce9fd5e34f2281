//! The interrupt controllers of a one-CPU PC wired together: the 8259A pair, the I/O APIC and
//! the local APIC, with the ISA lines going to both the PIC and the I/O APIC, as on a PIIX/ICH
//! chipset.
//!
//! Wiring (what the MADT describes, see keel-acpitables' `madt`): ISA IRQ n drives PIC input n
//! and I/O APIC pin n, except IRQ 0 (the PIT), which reaches I/O APIC pin 2 (the usual interrupt
//! source override); pin 0 is not connected (on real boards it carries the 8259A's INTR as
//! ExtINT, which guests use only as a fallback when pin 2 does not work). IRQ 2 is the PIC
//! cascade and goes nowhere else.
//!
//! Which vector the vCPU gets ([`IrqChips::next_vector`]): I/O APIC messages are first moved into
//! the local APIC's IRR; the local APIC's highest deliverable vector goes first; otherwise, while
//! LINT0 is an unmasked ExtINT entry (virtual wire mode: how the local APIC starts, and how a
//! guest that never touches it keeps it), the 8259A's highest request. A guest that switched to
//! the I/O APIC masks LINT0 and the PIC's output is then ignored.
//!
//! Does not: deliver NMIs (an NMI the guest sends itself through the ICR is returned by
//! [`IrqChips::lapic_write`] for the monitor to inject), model more than one CPU, or MSI.
//!
//! See: Intel SDM Vol 3A 12.5.1 (LINT0 ExtINT, virtual wire), 12.8 (interrupt handling),
//! MultiProcessor Specification 1.4 section 3.6.2 (virtual wire mode), ACPI 6.5 5.2.12.5
//! (interrupt source overrides).

use crate::device::{ClockNs, Device};
use crate::i8259::PicPair;
use crate::ioapic::Ioapic;
use crate::lapic::{Lapic, LapicEffect};

/// The I/O APIC pin ISA IRQ `irq` drives, if any.
pub fn isa_irq_to_pin(irq: u8) -> Option<u8> {
    match irq {
        0 => Some(2),
        2 => None,
        1..=15 => Some(irq),
        _ => None,
    }
}

/// The three interrupt controllers of the VM (see the module documentation).
#[derive(Debug, Clone, Default)]
pub struct IrqChips {
    pub pic: PicPair,
    pub ioapic: Ioapic,
    pub lapic: Lapic,
}

impl IrqChips {
    pub fn new() -> Self {
        Self::default()
    }

    /// Drives ISA line `irq` (0-15) to `level` at the PIC and the I/O APIC.
    pub fn set_isa_irq(&mut self, irq: u8, level: bool) {
        if irq >= 16 {
            return;
        }
        self.pic.set_irq(irq, level);
        if let Some(pin) = isa_irq_to_pin(irq) {
            self.ioapic.set_irq(pin, level);
        }
    }

    /// One edge on ISA line `irq` (the PIT's output pulse): raised then lowered.
    pub fn pulse_isa_irq(&mut self, irq: u8) {
        self.set_isa_irq(irq, true);
        self.set_isa_irq(irq, false);
    }

    /// Moves the I/O APIC's messages into the local APIC and runs its timer up to `now_ns`.
    pub fn update(&mut self, now_ns: u64) {
        self.lapic.advance(now_ns);
        while let Some(d) = self.ioapic.pop_delivery() {
            self.lapic.accept(d.vector, d.level);
        }
    }

    /// Whether a vector waits for the vCPU (without acknowledging it).
    pub fn has_interrupt(&mut self, now_ns: u64) -> bool {
        self.update(now_ns);
        self.lapic.pending().is_some() || (self.lapic.extint_enabled() && self.pic.has_interrupt())
    }

    /// Acknowledges and returns the vector the vCPU should take next, if any.
    pub fn next_vector(&mut self, now_ns: u64) -> Option<u8> {
        self.update(now_ns);
        if let Some(vector) = self.lapic.acknowledge() {
            return Some(vector);
        }
        if self.lapic.extint_enabled() && self.pic.has_interrupt() {
            return self.pic.acknowledge();
        }
        None
    }

    /// A guest read of the local APIC page.
    pub fn lapic_read(&mut self, offset: u64, data: &mut [u8], now_ns: ClockNs) {
        self.lapic.read(offset, data, now_ns);
    }

    /// A guest write to the local APIC page; a level-triggered EOI goes on to the I/O APIC.
    /// Returns whether the guest asked for an NMI to itself.
    pub fn lapic_write(&mut self, offset: u64, data: &[u8], now_ns: ClockNs) -> bool {
        match self.lapic.write(offset, data, now_ns) {
            LapicEffect::LevelEoi(vector) => {
                self.ioapic.eoi(vector);
                false
            }
            LapicEffect::Nmi => true,
            _ => false,
        }
    }

    /// When the local APIC timer next fires, if it is armed.
    pub fn next_timer_ns(&self, now_ns: u64) -> Option<u64> {
        self.lapic.next_event_ns(now_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ioapic::{IOREGSEL, IOWIN};

    /// Programs I/O APIC pin `pin` with `vector`, unmasked, edge or level, physical dest 0.
    fn route(chips: &mut IrqChips, pin: u8, vector: u8, level: bool) {
        let low = u32::from(vector) | if level { 1 << 15 } else { 0 };
        chips.ioapic.write(IOREGSEL, &[0x10 + 2 * pin], 0);
        chips.ioapic.write(IOWIN, &low.to_le_bytes(), 0);
        chips.ioapic.write(IOREGSEL, &[0x11 + 2 * pin], 0);
        chips.ioapic.write(IOWIN, &0u32.to_le_bytes(), 0);
    }

    fn lapic_write32(chips: &mut IrqChips, offset: u64, value: u32) -> bool {
        chips.lapic_write(offset, &value.to_le_bytes(), 0)
    }

    /// Initialises the PIC pair: vectors 0x20/0x28, everything unmasked.
    fn init_pic(chips: &mut IrqChips) {
        for (port, bytes) in [
            (0x20u16, 0x11u8),
            (0x21, 0x20),
            (0x21, 0x04),
            (0x21, 0x01),
            (0xa0, 0x11),
            (0xa1, 0x28),
            (0xa1, 0x02),
            (0xa1, 0x01),
            (0x21, 0x00),
            (0xa1, 0x00),
        ] {
            chips.pic.write(u64::from(port) - u64::from(crate::i8259::BASE), &[bytes], 0);
        }
    }

    #[test]
    fn pic_interrupts_arrive_in_virtual_wire_mode() {
        let mut chips = IrqChips::new();
        init_pic(&mut chips);
        chips.pulse_isa_irq(0);
        assert!(chips.has_interrupt(0));
        assert_eq!(chips.next_vector(0), Some(0x20));
        assert_eq!(chips.next_vector(0), None);
    }

    #[test]
    fn masking_lint0_cuts_the_pic_off_and_the_ioapic_delivers() {
        let mut chips = IrqChips::new();
        init_pic(&mut chips);
        // Software-enable the APIC (SVR bit 8, spurious vector 0xff) and mask LINT0.
        lapic_write32(&mut chips, 0xf0, 0x1ff);
        lapic_write32(&mut chips, 0x350, 1 << 16);
        route(&mut chips, 2, 0x30, false);
        chips.pulse_isa_irq(0);
        assert_eq!(chips.next_vector(0), Some(0x30), "IRQ 0 arrives on pin 2 through the I/O APIC");
        assert_eq!(chips.next_vector(0), None, "the PIC's request is not injected");
        lapic_write32(&mut chips, 0xb0, 0);
    }

    #[test]
    fn a_level_triggered_line_is_resent_after_eoi_while_asserted() {
        let mut chips = IrqChips::new();
        lapic_write32(&mut chips, 0xf0, 0x1ff);
        lapic_write32(&mut chips, 0x350, 1 << 16);
        route(&mut chips, 11, 0x41, true);
        chips.set_isa_irq(11, true);
        assert_eq!(chips.next_vector(0), Some(0x41));
        assert_eq!(chips.next_vector(0), None, "Remote IRR holds it until the EOI");
        // EOI with the line still asserted: sent again.
        assert!(!lapic_write32(&mut chips, 0xb0, 0));
        assert_eq!(chips.next_vector(0), Some(0x41));
        // The device lowers the line, then EOI: nothing more.
        chips.set_isa_irq(11, false);
        lapic_write32(&mut chips, 0xb0, 0);
        assert_eq!(chips.next_vector(0), None);
    }

    #[test]
    fn the_lapic_timer_fires_through_next_vector() {
        let mut chips = IrqChips::new();
        lapic_write32(&mut chips, 0xf0, 0x1ff);
        lapic_write32(&mut chips, 0x3e0, 0xb); // divide by 1
        lapic_write32(&mut chips, 0x320, 0xef); // one-shot, vector 0xef
        lapic_write32(&mut chips, 0x380, 1000); // 1000 ns
        assert_eq!(chips.next_timer_ns(0), Some(1000));
        assert_eq!(chips.next_vector(999), None);
        assert_eq!(chips.next_vector(1000), Some(0xef));
    }

    #[test]
    fn irq_2_and_out_of_range_lines_are_ignored() {
        let mut chips = IrqChips::new();
        assert_eq!(isa_irq_to_pin(2), None);
        assert_eq!(isa_irq_to_pin(16), None);
        chips.set_isa_irq(200, true);
        chips.set_isa_irq(2, true);
        assert!(!chips.has_interrupt(0));
    }
}

//! The legacy 8259A PIC pair: remapped away from the exception vectors and fully masked.
//!
//! Keel takes interrupts through the local APIC. The PICs are remapped to 0x20-0x2f first, so that
//! a spurious IRQ 7/15 (which can arrive even when masked) lands on a harmless vector instead of
//! looking like a CPU exception. See: 8259A datasheet (ICW1-ICW4), SDM Vol 3A 12.1.

use super::instructions::outb;

const PIC1_COMMAND: u16 = 0x20;
const PIC1_DATA: u16 = 0x21;
const PIC2_COMMAND: u16 = 0xa0;
const PIC2_DATA: u16 = 0xa1;

pub fn remap_and_mask() {
    // SAFETY: the standard 8259A initialization sequence on the PC's fixed PIC ports; it only
    // changes which vectors the (then fully masked) PICs would raise.
    unsafe {
        outb(PIC1_COMMAND, 0x11); // ICW1: edge, cascade, ICW4 follows
        outb(PIC2_COMMAND, 0x11);
        outb(PIC1_DATA, 0x20); // ICW2: vector base
        outb(PIC2_DATA, 0x28);
        outb(PIC1_DATA, 0x04); // ICW3: slave on IRQ2
        outb(PIC2_DATA, 0x02);
        outb(PIC1_DATA, 0x01); // ICW4: 8086 mode
        outb(PIC2_DATA, 0x01);
        outb(PIC1_DATA, 0xff); // mask everything
        outb(PIC2_DATA, 0xff);
    }
}

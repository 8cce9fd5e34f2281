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
    // The standard 8259A initialization sequence; it only changes which vectors the (then
    // fully masked) PICs would raise.
    write(PIC1_COMMAND, 0x11); // ICW1: edge, cascade, ICW4 follows
    write(PIC2_COMMAND, 0x11);
    write(PIC1_DATA, 0x20); // ICW2: vector base
    write(PIC2_DATA, 0x28);
    write(PIC1_DATA, 0x04); // ICW3: slave on IRQ2
    write(PIC2_DATA, 0x02);
    write(PIC1_DATA, 0x01); // ICW4: 8086 mode
    write(PIC2_DATA, 0x01);
    write(PIC1_DATA, 0xff); // mask everything
    write(PIC2_DATA, 0xff);
}

/// Writes one of the PC's fixed PIC ports (the four above).
fn write(port: u16, value: u8) {
    // SAFETY: this module writes only the 8259A pair's ports, during `remap_and_mask`; a write
    // programs the PICs (vectors, masks), never memory.
    unsafe { outb(port, value) }
}

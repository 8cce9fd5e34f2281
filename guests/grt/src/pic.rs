//! The 8259 PIC pair (master at 0x20, slave at 0xA0, cascaded on IRQ 2).
//!
//! See: Intel 8259A datasheet (ICW1-ICW4, OCW1, OCW2).

use crate::io;

const MASTER_CMD: u16 = 0x20;
const MASTER_DATA: u16 = 0x21;
const SLAVE_CMD: u16 = 0xA0;
const SLAVE_DATA: u16 = 0xA1;

/// ICW1: edge triggered, cascade, ICW4 follows.
const ICW1_INIT_ICW4: u8 = 0x11;
/// ICW4: 8086 mode, normal (not automatic) EOI.
const ICW4_8086: u8 = 0x01;
/// OCW2: non-specific EOI.
const OCW2_EOI: u8 = 0x20;

/// Initializes both PICs: master IRQs 0-7 on vectors `master_base..master_base + 8`, slave IRQs
/// 8-15 on `slave_base..`, the slave on the master's IRQ 2, every IRQ masked.
///
/// `master_base` and `slave_base` must be multiples of 8 (the 8259 ignores the low 3 bits).
pub fn remap(master_base: u8, slave_base: u8) {
    // Reprogramming the pair only changes which vectors its IRQs use; every IRQ is left masked.
    write(MASTER_CMD, ICW1_INIT_ICW4);
    write(SLAVE_CMD, ICW1_INIT_ICW4);
    write(MASTER_DATA, master_base); // ICW2: vector base
    write(SLAVE_DATA, slave_base);
    write(MASTER_DATA, 1 << 2); // ICW3: a slave on IRQ 2
    write(SLAVE_DATA, 2); // ICW3: slave identity 2
    write(MASTER_DATA, ICW4_8086);
    write(SLAVE_DATA, ICW4_8086);
    set_masks(0xFF, 0xFF);
}

/// Sets the interrupt mask registers (OCW1): a set bit masks that IRQ.
pub fn set_masks(master: u8, slave: u8) {
    // Writing OCW1 only masks or unmasks the PICs' IRQ lines.
    write(MASTER_DATA, master);
    write(SLAVE_DATA, slave);
}

/// Reads the interrupt mask registers (master, slave).
pub fn masks() -> (u8, u8) {
    // Reading OCW1 (the IMR) has no side effect.
    (read(MASTER_DATA), read(SLAVE_DATA))
}

/// Sends a non-specific EOI for `irq` (to the slave too for IRQs 8-15).
pub fn eoi(irq: u8) {
    // An EOI only ends the in-service interrupt at the PICs.
    if irq >= 8 {
        write(SLAVE_CMD, OCW2_EOI);
    }
    write(MASTER_CMD, OCW2_EOI);
}

/// Writes one of the pair's ports (the four above).
fn write(port: u16, value: u8) {
    // SAFETY: this module writes only the 8259 pair's ports, which belong to the emulated PIC
    // (docs/guests.md); a write programs the PIC (vectors, masks, EOI), never memory.
    unsafe { io::outb(port, value) }
}

/// Reads one of the pair's ports (the four above).
fn read(port: u16) -> u8 {
    // SAFETY: as for `write`; this module reads only the mask registers, which has no side effect.
    unsafe { io::inb(port) }
}

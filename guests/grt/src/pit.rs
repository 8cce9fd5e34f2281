//! The 8254 PIT: channel 0 drives IRQ 0; its input clock runs at 1.193182 MHz.
//!
//! See: Intel 82C54 datasheet (control word, mode 2).

use crate::io;

/// The PIT's input clock in Hz.
pub const INPUT_HZ: u32 = 1_193_182;

const CHANNEL0: u16 = 0x40;
const COMMAND: u16 = 0x43;
/// Control word: channel 0 (bits 7:6 = 00), access lobyte then hibyte (5:4 = 11), mode 2, the
/// rate generator (3:1 = 010), binary (0 = 0).
const CH0_LOHI_MODE2: u8 = 0x34;
/// Control word: channel 0 (bits 7:6 = 00), counter latch command (5:4 = 00).
const CH0_LATCH: u8 = 0x00;

/// The reload value for a periodic rate of `hz` (rounded to nearest, clamped to 16 bits).
pub const fn divisor(hz: u32) -> u16 {
    let d = (INPUT_HZ + hz / 2) / hz;
    if d > 0xFFFF {
        0xFFFF
    } else if d < 2 {
        2
    } else {
        d as u16
    }
}

/// Programs channel 0 in mode 2 to interrupt on IRQ 0 `hz` times a second. The PIT counts
/// (and raises IRQ 0 at the PIC) from then on.
pub fn start_periodic(hz: u32) {
    let d = divisor(hz);
    // SAFETY: the PIT ports belong to the emulated 8254 (docs/guests.md); this only sets
    // channel 0's mode and rate.
    unsafe {
        io::outb(COMMAND, CH0_LOHI_MODE2);
        io::outb(CHANNEL0, d as u8);
        io::outb(CHANNEL0, (d >> 8) as u8);
    }
}

/// Latches and reads channel 0's current count.
pub fn read_count() -> u16 {
    // SAFETY: latching and reading channel 0's count does not change its operation.
    unsafe {
        io::outb(COMMAND, CH0_LATCH);
        let lo = io::inb(CHANNEL0);
        let hi = io::inb(CHANNEL0);
        u16::from(lo) | (u16::from(hi) << 8)
    }
}

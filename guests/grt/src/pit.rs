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
    // This only sets channel 0's mode and rate.
    write(COMMAND, CH0_LOHI_MODE2);
    write(CHANNEL0, d as u8);
    write(CHANNEL0, (d >> 8) as u8);
}

/// Latches and reads channel 0's current count.
pub fn read_count() -> u16 {
    // Latching and reading channel 0's count does not change its operation.
    write(COMMAND, CH0_LATCH);
    let lo = read(CHANNEL0);
    let hi = read(CHANNEL0);
    u16::from(lo) | (u16::from(hi) << 8)
}

/// Writes a PIT port (COMMAND or CHANNEL0).
fn write(port: u16, value: u8) {
    // SAFETY: this module writes only the PIT's ports, which belong to the emulated 8254
    // (docs/guests.md); a write sets channel 0's mode, rate or latch, never memory.
    unsafe { io::outb(port, value) }
}

/// Reads channel 0's count port.
fn read(port: u16) -> u8 {
    // SAFETY: as for `write`; reading channel 0 returns its (latched) count, with no other effect.
    unsafe { io::inb(port) }
}

//! Busy-wait delays with the i8254 PIT's channel 2 (the one gated through port 0x61), for the
//! few places that need wall-clock time before any other clock is calibrated: the INIT-SIPI-SIPI
//! delays; and channel 2 as a free-running counter to calibrate the TSC and local APIC timer
//! against (`start_counter`, `read_counter`).
//!
//! Does not: use interrupts or channel 0. See: Intel 8254 datasheet (mode 0), the PC port 0x61
//! layout (bit 0 gate 2, bit 1 speaker, bit 5 OUT2).

use super::instructions::{inb, outb};

pub const PIT_HZ: u64 = 1_193_182;
const CHANNEL2_DATA: u16 = 0x42;
const COMMAND: u16 = 0x43;
const GATE_PORT: u16 = 0x61;

/// Spin for `us` microseconds (at most ~54 ms per call; longer waits loop).
pub fn sleep_us(mut us: u64) {
    while us > 0 {
        let chunk = us.min(50_000);
        sleep_chunk(chunk);
        us -= chunk;
    }
}

fn sleep_chunk(us: u64) {
    let count = (PIT_HZ * us / 1_000_000).clamp(1, 0xffff) as u16;
    // Mode 0 counts down once and raises OUT2 (port 0x61 bit 5).
    let gate = read(GATE_PORT) & !0x03; // gate low, speaker off
    write(GATE_PORT, gate);
    write(COMMAND, 0b1011_0000); // channel 2, lobyte/hibyte, mode 0, binary
    write(CHANNEL2_DATA, count as u8);
    write(CHANNEL2_DATA, (count >> 8) as u8);
    write(GATE_PORT, gate | 0x01); // rising gate edge starts the count
    while read(GATE_PORT) & 0x20 == 0 {
        core::hint::spin_loop();
    }
    write(GATE_PORT, gate);
}

/// Start channel 2 counting down from 0xFFFF at [`PIT_HZ`] (mode 0: after 0 it wraps and goes
/// on), for [`read_counter`]. A window must stay under 0x10000 ticks (54.9 ms).
pub fn start_counter() {
    let gate = read(GATE_PORT) & !0x03;
    write(GATE_PORT, gate);
    write(COMMAND, 0b1011_0000); // channel 2, lobyte/hibyte, mode 0, binary
    write(CHANNEL2_DATA, 0xff);
    write(CHANNEL2_DATA, 0xff);
    write(GATE_PORT, gate | 0x01);
}

/// Channel 2's current count, latched so that both bytes belong to one value (counter latch
/// command, 8254 datasheet "Counter Latch Command").
pub fn read_counter() -> u16 {
    // The latch command and the two data reads only read channel 2's count.
    write(COMMAND, 0b1000_0000); // latch channel 2
    let low = read(CHANNEL2_DATA);
    let high = read(CHANNEL2_DATA);
    u16::from_le_bytes([low, high])
}

/// Writes the PIT's command port, channel 2's data port or the gate port (0x61).
fn write(port: u16, value: u8) {
    // SAFETY: this module touches only the PIT's command port, channel 2 and port 0x61, whose
    // bits 0/1 gate channel 2 and the speaker; channel 2 drives only the speaker, which every
    // write here leaves off. Port writes touch no memory.
    unsafe { outb(port, value) }
}

/// Reads channel 2's data port or the gate port (0x61).
fn read(port: u16) -> u8 {
    // SAFETY: as for `write`; reading these ports has no effect beyond the count latch's
    // byte order, which `read_counter` follows.
    unsafe { inb(port) }
}

//! System control port A (port 0x92, the "fast A20 and reset" port of PS/2 and later PCs).
//!
//! Bit 0 (alternate hot reset): writing it as 1 asks for a reset ([`Port92::take_reset_request`]);
//! it reads back as 0, the state after the reset. Bit 1 is the fast A20 gate: kept and reported by
//! [`Port92::a20_enabled`]. Bits 2-7 (the password lock among them) are stored and read back.
//!
//! Does not: mask A20 in guest memory (the monitor keeps A20 enabled), or combine the gate with
//! the 8042's. Holds no buffers.
//!
//! See: IBM Personal System/2 Hardware Interface Technical Reference, "System Control Port A
//! (Hex 0092)"; Intel 82371AB PIIX4 datasheet, "PORT92—Port 92 Register".

use crate::device::{ClockNs, Device, WriteEffect};

/// The port.
pub const PORT: u16 = 0x92;
/// Alternate hot reset.
pub const RESET: u8 = 0x01;
/// Fast A20 gate.
pub const A20: u8 = 0x02;

/// Port 0x92.
#[derive(Debug, Clone)]
pub struct Port92 {
    value: u8,
    reset_requested: bool,
}

impl Default for Port92 {
    fn default() -> Self {
        Self::new()
    }
}

impl Port92 {
    /// A20 enabled, as a BIOS leaves it.
    pub fn new() -> Self {
        Self { value: A20, reset_requested: false }
    }

    /// Reads the register into `data[0]`; further bytes of a wider access read as all ones.
    fn read_port(&mut self, data: &mut [u8]) {
        let Some((first, rest)) = data.split_first_mut() else { return };
        rest.fill(0xFF);
        *first = self.value;
    }

    /// Writes `data[0]` to the register; further bytes are ignored.
    fn write_port(&mut self, data: &[u8]) {
        let Some(&value) = data.first() else { return };
        if value & RESET != 0 {
            self.reset_requested = true;
        }
        self.value = value & !RESET;
    }

    /// Whether a reset was asked for since the last call. Clears the request.
    pub fn take_reset_request(&mut self) -> bool {
        core::mem::take(&mut self.reset_requested)
    }

    /// The fast A20 gate.
    pub fn a20_enabled(&self) -> bool {
        self.value & A20 != 0
    }
}

impl Device for Port92 {
    /// Offset 0 is the register (see `read_port`); any other offset reads as all ones.
    fn read(&mut self, offset: u64, data: &mut [u8], _now: ClockNs) {
        if offset == 0 {
            self.read_port(data);
        } else {
            data.fill(0xFF);
        }
    }

    /// Offset 0 is the register (see `write_port`); a reset it asks for is [`WriteEffect::Reset`]
    /// (and is also kept for [`Port92::take_reset_request`]). Other offsets are ignored.
    fn write(&mut self, offset: u64, data: &[u8], _now: ClockNs) -> WriteEffect {
        if offset != 0 {
            return WriteEffect::None;
        }
        let earlier = core::mem::take(&mut self.reset_requested);
        self.write_port(data);
        crate::device::reset_effect(&mut self.reset_requested, earlier)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a20_and_reset() {
        let mut p = Port92::new();
        let mut b = [0u8; 2];
        p.read(0, &mut b, 0);
        assert_eq!(b, [A20, 0xFF]);
        assert!(p.a20_enabled());
        p.write(0, &[0x00], 0);
        assert!(!p.a20_enabled());
        assert!(!p.take_reset_request());
        p.write(0, &[A20 | RESET | 0x08], 0);
        assert!(p.take_reset_request());
        assert!(!p.take_reset_request());
        p.read(0, &mut b[..1], 0);
        assert_eq!(b[0], A20 | 0x08, "reset bit reads 0; others kept");
        p.write(0, &[], 0);
        p.read(0, &mut [], 0);
    }
}

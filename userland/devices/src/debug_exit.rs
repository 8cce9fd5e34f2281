//! The debug-exit port (0xF4, as QEMU's isa-debug-exit): writing a byte *v* asks the monitor to
//! stop the VM with exit status *v*; reads give all ones (nothing drives the bus).
//!
//! Does not: shift or transform the status (QEMU's device exits with `(v << 1) | 1`; Keel's tests
//! want *v* itself), or keep any state.

use crate::device::{ClockNs, Device, WriteEffect};

/// The port the platform puts it at.
pub const PORT: u16 = 0xF4;

/// The debug-exit port.
#[derive(Debug, Default, Clone, Copy)]
pub struct DebugExit;

impl Device for DebugExit {
    fn read(&mut self, _offset: u64, data: &mut [u8], _now: ClockNs) {
        data.fill(0xFF);
    }

    /// The first byte of the write is the status; an empty write asks for nothing.
    fn write(&mut self, _offset: u64, data: &[u8], _now: ClockNs) -> WriteEffect {
        data.first().map_or(WriteEffect::None, |&v| WriteEffect::Exit(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exits_with_the_byte() {
        let mut d = DebugExit;
        assert_eq!(d.write(0, &[7], 0), WriteEffect::Exit(7));
        assert_eq!(d.write(0, &[0, 1], 0), WriteEffect::Exit(0));
        assert_eq!(d.write(0, &[], 0), WriteEffect::None);
        let mut b = [0u8; 2];
        d.read(0, &mut b, 0);
        assert_eq!(b, [0xFF; 2]);
        d.read(0, &mut [], 0);
    }
}

//! Keel's test register device (docs/guests.md): 4 KiB of MMIO, normally at GPA 0xFEB0_0000,
//! that test guests use to check MMIO emulation end to end.
//!
//! Layout: offset 0-7 is a 64-bit scratch register (reads return what was written, with any
//! access size at any offset inside it); offset 8-15 is the read-only identification value
//! 0x4B45_454C_4D4D_494F ("KEELMMIO" read as a big-endian string; little-endian in memory);
//! every other byte reads as zero and ignores writes. An access is handled byte by byte, so one
//! that straddles the two registers or the end of the page is well defined.
//!
//! Does not: raise interrupts or hold any buffer beyond the scratch register.

use crate::device::{ClockNs, Device, WriteEffect};

/// Size of the device's MMIO window.
pub const SIZE: u64 = 4096;
/// Offset of the scratch register.
pub const SCRATCH: u64 = 0;
/// Offset of the read-only identification register.
pub const ID: u64 = 8;
/// The identification register's value.
pub const ID_VALUE: u64 = 0x4B45_454C_4D4D_494F;

/// The test register device.
#[derive(Debug, Clone, Default)]
pub struct TestDevice {
    scratch: u64,
}

impl TestDevice {
    pub const fn new() -> Self {
        Self { scratch: 0 }
    }

    /// The scratch register's value.
    pub fn scratch(&self) -> u64 {
        self.scratch
    }
}

impl Device for TestDevice {
    /// Reads `data.len()` bytes from `offset`, little-endian.
    fn read(&mut self, offset: u64, data: &mut [u8], _now: ClockNs) {
        let scratch = self.scratch.to_le_bytes();
        let id = ID_VALUE.to_le_bytes();
        for (i, byte) in data.iter_mut().enumerate() {
            *byte = match offset.checked_add(i as u64) {
                Some(at @ 0..=7) => scratch[at as usize],
                Some(at @ 8..=15) => id[(at - ID) as usize],
                _ => 0,
            };
        }
    }

    /// Writes `data` at `offset`, little-endian; only scratch register bytes change.
    fn write(&mut self, offset: u64, data: &[u8], _now: ClockNs) -> WriteEffect {
        let mut scratch = self.scratch.to_le_bytes();
        for (i, &byte) in data.iter().enumerate() {
            if let Some(at @ 0..=7) = offset.checked_add(i as u64) {
                scratch[at as usize] = byte;
            }
        }
        self.scratch = u64::from_le_bytes(scratch);
        WriteEffect::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Rng;

    fn read(dev: &mut TestDevice, offset: u64, size: usize) -> u64 {
        let mut data = [0u8; 8];
        dev.read(offset, &mut data[..size], 0);
        u64::from_le_bytes(data)
    }

    #[test]
    fn scratch_all_sizes() {
        let mut dev = TestDevice::new();
        dev.write(0, &0x1122_3344_5566_7788u64.to_le_bytes(), 0);
        assert_eq!(read(&mut dev, 0, 8), 0x1122_3344_5566_7788);
        assert_eq!(read(&mut dev, 0, 4), 0x5566_7788);
        assert_eq!(read(&mut dev, 4, 4), 0x1122_3344);
        assert_eq!(read(&mut dev, 2, 2), 0x5566);
        assert_eq!(read(&mut dev, 7, 1), 0x11);
        assert_eq!(read(&mut dev, 3, 4), 0x2233_4455, "unaligned");
        dev.write(6, &[0xAA, 0xBB], 0);
        assert_eq!(dev.scratch(), 0xBBAA_3344_5566_7788);
        dev.write(1, &0xCCDDu16.to_le_bytes(), 0);
        assert_eq!(dev.scratch(), 0xBBAA_3344_55CC_DD88);
        dev.write(0, &[0x01], 0);
        assert_eq!(read(&mut dev, 0, 8), 0xBBAA_3344_55CC_DD01);
    }

    #[test]
    fn id_register_is_read_only() {
        let mut dev = TestDevice::new();
        assert_eq!(read(&mut dev, ID, 8), ID_VALUE);
        assert_eq!(read(&mut dev, ID, 4), 0x4D4D_494F);
        assert_eq!(read(&mut dev, ID + 4, 4), 0x4B45_454C);
        let mut bytes = [0u8; 8];
        dev.read(ID, &mut bytes, 0);
        assert_eq!(&bytes, b"OIMMLEEK");
        dev.write(ID, &[0; 8], 0);
        assert_eq!(read(&mut dev, ID, 8), ID_VALUE);
        assert_eq!(dev.scratch(), 0);
    }

    #[test]
    fn straddles_and_other_offsets() {
        let mut dev = TestDevice::new();
        dev.write(4, &[1, 2, 3, 4, 5, 6, 7, 8], 0);
        assert_eq!(dev.scratch(), 0x0403_0201_0000_0000, "only the scratch half is written");
        assert_eq!(read(&mut dev, 4, 8), 0x4D4D_494F_0403_0201);
        assert_eq!(read(&mut dev, 16, 8), 0);
        assert_eq!(read(&mut dev, SIZE - 1, 1), 0);
        assert_eq!(read(&mut dev, u64::MAX, 8), 0);
        dev.write(u64::MAX - 3, &[0xFF; 8], 0);
        dev.write(16, &[0xFF; 8], 0);
        assert_eq!(dev.scratch(), 0x0403_0201_0000_0000);
        dev.read(0, &mut [], 0);
        dev.write(0, &[], 0);
    }

    #[test]
    fn random_register_stream() {
        let mut rng = Rng::new(0x7E57);
        let mut dev = TestDevice::new();
        let mut model = [0u8; 8];
        for _ in 0..100_000 {
            let offset = if rng.below(4) == 0 { rng.next_u64() } else { rng.below(24) };
            let size = [1, 2, 4, 8, 3, 0, 16][rng.below(7) as usize];
            let mut data = [0u8; 16];
            if rng.below(2) == 0 {
                for b in &mut data[..size] {
                    *b = rng.byte();
                }
                dev.write(offset, &data[..size], 0);
                for (i, &b) in data[..size].iter().enumerate() {
                    if let Some(at @ 0..=7) = offset.checked_add(i as u64) {
                        model[at as usize] = b;
                    }
                }
            } else {
                dev.read(offset, &mut data[..size], 0);
            }
            assert_eq!(dev.scratch(), u64::from_le_bytes(model));
        }
    }
}

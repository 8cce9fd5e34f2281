//! Base address registers (PCI Local Bus 3.0 6.2.5.1): what each BAR decodes (memory or I/O, 32 or
//! 64 bits, prefetchable), where, and how large, found by writing all ones and reading back the
//! bits that stuck, with the function's decode turned off meanwhile and every register restored.
//! It does not assign addresses to unassigned BARs (the firmware does), nor read expansion ROMs.

use crate::{command, reg, Bdf, ConfigSpace};

/// One decoded BAR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bar {
    Memory {
        /// The base address (may be 0 if the firmware left it unassigned).
        address: u64,
        /// The size in bytes: a power of two.
        size: u64,
        prefetchable: bool,
        /// A 64-bit BAR (it also uses the next BAR register, whose slot is `None`).
        is_64: bool,
    },
    Io {
        port: u32,
        size: u32,
    },
}

impl Bar {
    pub fn address(&self) -> u64 {
        match *self {
            Bar::Memory { address, .. } => address,
            Bar::Io { port, .. } => port as u64,
        }
    }
    pub fn size(&self) -> u64 {
        match *self {
            Bar::Memory { size, .. } => size,
            Bar::Io { size, .. } => size as u64,
        }
    }
}

/// The BARs of `at` by register index: six for a header type 0, two for a bridge, none for others
/// (a CardBus bridge). An unimplemented register, or the upper half of a 64-bit BAR, is `None`;
/// so is a 64-bit BAR in the last register (it has no upper half). Decode is off while sizing
/// (the BAR would otherwise claim the all-ones address range for a moment) and the command
/// register is restored afterwards.
pub fn read_bars<C: ConfigSpace + ?Sized>(cfg: &mut C, at: Bdf) -> [Option<Bar>; 6] {
    let mut bars = [None; 6];
    let count = match cfg.read8(at, reg::HEADER_TYPE) & 0x7F {
        0 => 6,
        1 => 2,
        _ => return bars,
    };
    let saved_command = cfg.read16(at, reg::COMMAND);
    cfg.write16(at, reg::COMMAND, saved_command & !(command::IO_SPACE | command::MEMORY_SPACE));
    let mut index = 0;
    while index < count {
        let offset = reg::BAR0 + 4 * index as u16;
        let original = cfg.read32(at, offset);
        let is_io = original & 1 == 1;
        let is_64 = !is_io && (original >> 1) & 0b11 == 0b10;
        if is_64 && index + 1 >= count {
            index += 1;
            continue;
        }
        let mask_low = size_mask(cfg, at, offset, original);
        if is_io {
            // The upper 16 bits of an I/O BAR may be hardwired to zero (x86 has 64 Ki ports).
            let mask = mask_low & !0b11 | if mask_low >> 16 == 0 { 0xFFFF_0000 } else { 0 };
            let size = mask & mask.wrapping_neg();
            if size != 0 {
                bars[index] = Some(Bar::Io { port: original & !0b11, size });
            }
        } else {
            let mut address = (original & !0xF) as u64;
            let mut mask = (mask_low & !0xF) as u64;
            if is_64 {
                let high_offset = offset + 4;
                let original_high = cfg.read32(at, high_offset);
                address |= (original_high as u64) << 32;
                mask |= (size_mask(cfg, at, high_offset, original_high) as u64) << 32;
            } else if mask != 0 {
                mask |= 0xFFFF_FFFF_0000_0000;
            }
            // No writable address bit: an unimplemented BAR (PCI 3.0 6.2.5.1).
            let size = mask & mask.wrapping_neg();
            if size != 0 {
                let prefetchable = original & 0b1000 != 0;
                bars[index] = Some(Bar::Memory { address, size, prefetchable, is_64 });
            }
        }
        index += if is_64 { 2 } else { 1 };
    }
    cfg.write16(at, reg::COMMAND, saved_command);
    bars
}

/// Write all ones to the BAR register at `offset`, read what stuck, restore `original`.
fn size_mask<C: ConfigSpace + ?Sized>(cfg: &mut C, at: Bdf, offset: u16, original: u32) -> u32 {
    cfg.write32(at, offset, u32::MAX);
    let mask = cfg.read32(at, offset);
    cfg.write32(at, offset, original);
    mask
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::{q35, q35_at, FakeConfigSpace, FakeFunction};

    #[test]
    fn q35_bars_are_sized_with_decode_off_and_restored() {
        let mut cfg = q35();
        crate::enable_device(&mut cfg, q35_at::NVME, true, false, true);
        let before = cfg.function(q35_at::NVME).bytes;
        let nvme = read_bars(&mut cfg, q35_at::NVME);
        assert_eq!(nvme[0], Some(Bar::Memory { address: 0xFEA0_0000, size: 0x4000, prefetchable: false, is_64: true }));
        assert_eq!(nvme[1..], [None; 5]);
        let f = cfg.function(q35_at::NVME);
        assert!(!f.sized_while_decoding);
        assert_eq!(f.bytes, before, "every register restored");

        let virtio = read_bars(&mut cfg, q35_at::VIRTIO_BLK);
        assert_eq!(
            virtio[1],
            Some(Bar::Memory { address: 0xFEBD_1000, size: 0x1000, prefetchable: false, is_64: false })
        );
        assert_eq!(
            virtio[4],
            Some(Bar::Memory { address: 0xFE00_0000, size: 0x4000, prefetchable: true, is_64: true })
        );
        let ahci = read_bars(&mut cfg, q35_at::AHCI);
        assert_eq!(ahci[4], Some(Bar::Io { port: 0xC040, size: 0x20 }));
        assert_eq!(ahci[5].map(|b| (b.address(), b.size())), Some((0xFEBD_2000, 0x1000)));
        assert_eq!(read_bars(&mut cfg, q35_at::ROOT_PORT), [None; 6]);
    }

    #[test]
    fn a_large_64_bit_bar_and_hostile_bars() {
        let at = Bdf::new(0, 4, 0);
        // 8 GiB above 4 GiB; a 64-bit BAR in the last register; a bridge with a 64-bit BAR in BAR1.
        let mut cfg = FakeConfigSpace::default()
            .with(
                at,
                FakeFunction::new(0x1234, 1, 0x03, 0, 0)
                    .bar64_memory(0, 0x40_0000_0000, 1 << 33, true)
                    .raw(0x24, &[0x04, 0, 0, 0]),
            )
            .with(Bdf::new(0, 5, 0), FakeFunction::bridge(0x1234, 2, 1, 1).raw(0x14, &[0x04, 0, 0, 0]))
            .with(Bdf::new(0, 6, 0), FakeFunction::new(0x1234, 3, 0, 0, 0).raw(0x0E, &[2]));
        let bars = read_bars(&mut cfg, at);
        assert_eq!(
            bars[0],
            Some(Bar::Memory { address: 0x40_0000_0000, size: 1 << 33, prefetchable: true, is_64: true })
        );
        assert_eq!(bars[5], None);
        assert_eq!(read_bars(&mut cfg, Bdf::new(0, 5, 0)), [None; 6]);
        assert_eq!(read_bars(&mut cfg, Bdf::new(0, 6, 0)), [None; 6]);
        // An absent function reads all ones: a "64-bit prefetchable I/O" mess that must not panic.
        let _ = read_bars(&mut cfg, Bdf::new(0, 7, 0));
    }
}

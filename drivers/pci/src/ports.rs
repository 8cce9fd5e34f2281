//! Configuration space through I/O ports 0xCF8 (CONFIG_ADDRESS) and 0xCFC..0xCFF (CONFIG_DATA),
//! PCI Local Bus 3.0 3.2.2.3.2 ("configuration mechanism #1"), over a [`Registers`] window of the
//! eight ports 0xCF8..0xD00 (the storage service's I/O-port capability). Each access writes the
//! address, then reads or writes the data port at the offset's byte lane. It does not lock: one
//! process owns these ports. Offsets past 255 (PCIe extended space) read all ones and ignore writes.

use keel_drv_hal::Registers;

use crate::{cf8_address, Bdf, ConfigSpace};

/// The ports' offsets in the window.
const CONFIG_ADDRESS: usize = 0;
const CONFIG_DATA: usize = 4;

/// Configuration mechanism #1 over a window of ports 0xCF8..0xD00.
pub struct PortConfigSpace<R: Registers> {
    ports: R,
}

impl<R: Registers> PortConfigSpace<R> {
    pub fn new(ports: R) -> Self {
        PortConfigSpace { ports }
    }

    pub fn into_inner(self) -> R {
        self.ports
    }

    /// Select `offset` of `at`; the data port's byte lane for it, or `None` if unreachable.
    fn select(&mut self, at: Bdf, offset: u16) -> Option<usize> {
        let address = cf8_address(at, offset)?;
        self.ports.write32(CONFIG_ADDRESS, address);
        Some(CONFIG_DATA + (offset as usize & 3))
    }
}

impl<R: Registers> ConfigSpace for PortConfigSpace<R> {
    fn read8(&mut self, at: Bdf, offset: u16) -> u8 {
        self.select(at, offset).map_or(0xFF, |lane| self.ports.read8(lane))
    }
    fn read16(&mut self, at: Bdf, offset: u16) -> u16 {
        self.select(at, offset).map_or(0xFFFF, |lane| self.ports.read16(lane))
    }
    fn read32(&mut self, at: Bdf, offset: u16) -> u32 {
        self.select(at, offset).map_or(u32::MAX, |lane| self.ports.read32(lane))
    }
    fn write8(&mut self, at: Bdf, offset: u16, value: u8) {
        if let Some(lane) = self.select(at, offset) {
            self.ports.write8(lane, value);
        }
    }
    fn write16(&mut self, at: Bdf, offset: u16, value: u16) {
        if let Some(lane) = self.select(at, offset) {
            self.ports.write16(lane, value);
        }
    }
    fn write32(&mut self, at: Bdf, offset: u16, value: u32) {
        if let Some(lane) = self.select(at, offset) {
            self.ports.write32(lane, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::{q35, q35_at, FakeConfigSpace};
    use crate::{enumerate, read_bars, reg};

    /// Ports 0xCF8..0xD00 in front of a fake configuration space, as the chipset decodes them.
    struct Chipset {
        space: FakeConfigSpace,
        address: u32,
    }

    impl Chipset {
        fn target(&self, lane: usize) -> Option<(Bdf, u16)> {
            if self.address & 0x8000_0000 == 0 || lane < CONFIG_DATA {
                return None;
            }
            let a = self.address;
            let bdf = Bdf::new((a >> 16) as u8, (a >> 11) as u8 & 0x1F, (a >> 8) as u8 & 7);
            Some((bdf, (a & 0xFC) as u16 + (lane - CONFIG_DATA) as u16))
        }
    }

    impl Registers for Chipset {
        fn len(&self) -> usize {
            8
        }
        fn read8(&mut self, o: usize) -> u8 {
            self.target(o).map_or(0xFF, |(bdf, off)| self.space.read8(bdf, off))
        }
        fn read16(&mut self, o: usize) -> u16 {
            self.target(o).map_or(0xFFFF, |(bdf, off)| self.space.read16(bdf, off))
        }
        fn read32(&mut self, o: usize) -> u32 {
            if o == CONFIG_ADDRESS {
                return self.address;
            }
            self.target(o).map_or(u32::MAX, |(bdf, off)| self.space.read32(bdf, off))
        }
        fn write8(&mut self, o: usize, v: u8) {
            if let Some((bdf, off)) = self.target(o) {
                self.space.write8(bdf, off, v)
            }
        }
        fn write16(&mut self, o: usize, v: u16) {
            if let Some((bdf, off)) = self.target(o) {
                self.space.write16(bdf, off, v)
            }
        }
        fn write32(&mut self, o: usize, v: u32) {
            if o == CONFIG_ADDRESS {
                self.address = v;
            } else if let Some((bdf, off)) = self.target(o) {
                self.space.write32(bdf, off, v)
            }
        }
    }

    #[test]
    fn the_q35_through_ports_cf8_and_cfc() {
        let mut cfg = PortConfigSpace::new(Chipset { space: q35(), address: 0 });
        assert_eq!(enumerate(&mut cfg).len(), 7);
        assert_eq!(cfg.read8(q35_at::AHCI, reg::PROG_IF), 0x01);
        assert_eq!(cfg.read16(q35_at::AHCI, reg::DEVICE_ID), 0x2922);
        assert_eq!(cfg.read8(q35_at::AHCI, reg::CLASS), 0x01, "byte lane 3");
        assert_eq!(read_bars(&mut cfg, q35_at::NVME)[0].map(|b| b.size()), Some(0x4000));
        cfg.write16(q35_at::NVME, reg::COMMAND, 0x6);
        assert_eq!(cfg.read16(q35_at::NVME, reg::COMMAND), 0x6);
        assert_eq!(cfg.read32(q35_at::NVME, 0x100), u32::MAX, "extended space is out of reach");
        cfg.write32(q35_at::NVME, 0x100, 0);
        let chipset = cfg.into_inner();
        assert!(!chipset.space.function(q35_at::NVME).writes.iter().any(|w| w.0 >= 0x100));
    }
}

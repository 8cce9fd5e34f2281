//! MSI (PCI Local Bus 3.0 6.8.1): find the capability, write the message address and data the
//! kernel's interrupt capability gives, enable it with one vector (Multiple Message Enable 0), and
//! mask it where per-vector masking exists. Enabling also sets the command register's Interrupt
//! Disable, so the device stops asserting INTx (6.8.1.3). It does not allocate vectors: the address
//! and data are the kernel's.

use crate::{command, find_capability, update_command, Bdf, CapabilityId, ConfigSpace, PciError};

/// A function's MSI capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Msi {
    /// Where the capability starts.
    pub offset: u8,
    /// Message Address Upper exists (64-bit address capable).
    pub is_64: bool,
    /// Mask and pending bits exist.
    pub per_vector_masking: bool,
    /// Vectors the function asks for (Multiple Message Capable: 1 to 32).
    pub vectors_requested: u8,
}

/// Message Control bits (PCI 3.0 figure 6-10).
const CONTROL_ENABLE: u16 = 1 << 0;
const CONTROL_MULTIPLE_MESSAGE_ENABLE: u16 = 0b111 << 4;
const CONTROL_64_BIT: u16 = 1 << 7;
const CONTROL_PER_VECTOR_MASKING: u16 = 1 << 8;

impl Msi {
    /// The MSI capability of `at`, if it has one.
    pub fn find<C: ConfigSpace + ?Sized>(cfg: &mut C, at: Bdf) -> Option<Msi> {
        let cap = find_capability(cfg, at, CapabilityId::MSI)?;
        let control = cfg.read16(at, cap.offset as u16 + 2);
        Some(Msi {
            offset: cap.offset,
            is_64: control & CONTROL_64_BIT != 0,
            per_vector_masking: control & CONTROL_PER_VECTOR_MASKING != 0,
            vectors_requested: 1 << ((control >> 1) & 0b111).min(5),
        })
    }

    fn control(&self) -> u16 {
        self.offset as u16 + 2
    }

    fn data_offset(&self) -> u16 {
        self.offset as u16 + if self.is_64 { 0xC } else { 0x8 }
    }

    fn mask_offset(&self) -> u16 {
        self.offset as u16 + if self.is_64 { 0x10 } else { 0xC }
    }

    /// Write the message address (dword-aligned; its low two bits are dropped) and data for one
    /// vector. The capability is left disabled: call [`Msi::enable`] next.
    pub fn program<C: ConfigSpace + ?Sized>(
        &self,
        cfg: &mut C,
        at: Bdf,
        address: u64,
        data: u16,
    ) -> Result<(), PciError> {
        if !self.is_64 && address >> 32 != 0 {
            return Err(PciError::AddressTooWide);
        }
        let control = cfg.read16(at, self.control());
        cfg.write16(at, self.control(), control & !(CONTROL_ENABLE | CONTROL_MULTIPLE_MESSAGE_ENABLE));
        let base = self.offset as u16;
        cfg.write32(at, base + 4, address as u32 & !0b11);
        if self.is_64 {
            cfg.write32(at, base + 8, (address >> 32) as u32);
        }
        cfg.write16(at, self.data_offset(), data);
        Ok(())
    }

    /// Turn MSI on (and INTx off).
    pub fn enable<C: ConfigSpace + ?Sized>(&self, cfg: &mut C, at: Bdf) {
        update_command(cfg, at, command::INTX_DISABLE, 0);
        let control = cfg.read16(at, self.control());
        cfg.write16(at, self.control(), control | CONTROL_ENABLE);
    }

    /// Turn MSI off.
    pub fn disable<C: ConfigSpace + ?Sized>(&self, cfg: &mut C, at: Bdf) {
        let control = cfg.read16(at, self.control());
        cfg.write16(at, self.control(), control & !CONTROL_ENABLE);
    }

    /// Mask or unmask `vector` (per-vector masking only).
    pub fn set_masked<C: ConfigSpace + ?Sized>(
        &self,
        cfg: &mut C,
        at: Bdf,
        vector: u8,
        masked: bool,
    ) -> Result<(), PciError> {
        if !self.per_vector_masking {
            return Err(PciError::NoMasking);
        }
        if vector >= 32 {
            return Err(PciError::NoSuchVector);
        }
        let mask = cfg.read32(at, self.mask_offset());
        let bit = 1u32 << vector;
        cfg.write32(at, self.mask_offset(), if masked { mask | bit } else { mask & !bit });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::{q35, q35_at, FakeConfigSpace, FakeFunction};
    use crate::reg;

    #[test]
    fn ahci_msi_is_programmed_and_enabled() {
        let mut cfg = q35();
        let at = q35_at::AHCI;
        let msi = Msi::find(&mut cfg, at).unwrap();
        assert_eq!(msi, Msi { offset: 0x80, is_64: true, per_vector_masking: false, vectors_requested: 1 });
        msi.program(&mut cfg, at, 0xFEE0_100C, 0x41).unwrap();
        msi.enable(&mut cfg, at);
        assert_eq!(cfg.read32(at, 0x84), 0xFEE0_100C);
        assert_eq!(cfg.read32(at, 0x88), 0);
        assert_eq!(cfg.read16(at, 0x8C), 0x41);
        assert_eq!(cfg.read16(at, 0x82) & 1, 1);
        assert_ne!(cfg.read16(at, reg::COMMAND) & command::INTX_DISABLE, 0);
        assert_eq!(msi.set_masked(&mut cfg, at, 0, true), Err(PciError::NoMasking));
        msi.disable(&mut cfg, at);
        assert_eq!(cfg.read16(at, 0x82) & 1, 0);
    }

    #[test]
    fn a_32_bit_msi_with_masking() {
        let at = Bdf::new(0, 3, 0);
        let mut cfg = FakeConfigSpace::default().with(at, FakeFunction::new(1, 2, 1, 6, 1).msi(0x50, false, true, 4));
        let msi = Msi::find(&mut cfg, at).unwrap();
        assert_eq!((msi.is_64, msi.per_vector_masking, msi.vectors_requested), (false, true, 4));
        assert_eq!(msi.program(&mut cfg, at, 1 << 32, 0), Err(PciError::AddressTooWide));
        msi.program(&mut cfg, at, 0xFEE0_0000, 0x30).unwrap();
        assert_eq!(cfg.read16(at, 0x58), 0x30);
        msi.set_masked(&mut cfg, at, 2, true).unwrap();
        assert_eq!(cfg.read32(at, 0x5C), 0b100);
        msi.set_masked(&mut cfg, at, 2, false).unwrap();
        assert_eq!(cfg.read32(at, 0x5C), 0);
        assert_eq!(msi.set_masked(&mut cfg, at, 32, true), Err(PciError::NoSuchVector));
        assert_eq!(Msi::find(&mut cfg, Bdf::new(0, 4, 0)), None);
    }
}

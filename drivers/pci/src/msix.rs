//! MSI-X (PCI Local Bus 3.0 6.8.2): find the capability, locate the vector table and pending-bit
//! array in their BARs, program a vector's address and data while it is masked (6.8.3.5: changing
//! an unmasked entry is undefined), unmask, enable. Enabling also sets the command register's
//! Interrupt Disable. The table is reached through the BAR's [`Registers`] window (offsets from the
//! BAR's start). It does not allocate vectors or read the pending bits.

use keel_drv_hal::Registers;

use crate::{command, find_capability, update_command, Bdf, CapabilityId, ConfigSpace, PciError};

/// A function's MSI-X capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsiX {
    /// Where the capability starts.
    pub offset: u8,
    /// Vectors in the table (1 to 2048).
    pub table_size: u16,
    /// The BAR holding the table (BIR), and the table's offset in it.
    pub table_bar: u8,
    pub table_offset: u32,
    /// The BAR holding the pending-bit array, and its offset.
    pub pba_bar: u8,
    pub pba_offset: u32,
}

/// Message Control bits (PCI 3.0 figure 6-11).
const CONTROL_TABLE_SIZE: u16 = 0x7FF;
const CONTROL_FUNCTION_MASK: u16 = 1 << 14;
const CONTROL_ENABLE: u16 = 1 << 15;
/// One table entry: address low, address high, data, vector control (PCI 3.0 figure 6-12).
const ENTRY_LEN: usize = 16;
const VECTOR_CONTROL_MASKED: u32 = 1;

impl MsiX {
    /// The MSI-X capability of `at`, if it has one.
    pub fn find<C: ConfigSpace + ?Sized>(cfg: &mut C, at: Bdf) -> Option<MsiX> {
        let cap = find_capability(cfg, at, CapabilityId::MSI_X)?;
        let base = cap.offset as u16;
        let control = cfg.read16(at, base + 2);
        let table = cfg.read32(at, base + 4);
        let pba = cfg.read32(at, base + 8);
        Some(MsiX {
            offset: cap.offset,
            table_size: (control & CONTROL_TABLE_SIZE) + 1,
            table_bar: (table & 0b111) as u8,
            table_offset: table & !0b111,
            pba_bar: (pba & 0b111) as u8,
            pba_offset: pba & !0b111,
        })
    }

    /// The table entry of `vector` in `table`, checked against the table's size and the window.
    fn entry<R: Registers + ?Sized>(&self, table: &R, vector: u16) -> Result<usize, PciError> {
        if vector >= self.table_size {
            return Err(PciError::NoSuchVector);
        }
        let table_end = self.table_offset as usize + self.table_size as usize * ENTRY_LEN;
        if table_end > table.len() {
            return Err(PciError::TableOutsideBar);
        }
        Ok(self.table_offset as usize + vector as usize * ENTRY_LEN)
    }

    /// Mask `vector`, then write its message address and data; it stays masked until
    /// [`MsiX::set_masked`] unmasks it. `table` is the window of BAR [`MsiX::table_bar`].
    pub fn set_vector<R: Registers + ?Sized>(
        &self,
        table: &mut R,
        vector: u16,
        address: u64,
        data: u32,
    ) -> Result<(), PciError> {
        let entry = self.entry(table, vector)?;
        let control = table.read32(entry + 12);
        table.write32(entry + 12, control | VECTOR_CONTROL_MASKED);
        table.write32(entry, address as u32 & !0b11);
        table.write32(entry + 4, (address >> 32) as u32);
        table.write32(entry + 8, data);
        Ok(())
    }

    /// Mask or unmask `vector`.
    pub fn set_masked<R: Registers + ?Sized>(&self, table: &mut R, vector: u16, masked: bool) -> Result<(), PciError> {
        let entry = self.entry(table, vector)?;
        let control = table.read32(entry + 12);
        let control = if masked { control | VECTOR_CONTROL_MASKED } else { control & !VECTOR_CONTROL_MASKED };
        table.write32(entry + 12, control);
        Ok(())
    }

    /// Turn MSI-X on with the function mask clear (and INTx off).
    pub fn enable<C: ConfigSpace + ?Sized>(&self, cfg: &mut C, at: Bdf) {
        update_command(cfg, at, command::INTX_DISABLE, 0);
        let control = cfg.read16(at, self.offset as u16 + 2);
        cfg.write16(at, self.offset as u16 + 2, (control | CONTROL_ENABLE) & !CONTROL_FUNCTION_MASK);
    }

    /// Turn MSI-X off.
    pub fn disable<C: ConfigSpace + ?Sized>(&self, cfg: &mut C, at: Bdf) {
        let control = cfg.read16(at, self.offset as u16 + 2);
        cfg.write16(at, self.offset as u16 + 2, control & !CONTROL_ENABLE);
    }

    /// Mask or unmask every vector at once (the function mask).
    pub fn set_function_masked<C: ConfigSpace + ?Sized>(&self, cfg: &mut C, at: Bdf, masked: bool) {
        let control = cfg.read16(at, self.offset as u16 + 2);
        let control = if masked { control | CONTROL_FUNCTION_MASK } else { control & !CONTROL_FUNCTION_MASK };
        cfg.write16(at, self.offset as u16 + 2, control);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::{q35, q35_at};
    use crate::reg;
    use alloc::vec;
    use alloc::vec::Vec;

    /// A BAR's memory: plain bytes.
    struct Memory(Vec<u8>);
    impl Registers for Memory {
        fn len(&self) -> usize {
            self.0.len()
        }
        fn read8(&mut self, o: usize) -> u8 {
            self.0.get(o).copied().unwrap_or(0xFF)
        }
        fn read16(&mut self, o: usize) -> u16 {
            u16::from_le_bytes([self.read8(o), self.read8(o + 1)])
        }
        fn read32(&mut self, o: usize) -> u32 {
            u32::from_le_bytes([self.read8(o), self.read8(o + 1), self.read8(o + 2), self.read8(o + 3)])
        }
        fn write8(&mut self, o: usize, v: u8) {
            if let Some(b) = self.0.get_mut(o) {
                *b = v;
            }
        }
        fn write16(&mut self, o: usize, v: u16) {
            v.to_le_bytes().iter().enumerate().for_each(|(i, &b)| self.write8(o + i, b));
        }
        fn write32(&mut self, o: usize, v: u32) {
            v.to_le_bytes().iter().enumerate().for_each(|(i, &b)| self.write8(o + i, b));
        }
    }

    #[test]
    fn nvme_msix_vectors_are_programmed_masked_then_enabled() {
        let mut cfg = q35();
        let at = q35_at::NVME;
        let msix = MsiX::find(&mut cfg, at).unwrap();
        assert_eq!(
            msix,
            MsiX { offset: 0x80, table_size: 65, table_bar: 0, table_offset: 0x2000, pba_bar: 0, pba_offset: 0x3000 }
        );
        let mut bar0 = Memory(vec![0; 0x4000]);
        msix.set_vector(&mut bar0, 1, 0xFEE0_0000, 0x45).unwrap();
        assert_eq!(bar0.read32(0x2010), 0xFEE0_0000);
        assert_eq!(bar0.read32(0x2018), 0x45);
        assert_eq!(bar0.read32(0x201C), 1, "left masked");
        msix.set_masked(&mut bar0, 1, false).unwrap();
        assert_eq!(bar0.read32(0x201C), 0);
        msix.set_function_masked(&mut cfg, at, true);
        assert_ne!(cfg.read16(at, 0x82) & CONTROL_FUNCTION_MASK, 0);
        msix.enable(&mut cfg, at);
        assert_eq!(cfg.read16(at, 0x82) & (CONTROL_ENABLE | CONTROL_FUNCTION_MASK), CONTROL_ENABLE);
        assert_ne!(cfg.read16(at, reg::COMMAND) & command::INTX_DISABLE, 0);
        msix.disable(&mut cfg, at);
        assert_eq!(cfg.read16(at, 0x82) & CONTROL_ENABLE, 0);
    }

    #[test]
    fn vectors_and_tables_out_of_range() {
        let mut cfg = q35();
        let msix = MsiX::find(&mut cfg, q35_at::NVME).unwrap();
        let mut small_bar = Memory(vec![0; 0x2100]);
        assert_eq!(msix.set_vector(&mut small_bar, 0, 0, 0), Err(PciError::TableOutsideBar));
        let mut bar0 = Memory(vec![0; 0x4000]);
        assert_eq!(msix.set_vector(&mut bar0, 65, 0, 0), Err(PciError::NoSuchVector));
        assert_eq!(msix.set_masked(&mut bar0, 65, true), Err(PciError::NoSuchVector));
        let virtio = MsiX::find(&mut cfg, q35_at::VIRTIO_BLK).unwrap();
        assert_eq!((virtio.table_size, virtio.table_bar, virtio.pba_offset), (2, 1, 0x800));
    }
}

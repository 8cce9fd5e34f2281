//! The capability list (PCI Local Bus 3.0 6.7): from the pointer at 0x34 (when the status
//! register says there is a list), each entry's ID and the next pointer, dword-aligned, in the
//! device-specific area 0x40..0xFF. A hostile list (a loop, a pointer into the header, more
//! entries than fit) ends the walk; it never spins. It does not read PCIe extended capabilities.

use alloc::vec::Vec;

use crate::{reg, status, Bdf, ConfigSpace};

/// Capability IDs (PCI Code and ID Assignment Specification 1.11, table 7-1).
pub struct CapabilityId;

impl CapabilityId {
    pub const POWER_MANAGEMENT: u8 = 0x01;
    pub const MSI: u8 = 0x05;
    pub const VENDOR_SPECIFIC: u8 = 0x09;
    pub const PCI_EXPRESS: u8 = 0x10;
    pub const MSI_X: u8 = 0x11;
    pub const SATA: u8 = 0x12;
}

/// One capability: its ID and where it starts in configuration space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capability {
    pub id: u8,
    pub offset: u8,
}

/// The most entries a list can hold: (256 - 64) / 4 dword-aligned places.
const MAX_CAPABILITIES: usize = 48;

/// The capabilities of `at`, in list order. The walk stops at a null pointer, at a pointer below
/// 0x40 (into the header) or one already visited, or after 48 entries.
pub fn capabilities<C: ConfigSpace + ?Sized>(cfg: &mut C, at: Bdf) -> Vec<Capability> {
    let mut found = Vec::new();
    if cfg.read16(at, reg::STATUS) & status::CAPABILITIES_LIST == 0 {
        return found;
    }
    // Header type 2 (CardBus) keeps its pointer at 0x14; Keel has no CardBus drivers.
    if cfg.read8(at, reg::HEADER_TYPE) & 0x7F > 1 {
        return found;
    }
    let mut visited = [false; 64];
    let mut pointer = cfg.read8(at, reg::CAPABILITIES_POINTER) & 0xFC;
    while pointer >= 0x40 && found.len() < MAX_CAPABILITIES {
        let slot = pointer as usize / 4;
        if visited[slot] {
            break;
        }
        visited[slot] = true;
        let id = cfg.read8(at, pointer as u16);
        found.push(Capability { id, offset: pointer });
        pointer = cfg.read8(at, pointer as u16 + 1) & 0xFC;
    }
    found
}

/// The first capability of `at` with `id`.
pub fn find_capability<C: ConfigSpace + ?Sized>(cfg: &mut C, at: Bdf, id: u8) -> Option<Capability> {
    capabilities(cfg, at).into_iter().find(|c| c.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::{q35, q35_at, FakeConfigSpace, FakeFunction};

    #[test]
    fn q35_capability_lists() {
        let mut cfg = q35();
        let ids: Vec<u8> = capabilities(&mut cfg, q35_at::NVME).iter().map(|c| c.id).collect();
        assert_eq!(ids, [CapabilityId::POWER_MANAGEMENT, CapabilityId::MSI_X, CapabilityId::PCI_EXPRESS]);
        assert_eq!(
            find_capability(&mut cfg, q35_at::AHCI, CapabilityId::MSI),
            Some(Capability { id: 5, offset: 0x80 })
        );
        assert_eq!(capabilities(&mut cfg, q35_at::VIRTIO_BLK).len(), 5);
        assert_eq!(capabilities(&mut cfg, q35_at::HOST_BRIDGE), []);
        assert_eq!(capabilities(&mut cfg, Bdf::new(9, 9, 0)), [], "absent function: status reads all ones");
    }

    #[test]
    fn hostile_lists_end() {
        let at = Bdf::new(0, 1, 0);
        let with = |f: FakeFunction| FakeConfigSpace::default().with(at, f);
        let base = || FakeFunction::new(1, 1, 0, 0, 0).capability(0x40, 0x01, &[0; 6], &[]);
        // A loop back to itself, a loop over two, a pointer into the header, low bits set.
        let mut cfg = with(base().raw(0x41, &[0x40]));
        assert_eq!(capabilities(&mut cfg, at).len(), 1);
        let mut cfg = with(base().capability(0x50, 0x05, &[0; 10], &[]).raw(0x51, &[0x40]));
        assert_eq!(capabilities(&mut cfg, at).len(), 2);
        let mut cfg = with(base().raw(0x41, &[0x3C]));
        assert_eq!(capabilities(&mut cfg, at).len(), 1);
        let mut cfg = with(base().raw(0x34, &[0x43]));
        assert_eq!(capabilities(&mut cfg, at), [Capability { id: 1, offset: 0x40 }]);
        // A chain through every dword of the device area: 48 entries, no more.
        let mut f = FakeFunction::new(1, 1, 0, 0, 0);
        for offset in (0x40..=0xFCu16).step_by(4) {
            f = f.raw(offset as u8, &[0x09, ((offset + 4) & 0xFF) as u8]);
        }
        let f = f.raw(0x34, &[0x40]).raw(0x06, &[0x10]);
        assert_eq!(capabilities(&mut with(f), at).len(), 48);
    }
}

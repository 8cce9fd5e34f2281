//! Where a virtio-pci function keeps its structures (virtio 1.2 4.1.4): the vendor-specific PCI
//! capabilities (ID 0x09) name, for the common configuration, notifications, the ISR status and
//! the device configuration, a BAR, an offset and a length; the notify capability adds its
//! multiplier (4.1.4.4). The first capability of each type is used (4.1.4.1). It does not map
//! BARs, and refuses a layout whose structures lie in different BARs (every virtio-pci device
//! Keel targets, QEMU's among them, keeps them in one).

use keel_drv_pci::{capabilities, Bdf, CapabilityId, ConfigSpace};

use crate::spec::{cap_type, common};
use crate::VirtioError;

/// One structure: a range of a BAR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub offset: u32,
    pub length: u32,
}

impl Region {
    /// The byte range, for bounds checks.
    pub fn end(&self) -> u64 {
        self.offset as u64 + self.length as u64
    }
}

/// The four structures, all in BAR `bar`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VirtioPciLayout {
    pub bar: u8,
    pub common: Region,
    pub notify: Region,
    /// A queue's notify address is `notify.offset + queue_notify_off * notify_off_multiplier`.
    pub notify_off_multiplier: u32,
    pub isr: Region,
    pub device: Region,
}

/// Read the virtio-pci capabilities of `at`.
pub fn find_layout<C: ConfigSpace + ?Sized>(cfg: &mut C, at: Bdf) -> Result<VirtioPciLayout, VirtioError> {
    let mut found: [Option<(u8, Region)>; 4] = [None; 4];
    let mut multiplier = 0;
    for cap in capabilities(cfg, at).into_iter().filter(|c| c.id == CapabilityId::VENDOR_SPECIFIC) {
        // struct virtio_pci_cap (4.1.4): cap_vndr, cap_next, cap_len, cfg_type, bar, id, padding,
        // offset (at 8), length (at 12); the notify capability adds the multiplier (at 16).
        let base = cap.offset as u16;
        if base > 256 - 16 {
            continue;
        }
        let cfg_type = cfg.read8(at, base + 3);
        let bar = cfg.read8(at, base + 4);
        if !(cap_type::COMMON..=cap_type::DEVICE).contains(&cfg_type) || bar > 5 {
            continue; // other types (PCI config access, shared memory) and reserved BARs
        }
        let slot = &mut found[cfg_type as usize - 1];
        if slot.is_some() {
            continue;
        }
        let region = Region { offset: cfg.read32(at, base + 8), length: cfg.read32(at, base + 12) };
        if cfg_type == cap_type::NOTIFY {
            if base > 256 - 20 {
                continue;
            }
            multiplier = cfg.read32(at, base + 16);
        }
        *slot = Some((bar, region));
    }
    let [Some(common_cap), Some(notify), Some(isr), Some(device)] = found else {
        return Err(VirtioError::NotVirtioPci);
    };
    if [notify.0, isr.0, device.0].iter().any(|&bar| bar != common_cap.0) {
        return Err(VirtioError::Unsupported("virtio structures in different BARs"));
    }
    if (common_cap.1.length as usize) < common::LEN || isr.1.length < 1 || notify.1.length < 2 {
        return Err(VirtioError::NotVirtioPci);
    }
    Ok(VirtioPciLayout {
        bar: common_cap.0,
        common: common_cap.1,
        notify: notify.1,
        notify_off_multiplier: multiplier,
        isr: isr.1,
        device: device.1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_drv_pci::fake::{q35, q35_at, FakeConfigSpace, FakeFunction};

    #[test]
    fn q35_virtio_blk_layout() {
        let layout = find_layout(&mut q35(), q35_at::VIRTIO_BLK).unwrap();
        assert_eq!(
            layout,
            VirtioPciLayout {
                bar: 4,
                common: Region { offset: 0, length: 0x38 },
                notify: Region { offset: 0x3000, length: 0x1000 },
                notify_off_multiplier: 4,
                isr: Region { offset: 0x1000, length: 1 },
                device: Region { offset: 0x2000, length: 0x3C },
            }
        );
        assert_eq!(find_layout(&mut q35(), q35_at::NVME), Err(VirtioError::NotVirtioPci));
    }

    #[test]
    fn split_or_short_layouts_are_refused() {
        let at = Bdf::new(0, 9, 0);
        let cap = |cfg_type: u8, bar: u8, len: u32| {
            let mut body = [0u8; 18];
            body[0] = 20;
            body[1] = cfg_type;
            body[2] = bar;
            body[10..14].copy_from_slice(&len.to_le_bytes());
            body
        };
        let function = |common_bar: u8, common_len: u32| {
            FakeFunction::new(0x1AF4, 0x1042, 1, 0, 0)
                .capability(0x40, 9, &cap(1, common_bar, common_len), &[])
                .capability(0x58, 9, &cap(2, 4, 0x1000), &[])
                .capability(0x70, 9, &cap(3, 4, 1), &[])
                .capability(0x88, 9, &cap(4, 4, 0x40), &[])
        };
        let mut cfg = FakeConfigSpace::default().with(at, function(4, 0x38));
        assert!(find_layout(&mut cfg, at).is_ok());
        let mut cfg = FakeConfigSpace::default().with(at, function(2, 0x38));
        assert_eq!(find_layout(&mut cfg, at), Err(VirtioError::Unsupported("virtio structures in different BARs")));
        let mut cfg = FakeConfigSpace::default().with(at, function(4, 0x20));
        assert_eq!(find_layout(&mut cfg, at), Err(VirtioError::NotVirtioPci));
        let mut cfg = FakeConfigSpace::default().with(at, function(7, 0x38));
        assert_eq!(find_layout(&mut cfg, at), Err(VirtioError::NotVirtioPci), "a reserved BAR number");
    }
}

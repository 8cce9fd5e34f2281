//! Enumeration: every function reachable from bus 0 (PCI Local Bus 3.0 6.1: a vendor ID of 0xFFFF
//! is no function; header type bit 7 says whether functions 1..7 exist) and from the secondary bus
//! of every PCI-to-PCI bridge as the firmware numbered it (PCI-to-PCI Bridge 1.2 3.2.5.3); when
//! 00:00.0 is multifunction, function N is the host bridge of bus N (as the firmware writers'
//! guide describes for several host bridges). Each bus is scanned once, so a bridge pointing back
//! at an earlier bus cannot loop. It does not renumber buses or program bridges' windows.

use alloc::vec::Vec;

use crate::{reg, Bdf, ConfigSpace};

/// What a function says it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FunctionInfo {
    pub bdf: Bdf,
    pub vendor_id: u16,
    pub device_id: u16,
    pub revision: u8,
    /// Base class (0x01: mass storage, 0x06: bridge).
    pub class: u8,
    pub subclass: u8,
    pub prog_if: u8,
    /// Header layout: 0 a device, 1 a PCI-to-PCI bridge, 2 a CardBus bridge.
    pub header_type: u8,
    pub subsystem_vendor_id: u16,
    pub subsystem_id: u16,
    /// The legacy interrupt pin (0: none, 1..4: INTA#..INTD#).
    pub interrupt_pin: u8,
    /// For a bridge, the bus behind it.
    pub secondary_bus: Option<u8>,
}

impl FunctionInfo {
    /// Mass storage (class 0x01) with this subclass and programming interface: 0x08/0x02 is NVMe,
    /// 0x06/0x01 AHCI (PCI Code and ID Assignment 1.11, D.2).
    pub fn is_storage(&self, subclass: u8, prog_if: u8) -> bool {
        self.class == 0x01 && self.subclass == subclass && self.prog_if == prog_if
    }
}

/// Every function present, bus by bus in the order found (bus 0 first, then the buses behind
/// bridges in the order the bridges were found).
pub fn enumerate<C: ConfigSpace + ?Sized>(cfg: &mut C) -> Vec<FunctionInfo> {
    let mut found = Vec::new();
    let mut scanned = [false; 256];
    let mut to_scan: Vec<u8> = Vec::from([0]);
    let host = Bdf::new(0, 0, 0);
    if cfg.read16(host, reg::VENDOR_ID) != 0xFFFF && cfg.read8(host, reg::HEADER_TYPE) & 0x80 != 0 {
        for function in 1..8u8 {
            if cfg.read16(Bdf::new(0, 0, function), reg::VENDOR_ID) != 0xFFFF {
                to_scan.push(function);
            }
        }
    }
    let mut next = 0;
    while let Some(&bus) = to_scan.get(next) {
        next += 1;
        if core::mem::replace(&mut scanned[bus as usize], true) {
            continue;
        }
        for device in 0..32u8 {
            for function in 0..8u8 {
                let bdf = Bdf::new(bus, device, function);
                let Some(info) = read_function(cfg, bdf) else {
                    if function == 0 {
                        break; // no function 0: no device
                    }
                    continue;
                };
                if let Some(secondary) = info.secondary_bus {
                    to_scan.push(secondary);
                }
                found.push(info);
                if function == 0 && info.header_type & 0x80 == 0 {
                    break; // single-function device
                }
            }
        }
    }
    for info in &mut found {
        info.header_type &= 0x7F;
    }
    found
}

/// The function at `bdf`, if present (header type keeps its multifunction bit here).
fn read_function<C: ConfigSpace + ?Sized>(cfg: &mut C, bdf: Bdf) -> Option<FunctionInfo> {
    let vendor_id = cfg.read16(bdf, reg::VENDOR_ID);
    if vendor_id == 0xFFFF || vendor_id == 0 {
        return None;
    }
    let header_type = cfg.read8(bdf, reg::HEADER_TYPE);
    let is_bridge = header_type & 0x7F == 1;
    let (subsystem_vendor_id, subsystem_id) = if header_type & 0x7F == 0 {
        (cfg.read16(bdf, reg::SUBSYSTEM_VENDOR_ID), cfg.read16(bdf, reg::SUBSYSTEM_ID))
    } else {
        (0, 0)
    };
    Some(FunctionInfo {
        bdf,
        vendor_id,
        device_id: cfg.read16(bdf, reg::DEVICE_ID),
        revision: cfg.read8(bdf, reg::REVISION),
        class: cfg.read8(bdf, reg::CLASS),
        subclass: cfg.read8(bdf, reg::SUBCLASS),
        prog_if: cfg.read8(bdf, reg::PROG_IF),
        header_type,
        subsystem_vendor_id,
        subsystem_id,
        interrupt_pin: cfg.read8(bdf, reg::INTERRUPT_PIN),
        // A secondary bus of 0 is an unconfigured bridge: nothing to scan behind it.
        secondary_bus: is_bridge.then(|| cfg.read8(bdf, reg::SECONDARY_BUS)).filter(|&bus| bus != 0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::{q35, q35_at, FakeConfigSpace, FakeFunction};

    #[test]
    fn q35_enumerates_behind_its_root_port() {
        let mut cfg = q35();
        let found = enumerate(&mut cfg);
        let bdfs: Vec<Bdf> = found.iter().map(|f| f.bdf).collect();
        use q35_at::*;
        assert_eq!(bdfs, [HOST_BRIDGE, VIRTIO_BLK, ROOT_PORT, LPC, AHCI, SMBUS, NVME]);
        let nvme = found.iter().find(|f| f.bdf == NVME).unwrap();
        assert!(nvme.is_storage(0x08, 0x02));
        assert_eq!((nvme.vendor_id, nvme.device_id, nvme.interrupt_pin), (0x1B36, 0x0010, 1));
        let ahci = found.iter().find(|f| f.bdf == AHCI).unwrap();
        assert!(ahci.is_storage(0x06, 0x01));
        let port = found.iter().find(|f| f.bdf == ROOT_PORT).unwrap();
        assert_eq!((port.header_type, port.secondary_bus), (1, Some(1)));
        let lpc = found.iter().find(|f| f.bdf == LPC).unwrap();
        assert_eq!(lpc.header_type, 0, "the multifunction bit is not part of the type");
        // Single-function devices are probed at function 0 only; absent devices once.
        assert!(cfg.reads < 2_000, "{} reads", cfg.reads);
    }

    #[test]
    fn bridges_that_loop_or_point_nowhere() {
        // 00:01.0 bridges to bus 1, whose bridge points back at bus 0, and another at bus 1
        // itself; 00:02.0 is an unconfigured bridge (secondary 0).
        let mut cfg = FakeConfigSpace::default()
            .with(Bdf::new(0, 0, 0), FakeFunction::new(0x8086, 1, 6, 0, 0))
            .with(Bdf::new(0, 1, 0), FakeFunction::bridge(0x8086, 2, 1, 1))
            .with(Bdf::new(0, 2, 0), FakeFunction::bridge(0x8086, 3, 0, 0))
            .with(Bdf::new(1, 0, 0), FakeFunction::bridge(0x8086, 4, 0, 0).raw(0x19, &[0]))
            .with(Bdf::new(1, 1, 0), FakeFunction::bridge(0x8086, 5, 1, 1))
            .with(Bdf::new(1, 1, 1), FakeFunction::new(0x8086, 6, 1, 8, 2));
        let found = enumerate(&mut cfg);
        assert_eq!(found.len(), 5, "{found:?}");
        assert!(found.iter().all(|f| f.bdf != Bdf::new(1, 1, 1)), "function 1 of a single-function device");
        // Every bus a bridge could name, each scanned once: the cost stays bounded.
        let mut cfg = FakeConfigSpace::default();
        for bus in 0..=255u8 {
            cfg = cfg.with(Bdf::new(bus, 0, 0), FakeFunction::bridge(0x8086, 7, bus.wrapping_add(1), 255));
        }
        assert_eq!(enumerate(&mut cfg).len(), 256);
    }

    #[test]
    fn several_host_bridges() {
        let mut cfg = FakeConfigSpace::default()
            .with(Bdf::new(0, 0, 0), FakeFunction::new(0x8086, 1, 6, 0, 0).multifunction())
            .with(Bdf::new(0, 0, 1), FakeFunction::new(0x8086, 1, 6, 0, 0))
            .with(Bdf::new(1, 3, 0), FakeFunction::new(0x1AF4, 0x1042, 1, 0, 0));
        let bdfs: Vec<Bdf> = enumerate(&mut cfg).iter().map(|f| f.bdf).collect();
        assert_eq!(bdfs, [Bdf::new(0, 0, 0), Bdf::new(0, 0, 1), Bdf::new(1, 3, 0)]);
    }
}

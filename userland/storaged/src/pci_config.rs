//! PCI configuration space through the legacy mechanism: ports 0xCF8 (address) and 0xCFC
//! (data), which every PC chipset and QEMU's q35 and i440fx decode. It reaches the first 256
//! bytes of each function, which holds everything Keel's drivers need (BARs, MSI and MSI-X
//! capabilities). See: PCI Local Bus 3.0 3.2.2.3.2 (configuration mechanism #1).
//!
//! What it does not do: the extended (PCIe ECAM) space, or any interpretation of what it reads.

use keel_abi::Error;
use keel_drv_hal::Registers;

use crate::hal::Ports;

/// Configuration space of every function on the machine.
pub struct ConfigPorts {
    ports: Ports,
}

impl ConfigPorts {
    pub fn open() -> Result<ConfigPorts, Error> {
        Ok(ConfigPorts { ports: Ports::open(0xcf8, 8)? })
    }

    fn select(&mut self, bus: u8, device: u8, function: u8, offset: u8) {
        let address = (1 << 31)
            | (u32::from(bus) << 16)
            | (u32::from(device & 31) << 11)
            | (u32::from(function & 7) << 8)
            | u32::from(offset & 0xfc);
        self.ports.write32(0, address);
    }

    /// The dword at `offset` (rounded down to 4) of bus/device/function.
    pub fn read32(&mut self, bus: u8, device: u8, function: u8, offset: u8) -> u32 {
        self.select(bus, device, function, offset);
        self.ports.read32(4)
    }

    pub fn write32(&mut self, bus: u8, device: u8, function: u8, offset: u8, value: u32) {
        self.select(bus, device, function, offset);
        self.ports.write32(4, value);
    }
}

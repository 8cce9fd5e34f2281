//! PCI for Keel's host drivers, over configuration-space accesses the storage service provides
//! ([`ConfigSpace`]; [`PortConfigSpace`] implements it over ports 0xCF8/0xCFC):
//!
//! - [`enumerate`]: every function behind the host bridges and PCI-to-PCI bridges, with its IDs
//!   and class ([`FunctionInfo`]);
//! - [`read_bars`]: each BAR's address, size and kind, sized by the write-all-ones rule with decode
//!   off ([`Bar`]);
//! - [`capabilities`]: the capability list, bounded ([`Capability`]);
//! - [`Msi`] and [`MsiX`]: find, program, mask and enable message-signalled interrupts (the
//!   address and data come from the kernel's interrupt capability);
//! - [`enable_device`]: memory/I/O decode and bus mastering in the command register.
//!
//! What it does not do: assign bus numbers or BAR addresses (the firmware did), read PCIe extended
//! configuration space (offsets past 255), handle hot plug, or touch hardware. Nothing here panics
//! on any configuration-space content: absent functions read all ones, every walk is bounded.
#![cfg_attr(not(any(test, feature = "fake")), no_std)]
#![forbid(unsafe_code)]
extern crate alloc;

mod bar;
mod capability;
mod enumerate;
#[cfg(any(test, feature = "fake"))]
pub mod fake;
mod msi;
mod msix;
mod ports;

pub use bar::{read_bars, Bar};
pub use capability::{capabilities, find_capability, Capability, CapabilityId};
pub use enumerate::{enumerate, FunctionInfo};
pub use msi::Msi;
pub use msix::MsiX;
pub use ports::PortConfigSpace;

/// A function's address: bus, device (0..32), function (0..8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bdf {
    pub bus: u8,
    pub device: u8,
    pub function: u8,
}

impl Bdf {
    pub const fn new(bus: u8, device: u8, function: u8) -> Bdf {
        Bdf { bus, device, function }
    }
}

impl core::fmt::Display for Bdf {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:02x}:{:02x}.{}", self.bus, self.device, self.function)
    }
}

/// Configuration-space accesses to one PCI segment. Offsets are bytes (0..256 for the 0xCF8
/// mechanism), aligned to the access size; an absent function reads all ones and ignores writes.
/// Sizes are real: a 16-bit write must not become a 32-bit read-modify-write (that would write
/// back the status register's write-one-to-clear bits).
pub trait ConfigSpace {
    fn read8(&mut self, at: Bdf, offset: u16) -> u8;
    fn read16(&mut self, at: Bdf, offset: u16) -> u16;
    fn read32(&mut self, at: Bdf, offset: u16) -> u32;
    fn write8(&mut self, at: Bdf, offset: u16, value: u8);
    fn write16(&mut self, at: Bdf, offset: u16, value: u16);
    fn write32(&mut self, at: Bdf, offset: u16, value: u32);
}

impl<C: ConfigSpace + ?Sized> ConfigSpace for &mut C {
    fn read8(&mut self, at: Bdf, offset: u16) -> u8 {
        (**self).read8(at, offset)
    }
    fn read16(&mut self, at: Bdf, offset: u16) -> u16 {
        (**self).read16(at, offset)
    }
    fn read32(&mut self, at: Bdf, offset: u16) -> u32 {
        (**self).read32(at, offset)
    }
    fn write8(&mut self, at: Bdf, offset: u16, value: u8) {
        (**self).write8(at, offset, value)
    }
    fn write16(&mut self, at: Bdf, offset: u16, value: u16) {
        (**self).write16(at, offset, value)
    }
    fn write32(&mut self, at: Bdf, offset: u16, value: u32) {
        (**self).write32(at, offset, value)
    }
}

/// The value to write to port 0xCF8 to reach `offset` of `at` through port 0xCFC + (offset & 3)
/// (PCI Local Bus 3.0 3.2.2.3.2: bit 31 enables, bits 23:16 bus, 15:11 device, 10:8 function,
/// 7:2 register). `None` for an offset this mechanism cannot reach (256 or more) or a device or
/// function number out of range.
pub fn cf8_address(at: Bdf, offset: u16) -> Option<u32> {
    if offset >= 256 || at.device >= 32 || at.function >= 8 {
        return None;
    }
    Some(
        0x8000_0000
            | (at.bus as u32) << 16
            | (at.device as u32) << 11
            | (at.function as u32) << 8
            | (offset as u32 & 0xFC),
    )
}

/// Configuration header offsets (PCI Local Bus 3.0 6.1, figure 6-1; 3.2.5 for bridges).
pub mod reg {
    pub const VENDOR_ID: u16 = 0x00;
    pub const DEVICE_ID: u16 = 0x02;
    pub const COMMAND: u16 = 0x04;
    pub const STATUS: u16 = 0x06;
    pub const REVISION: u16 = 0x08;
    pub const PROG_IF: u16 = 0x09;
    pub const SUBCLASS: u16 = 0x0A;
    pub const CLASS: u16 = 0x0B;
    pub const HEADER_TYPE: u16 = 0x0E;
    pub const BAR0: u16 = 0x10;
    /// Bridges (header type 1): primary, secondary and subordinate bus numbers.
    pub const PRIMARY_BUS: u16 = 0x18;
    pub const SECONDARY_BUS: u16 = 0x19;
    pub const SUBORDINATE_BUS: u16 = 0x1A;
    pub const SUBSYSTEM_VENDOR_ID: u16 = 0x2C;
    pub const SUBSYSTEM_ID: u16 = 0x2E;
    pub const CAPABILITIES_POINTER: u16 = 0x34;
    pub const INTERRUPT_LINE: u16 = 0x3C;
    pub const INTERRUPT_PIN: u16 = 0x3D;
}

/// Command register bits (PCI Local Bus 3.0 6.2.2).
pub mod command {
    pub const IO_SPACE: u16 = 1 << 0;
    pub const MEMORY_SPACE: u16 = 1 << 1;
    pub const BUS_MASTER: u16 = 1 << 2;
    pub const INTX_DISABLE: u16 = 1 << 10;
}

/// Status register bits (PCI Local Bus 3.0 6.2.3).
pub mod status {
    pub const CAPABILITIES_LIST: u16 = 1 << 4;
}

/// Why a PCI operation was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PciError {
    /// A 64-bit message address for an MSI capability that takes 32 bits.
    AddressTooWide,
    /// A vector number the capability does not have.
    NoSuchVector,
    /// The MSI-X table lies outside the register window given.
    TableOutsideBar,
    /// Per-vector masking is not implemented by this MSI capability.
    NoMasking,
}

impl core::fmt::Display for PciError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PciError::AddressTooWide => f.write_str("MSI address needs 64 bits, device takes 32"),
            PciError::NoSuchVector => f.write_str("no such interrupt vector"),
            PciError::TableOutsideBar => f.write_str("MSI-X table outside its BAR"),
            PciError::NoMasking => f.write_str("MSI per-vector masking not supported"),
        }
    }
}

/// Set and clear command register bits of `at` (a 16-bit read-modify-write of the command
/// register alone).
pub fn update_command<C: ConfigSpace + ?Sized>(cfg: &mut C, at: Bdf, set: u16, clear: u16) {
    let old = cfg.read16(at, reg::COMMAND);
    cfg.write16(at, reg::COMMAND, (old & !clear) | set);
}

/// Turn on memory decode (`memory`), I/O decode (`io`) and bus mastering (DMA) for `at`.
pub fn enable_device<C: ConfigSpace + ?Sized>(cfg: &mut C, at: Bdf, memory: bool, io: bool, bus_master: bool) {
    let mut set = 0;
    if memory {
        set |= command::MEMORY_SPACE;
    }
    if io {
        set |= command::IO_SPACE;
    }
    if bus_master {
        set |= command::BUS_MASTER;
    }
    update_command(cfg, at, set, 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cf8_addresses() {
        assert_eq!(cf8_address(Bdf::new(0, 0, 0), 0), Some(0x8000_0000));
        assert_eq!(cf8_address(Bdf::new(1, 0x1f, 2), 0x3E), Some(0x8001_FA3C));
        assert_eq!(cf8_address(Bdf::new(0, 32, 0), 0), None);
        assert_eq!(cf8_address(Bdf::new(0, 0, 8), 0), None);
        assert_eq!(cf8_address(Bdf::new(0, 0, 0), 256), None);
    }
}

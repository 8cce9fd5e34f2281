//! A fake PCI configuration space for host tests (this crate's and other drivers'): functions
//! built from their IDs, BARs (which size by the write-all-ones rule as hardware does), capability
//! lists, and per-byte write masks; [`q35`] builds a q35-like machine. It records whether a BAR
//! was sized with decode on, and every write. It does not model PCIe extended space, RW1C status
//! bits, or the memory behind BARs (a driver's test brings its own fake registers).

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use crate::{command, reg, status, Bdf, CapabilityId, ConfigSpace};

/// One BAR as the fake decodes it.
#[derive(Clone, Copy, Debug)]
enum FakeBar {
    /// A BAR register whose bits `writable` take writes; the others keep their value.
    Register { writable: u32, io: bool },
}

/// One function's 256 bytes of configuration space.
#[derive(Clone, Debug)]
pub struct FakeFunction {
    pub bytes: [u8; 256],
    /// Per byte, the bits a write changes.
    pub writable: [u8; 256],
    bars: [Option<FakeBar>; 6],
    /// A BAR was written all ones while its decode was on (PCI 3.0 6.2.5.1 forbids relying on it).
    pub sized_while_decoding: bool,
    /// Every write: (offset, size in bytes, value).
    pub writes: Vec<(u16, u8, u32)>,
    last_capability: Option<u8>,
}

impl FakeFunction {
    /// A function with header type 0.
    pub fn new(vendor: u16, device: u16, class: u8, subclass: u8, prog_if: u8) -> Self {
        let mut f = FakeFunction {
            bytes: [0; 256],
            writable: [0; 256],
            bars: [None; 6],
            sized_while_decoding: false,
            writes: Vec::new(),
            last_capability: None,
        };
        f.set16(reg::VENDOR_ID, vendor);
        f.set16(reg::DEVICE_ID, device);
        f.bytes[reg::CLASS as usize] = class;
        f.bytes[reg::SUBCLASS as usize] = subclass;
        f.bytes[reg::PROG_IF as usize] = prog_if;
        let cmd = command::IO_SPACE | command::MEMORY_SPACE | command::BUS_MASTER | command::INTX_DISABLE;
        f.writable[reg::COMMAND as usize..][..2].copy_from_slice(&cmd.to_le_bytes());
        f.writable[reg::INTERRUPT_LINE as usize] = 0xFF;
        f
    }

    /// A PCI-to-PCI bridge (header type 1, class 06/04) to buses `secondary..=subordinate`.
    pub fn bridge(vendor: u16, device: u16, secondary: u8, subordinate: u8) -> Self {
        let mut f = FakeFunction::new(vendor, device, 0x06, 0x04, 0);
        f.bytes[reg::HEADER_TYPE as usize] = 1;
        f.bytes[reg::SECONDARY_BUS as usize] = secondary;
        f.bytes[reg::SUBORDINATE_BUS as usize] = subordinate;
        f
    }

    /// Mark it multifunction (header type bit 7; meaningful on function 0).
    pub fn multifunction(mut self) -> Self {
        self.bytes[reg::HEADER_TYPE as usize] |= 0x80;
        self
    }

    /// Set the interrupt pin (1 = INTA#).
    pub fn interrupt_pin(mut self, pin: u8) -> Self {
        self.bytes[reg::INTERRUPT_PIN as usize] = pin;
        self
    }

    /// A 32-bit memory BAR of `size` (a power of two, at least 16) at `address`.
    pub fn bar32_memory(mut self, index: usize, address: u32, size: u32, prefetchable: bool) -> Self {
        let low = if prefetchable { 0b1000 } else { 0 };
        self.set32(reg::BAR0 + 4 * index as u16, address | low);
        self.bars[index] = Some(FakeBar::Register { writable: !(size - 1) & !0xF, io: false });
        self
    }

    /// A 64-bit memory BAR of `size` at `address`, in BARs `index` and `index + 1`.
    pub fn bar64_memory(mut self, index: usize, address: u64, size: u64, prefetchable: bool) -> Self {
        let low = 0b100 | if prefetchable { 0b1000 } else { 0 };
        let mask = !(size - 1);
        self.set32(reg::BAR0 + 4 * index as u16, address as u32 | low);
        self.set32(reg::BAR0 + 4 * (index as u16 + 1), (address >> 32) as u32);
        self.bars[index] = Some(FakeBar::Register { writable: mask as u32 & !0xF, io: false });
        self.bars[index + 1] = Some(FakeBar::Register { writable: (mask >> 32) as u32, io: false });
        self
    }

    /// An I/O BAR of `size` ports at `port` (the upper 16 bits read as zero, as on x86).
    pub fn bar_io(mut self, index: usize, port: u16, size: u16) -> Self {
        self.set32(reg::BAR0 + 4 * index as u16, port as u32 | 1);
        self.bars[index] = Some(FakeBar::Register { writable: !(size as u32 - 1) & 0xFFFC, io: true });
        self
    }

    /// Append a capability at `offset` with `body` after its ID and next pointer (bytes 2..), its
    /// bytes `writable` as given (same length as body, or empty for read-only).
    pub fn capability(mut self, offset: u8, id: u8, body: &[u8], writable: &[u8]) -> Self {
        let at = offset as usize;
        self.bytes[at] = id;
        self.bytes[at + 1] = 0;
        self.bytes[at + 2..at + 2 + body.len()].copy_from_slice(body);
        self.writable[at + 2..at + 2 + writable.len()].copy_from_slice(writable);
        match self.last_capability {
            Some(last) => self.bytes[last as usize + 1] = offset,
            None => {
                self.bytes[reg::CAPABILITIES_POINTER as usize] = offset;
                let st = u16::from_le_bytes([self.bytes[6], self.bytes[7]]) | status::CAPABILITIES_LIST;
                self.set16(reg::STATUS, st);
            }
        }
        self.last_capability = Some(offset);
        self
    }

    /// An MSI capability (PCI 3.0 6.8.1) with `vectors` (a power of two, up to 32).
    pub fn msi(self, offset: u8, is_64: bool, per_vector_masking: bool, vectors: u8) -> Self {
        let mut control: u16 = (vectors.trailing_zeros() as u16) << 1;
        if is_64 {
            control |= 1 << 7;
        }
        if per_vector_masking {
            control |= 1 << 8;
        }
        let mut body = [0u8; 22];
        body[..2].copy_from_slice(&control.to_le_bytes());
        let mut writable = [0xFFu8; 22];
        writable[0] = 0x71; // enable, multiple message enable
        writable[1] = 0;
        let len = 2 + 4 + if is_64 { 4 } else { 0 } + 2 + 2 + if per_vector_masking { 8 } else { 0 };
        self.capability(offset, CapabilityId::MSI, &body[..len], &writable[..len])
    }

    /// An MSI-X capability (PCI 3.0 6.8.2): `table_size` vectors, table and PBA in BARs.
    pub fn msix(self, offset: u8, table_size: u16, table: (u8, u32), pba: (u8, u32)) -> Self {
        let mut body = [0u8; 10];
        body[..2].copy_from_slice(&(table_size - 1).to_le_bytes());
        body[2..6].copy_from_slice(&(table.1 | table.0 as u32).to_le_bytes());
        body[6..10].copy_from_slice(&(pba.1 | pba.0 as u32).to_le_bytes());
        self.capability(offset, CapabilityId::MSI_X, &body, &[0, 0xC0])
    }

    /// Overwrite raw bytes (for hostile layouts).
    pub fn raw(mut self, offset: u8, bytes: &[u8]) -> Self {
        self.bytes[offset as usize..offset as usize + bytes.len()].copy_from_slice(bytes);
        self
    }

    fn set16(&mut self, offset: u16, value: u16) {
        self.bytes[offset as usize..][..2].copy_from_slice(&value.to_le_bytes());
    }

    fn set32(&mut self, offset: u16, value: u32) {
        self.bytes[offset as usize..][..4].copy_from_slice(&value.to_le_bytes());
    }

    fn read(&self, offset: u16, len: usize) -> u32 {
        let mut v = [0u8; 4];
        if let Some(bytes) = self.bytes.get(offset as usize..offset as usize + len) {
            v[..len].copy_from_slice(bytes);
        }
        u32::from_le_bytes(v)
    }

    fn bar_count(&self) -> usize {
        if self.bytes[reg::HEADER_TYPE as usize] & 0x7F == 1 {
            2
        } else {
            6
        }
    }

    fn write(&mut self, offset: u16, len: usize, value: u32) {
        self.writes.push((offset, len as u8, value));
        let start = offset as usize;
        if start + len > 256 {
            return;
        }
        let bar_region = reg::BAR0 as usize..reg::BAR0 as usize + 4 * self.bar_count();
        for i in 0..len {
            let at = start + i;
            let byte = (value >> (8 * i)) as u8;
            if bar_region.contains(&at) {
                continue;
            }
            self.bytes[at] = (self.bytes[at] & !self.writable[at]) | (byte & self.writable[at]);
        }
        // BARs: merge the written bytes into the register, then apply its mask.
        if bar_region.contains(&start) {
            let index = (start - reg::BAR0 as usize) / 4;
            let reg_at = reg::BAR0 + 4 * index as u16;
            let mut merged = self.read(reg_at, 4).to_le_bytes();
            for i in 0..len {
                merged[(start - reg_at as usize) + i] = (value >> (8 * i)) as u8;
            }
            let merged = u32::from_le_bytes(merged);
            if let Some(FakeBar::Register { writable, io }) = self.bars[index] {
                let cmd = self.read(reg::COMMAND, 2) as u16;
                let decoding = if io { command::IO_SPACE } else { command::MEMORY_SPACE };
                if merged == u32::MAX && cmd & decoding != 0 {
                    self.sized_while_decoding = true;
                }
                let old = self.read(reg_at, 4);
                self.set32(reg_at, (old & !writable) | (merged & writable));
            }
        }
    }
}

/// A fake configuration space: the functions present, every other address absent.
#[derive(Clone, Debug, Default)]
pub struct FakeConfigSpace {
    pub functions: BTreeMap<Bdf, FakeFunction>,
    /// Configuration reads done (to bound enumeration's cost).
    pub reads: u64,
}

impl FakeConfigSpace {
    pub fn with(mut self, at: Bdf, function: FakeFunction) -> Self {
        self.functions.insert(at, function);
        self
    }

    pub fn function(&self, at: Bdf) -> &FakeFunction {
        &self.functions[&at]
    }

    fn read(&mut self, at: Bdf, offset: u16, len: usize) -> u32 {
        self.reads += 1;
        match self.functions.get(&at) {
            Some(f) => f.read(offset, len),
            None => u32::MAX >> (32 - 8 * len as u32),
        }
    }

    fn write(&mut self, at: Bdf, offset: u16, len: usize, value: u32) {
        if let Some(f) = self.functions.get_mut(&at) {
            f.write(offset, len, value);
        }
    }
}

impl ConfigSpace for FakeConfigSpace {
    fn read8(&mut self, at: Bdf, offset: u16) -> u8 {
        self.read(at, offset, 1) as u8
    }
    fn read16(&mut self, at: Bdf, offset: u16) -> u16 {
        self.read(at, offset, 2) as u16
    }
    fn read32(&mut self, at: Bdf, offset: u16) -> u32 {
        self.read(at, offset, 4)
    }
    fn write8(&mut self, at: Bdf, offset: u16, value: u8) {
        self.write(at, offset, 1, value as u32)
    }
    fn write16(&mut self, at: Bdf, offset: u16, value: u16) {
        self.write(at, offset, 2, value as u32)
    }
    fn write32(&mut self, at: Bdf, offset: u16, value: u32) {
        self.write(at, offset, 4, value)
    }
}

/// Where [`q35`] puts its functions.
pub mod q35_at {
    use crate::Bdf;
    pub const HOST_BRIDGE: Bdf = Bdf::new(0, 0, 0);
    pub const VIRTIO_BLK: Bdf = Bdf::new(0, 2, 0);
    pub const ROOT_PORT: Bdf = Bdf::new(0, 3, 0);
    pub const NVME: Bdf = Bdf::new(1, 0, 0);
    pub const LPC: Bdf = Bdf::new(0, 0x1f, 0);
    pub const AHCI: Bdf = Bdf::new(0, 0x1f, 2);
    pub const SMBUS: Bdf = Bdf::new(0, 0x1f, 3);
}

/// The virtio-blk function's vendor capabilities (virtio 1.2 4.1.4): (offset, cfg_type, bar,
/// offset in BAR, length). Common, ISR, device, notify (with its multiplier of 4).
pub const Q35_VIRTIO_CAPS: [(u8, u8, u8, u32, u32); 4] =
    [(0x84, 1, 4, 0x0000, 0x38), (0x70, 3, 4, 0x1000, 0x1), (0x60, 4, 4, 0x2000, 0x3C), (0x4C, 2, 4, 0x3000, 0x1000)];

/// A q35-like machine as QEMU builds it (`-M q35 -device virtio-blk-pci -device pcie-root-port
/// -device nvme`): host bridge, a modern virtio-blk with MSI-X on bus 0, a PCIe root port with an
/// NVMe controller (64-bit BAR, MSI-X) behind it on bus 1, and the ICH9's multifunction 00:1f (LPC,
/// AHCI with an I/O BAR, a 32-bit BAR and 64-bit MSI, SMBus).
pub fn q35() -> FakeConfigSpace {
    use q35_at::*;
    let mut virtio = FakeFunction::new(0x1AF4, 0x1042, 0x01, 0x00, 0x00)
        .interrupt_pin(1)
        .bar32_memory(1, 0xFEBD_1000, 0x1000, false)
        .bar64_memory(4, 0xFE00_0000, 0x4000, true)
        .msix(0x98, 2, (1, 0), (1, 0x800));
    for (offset, cfg_type, bar, at, len) in Q35_VIRTIO_CAPS {
        let mut body = [0u8; 14];
        body[0] = if cfg_type == 2 { 20 } else { 16 }; // cap_len
        body[1] = cfg_type;
        body[2] = bar;
        body[6..10].copy_from_slice(&at.to_le_bytes());
        body[10..14].copy_from_slice(&len.to_le_bytes());
        virtio = virtio.capability(offset, CapabilityId::VENDOR_SPECIFIC, &body, &[]);
        if cfg_type == 2 {
            virtio = virtio.raw(offset + 16, &4u32.to_le_bytes()); // notify_off_multiplier
        }
    }
    FakeConfigSpace::default()
        .with(HOST_BRIDGE, FakeFunction::new(0x8086, 0x29C0, 0x06, 0x00, 0))
        .with(VIRTIO_BLK, virtio)
        .with(
            ROOT_PORT,
            FakeFunction::bridge(0x1B36, 0x000C, 1, 1).capability(0x40, CapabilityId::PCI_EXPRESS, &[0x42, 0], &[]),
        )
        .with(
            NVME,
            FakeFunction::new(0x1B36, 0x0010, 0x01, 0x08, 0x02)
                .interrupt_pin(1)
                .bar64_memory(0, 0xFEA0_0000, 0x4000, false)
                .capability(0x40, CapabilityId::POWER_MANAGEMENT, &[0x03, 0, 0, 0, 0, 0], &[])
                .msix(0x80, 65, (0, 0x2000), (0, 0x3000))
                .capability(0x60, CapabilityId::PCI_EXPRESS, &[0x02, 0], &[]),
        )
        .with(LPC, FakeFunction::new(0x8086, 0x2918, 0x06, 0x01, 0).multifunction())
        .with(
            AHCI,
            FakeFunction::new(0x8086, 0x2922, 0x01, 0x06, 0x01)
                .interrupt_pin(1)
                .bar_io(4, 0xC040, 0x20)
                .bar32_memory(5, 0xFEBD_2000, 0x1000, false)
                .msi(0x80, true, false, 1)
                .capability(0xA8, CapabilityId::SATA, &[0x10, 0, 0x48, 0, 0, 0], &[]),
        )
        .with(SMBUS, FakeFunction::new(0x8086, 0x2930, 0x0C, 0x05, 0).interrupt_pin(1).bar_io(4, 0x0700, 0x40))
}

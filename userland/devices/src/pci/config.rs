//! The standard type 0 configuration header every PCI function has ([`ConfigSpace`], PCI 3.0
//! section 6.1): the 256 bytes with their write masks, the BARs and the capability list.
//!
//! Vendor, device, revision, class, header type, subsystem ids, capability pointer and interrupt
//! pin are read-only; the command register keeps I/O space, memory space, bus master, parity
//! error response, SERR# and interrupt disable; cache line size, latency timer and interrupt line
//! are read/write; BARs keep only their address bits, so writing all ones and reading back gives
//! the size mask with the type bits (PCI 3.0 6.2.5.1); unimplemented BARs and the expansion ROM
//! BAR read 0. Status bit 3 (interrupt status) follows the function's INTx line; status bit 4 is
//! set once a capability is added.
//!
//! Does not: know about buses, slots, address decoding or interrupt routing (the host bridge,
//! `super::host`, does), or the extended (PCIe) configuration space. Holds no buffers.
//!
//! See: PCI Local Bus Specification 3.0 (cited as "PCI 3.0"), 6.1-6.2 (configuration header),
//! 6.7 (capabilities list).

/// Bytes of configuration space per function.
pub const CONFIG_SIZE: usize = 256;

/// Header offsets (PCI 3.0 Figure 6-1).
pub const VENDOR_ID: usize = 0x00;
pub const DEVICE_ID: usize = 0x02;
pub const COMMAND: usize = 0x04;
pub const STATUS: usize = 0x06;
pub const REVISION_ID: usize = 0x08;
pub const CLASS_CODE: usize = 0x09;
pub const CACHE_LINE_SIZE: usize = 0x0C;
pub const LATENCY_TIMER: usize = 0x0D;
pub const HEADER_TYPE: usize = 0x0E;
pub const BAR0: usize = 0x10;
pub const SUBSYSTEM_VENDOR_ID: usize = 0x2C;
pub const SUBSYSTEM_ID: usize = 0x2E;
pub const EXPANSION_ROM: usize = 0x30;
pub const CAPABILITIES_POINTER: usize = 0x34;
pub const INTERRUPT_LINE: usize = 0x3C;
pub const INTERRUPT_PIN: usize = 0x3D;

/// Command register bits (PCI 3.0 6.2.2).
pub const CMD_IO: u16 = 1 << 0;
pub const CMD_MEMORY: u16 = 1 << 1;
pub const CMD_BUS_MASTER: u16 = 1 << 2;
pub const CMD_PARITY: u16 = 1 << 6;
pub const CMD_SERR: u16 = 1 << 8;
pub const CMD_INTX_DISABLE: u16 = 1 << 10;
const CMD_WRITABLE: u16 = CMD_IO | CMD_MEMORY | CMD_BUS_MASTER | CMD_PARITY | CMD_SERR | CMD_INTX_DISABLE;
/// Status register bits.
pub const STS_INTERRUPT: u16 = 1 << 3;
pub const STS_CAP_LIST: u16 = 1 << 4;

/// Where the first capability goes (after the standard header).
const FIRST_CAP: usize = 0x40;

/// What a BAR decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BarKind {
    /// I/O space (at most 256 bytes, PCI 3.0 6.2.5.1).
    Io,
    /// Memory below 4 GiB.
    Memory32 { prefetchable: bool },
    /// Memory anywhere; takes this BAR and the next.
    Memory64 { prefetchable: bool },
}

/// A BAR's kind and size (a power of two).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bar {
    pub kind: BarKind,
    pub size: u64,
}

/// A function's 256-byte configuration space with its write masks: the standard header behaviour
/// described in the module docs. Devices fill it at creation and may add read-only registers and
/// capabilities.
#[derive(Debug, Clone)]
pub struct ConfigSpace {
    bytes: [u8; CONFIG_SIZE],
    wmask: [u8; CONFIG_SIZE],
    bars: [Option<Bar>; 6],
    /// Offset of the last capability (0: none yet) and where the next one may go.
    last_cap: usize,
    next_cap: usize,
}

impl ConfigSpace {
    /// A type 0 header: `class` is the 24-bit class code (base class << 16 | subclass << 8 |
    /// programming interface).
    pub fn new(vendor: u16, device: u16, class: u32, revision: u8) -> Self {
        let mut cs = Self {
            bytes: [0; CONFIG_SIZE],
            wmask: [0; CONFIG_SIZE],
            bars: [None; 6],
            last_cap: 0,
            next_cap: FIRST_CAP,
        };
        cs.set_u16(VENDOR_ID, vendor);
        cs.set_u16(DEVICE_ID, device);
        cs.bytes[REVISION_ID] = revision;
        cs.bytes[CLASS_CODE..CLASS_CODE + 3].copy_from_slice(&class.to_le_bytes()[..3]);
        cs.wmask[COMMAND..COMMAND + 2].copy_from_slice(&CMD_WRITABLE.to_le_bytes());
        cs.wmask[CACHE_LINE_SIZE] = 0xFF;
        cs.wmask[LATENCY_TIMER] = 0xFF;
        cs.wmask[INTERRUPT_LINE] = 0xFF;
        cs.bytes[INTERRUPT_LINE] = 0xFF; // "unknown" until firmware or the OS routes it
        cs
    }

    /// Reads `data.len()` bytes at `offset`; bytes past the end read as all ones.
    pub fn read(&self, offset: usize, data: &mut [u8]) {
        for (i, byte) in data.iter_mut().enumerate() {
            *byte = offset.checked_add(i).and_then(|at| self.bytes.get(at)).copied().unwrap_or(0xFF);
        }
    }

    /// Writes `data` at `offset`, changing only writable bits; bytes past the end are ignored.
    pub fn write(&mut self, offset: usize, data: &[u8]) {
        for (i, &value) in data.iter().enumerate() {
            let Some(at) = offset.checked_add(i).filter(|&at| at < CONFIG_SIZE) else { return };
            let mask = self.wmask[at];
            self.bytes[at] = self.bytes[at] & !mask | value & mask;
        }
    }

    /// Sets bytes as the device (not the guest) sees fit: read-only registers, initial values.
    /// Bytes past the end are ignored.
    pub fn set_bytes(&mut self, offset: usize, data: &[u8]) {
        for (i, &value) in data.iter().enumerate() {
            if let Some(byte) = offset.checked_add(i).and_then(|at| self.bytes.get_mut(at)) {
                *byte = value;
            }
        }
    }

    /// Makes the bits of `mask` writable by the guest at `offset` (device-specific registers).
    pub fn set_writable(&mut self, offset: usize, mask: &[u8]) {
        for (i, &m) in mask.iter().enumerate() {
            if let Some(byte) = offset.checked_add(i).and_then(|at| self.wmask.get_mut(at)) {
                *byte = m;
            }
        }
    }

    pub fn u8_at(&self, offset: usize) -> u8 {
        self.bytes.get(offset).copied().unwrap_or(0xFF)
    }

    pub fn u16_at(&self, offset: usize) -> u16 {
        let mut b = [0u8; 2];
        self.read(offset, &mut b);
        u16::from_le_bytes(b)
    }

    pub fn u32_at(&self, offset: usize) -> u32 {
        let mut b = [0u8; 4];
        self.read(offset, &mut b);
        u32::from_le_bytes(b)
    }

    fn set_u16(&mut self, offset: usize, value: u16) {
        self.set_bytes(offset, &value.to_le_bytes());
    }

    /// Subsystem vendor and subsystem ids (read-only).
    pub fn set_subsystem(&mut self, vendor: u16, id: u16) {
        self.set_u16(SUBSYSTEM_VENDOR_ID, vendor);
        self.set_u16(SUBSYSTEM_ID, id);
    }

    /// The interrupt pin (1 = INTA# .. 4 = INTD#, 0 = none), read-only to the guest.
    pub fn set_interrupt_pin(&mut self, pin: u8) {
        self.bytes[INTERRUPT_PIN] = pin.min(4);
    }

    pub fn interrupt_pin(&self) -> u8 {
        self.bytes[INTERRUPT_PIN]
    }

    pub fn interrupt_line(&self) -> u8 {
        self.bytes[INTERRUPT_LINE]
    }

    pub fn set_interrupt_line(&mut self, line: u8) {
        self.bytes[INTERRUPT_LINE] = line;
    }

    pub fn command(&self) -> u16 {
        self.u16_at(COMMAND)
    }

    /// Sets the command register's writable bits (firmware-style initialization).
    pub fn set_command(&mut self, command: u16) {
        self.set_u16(COMMAND, command & CMD_WRITABLE);
    }

    /// Status bit 3 (interrupt status) follows the INTx line.
    pub fn set_interrupt_status(&mut self, asserted: bool) {
        let status = self.u16_at(STATUS) & !STS_INTERRUPT | if asserted { STS_INTERRUPT } else { 0 };
        self.set_u16(STATUS, status);
    }

    /// Declares BAR `index` (0-5; a 64-bit BAR also takes `index + 1`). False if the index is out
    /// of range or taken, or the size is not a power of two of the allowed range (I/O 4-256
    /// bytes; memory 16 bytes to 2 GiB for 32-bit BARs, to 2^63 for 64-bit ones).
    pub fn set_bar(&mut self, index: usize, bar: Bar) -> bool {
        let wide = matches!(bar.kind, BarKind::Memory64 { .. });
        let (min, max) = match bar.kind {
            BarKind::Io => (4, 256),
            BarKind::Memory32 { .. } => (16, 1 << 31),
            BarKind::Memory64 { .. } => (16, 1 << 63),
        };
        if index >= 6 {
            return false;
        }
        let last = if wide { index + 1 } else { index };
        if last >= 6
            || !bar.size.is_power_of_two()
            || bar.size < min
            || bar.size > max
            || self.bars[index].is_some()
            || self.bars[last].is_some()
            || (index > 0 && matches!(self.bars[index - 1], Some(Bar { kind: BarKind::Memory64 { .. }, .. })))
        {
            return false;
        }
        self.bars[index] = Some(bar);
        let type_bits: u32 = match bar.kind {
            BarKind::Io => 0x1,
            BarKind::Memory32 { prefetchable } => u32::from(prefetchable) << 3,
            BarKind::Memory64 { prefetchable } => 0x4 | u32::from(prefetchable) << 3,
        };
        let low_fixed: u64 = if bar.kind == BarKind::Io { 0x3 } else { 0xF };
        let mask = !(bar.size - 1) & !low_fixed;
        let at = BAR0 + 4 * index;
        self.bytes[at..at + 4].copy_from_slice(&type_bits.to_le_bytes());
        self.wmask[at..at + 4].copy_from_slice(&(mask as u32).to_le_bytes());
        if wide {
            self.bytes[at + 4..at + 8].fill(0);
            self.wmask[at + 4..at + 8].copy_from_slice(&((mask >> 32) as u32).to_le_bytes());
        }
        true
    }

    /// The declared BAR `index` (None for an upper half of a 64-bit BAR).
    pub fn bar(&self, index: usize) -> Option<Bar> {
        self.bars.get(index).copied().flatten()
    }

    /// BAR `index`'s current base address as the guest programmed it (0: unassigned).
    pub fn bar_address(&self, index: usize) -> Option<u64> {
        let bar = self.bar(index)?;
        let at = BAR0 + 4 * index;
        let low = u64::from(self.u32_at(at));
        Some(match bar.kind {
            BarKind::Io => low & !0x3,
            BarKind::Memory32 { .. } => low & !0xF,
            BarKind::Memory64 { .. } => (u64::from(self.u32_at(at + 4)) << 32 | low) & !0xF,
        })
    }

    /// Programs BAR `index`'s base (firmware-style); the address is masked to the BAR's alignment.
    pub fn set_bar_address(&mut self, index: usize, address: u64) -> bool {
        let Some(bar) = self.bar(index) else { return false };
        let at = BAR0 + 4 * index;
        self.write(at, &(address as u32).to_le_bytes());
        if matches!(bar.kind, BarKind::Memory64 { .. }) {
            self.write(at + 4, &((address >> 32) as u32).to_le_bytes());
        }
        true
    }

    /// The BAR of kind `io` (true: I/O, false: memory) that holds `[addr, addr + len)`, with the
    /// offset, if that space is enabled in the command register.
    #[cfg(test)]
    pub(super) fn decode(&self, addr: u64, len: u64, io: bool) -> Option<(usize, u64)> {
        let enable = if io { CMD_IO } else { CMD_MEMORY };
        if self.command() & enable == 0 || len == 0 {
            return None;
        }
        let end = addr.checked_add(len)?;
        (0..6).find_map(|index| {
            let bar = self.bar(index)?;
            if (bar.kind == BarKind::Io) != io {
                return None;
            }
            let base = self.bar_address(index)?;
            let bar_end = base.checked_add(bar.size)?;
            (base != 0 && addr >= base && end <= bar_end).then(|| (index, addr - base))
        })
    }

    /// Appends a capability with ID `id` and `body` (the bytes after the ID and next pointer),
    /// read-only, at the next dword-aligned offset from 0x40, and links it into the list (PCI 3.0
    /// 6.7). Returns its offset, or None if it does not fit.
    pub fn add_capability(&mut self, id: u8, body: &[u8]) -> Option<usize> {
        let at = self.next_cap.checked_add(3)? & !3;
        let end = at.checked_add(2)?.checked_add(body.len())?;
        if end > CONFIG_SIZE {
            return None;
        }
        self.bytes[at] = id;
        self.bytes[at + 1] = 0;
        self.bytes[at + 2..end].copy_from_slice(body);
        if self.last_cap == 0 {
            self.bytes[CAPABILITIES_POINTER] = at as u8;
        } else {
            self.bytes[self.last_cap + 1] = at as u8;
        }
        let status = self.u16_at(STATUS) | STS_CAP_LIST;
        self.set_u16(STATUS, status);
        self.last_cap = at;
        self.next_cap = end;
        Some(at)
    }
}

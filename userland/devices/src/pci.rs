//! A PCI host bridge with configuration mechanism #1 (ports 0xCF8-0xCFF), bus 0 only, and the
//! standard type 0 configuration header that every function on it shares ([`ConfigSpace`]).
//!
//! Ports: CONFIG_ADDRESS (0xCF8) latches and reads back only on 32-bit accesses (bits 1:0 and
//! the reserved bits 30:24 read 0); CONFIG_DATA (0xCFC-0xCFF) reaches the register the address
//! selects, at byte offset `port - 0xCFC`, for 1-, 2- and 4-byte accesses (bytes past 0xCFF read
//! as all ones). A byte access to 0xCF9 is the PIIX reset control register: writing bit 2 (reset
//! CPU) asks for a system reset ([`PciHost::take_reset_request`]). Other non-dword accesses to
//! 0xCF8-0xCFB are ignored (so Linux's mechanism #2 probe, a byte write to 0xCFB, is harmless).
//!
//! Devices: device 0 is the host bridge (Intel 82441FX, 8086:1237, class 06 00 00, as in a PC
//! with an i440FX); slots 1-31 hold up to 31 boxed [`PciFunction`]s, each single-function
//! (function 0 only). Everything else (an absent slot, functions 1-7, buses 1-255, config cycles
//! with the enable bit clear) reads as all ones and ignores writes.
//!
//! The header ([`ConfigSpace`], PCI 3.0 section 6.1): vendor, device, revision, class, header
//! type, subsystem ids, capability pointer and interrupt pin are read-only; the command register
//! keeps I/O space, memory space, bus master, parity error response, SERR# and interrupt disable;
//! cache line size, latency timer and interrupt line are read/write; BARs keep only their address
//! bits, so writing all ones and reading back gives the size mask with the type bits (PCI 3.0
//! 6.2.5.1); unimplemented BARs and the expansion ROM BAR read 0. Status bit 3 (interrupt status)
//! follows the function's INTx line; status bit 4 is set once a capability is added.
//!
//! Address decoding for the monitor: [`PciHost::mmio_read`]/[`PciHost::mmio_write`] (and the I/O
//! versions) find the BAR that holds the whole access, among the BARs the guest programmed,
//! counting a BAR only while its function's command register enables that space and its base is
//! not 0 (unassigned). Overlapping BARs: the lowest slot wins. [`PciHost::assign_resources`] does
//! what firmware does before an OS boots: places every BAR in a window, enables decoding and fills
//! the interrupt line.
//!
//! INTx: each slot is wired to one PIC IRQ chosen when the function is inserted (all four pins of
//! a slot share it); [`PciHost::irq_levels`] ORs the levels of the functions whose interrupt
//! disable bit is clear. The lines are level-triggered and shareable: the guest must set the PIC's
//! ELCR for them (Linux does when ACPI's `_PRT` or the interrupt line says so).
//!
//! Does not: emulate PCI-to-PCI bridges or other buses, multi-function devices, the extended (PCIe)
//! configuration space or ECAM, MSI/MSI-X, expansion ROMs, or the i440FX's PAM/SMRAM registers.
//! Holds no buffers; the slot table is fixed at 32 entries.
//!
//! See: PCI Local Bus Specification 3.0 (cited as "PCI 3.0"), 3.2.2.3.2 (configuration mechanism
//! #1), 6.1-6.2 (configuration header), 6.7 (capabilities list); Intel 82371AB PIIX4 datasheet,
//! "RC—Reset Control Register (I/O Address 0CF9h)"; Intel 82441FX PMC datasheet (ids).

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

use crate::guest_memory::GuestMemory;

/// CONFIG_ADDRESS.
pub const CONFIG_ADDRESS: u16 = 0xCF8;
/// The PIIX reset control register (byte access only).
pub const RESET_CONTROL: u16 = 0xCF9;
/// CONFIG_DATA (through 0xCFF).
pub const CONFIG_DATA: u16 = 0xCFC;
/// The host's I/O range: 0xCF8-0xCFF.
pub const PORT_BASE: u16 = CONFIG_ADDRESS;
pub const PORT_LEN: u64 = 8;
/// Device numbers on bus 0 (0 is the host bridge).
pub const SLOTS: usize = 32;
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
    fn decode(&self, addr: u64, len: u64, io: bool) -> Option<(usize, u64)> {
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

/// One function on the bus: a device model with a configuration space and BARs.
pub trait PciFunction {
    fn config(&self) -> &ConfigSpace;
    fn config_mut(&mut self) -> &mut ConfigSpace;

    /// A configuration read; the standard header behaviour unless the device overrides it.
    fn config_read(&mut self, offset: usize, data: &mut [u8]) {
        self.config().read(offset, data);
    }

    /// A configuration write; the standard header behaviour unless the device overrides it.
    fn config_write(&mut self, offset: usize, data: &[u8]) {
        self.config_mut().write(offset, data);
    }

    /// A read of `data.len()` bytes at `offset` inside BAR `bar` (the host checked the bounds).
    fn bar_read(&mut self, bar: usize, offset: u64, data: &mut [u8]);

    /// A write at `offset` inside BAR `bar`.
    fn bar_write(&mut self, bar: usize, offset: u64, data: &[u8]);

    /// The function's INTx output (before the command register's interrupt disable).
    fn irq_level(&self) -> bool {
        false
    }

    /// Work that needs guest memory (a virtio device's queues after a notify). The monitor calls
    /// [`PciHost::process`] after any write to a function's BAR.
    fn process(&mut self, _mem: &mut dyn GuestMemory) {}
}

/// Why [`PciHost::insert`] or [`PciHost::assign_resources`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PciError {
    /// Slot 0 (the host bridge) or a slot past 31.
    BadSlot,
    SlotTaken,
    /// An IRQ that is not a PIC line (0-15).
    BadIrq,
    /// The BARs do not fit in the window.
    WindowFull,
}

impl fmt::Display for PciError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadSlot => f.write_str("PCI slot must be 1-31"),
            Self::SlotTaken => f.write_str("PCI slot already holds a device"),
            Self::BadIrq => f.write_str("PCI interrupt must be a PIC IRQ (0-15)"),
            Self::WindowFull => f.write_str("PCI BARs do not fit in the address window"),
        }
    }
}

struct Slot {
    function: Box<dyn PciFunction>,
    irq: u8,
}

/// The host bridge and bus 0.
pub struct PciHost {
    address: u32,
    bridge: ConfigSpace,
    slots: [Option<Slot>; SLOTS],
    reset_control: u8,
    reset_requested: bool,
    /// Every decoding BAR as (I/O, base, end, slot, BAR index), rebuilt whenever configuration
    /// space may have changed (a configuration write, a new function, resource assignment), so
    /// that an MMIO or port access finds its function without walking 32 slots' BARs (a guest
    /// polling an unclaimed address paid that on every exit).
    decoders: Vec<Decoder>,
}

#[derive(Debug, Clone, Copy)]
struct Decoder {
    io: bool,
    base: u64,
    end: u64,
    slot: usize,
    bar: usize,
}

impl Default for PciHost {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for PciHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let used: Vec<usize> = (0..SLOTS).filter(|&s| self.slots[s].is_some()).collect();
        f.debug_struct("PciHost").field("address", &self.address).field("slots", &used).finish()
    }
}

/// Intel 82441FX (i440FX) PCI and memory controller ids.
pub const HOST_BRIDGE_VENDOR: u16 = 0x8086;
pub const HOST_BRIDGE_DEVICE: u16 = 0x1237;

impl PciHost {
    /// An empty bus 0 with the host bridge at device 0.
    pub fn new() -> Self {
        let mut bridge = ConfigSpace::new(HOST_BRIDGE_VENDOR, HOST_BRIDGE_DEVICE, 0x06_00_00, 0x02);
        bridge.set_command(CMD_MEMORY | CMD_IO);
        bridge.set_interrupt_line(0);
        Self {
            address: 0,
            bridge,
            slots: [const { None }; SLOTS],
            reset_control: 0,
            reset_requested: false,
            decoders: Vec::new(),
        }
    }

    /// Puts `function` in `slot` (1-31), its INTx wired to PIC IRQ `irq` (0-15).
    pub fn insert(&mut self, slot: usize, irq: u8, function: Box<dyn PciFunction>) -> Result<(), PciError> {
        if slot == 0 || slot >= SLOTS {
            return Err(PciError::BadSlot);
        }
        if irq > 15 {
            return Err(PciError::BadIrq);
        }
        if self.slots[slot].is_some() {
            return Err(PciError::SlotTaken);
        }
        self.slots[slot] = Some(Slot { function, irq });
        self.rebuild_decoders();
        Ok(())
    }

    /// Recomputes `decoders` from the functions' command registers and BARs (see
    /// `ConfigSpace::decode`, which it mirrors).
    fn rebuild_decoders(&mut self) {
        self.decoders.clear();
        for (slot, s) in self.slots.iter().enumerate() {
            let Some(s) = s else { continue };
            let cs = s.function.config();
            for bar in 0..6 {
                let Some(b) = cs.bar(bar) else { continue };
                let io = b.kind == BarKind::Io;
                let enable = if io { CMD_IO } else { CMD_MEMORY };
                let Some(base) = cs.bar_address(bar) else { continue };
                let Some(end) = base.checked_add(b.size) else { continue };
                if cs.command() & enable != 0 && base != 0 {
                    self.decoders.push(Decoder { io, base, end, slot, bar });
                }
            }
        }
    }

    /// The function in `slot`.
    pub fn function(&self, slot: usize) -> Option<&dyn PciFunction> {
        Some(self.slots.get(slot)?.as_ref()?.function.as_ref())
    }

    pub fn function_mut(&mut self, slot: usize) -> Option<&mut (dyn PciFunction + 'static)> {
        Some(self.slots.get_mut(slot)?.as_mut()?.function.as_mut())
    }

    /// The PIC IRQ `slot` is wired to.
    pub fn slot_irq(&self, slot: usize) -> Option<u8> {
        Some(self.slots.get(slot)?.as_ref()?.irq)
    }

    /// Reads ports `port..port + data.len()` of 0xCF8-0xCFF.
    pub fn read(&mut self, port: u16, data: &mut [u8]) {
        match (port, data.len()) {
            (CONFIG_ADDRESS, 4) => data.copy_from_slice(&self.address.to_le_bytes()),
            (RESET_CONTROL, 1) => data[0] = self.reset_control,
            (CONFIG_DATA..=0xCFF, _) => {
                let skip = usize::from(port - CONFIG_DATA);
                let inside = data.len().min(4 - skip);
                let (now, past) = data.split_at_mut(inside);
                past.fill(0xFF);
                match self.target() {
                    Some((slot, reg)) => self.config_read(slot, reg + skip, now),
                    None => now.fill(0xFF),
                }
            }
            _ => data.fill(0xFF),
        }
    }

    /// Writes `data` to ports `port..` of 0xCF8-0xCFF.
    pub fn write(&mut self, port: u16, data: &[u8]) {
        match (port, data.len()) {
            (CONFIG_ADDRESS, 4) => {
                let value = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
                // PCI 3.0 3.2.2.3.2: bits 1:0 read as 0; bits 30:24 are reserved (read 0 here).
                self.address = value & 0x80FF_FFFC;
            }
            (RESET_CONTROL, 1) => {
                // PIIX4 RC: bit 1 selects a hard reset, bit 2 starts the reset, bit 3 full reset.
                if data[0] & 0x04 != 0 {
                    self.reset_requested = true;
                }
                self.reset_control = data[0] & 0x0A;
            }
            (CONFIG_DATA..=0xCFF, _) => {
                let skip = usize::from(port - CONFIG_DATA);
                let inside = data.len().min(4 - skip);
                if let Some((slot, reg)) = self.target() {
                    self.config_write(slot, reg + skip, &data[..inside]);
                }
            }
            _ => {}
        }
    }

    /// Whether the guest asked for a reset through 0xCF9 since the last call. Clears the request.
    pub fn take_reset_request(&mut self) -> bool {
        core::mem::take(&mut self.reset_requested)
    }

    /// The slot (device number) and register the address register selects, if that is a
    /// function that exists.
    fn target(&self) -> Option<(usize, usize)> {
        let a = self.address;
        let enabled = a & 0x8000_0000 != 0;
        let bus = (a >> 16) & 0xFF;
        let device = ((a >> 11) & 0x1F) as usize;
        let function = (a >> 8) & 0x7;
        let reg = (a & 0xFC) as usize;
        if !enabled || bus != 0 || function != 0 {
            return None;
        }
        (device == 0 || self.slots[device].is_some()).then_some((device, reg))
    }

    /// A configuration read of a function that exists (`slot` 0 is the bridge).
    pub fn config_read(&mut self, slot: usize, offset: usize, data: &mut [u8]) {
        if slot == 0 {
            self.bridge.read(offset, data);
            return;
        }
        match self.slots.get_mut(slot).and_then(Option::as_mut) {
            Some(s) => {
                let level = s.function.irq_level();
                s.function.config_mut().set_interrupt_status(level);
                s.function.config_read(offset, data);
            }
            None => data.fill(0xFF),
        }
    }

    /// A configuration write to a function that exists (`slot` 0 is the bridge).
    pub fn config_write(&mut self, slot: usize, offset: usize, data: &[u8]) {
        if slot == 0 {
            self.bridge.write(offset, data);
        } else if let Some(s) = self.slots.get_mut(slot).and_then(Option::as_mut) {
            s.function.config_write(offset, data);
            self.rebuild_decoders();
        }
    }

    /// The slot, BAR and offset that memory address `gpa` (an access of `len` bytes) hits.
    pub fn mmio_claim(&self, gpa: u64, len: u64) -> Option<(usize, usize, u64)> {
        self.claim(gpa, len, false)
    }

    /// The slot, BAR and offset that I/O port `port` (an access of `len` bytes) hits.
    pub fn io_claim(&self, port: u16, len: u64) -> Option<(usize, usize, u64)> {
        self.claim(u64::from(port), len, true)
    }

    fn claim(&self, addr: u64, len: u64, io: bool) -> Option<(usize, usize, u64)> {
        if len == 0 {
            return None;
        }
        let end = addr.checked_add(len)?;
        // Slot order, then BAR order, as a walk of the slots would find them.
        self.decoders
            .iter()
            .find(|d| d.io == io && addr >= d.base && end <= d.end)
            .map(|d| (d.slot, d.bar, addr - d.base))
    }

    /// Reads MMIO at `gpa` from the function that decodes it; false (data untouched) if none does.
    pub fn mmio_read(&mut self, gpa: u64, data: &mut [u8]) -> bool {
        self.bar_access(gpa, data.len() as u64, false).map(|(f, bar, off)| f.bar_read(bar, off, data)).is_some()
    }

    /// Writes MMIO at `gpa` to the function that decodes it; false if none does.
    pub fn mmio_write(&mut self, gpa: u64, data: &[u8]) -> bool {
        self.bar_access(gpa, data.len() as u64, false).map(|(f, bar, off)| f.bar_write(bar, off, data)).is_some()
    }

    /// Reads I/O port `port` from a function's I/O BAR; false if none decodes it.
    pub fn io_read(&mut self, port: u16, data: &mut [u8]) -> bool {
        self.bar_access(u64::from(port), data.len() as u64, true)
            .map(|(f, bar, off)| f.bar_read(bar, off, data))
            .is_some()
    }

    /// Writes I/O port `port` to a function's I/O BAR; false if none decodes it.
    pub fn io_write(&mut self, port: u16, data: &[u8]) -> bool {
        self.bar_access(u64::from(port), data.len() as u64, true)
            .map(|(f, bar, off)| f.bar_write(bar, off, data))
            .is_some()
    }

    fn bar_access(&mut self, addr: u64, len: u64, io: bool) -> Option<(&mut dyn PciFunction, usize, u64)> {
        let (slot, bar, offset) = self.claim(addr, len, io)?;
        let function = self.slots[slot].as_mut()?.function.as_mut();
        Some((function, bar, offset))
    }

    /// Bit n set: PIC IRQ n is asserted by some function.
    pub fn irq_levels(&self) -> u16 {
        self.slots.iter().flatten().fold(0, |levels, s| {
            let disabled = s.function.config().command() & CMD_INTX_DISABLE != 0;
            if s.function.irq_level() && !disabled {
                levels | 1 << s.irq
            } else {
                levels
            }
        })
    }

    /// Lets every function do work that needs guest memory (see [`PciFunction::process`]).
    pub fn process(&mut self, mem: &mut dyn GuestMemory) {
        for s in self.slots.iter_mut().flatten() {
            s.function.process(mem);
        }
    }

    /// Does what firmware does before an OS boots: places every BAR of every function, largest
    /// first and naturally aligned, memory BARs in `[mmio_base, mmio_base + mmio_len)` and I/O
    /// BARs in `[io_base, io_base + io_len)`; enables memory and I/O decoding where a function
    /// has such BARs; sets each interrupt line to the slot's IRQ (functions with an interrupt
    /// pin). Fails, changing nothing, if the BARs do not fit.
    pub fn assign_resources(
        &mut self,
        mmio_base: u64,
        mmio_len: u64,
        io_base: u16,
        io_len: u16,
    ) -> Result<(), PciError> {
        let mut bars: Vec<(u64, bool, usize, usize)> = Vec::new(); // size, io, slot, index
        for (slot, s) in self.slots.iter().enumerate() {
            let Some(s) = s else { continue };
            for index in 0..6 {
                if let Some(bar) = s.function.config().bar(index) {
                    bars.push((bar.size, bar.kind == BarKind::Io, slot, index));
                }
            }
        }
        bars.sort_by_key(|b| core::cmp::Reverse(b.0));
        let mut placed = Vec::with_capacity(bars.len());
        let mut mmio_next = mmio_base;
        let mut io_next = u64::from(io_base);
        let mmio_end = mmio_base.checked_add(mmio_len).ok_or(PciError::WindowFull)?;
        let io_end = u64::from(io_base) + u64::from(io_len);
        for &(size, io, slot, index) in &bars {
            let (next, end) = if io { (&mut io_next, io_end) } else { (&mut mmio_next, mmio_end) };
            let at = next.checked_add(size - 1).ok_or(PciError::WindowFull)? & !(size - 1);
            let after = at.checked_add(size).ok_or(PciError::WindowFull)?;
            if after > end {
                return Err(PciError::WindowFull);
            }
            *next = after;
            placed.push((slot, index, at));
        }
        for (slot, index, at) in placed {
            if let Some(s) = self.slots[slot].as_mut() {
                s.function.config_mut().set_bar_address(index, at);
            }
        }
        for s in self.slots.iter_mut().flatten() {
            let irq = s.irq;
            let cs = s.function.config_mut();
            let mut command = cs.command();
            for index in 0..6 {
                match cs.bar(index).map(|b| b.kind) {
                    Some(BarKind::Io) => command |= CMD_IO,
                    Some(_) => command |= CMD_MEMORY,
                    None => {}
                }
            }
            cs.set_command(command);
            if cs.interrupt_pin() != 0 {
                cs.set_interrupt_line(irq);
            }
        }
        self.rebuild_decoders();
        Ok(())
    }
}

#[cfg(test)]
mod tests;

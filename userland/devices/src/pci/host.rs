//! The PCI host bridge: configuration mechanism #1 at ports 0xCF8-0xCFF (as a [`crate::Device`]), bus 0
//! with the bridge itself at device 0 and up to 31 [`PciFunction`]s, BAR decoding for the
//! monitor, INTx levels and firmware-style resource assignment. The module documentation of
//! `super` (`keel_devices::pci`) describes the behaviour.
//!
//! Does not: hold the configuration header's rules (`super::config` does), emulate other buses,
//! bridges, multi-function devices, ECAM or MSI.
//!
//! See: PCI Local Bus Specification 3.0, 3.2.2.3.2 (configuration mechanism #1); Intel 82371AB
//! PIIX4 datasheet, "RC—Reset Control Register (I/O Address 0CF9h)"; Intel 82441FX PMC datasheet.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::cell::Cell;
use core::fmt;

use keel_addr::Gpa;

use super::config::*;
use crate::device::{reset_effect, ClockNs, PortDevice, WriteEffect};
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

    /// A read of `data.len()` bytes at `offset` inside BAR `bar` (the host checked the bounds),
    /// at time `now`: [`crate::Device::read`] with the BAR's index.
    fn bar_read(&mut self, bar: usize, offset: u64, data: &mut [u8], now: ClockNs);

    /// A write at `offset` inside BAR `bar`: [`crate::Device::write`] with the BAR's index.
    fn bar_write(&mut self, bar: usize, offset: u64, data: &[u8], now: ClockNs) -> WriteEffect;

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

pub(super) struct Slot {
    pub(super) function: Box<dyn PciFunction>,
    pub(super) irq: u8,
}

/// The host bridge and bus 0.
pub struct PciHost {
    address: u32,
    bridge: ConfigSpace,
    pub(super) slots: [Option<Slot>; SLOTS],
    reset_control: u8,
    reset_requested: bool,
    /// Every decoding BAR as (I/O, base, end, slot, BAR index), rebuilt whenever configuration
    /// space may have changed (a configuration write, a new function, resource assignment), so
    /// that an MMIO or port access finds its function without walking 32 slots' BARs (a guest
    /// polling an unclaimed address paid that on every exit).
    decoders: Vec<Decoder>,
    /// The range all decoders of each space cover, `[MMIO, I/O]` as (lowest base, highest end):
    /// an access outside it (most unclaimed ports and addresses) is turned away without a search.
    spans: [(u64, u64); 2],
    /// Bit n set: slot n's function asserts INTx (with its command register's interrupt disable
    /// clear), as last asked. The monitor wants the levels after every exit, and asking each
    /// function cost more than the rest of its interrupt routing: only the functions in `stale`
    /// are asked again.
    asserting: Cell<u32>,
    /// Bit n set: slot n's function may have changed since it was last asked (every `&mut self`
    /// method that reaches a function marks it).
    stale: Cell<u32>,
    /// Bit n set: slot n's function was reached since the last [`PciHost::process`], which
    /// gives only those their turn (a function has work only after the guest or the monitor
    /// reached it: a notification, DRIVER_OK, a frame delivered through `function_mut`).
    reached: u32,
}

/// A span that holds nothing.
const EMPTY_SPAN: (u64, u64) = (u64::MAX, 0);

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
            spans: [EMPTY_SPAN; 2],
            asserting: Cell::new(0),
            stale: Cell::new(u32::MAX),
            reached: 0,
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
        self.stale.set(u32::MAX);
        self.decoders.clear();
        self.spans = [EMPTY_SPAN; 2];
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
                    let span = &mut self.spans[usize::from(io)];
                    *span = (span.0.min(base), span.1.max(end));
                }
            }
        }
    }

    /// The function in `slot`.
    pub fn function(&self, slot: usize) -> Option<&dyn PciFunction> {
        Some(self.slots.get(slot)?.as_ref()?.function.as_ref())
    }

    pub fn function_mut(&mut self, slot: usize) -> Option<&mut (dyn PciFunction + 'static)> {
        self.reach(slot);
        Some(self.slots.get_mut(slot)?.as_mut()?.function.as_mut())
    }

    /// The PIC IRQ `slot` is wired to.
    pub fn slot_irq(&self, slot: usize) -> Option<u8> {
        Some(self.slots.get(slot)?.as_ref()?.irq)
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
        self.reach(slot);
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
        self.reach(slot);
        if slot == 0 {
            self.bridge.write(offset, data);
        } else if let Some(s) = self.slots.get_mut(slot).and_then(Option::as_mut) {
            s.function.config_write(offset, data);
            self.rebuild_decoders();
        }
    }

    /// The slot, BAR and offset that memory address `gpa` (an access of `len` bytes) hits.
    pub fn mmio_claim(&self, gpa: Gpa, len: u64) -> Option<(usize, usize, u64)> {
        self.claim(gpa.0, len, false)
    }

    /// The slot, BAR and offset that I/O port `port` (an access of `len` bytes) hits.
    pub fn io_claim(&self, port: u16, len: u64) -> Option<(usize, usize, u64)> {
        self.claim(u64::from(port), len, true)
    }

    /// The claim of an access at `addr` in the memory (`io` false: a guest-physical address) or
    /// I/O space.
    pub(super) fn claim(&self, addr: u64, len: u64, io: bool) -> Option<(usize, usize, u64)> {
        if len == 0 {
            return None;
        }
        let end = addr.checked_add(len)?;
        let (low, high) = self.spans[usize::from(io)];
        if addr < low || end > high {
            return None;
        }
        // Slot order, then BAR order, as a walk of the slots would find them.
        self.decoders
            .iter()
            .find(|d| d.io == io && addr >= d.base && end <= d.end)
            .map(|d| (d.slot, d.bar, addr - d.base))
    }

    /// Reads MMIO at `gpa` from the function that decodes it; false (data untouched) if none does.
    pub fn mmio_read(&mut self, gpa: Gpa, data: &mut [u8], now: ClockNs) -> bool {
        self.bar_access(gpa.0, data.len() as u64, false).map(|(f, bar, off)| f.bar_read(bar, off, data, now)).is_some()
    }

    /// Writes MMIO at `gpa` to the function that decodes it: what the write asks of the monitor,
    /// or None if no function decodes it.
    pub fn mmio_write(&mut self, gpa: Gpa, data: &[u8], now: ClockNs) -> Option<WriteEffect> {
        self.bar_access(gpa.0, data.len() as u64, false).map(|(f, bar, off)| f.bar_write(bar, off, data, now))
    }

    /// Reads I/O port `port` from a function's I/O BAR; false if none decodes it.
    pub fn io_read(&mut self, port: u16, data: &mut [u8], now: ClockNs) -> bool {
        self.bar_access(u64::from(port), data.len() as u64, true)
            .map(|(f, bar, off)| f.bar_read(bar, off, data, now))
            .is_some()
    }

    /// Writes I/O port `port` to a function's I/O BAR: what the write asks of the monitor, or None
    /// if no function decodes it.
    pub fn io_write(&mut self, port: u16, data: &[u8], now: ClockNs) -> Option<WriteEffect> {
        self.bar_access(u64::from(port), data.len() as u64, true).map(|(f, bar, off)| f.bar_write(bar, off, data, now))
    }

    fn bar_access(&mut self, addr: u64, len: u64, io: bool) -> Option<(&mut dyn PciFunction, usize, u64)> {
        let (slot, bar, offset) = self.claim(addr, len, io)?;
        self.reach(slot);
        let function = self.slots[slot].as_mut()?.function.as_mut();
        Some((function, bar, offset))
    }

    /// Slot `slot`'s function is about to be reached: ask its level again, and give it its turn
    /// at the next `process`.
    fn reach(&mut self, slot: usize) {
        let bit = 1u32.checked_shl(slot as u32).unwrap_or(0);
        self.stale.set(self.stale.get() | bit);
        self.reached |= bit;
    }

    /// Bit n set: PIC IRQ n is asserted by some function.
    pub fn irq_levels(&self) -> u16 {
        let mut stale = self.stale.replace(0);
        let mut asserting = self.asserting.get();
        while stale != 0 {
            let slot = stale.trailing_zeros() as usize;
            stale &= stale - 1;
            let on = self
                .slots
                .get(slot)
                .and_then(Option::as_ref)
                .is_some_and(|s| s.function.irq_level() && s.function.config().command() & CMD_INTX_DISABLE == 0);
            asserting = if on { asserting | 1 << slot } else { asserting & !(1 << slot) };
        }
        self.asserting.set(asserting);
        let mut levels = 0u16;
        while asserting != 0 {
            let slot = asserting.trailing_zeros() as usize;
            asserting &= asserting - 1;
            if let Some(s) = self.slots.get(slot).and_then(Option::as_ref) {
                levels |= 1 << s.irq;
            }
        }
        levels
    }

    /// Lets the functions reached since the last call do work that needs guest memory (see
    /// [`PciFunction::process`]).
    pub fn process(&mut self, mem: &mut dyn GuestMemory) {
        let mut reached = core::mem::take(&mut self.reached);
        self.stale.set(self.stale.get() | reached);
        while reached != 0 {
            let slot = reached.trailing_zeros() as usize;
            reached &= reached - 1;
            if let Some(s) = self.slots.get_mut(slot).and_then(Option::as_mut) {
                s.function.process(mem);
            }
        }
    }

    /// Does what firmware does before an OS boots: places every BAR of every function, largest
    /// first and naturally aligned, memory BARs in `[mmio_base, mmio_base + mmio_len)` and I/O
    /// BARs in `[io_base, io_base + io_len)`; enables memory and I/O decoding where a function
    /// has such BARs; sets each interrupt line to the slot's IRQ (functions with an interrupt
    /// pin). Fails, changing nothing, if the BARs do not fit.
    pub fn assign_resources(
        &mut self,
        mmio_base: Gpa,
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
        // Both windows as plain numbers: a BAR holds either kind of address.
        let mut mmio_next = mmio_base.0;
        let mut io_next = u64::from(io_base);
        let mmio_end = mmio_base.0.checked_add(mmio_len).ok_or(PciError::WindowFull)?;
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

impl PortDevice for PciHost {
    const BASE: u16 = PORT_BASE;

    /// Reads ports `port..port + data.len()` of 0xCF8-0xCFF.
    fn read_port(&mut self, port: u16, data: &mut [u8], _now: ClockNs) {
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

    /// Writes `data` to ports `port..` of 0xCF8-0xCFF. A reset through 0xCF9 is
    /// [`WriteEffect::Reset`] (and is also kept for [`PciHost::take_reset_request`]).
    fn write_port(&mut self, port: u16, data: &[u8], _now: ClockNs) -> WriteEffect {
        let earlier = core::mem::take(&mut self.reset_requested);
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
        reset_effect(&mut self.reset_requested, earlier)
    }
}

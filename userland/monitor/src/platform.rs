//! The emulated platform (docs/guests.md) behind a port bus and an MMIO bus: builds both from
//! the board's tables ([`crate::board`]), refusing to start the VM when two windows overlap or a
//! PCI function does not fit, dispatches every access through the one [`Device`] interface, acts
//! on what writes ask for ([`WriteEffect`]), and routes the devices' interrupt lines to the
//! interrupt controllers. MMIO that no window claims goes to the PCI host's BAR decoding.
//!
//! Unclaimed ports read as all ones and ignore writes; unclaimed MMIO too; each is logged once.
//!
//! Does not: say which device is where (the board does), or run the vCPU (crate::vcpu).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use keel_addr::Gpa;
use keel_devices::bus::{all_ones, Bus, BusError};
use keel_devices::{Device, WriteEffect};
use keel_rt::io::debug;

use crate::board::{self, Devices, Slot, Space, TOUCH_PIC, TOUCH_PIT};

/// A device on a bus: the board line's name, touch bits and device.
struct Entry {
    name: &'static str,
    touch: u8,
    slot: Slot,
}

pub struct Platform {
    pub name: String,
    /// The devices the run loop reaches by type (console, interrupt controllers, timers).
    pub dev: Devices,
    /// A PCI device was written to: process its queues.
    pub pci_dirty: bool,
    /// The guest accessed the PIT (ports 0x40-0x43, 0x61): its next event must be looked at.
    pub pit_touched: bool,
    /// A device was accessed since the monitor last routed interrupt lines (any claimed port or
    /// MMIO access): a line or controller may have changed. Unclaimed accesses leave it clear,
    /// so an exit that touched nothing skips interrupt routing.
    pub touched: bool,
    /// The clock (ns, as ClockNs) at the exit being handled, which the monitor sets from
    /// VcpuRun's result: the time the guest touched a device, without a ClockNs call per access.
    pub exit_ns: u64,
    /// What an MMIO write asked for that stops the VM (no MMIO device asks yet; the emulator's
    /// MMIO interface returns nothing, so the run loop looks here after an MMIO exit).
    pub mmio_effect: WriteEffect,
    /// The SCI's IRQ (from the ACPI tables' layout).
    sci_irq: u8,
    /// The ISA lines some device drives (bit n: IRQ n): the 8042's, COM1's, the SCI, PCI INTx.
    lines: u16,
    /// The levels `route_lines` last gave the interrupt controllers (bit n: IRQ n).
    routed: u16,
    /// The guest accessed the PIC, ELCR or I/O APIC since `route_lines` last ran.
    pic_touched: bool,
    ports: Bus,
    mmio: Bus,
    /// The bus entries; a bus range's index is a position here.
    entries: Vec<Entry>,
    /// Unclaimed ports and MMIO pages already logged (bounded).
    logged: Vec<u64>,
    logged_overflow: bool,
}

/// The key an unclaimed MMIO access is logged once under: its page, with bit 63 set so that it
/// never equals a port's key.
fn mmio_log_key(gpa: Gpa) -> u64 {
    gpa.0 & !0xfff | (1 << 63)
}

/// Where each PCI slot's INTx goes, for the ACPI `_PRT`: the board's functions and the disk
/// slots (present or not: an empty slot's entry is never used).
pub fn pci_slot_irqs() -> Vec<(u8, u8)> {
    let fixed = board::PCI.iter().map(|p| (p.slot as u8, p.irq));
    let disks = (crate::disks::FIRST_DISK_SLOT..=crate::disks::CDROM_SLOT).map(|s| (s as u8, crate::disks::DISK_IRQ));
    fixed.chain(disks).collect()
}

/// The PCI functions' IRQs (bit n: IRQ n), for the MADT's level-triggered lines and routing.
pub fn pci_irqs() -> u16 {
    let fixed = board::PCI.iter().filter(|p| p.irq < 16).fold(0, |mask, p| mask | 1 << p.irq);
    // The disks' line, whether or not this VM has disks (an idle level line costs nothing).
    fixed | 1 << crate::disks::DISK_IRQ
}

impl Platform {
    /// The platform of the board's tables. An overlap of two windows, a bad PCI slot or IRQ, or
    /// BARs that do not fit are errors: the VM does not start, and the reason says which devices.
    pub fn new(name: String, disks: Vec<crate::disks::PciDisk>) -> Result<Platform, String> {
        let now = keel_rt::sys::clock_ns();
        // ClockRealtime is the kernel's boot epoch plus ClockNs: their difference is the epoch.
        let host_epoch = keel_rt::sys::clock_realtime_ns().saturating_sub(now);
        let mut dev = Devices::new(now);
        for p in board::PCI {
            dev.pci.insert(p.slot, p.irq, (p.new)()).map_err(|e| format!("PCI {} in slot {}: {e}", p.name, p.slot))?;
        }
        for (name, slot, irq, function) in disks {
            dev.pci.insert(slot, irq, function).map_err(|e| format!("PCI {name} in slot {slot}: {e}"))?;
        }
        let (mmio_base, mmio_len) = board::PCI_MMIO_WINDOW;
        let (io_base, io_len) = board::PCI_IO_WINDOW;
        dev.pci.assign_resources(mmio_base, mmio_len, io_base, io_len).map_err(|e| format!("PCI: {e}"))?;
        let mut ports = Bus::new();
        let mut mmio = Bus::new();
        let mut entries: Vec<Entry> = Vec::new();
        for line in board::lines(host_epoch) {
            let index = entries.len();
            let bus = match line.space {
                Space::Port => &mut ports,
                Space::Mmio => &mut mmio,
            };
            for &(base, len, offset) in line.windows {
                bus.insert_at(base, len, index, offset).map_err(|e| {
                    let what = match e {
                        BusError::Overlap { index: other } => {
                            let other = entries.get(other).map_or(line.name, |e| e.name);
                            format!("overlaps {other}")
                        }
                        e => format!("{e}"),
                    };
                    format!("platform: {} at {base:#x} (length {len:#x}) {what}", line.name)
                })?;
            }
            entries.push(Entry { name: line.name, touch: line.touch, slot: line.slot });
        }
        // The windows where the PCI host places BARs must not hide under a fixed device (which
        // would win every access to a BAR there).
        let pci_windows = [(&mmio, mmio_base.0, mmio_len), (&ports, u64::from(io_base), u64::from(io_len))];
        for (bus, base, len) in pci_windows {
            let last = base.saturating_add(len.saturating_sub(1));
            if let Some((at, _, index)) = bus.iter().find(|&(b, l, _)| b <= last && l >= base) {
                let other = entries.get(index).map_or("?", |e| e.name);
                return Err(format!("platform: {other} at {at:#x} overlaps the PCI window at {base:#x}"));
            }
        }
        let sci_irq = keel_acpitables::Layout::default().sci_irq;
        let sci = if sci_irq < 16 { 1u16 << sci_irq } else { 0 };
        Ok(Platform {
            name,
            dev,
            pci_dirty: false,
            pit_touched: false,
            touched: true,
            exit_ns: now,
            mmio_effect: WriteEffect::None,
            sci_irq,
            lines: 1 << 1 | 1 << 4 | 1 << 12 | sci | pci_irqs(),
            routed: 0,
            pic_touched: true,
            ports,
            mmio,
            entries,
            logged: Vec::new(),
            logged_overflow: false,
        })
    }

    /// Log `what` the first time `key` is seen. Takes format arguments, not a String: the text
    /// is only formatted when logged (an unclaimed port hammered in a loop costs no formatting).
    /// Callers test `logged` first themselves (`self.logged.contains(&key)`), so that an access
    /// logged already does not even build the message's arguments.
    fn log_once(&mut self, key: u64, what: core::fmt::Arguments) {
        if self.logged.contains(&key) {
            return;
        }
        if self.logged.len() >= 64 {
            if !self.logged_overflow {
                self.logged_overflow = true;
                debug(format_args!("vm {}: more unclaimed accesses; no longer logging them", self.name));
            }
            return;
        }
        self.logged.push(key);
        debug(format_args!("vm {}: {what} (logged once)", self.name));
    }

    /// The device on `space`'s bus that claims the whole access, with its offset; notes what the
    /// access implies for interrupt routing.
    fn claim(&mut self, space: Space, addr: u64, len: usize) -> Option<(&mut dyn Device, u64)> {
        let bus = if space == Space::Port { &self.ports } else { &self.mmio };
        let (index, offset) = bus.lookup(addr, len as u64)?;
        let entry = self.entries.get_mut(index)?;
        self.touched = true;
        self.pic_touched |= entry.touch & TOUCH_PIC != 0;
        self.pit_touched |= entry.touch & TOUCH_PIT != 0;
        let device: &mut dyn Device = match &mut entry.slot {
            Slot::Owned(device) => device.as_mut(),
            Slot::Shared(project) => project(&mut self.dev),
        };
        Some((device, offset))
    }

    /// What the platform does itself about a write's effect; the rest is the run loop's.
    fn effect(&mut self, effect: WriteEffect) -> WriteEffect {
        match effect {
            // The local APIC's EOI broadcast reaches the I/O APIC (SDM Vol 3A 12.8.5).
            WriteEffect::LevelEoi(vector) => {
                self.dev.irq.ioapic.eoi(vector);
                WriteEffect::None
            }
            // An NMI a guest sends itself is not delivered (Keel injects no NMIs yet).
            WriteEffect::Nmi => {
                self.log_once(1 << 62, format_args!("self-NMI through the local APIC ignored"));
                WriteEffect::None
            }
            effect => effect,
        }
    }

    pub fn port_read(&mut self, port: u16, data: &mut [u8]) {
        let now = self.exit_ns;
        match self.claim(Space::Port, u64::from(port), data.len()) {
            Some((device, offset)) => device.read(offset, data, now),
            None => {
                if self.dev.pci.io_read(port, data, now) {
                    // A function's I/O BAR (a transitional virtio device's legacy registers).
                    self.touched = true;
                    return;
                }
                all_ones(data);
                if !self.logged.contains(&u64::from(port)) {
                    self.log_once(u64::from(port), format_args!("read from unclaimed port {port:#x} gives all ones"));
                }
            }
        }
    }

    /// A port write; what it asks of the run loop (stop, reset, power off) or `None`.
    pub fn port_write(&mut self, port: u16, data: &[u8]) -> WriteEffect {
        let now = self.exit_ns;
        match self.claim(Space::Port, u64::from(port), data.len()) {
            Some((device, offset)) => {
                let effect = device.write(offset, data, now);
                self.effect(effect)
            }
            None => {
                if let Some(effect) = self.dev.pci.io_write(port, data, now) {
                    // A function's I/O BAR (a transitional virtio device's legacy registers).
                    self.touched = true;
                    self.pci_dirty = true;
                    return self.effect(effect);
                }
                if !self.logged.contains(&u64::from(port)) {
                    self.log_once(u64::from(port), format_args!("write to unclaimed port {port:#x} ignored"));
                }
                WriteEffect::None
            }
        }
    }

    pub fn mmio_read(&mut self, gpa: Gpa, data: &mut [u8]) {
        let now = self.exit_ns;
        if let Some((device, offset)) = self.claim(Space::Mmio, gpa.0, data.len()) {
            device.read(offset, data, now);
        } else if self.dev.pci.mmio_read(gpa, data, now) {
            self.touched = true;
        } else {
            // Nothing claims it: no device changed.
            all_ones(data);
            if !self.logged.contains(&mmio_log_key(gpa)) {
                self.log_once(mmio_log_key(gpa), format_args!("read from unclaimed MMIO {gpa:#x} gives all ones"));
            }
        }
    }

    pub fn mmio_write(&mut self, gpa: Gpa, data: &[u8]) {
        let now = self.exit_ns;
        let effect = if let Some((device, offset)) = self.claim(Space::Mmio, gpa.0, data.len()) {
            device.write(offset, data, now)
        } else if let Some(effect) = self.dev.pci.mmio_write(gpa, data, now) {
            self.touched = true;
            self.pci_dirty = true;
            effect
        } else {
            if !self.logged.contains(&mmio_log_key(gpa)) {
                self.log_once(mmio_log_key(gpa), format_args!("write to unclaimed MMIO {gpa:#x} dropped"))
            }
            return;
        };
        let effect = self.effect(effect);
        if effect != WriteEffect::None {
            self.mmio_effect = effect;
        }
    }

    /// Device interrupt lines as the PIC and I/O APIC see them: the 8042 (1, 12), COM1 (4), PCI
    /// INTx (level), the SCI. Only lines whose level changed are passed on (each `set_irq` costs
    /// a priority resolution), unless the guest accessed the PIC or I/O APIC since: then all of
    /// them, as an unchanged level only matters to a controller the guest reprogrammed.
    pub fn route_lines(&mut self, now_ns: u64) {
        let mut levels = self.dev.pci.irq_levels();
        if self.sci_irq < 16 && self.dev.pm.sci_level(now_ns) {
            levels |= 1 << self.sci_irq;
        }
        levels |= u16::from(self.dev.kbc.irq1_level()) << 1
            | u16::from(self.dev.uart.irq_level()) << 4
            | u16::from(self.dev.kbc.irq12_level()) << 12;
        levels &= self.lines;
        let changed = if core::mem::take(&mut self.pic_touched) { self.lines } else { levels ^ self.routed };
        let mut pending = changed;
        while pending != 0 {
            let irq = pending.trailing_zeros() as u8;
            pending &= pending - 1;
            self.dev.irq.set_isa_irq(irq, levels & (1 << irq) != 0);
        }
        self.routed = levels;
    }
}

/// A seed for the guest's virtio-rng: the host CPU's RDRAND where it has one, else the TSC and
/// the clock (weak: said in docs/guests.md).
pub fn seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    let has_rdrand = core::arch::x86_64::__cpuid(1).ecx & (1 << 30) != 0;
    for chunk in seed.chunks_mut(8) {
        let mut v: u64 = 0;
        let mut ok = 0u8;
        if has_rdrand {
            // SAFETY: RDRAND exists (CPUID checked); it only writes the output register and CF.
            unsafe {
                core::arch::asm!("rdrand {v}", "setc {ok}", v = out(reg) v, ok = out(reg_byte) ok, options(nomem, nostack))
            };
        }
        if ok == 0 {
            // SAFETY: RDTSC only reads the time-stamp counter.
            v = unsafe { core::arch::x86_64::_rdtsc() } ^ keel_rt::sys::clock_ns().rotate_left(17);
        }
        chunk.copy_from_slice(&v.to_le_bytes());
    }
    seed
}

impl keel_x86emu::Mmio for Platform {
    fn read(&mut self, gpa: Gpa, data: &mut [u8]) {
        self.mmio_read(gpa, data);
    }
    fn write(&mut self, gpa: Gpa, data: &[u8]) {
        self.mmio_write(gpa, data);
    }
}

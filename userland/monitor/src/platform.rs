//! The emulated platform (docs/guests.md): COM1, the interrupt controllers (PIC pair with its
//! ELCR, I/O APIC, local APIC: keel-devices' `irqchip`), the PIT, the RTC, the 8042 (reset), port
//! 0x92, the ACPI PM block (power off), a PCI host bridge with a virtio-rng device, the debug-exit
//! port and the test MMIO register, behind a port bus and an MMIO bus.
//! Unclaimed ports read as all ones and ignore writes; unclaimed MMIO too; each is logged once.

use alloc::string::String;
use alloc::vec::Vec;

use keel_devices::acpi_pm::AcpiPm;
use keel_devices::bus::{all_ones, Bus};
use keel_devices::i8042::I8042;
use keel_devices::i8254::Pit;
use keel_devices::irqchip::IrqChips;
use keel_devices::mc146818::Rtc;
use keel_devices::ns8250::Uart;
use keel_devices::pci::PciHost;
use keel_devices::port92::Port92;
use keel_devices::testdev::TestDevice;
use keel_rt::io::debug;

const PORT_UART: usize = 0;
const PORT_PIC: usize = 1;
const PORT_PIT: usize = 2;
const PORT_61: usize = 3;
const PORT_EXIT: usize = 4;
const PORT_RTC: usize = 5;
const PORT_8042: usize = 6;
const PORT_92: usize = 7;
const PORT_PCI: usize = 8;
const PORT_PM: usize = 9;
const PORT_ELCR: usize = 10;

/// Where firmware would put PCI memory BARs; the guest's RAM stays below (docs/guests.md).
pub const PCI_MMIO_WINDOW: (u64, u64) = (0xe000_0000, 0x1000_0000);
/// The virtio-rng device's slot and its INTx line on the PIC.
pub const RNG_SLOT: usize = 1;
pub const RNG_IRQ: u8 = 11;
const MMIO_TEST: usize = 0;
const MMIO_LAPIC: usize = 1;
const MMIO_IOAPIC: usize = 2;

pub const TEST_MMIO_BASE: u64 = 0xfeb0_0000;

/// What a port write asks of the monitor beyond device state.
pub enum PortEffect {
    None,
    /// The guest wrote to the debug-exit port: stop with this status.
    Exit(u8),
    /// The guest asked for a reset (keyboard controller pulse, port 0xcf9, port 0x92 bit 0).
    Reset,
    /// The guest entered S5 through the ACPI PM control register (`poweroff`).
    PowerOff,
}

pub struct Platform {
    pub name: String,
    pub uart: Uart,
    /// PIC pair, I/O APIC and local APIC.
    pub irq: IrqChips,
    pub pit: Pit,
    testdev: TestDevice,
    pub rtc: Rtc,
    pub kbc: I8042,
    port92: Port92,
    pub pci: PciHost,
    pub pm: AcpiPm,
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
    /// The SCI's IRQ (from the ACPI tables' layout).
    sci_irq: u8,
    /// The levels `route_lines` last gave the interrupt controllers (bit n: IRQ n).
    routed: u16,
    /// The guest accessed the PIC, ELCR or I/O APIC since `route_lines` last ran.
    pic_touched: bool,
    ports: Bus,
    mmio: Bus,
    /// Unclaimed ports and MMIO pages already logged (bounded).
    logged: Vec<u64>,
    logged_overflow: bool,
}

impl Platform {
    pub fn new(name: String) -> Platform {
        let mut ports = Bus::default();
        let mut mmio = Bus::default();
        // These fixed ranges cannot overlap; a failure would be a programming error caught in tests.
        let _ = ports.insert(0x3f8, 8, PORT_UART);
        let _ = ports.insert(0x20, 2, PORT_PIC);
        let _ = ports.insert(0xa0, 2, PORT_PIC);
        let _ = ports.insert(0x40, 4, PORT_PIT);
        let _ = ports.insert(0x61, 1, PORT_61);
        let _ = ports.insert(0xf4, 1, PORT_EXIT);
        let _ = ports.insert(0x70, 2, PORT_RTC);
        let _ = ports.insert(0x60, 1, PORT_8042);
        let _ = ports.insert(0x64, 1, PORT_8042);
        let _ = ports.insert(0x92, 1, PORT_92);
        let _ = ports.insert(0xcf8, 8, PORT_PCI);
        let _ = ports.insert(keel_devices::acpi_pm::DEFAULT_BASE as u64, 12, PORT_PM);
        let _ = ports.insert(u64::from(keel_devices::i8259::ELCR_MASTER), 2, PORT_ELCR);
        let _ = mmio.insert(TEST_MMIO_BASE, 0x1000, MMIO_TEST);
        let _ = mmio.insert(keel_devices::lapic::LAPIC_BASE, keel_devices::lapic::LAPIC_SIZE, MMIO_LAPIC);
        let _ = mmio.insert(keel_devices::ioapic::IOAPIC_BASE, keel_devices::ioapic::IOAPIC_SIZE, MMIO_IOAPIC);
        let mut pci = PciHost::new();
        let rng = keel_virtio::VirtioPci::new(keel_virtio::rng::VirtioRng::new(
            keel_virtio::chacha20::ChaCha20Rng::from_seed(seed()),
        ));
        if pci.insert(RNG_SLOT, RNG_IRQ, alloc::boxed::Box::new(rng)).is_err()
            || pci.assign_resources(PCI_MMIO_WINDOW.0, PCI_MMIO_WINDOW.1, 0xc000, 0x1000).is_err()
        {
            debug(format_args!("vm {name}: cannot set up the PCI devices"));
        }
        let now = keel_rt::sys::clock_ns();
        Platform {
            name,
            uart: Uart::new(),
            irq: IrqChips::new(),
            pit: Pit::new(now),
            testdev: TestDevice::new(),
            rtc: Rtc::new(),
            kbc: I8042::new(),
            port92: Port92::new(),
            pci,
            pm: AcpiPm::new(now),
            pci_dirty: false,
            pit_touched: false,
            touched: true,
            exit_ns: now,
            sci_irq: keel_acpitables::Layout::default().sci_irq,
            routed: 0,
            pic_touched: true,
            ports,
            mmio,
            logged: Vec::new(),
            logged_overflow: false,
        }
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

    pub fn port_read(&mut self, port: u16, data: &mut [u8]) {
        let device = self.ports.lookup(u64::from(port), data.len() as u64);
        self.touched |= device.is_some();
        match device {
            Some((PORT_UART, off)) => self.uart.read(off, data),
            Some((PORT_PIC, _)) => {
                self.pic_touched = true;
                self.irq.pic.read(port, data)
            }
            Some((PORT_PIT, _)) => {
                self.pit_touched = true;
                self.pit.read(port, self.exit_ns, data)
            }
            Some((PORT_61, _)) => {
                self.pit_touched = true;
                all_ones(data);
                data[0] = self.pit.read_port61(self.exit_ns);
            }
            Some((PORT_RTC, _)) => self.rtc.read(port, keel_rt::sys::clock_realtime_ns(), data),
            Some((PORT_8042, _)) => self.kbc.read(port, data),
            Some((PORT_92, _)) => self.port92.read(data),
            Some((PORT_PCI, _)) => self.pci.read(port, data),
            Some((PORT_PM, off)) => self.pm.read(off, self.exit_ns, data),
            Some((PORT_ELCR, _)) => {
                self.pic_touched = true;
                self.irq.pic.read(port, data)
            }
            _ => {
                all_ones(data);
                if !self.logged.contains(&u64::from(port)) {
                    self.log_once(u64::from(port), format_args!("read from unclaimed port {port:#x} gives all ones"));
                }
            }
        }
    }

    pub fn port_write(&mut self, port: u16, data: &[u8]) -> PortEffect {
        let device = self.ports.lookup(u64::from(port), data.len() as u64);
        let Some(device) = device else {
            if !self.logged.contains(&u64::from(port)) {
                self.log_once(u64::from(port), format_args!("write to unclaimed port {port:#x} ignored"));
            }
            return PortEffect::None;
        };
        self.touched = true;
        match Some(device) {
            Some((PORT_UART, off)) => self.uart.write(off, data),
            Some((PORT_PIC, _)) => {
                self.pic_touched = true;
                self.irq.pic.write(port, data)
            }
            Some((PORT_PIT, _)) => {
                self.pit_touched = true;
                self.pit.write(port, self.exit_ns, data)
            }
            Some((PORT_61, _)) => {
                self.pit_touched = true;
                self.pit.write_port61(self.exit_ns, data[0])
            }
            Some((PORT_EXIT, _)) => return PortEffect::Exit(data[0]),
            Some((PORT_RTC, _)) => self.rtc.write(port, keel_rt::sys::clock_realtime_ns(), data),
            Some((PORT_8042, _)) => self.kbc.write(port, data),
            Some((PORT_92, _)) => self.port92.write(data),
            Some((PORT_PCI, _)) => self.pci.write(port, data),
            Some((PORT_PM, off)) => self.pm.write(off, self.exit_ns, data),
            Some((PORT_ELCR, _)) => {
                self.pic_touched = true;
                self.irq.pic.write(port, data)
            }
            _ => {}
        }
        // The PC's reset paths, as Linux's reboot uses them: the 8042's pulse-reset command, the
        // chipset reset control register (0xcf9), fast reset through system control port A.
        // See: Linux arch/x86/kernel/reboot.c (BOOT_KBD, BOOT_CF9_FORCE).
        let reset = self.kbc.take_reset_request() | self.port92.take_reset_request() | self.pci.take_reset_request();
        if reset {
            return PortEffect::Reset;
        }
        if self.pm.take_poweroff_request() {
            return PortEffect::PowerOff;
        }
        PortEffect::None
    }

    pub fn mmio_read(&mut self, gpa: u64, data: &mut [u8]) {
        let was_touched = core::mem::replace(&mut self.touched, true);
        match self.mmio.lookup(gpa, data.len() as u64) {
            Some((MMIO_TEST, off)) => self.testdev.read(off, data),
            Some((MMIO_LAPIC, off)) => self.irq.lapic_read(off, self.exit_ns, data),
            Some((MMIO_IOAPIC, off)) => self.irq.ioapic.read(off, data),
            _ if self.pci.mmio_read(gpa, data) => {}
            _ => {
                // Nothing claims it: no device changed.
                self.touched = was_touched;
                all_ones(data);
                if !self.logged.contains(&(gpa & !0xfff | (1 << 63))) {
                    self.log_once(
                        gpa & !0xfff | (1 << 63),
                        format_args!("read from unclaimed MMIO {gpa:#x} gives all ones"),
                    );
                }
            }
        }
    }

    pub fn mmio_write(&mut self, gpa: u64, data: &[u8]) {
        let was_touched = core::mem::replace(&mut self.touched, true);
        match self.mmio.lookup(gpa, data.len() as u64) {
            Some((MMIO_TEST, off)) => self.testdev.write(off, data),
            Some((MMIO_LAPIC, off)) => {
                // An NMI a guest sends itself is not delivered (Keel injects no NMIs yet).
                if self.irq.lapic_write(off, self.exit_ns, data) {
                    self.log_once(1 << 62, format_args!("self-NMI through the local APIC ignored"));
                }
            }
            Some((MMIO_IOAPIC, off)) => {
                self.pic_touched = true;
                self.irq.ioapic.write(off, data)
            }
            _ if self.pci.mmio_write(gpa, data) => self.pci_dirty = true,
            _ => {
                self.touched = was_touched;
                if !self.logged.contains(&(gpa & !0xfff | (1 << 63))) {
                    self.log_once(gpa & !0xfff | (1 << 63), format_args!("write to unclaimed MMIO {gpa:#x} dropped"))
                }
            }
        }
    }

    /// Device interrupt lines as the PIC and I/O APIC see them: the 8042 (1, 12), COM1 (4), PCI
    /// INTx (level), the SCI. Only lines whose level changed are passed on (each `set_irq` costs
    /// a priority resolution), unless the guest accessed the PIC or I/O APIC since: then all of
    /// them, as an unchanged level only matters to a controller the guest reprogrammed.
    pub fn route_lines(&mut self, now_ns: u64) {
        let pci = self.pci.irq_levels();
        let mut levels = 0u16;
        for irq in [5u8, 9, 10, 11] {
            let sci = irq == self.sci_irq && self.pm.sci_level(now_ns);
            if pci & (1 << irq) != 0 || sci {
                levels |= 1 << irq;
            }
        }
        levels |= u16::from(self.kbc.irq1_level()) << 1
            | u16::from(self.uart.irq_level()) << 4
            | u16::from(self.kbc.irq12_level()) << 12;
        let changed = if core::mem::take(&mut self.pic_touched) { u16::MAX } else { levels ^ self.routed };
        for irq in [1u8, 4, 5, 9, 10, 11, 12] {
            if changed & (1 << irq) != 0 {
                self.irq.set_isa_irq(irq, levels & (1 << irq) != 0);
            }
        }
        self.routed = levels;
    }
}

/// A seed for the guest's virtio-rng: the host CPU's RDRAND where it has one, else the TSC and
/// the clock (weak: said in docs/guests.md).
fn seed() -> [u8; 32] {
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
    fn read(&mut self, gpa: u64, data: &mut [u8]) {
        self.mmio_read(gpa, data);
    }
    fn write(&mut self, gpa: u64, data: &[u8]) {
        self.mmio_write(gpa, data);
    }
}

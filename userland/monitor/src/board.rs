//! The board: which device sits where on the VM's platform (docs/guests.md). Two tables, the one
//! place a device is added: [`lines`] for port and MMIO devices (a name, the address windows with
//! the device offset of each, what an access implies for interrupt routing, and the device) and
//! [`PCI`] for PCI functions (a slot, the PIC IRQ its INTx is wired to, and a constructor).
//! Adding a PCI device is its model plus one [`PCI`] line; adding a port or MMIO device that only
//! the bus reaches is its model plus one [`lines`] line.
//!
//! Devices the run loop also reaches by type (the console UART, the interrupt controllers, the
//! PIT, the 8042's and the PM block's interrupt lines, the PCI host's queues) live in
//! [`Devices`]; their lines name them by a projection. Every other device is owned by its line.
//!
//! Does not: dispatch accesses, check for overlaps or route interrupts ([`crate::platform`] does,
//! and refuses to start the VM when two windows overlap).

use alloc::boxed::Box;
use alloc::vec::Vec;

use keel_addr::Gpa;
use keel_devices::acpi_pm::AcpiPm;
use keel_devices::debug_exit::DebugExit;
use keel_devices::i8042::I8042;
use keel_devices::i8254::Pit;
use keel_devices::ioapic::{IOAPIC_BASE, IOAPIC_SIZE};
use keel_devices::irqchip::IrqChips;
use keel_devices::lapic::{LAPIC_BASE, LAPIC_SIZE};
use keel_devices::mc146818::Rtc;
use keel_devices::ns8250::Uart;
use keel_devices::pci::{PciFunction, PciHost};
use keel_devices::port92::Port92;
use keel_devices::testdev::TestDevice;
use keel_devices::{ClockNs, Device};
use keel_virtio::{ChaCha20Rng, VirtioPci, VirtioRng};
use Space::{Mmio, Port};

use crate::platform::seed;

/// Where firmware would put PCI memory BARs: the start of the 32-bit MMIO hole, where RAM below
/// 4 GiB ends (keel-guestboot's layout; docs/guests.md).
pub const PCI_MMIO_WINDOW: (Gpa, u64) = (keel_guestboot::LOW_RAM_END, 0x1000_0000);
/// Where PCI I/O BARs go: 0xC000-0xCEFF, below the host bridge's 0xCF8 (the platform refuses a
/// window that a fixed device's ports fall in): the transitional virtio devices' legacy BARs.
pub const PCI_IO_WINDOW: (u16, u16) = (0xc000, 0x0f00);

/// The ACPI PM block's ports (where the FADT says) and the PIC's ELCR pair.
const PM_BASE: u64 = keel_devices::acpi_pm::DEFAULT_BASE as u64;
const ELCR: u64 = keel_devices::i8259::ELCR_MASTER as u64;

/// The test MMIO register (docs/guests.md).
pub const TEST_MMIO_BASE: u64 = 0xfeb0_0000;

/// The PCI functions: name, slot (1-31), the PIC IRQ its INTx is wired to (level-triggered: the
/// MADT says so), and how to make it.
#[rustfmt::skip]
pub const PCI: &[PciLine] = &[
    PciLine::new("virtio-rng", 1, 11, || Box::new(VirtioPci::new(VirtioRng::new(ChaCha20Rng::from_seed(seed()))))),
];

/// The port and MMIO devices: name, bus, windows as (base, length, device offset of the base),
/// what an access implies for interrupt routing, and the device. `host_epoch_ns` is the host's
/// wall-clock time at clock 0 (for the RTC).
#[rustfmt::skip]
pub fn lines(host_epoch_ns: u64) -> Vec<Line> {
    alloc::vec![
        Line::new("COM1",          Port, &[(0x3f8, 8, 0)],                                  0,         shared(|d| &mut d.uart)),
        Line::new("PIC",           Port, &[(0x20, 2, 0), (0xa0, 2, 0x80), (ELCR, 2, 0x4b0)],  TOUCH_PIC, shared(|d| &mut d.irq.pic)),
        Line::new("PIT",           Port, &[(0x40, 4, 0), (0x61, 1, 0x21)],                  TOUCH_PIT, shared(|d| &mut d.pit)),
        Line::new("debug exit",    Port, &[(0xf4, 1, 0)],                                   0,         owned(DebugExit)),
        Line::new("RTC",           Port, &[(0x70, 2, 0)],                                   0,         owned(Rtc::with_host_epoch(host_epoch_ns))),
        Line::new("8042",          Port, &[(0x60, 1, 0), (0x64, 1, 4)],                     0,         shared(|d| &mut d.kbc)),
        Line::new("port 0x92",     Port, &[(0x92, 1, 0)],                                   0,         owned(Port92::new())),
        Line::new("PCI host",      Port, &[(0xcf8, 8, 0)],                                  0,         shared(|d| &mut d.pci)),
        Line::new("ACPI PM",       Port, &[(PM_BASE, 12, 0)],                               0,         shared(|d| &mut d.pm)),
        Line::new("test register", Mmio, &[(TEST_MMIO_BASE, 0x1000, 0)],                    0,         owned(TestDevice::new())),
        Line::new("local APIC",    Mmio, &[(LAPIC_BASE, LAPIC_SIZE, 0)],                    0,         shared(|d| &mut d.irq.lapic)),
        Line::new("I/O APIC",      Mmio, &[(IOAPIC_BASE, IOAPIC_SIZE, 0)],                  TOUCH_PIC, shared(|d| &mut d.irq.ioapic)),
    ]
}

/// The devices the run loop reaches by type as well as through the bus.
pub struct Devices {
    pub uart: Uart,
    /// PIC pair, I/O APIC and local APIC.
    pub irq: IrqChips,
    pub pit: Pit,
    pub kbc: I8042,
    pub pci: PciHost,
    pub pm: AcpiPm,
}

impl Devices {
    /// The devices at power-on, timers starting at `now`; the PCI host is empty.
    pub fn new(now: ClockNs) -> Devices {
        Devices {
            uart: Uart::new(),
            irq: IrqChips::new(),
            pit: Pit::new(now),
            kbc: I8042::new(),
            pci: PciHost::new(),
            pm: AcpiPm::new(now),
        }
    }
}

/// The bus a line's windows are on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Space {
    Port,
    Mmio,
}

/// An access (read or write) to the device reprograms an interrupt controller: every line is
/// routed again, not only those whose level changed.
pub const TOUCH_PIC: u8 = 1 << 0;
/// An access to the PIT: its next event must be looked at.
pub const TOUCH_PIT: u8 = 1 << 1;

/// Where a line's device is.
pub enum Slot {
    /// Owned by the line: only the bus reaches it.
    Owned(Box<dyn Device>),
    /// One of [`Devices`].
    Shared(fn(&mut Devices) -> &mut dyn Device),
}

fn owned(device: impl Device + 'static) -> Slot {
    Slot::Owned(Box::new(device))
}

fn shared(project: fn(&mut Devices) -> &mut dyn Device) -> Slot {
    Slot::Shared(project)
}

/// One port or MMIO device and where it decodes.
pub struct Line {
    pub name: &'static str,
    pub space: Space,
    /// (base, length, device offset of base); a device with one window has offset 0.
    pub windows: &'static [(u64, u64, u64)],
    /// `TOUCH_*` bits.
    pub touch: u8,
    pub slot: Slot,
}

impl Line {
    fn new(name: &'static str, space: Space, windows: &'static [(u64, u64, u64)], touch: u8, slot: Slot) -> Line {
        Line { name, space, windows, touch, slot }
    }
}

/// One PCI function.
pub struct PciLine {
    pub name: &'static str,
    pub slot: usize,
    pub irq: u8,
    pub new: fn() -> Box<dyn PciFunction>,
}

impl PciLine {
    const fn new(name: &'static str, slot: usize, irq: u8, new: fn() -> Box<dyn PciFunction>) -> PciLine {
        PciLine { name, slot, irq, new }
    }
}

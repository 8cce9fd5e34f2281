//! Device resources for ring-3 drivers (the storage and network services): I/O port ranges,
//! opened in the TSS I/O permission bitmap while their process runs; interrupt lines, an I/O
//! APIC input or an MSI vector, delivered as a notification bit; and the checks for device and
//! DMA memory, which are `SharedMemory` objects (objects.rs) mapped by `ShmMap`.
//!
//! The kernel holds no driver logic: it never reads a device register, and a driver learns
//! nothing here it could not from its own hardware handle. What it does not do: interrupt
//! remapping or an IOMMU (a driver that programs DMA can reach all memory: docs/security.md),
//! INTx routing through ACPI's _PRT (the driver names the GSI), or sharing one GSI between two
//! drivers. See: SDM Vol 3A 19.5.2 (I/O permission bit map), 12.11 (MSI), 82093AA I/O APIC 3.2.4.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use spin::Mutex;
use x86_64::instructions::interrupts::without_interrupts;

use keel_abi::{Error, IrqSource};

use crate::arch::x86_64::{apic, ioapic};
use crate::task::notify::Notification;
use crate::task::process::Process;

/// Vectors for drivers' interrupts: 0x32..0x52 (above the timer and the serial port).
pub const FIRST_DEVICE_VECTOR: u8 = 0x32;
pub const DEVICE_VECTORS: usize = 32;

/// Bytes of the I/O permission bitmap: one bit per port, 0 = allowed.
pub const IO_BITMAP_BYTES: usize = 8192;

/// A range of I/O ports a handle names.
#[derive(Clone, Copy)]
pub struct IoPorts {
    pub base: u16,
    pub count: u16,
}

/// Give every port enable a new number, so a CPU knows whether its TSS holds a process's
/// current bitmap (percpu::load_io_ports) without comparing 8 KiB.
static IO_GENERATION: AtomicU64 = AtomicU64::new(1);

/// A process's opened ports, as the TSS wants them, and the generation of that bitmap.
pub struct IoBitmap {
    pub bits: Box<[u8]>,
    pub generation: u64,
}

/// Open `ports` for `process` (it is the current process: the change applies at once).
pub fn enable_ports(process: &Process, ports: IoPorts) {
    without_interrupts(|| {
        let mut slot = process.io_ports.lock();
        let bitmap = slot.get_or_insert_with(|| IoBitmap { bits: vec![0xff; IO_BITMAP_BYTES].into(), generation: 0 });
        for port in u32::from(ports.base)..u32::from(ports.base) + u32::from(ports.count) {
            bitmap.bits[port as usize / 8] &= !(1 << (port % 8));
        }
        bitmap.generation = IO_GENERATION.fetch_add(1, Ordering::Relaxed);
        process.has_io_ports.store(true, Ordering::Relaxed);
        crate::task::percpu::load_io_ports(Some(&slot));
    });
}

/// Where a line's interrupt enters an I/O APIC, for masking it.
#[derive(Clone, Copy)]
struct Pin {
    ioapic: u64,
    gsi_base: u32,
    gsi: u32,
    flags: u16,
    level: bool,
}

struct Route {
    notify: Arc<Notification>,
    bits: u64,
    pin: Option<Pin>,
}

static ROUTES: Mutex<[Option<Route>; DEVICE_VECTORS]> = Mutex::new([const { None }; DEVICE_VECTORS]);

/// The GSI the kernel itself routes (COM1's), which no driver may take.
static KERNEL_GSI: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(u32::MAX);

/// Record the GSI the kernel routes for itself.
pub fn reserve_gsi(gsi: u32) {
    KERNEL_GSI.store(gsi, Ordering::Relaxed);
}

/// The I/O APICs (address, first GSI, number of inputs), recorded at boot.
static IO_APICS: Mutex<Vec<(u64, u32, u32)>> = Mutex::new(Vec::new());

/// Record the interrupt controllers: their registers are never a driver's device memory.
pub fn init(platform: &keel_acpi::Platform, local_apic_phys: u64) {
    crate::mm::reserve_interrupt_controller(local_apic_phys);
    let mut io_apics = IO_APICS.lock();
    for io in &platform.io_apics {
        let address = u64::from(io.address);
        crate::mm::reserve_interrupt_controller(address);
        io_apics.push((address, io.gsi_base, ioapic::inputs(address)));
    }
}

/// A driver's interrupt: while the handle lives, the vector signals its notification bit.
pub struct IrqLine {
    vector: u8,
}

impl IrqLine {
    /// Route `source` to a free vector that signals `bits` on `notify`. Returns the line and,
    /// for MSI, the message (address << 32 | data) the driver programs into its device.
    pub fn create(source: IrqSource, notify: Arc<Notification>, bits: u64) -> Result<(IrqLine, u64), Error> {
        let pin = match source {
            IrqSource::Msi => None,
            IrqSource::Gsi { gsi, level, active_low } => {
                if gsi == KERNEL_GSI.load(Ordering::Relaxed) {
                    return Err(Error::Busy);
                }
                let io_apics = IO_APICS.lock();
                let &(ioapic, gsi_base, _) = io_apics
                    .iter()
                    .find(|(_, base, inputs)| gsi >= *base && gsi < base + inputs)
                    .ok_or(Error::NotFound)?;
                // MPS INTI flags, as the MADT's overrides give them: 11b = active low, 11b << 2 = level.
                let flags = if active_low { 0b11 } else { 0b01 } | if level { 0b11 << 2 } else { 0b01 << 2 };
                Some(Pin { ioapic, gsi_base, gsi, flags, level })
            }
        };
        let vector = without_interrupts(|| {
            let mut routes = ROUTES.lock();
            if let Some(p) = pin {
                // One driver per input: a second would mask the first's line.
                let taken =
                    routes.iter().flatten().any(|r| r.pin.is_some_and(|q| q.ioapic == p.ioapic && q.gsi == p.gsi));
                if taken {
                    return Err(Error::Busy);
                }
            }
            let free = routes.iter().position(Option::is_none).ok_or(Error::NoMemory)?;
            routes[free] = Some(Route { notify, bits, pin });
            Ok(FIRST_DEVICE_VECTOR + free as u8)
        })?;
        let apic_id = apic::id();
        if let Some(p) = pin {
            ioapic::route(p.ioapic, p.gsi_base, p.gsi, vector, apic_id, p.flags);
        }
        // See: SDM Vol 3A 12.11.1 (address: 0xFEE, destination ID, physical mode) and 12.11.2
        // (data: the vector, fixed delivery, edge).
        let message = ((0xfee0_0000u64 | (u64::from(apic_id) << 12)) << 32) | u64::from(vector);
        Ok((IrqLine { vector }, if pin.is_some() { 0 } else { message }))
    }

    /// Unmask a level-triggered line the interrupt handler masked.
    pub fn ack(&self) {
        if let Some(p) = self.pin() {
            if p.level {
                ioapic::set_masked(p.ioapic, p.gsi - p.gsi_base, false);
            }
        }
    }

    fn pin(&self) -> Option<Pin> {
        without_interrupts(|| {
            ROUTES.lock()[usize::from(self.vector - FIRST_DEVICE_VECTOR)].as_ref().and_then(|r| r.pin)
        })
    }
}

impl Drop for IrqLine {
    fn drop(&mut self) {
        if let Some(p) = self.pin() {
            ioapic::set_masked(p.ioapic, p.gsi - p.gsi_base, true);
        }
        // An MSI the device still sends after this lands on a vector with no route: ignored.
        without_interrupts(|| ROUTES.lock()[usize::from(self.vector - FIRST_DEVICE_VECTOR)] = None);
    }
}

/// A device vector fired (interrupts are off): mask a level-triggered input until the driver
/// acknowledges it (else it fires again at once, as the device still asserts it), signal the
/// driver, end the interrupt.
pub fn on_device_interrupt(vector: u8) {
    let target = {
        let routes = ROUTES.lock();
        routes[usize::from(vector - FIRST_DEVICE_VECTOR)].as_ref().map(|r| (r.notify.clone(), r.bits, r.pin))
    };
    if let Some((notify, bits, pin)) = target {
        if let Some(p) = pin.filter(|p| p.level) {
            ioapic::set_masked(p.ioapic, p.gsi - p.gsi_base, true);
        }
        notify.signal(bits);
    }
    apic::eoi();
}

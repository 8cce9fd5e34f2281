//! The virtio PCI transport (virtio 1.2, 4.1): wraps a [`VirtioDevice`] into a [`PciFunction`],
//! modern-only ([`VirtioPci::new`]) or transitional ([`VirtioPci::transitional`]: the legacy
//! interface as well, for drivers older than virtio 1.0).
//!
//! Configuration space (4.1.2, 4.1.4): vendor 0x1AF4, subsystem vendor 0x1AF4, the device's
//! class, INTA#, and a list of vendor-specific capabilities (`struct virtio_pci_cap`) that place
//! the modern register blocks in a 16 KiB 32-bit non-prefetchable memory BAR ("the modern BAR"):
//!
//! | | modern | transitional (4.1.2.1, 4.1.2.3) |
//! |---|---|---|
//! | device ID | 0x1040 + the virtio device ID | 0x1000.. per type (0x1001 block, 0x1004 SCSI, 0x1005 entropy) |
//! | revision | 1 | 0 (4.1.2.2: required of transitional devices) |
//! | subsystem ID | 0x1100 | the virtio device ID |
//! | BAR0 | the modern BAR | the legacy registers: I/O, 0x14 + device configuration bytes, rounded up to a power of two |
//! | BAR1 | - | the modern BAR |
//! | BAR2 | - | the port BAR: notifications and the ISR in I/O space ([`PIO_BAR_SIZE`] bytes) |
//!
//! The port BAR (transitional devices) is what QEMU's `modern-pio-notify` offers: its NOTIFY_CFG
//! and ISR_CFG capabilities come first in the list, so a modern driver uses them (4.1.4: "the
//! driver SHOULD use the first instance of each virtio structure type they can support"; Linux
//! and SeaBIOS map I/O BARs as well as memory ones). A port write or read exits with its port,
//! width and value in the exit information, where an MMIO access has its instruction fetched and
//! decoded first: a disk request's notification and its interrupt's ISR read are each about 600
//! instructions cheaper (`cargo xtask bench`). The notify register is shared by all queues
//! (`notify_off_multiplier` 0, 4.1.4.4): the driver writes the queue's index, as to the legacy
//! QUEUE_NOTIFY. The memory BAR's capabilities follow, for drivers that map only memory.
//!
//! | modern BAR offset | block | capability |
//! |---|---|---|
//! | 0x0000 | common configuration (4.1.4.3) | VIRTIO_PCI_CAP_COMMON_CFG |
//! | 0x1000 | ISR status (4.1.4.5) | VIRTIO_PCI_CAP_ISR_CFG |
//! | 0x2000 | device configuration (4.1.4.6), if the device has any | VIRTIO_PCI_CAP_DEVICE_CFG |
//! | 0x3000 | notifications (4.1.4.4), queue n at n x 4 | VIRTIO_PCI_CAP_NOTIFY_CFG, multiplier 4 |
//!
//! Common configuration: the feature words (the device's bits plus VIRTIO_F_VERSION_1, which the
//! driver must accept), the status byte with reset (writing 0 resets everything, and reads back 0
//! at once), FEATURES_OK refused (left clear, 3.1.1) when the driver accepted a bit that was not
//! offered or did not accept VERSION_1, queue selection, size (a power of two up to the maximum;
//! other values are ignored), enable, and the three ring addresses (ignored once the queue is
//! enabled). MSI-X is not offered: `config_msix_vector` and `queue_msix_vector` read NO_VECTOR
//! (0xFFFF) whatever is written. Registers may be accessed with any width at any offset; the
//! 64-bit addresses take two 32-bit halves. `config_generation` is 0 and never changes (no device
//! here changes its configuration by itself).
//!
//! The legacy interface (transitional only; `pci/legacy.rs`, 4.1.4.8 and 4.1.5 legacy notes)
//! shares the same device state: its feature word is bits 0-31 (so VERSION_1 is never visible
//! there, and a legacy driver never negotiates it), there is no FEATURES_OK step, a queue has its
//! maximum size and is enabled by writing its page frame number, in the legacy layout (2.7.2:
//! used ring aligned to 4096).
//!
//! Interrupts: legacy INTx only (4.1.4.5): ISR bit 0 for used buffers, bit 1 for a configuration
//! change (sent when the device enters DEVICE_NEEDS_RESET); [`PciFunction::irq_level`] is high
//! while the ISR is not 0, and reading the ISR byte (in either interface) clears it.
//!
//! Negotiated features: fixed when the driver sets DRIVER_OK (the offered bits it accepted),
//! given to the device ([`VirtioDevice::activate`]) and, for VIRTIO_F_EVENT_IDX (offered only by
//! devices that ask for it), to every queue before the device uses it.
//!
//! Notifications: a write anywhere in queue n's notify slot (or of n to the legacy QUEUE_NOTIFY)
//! marks queue n; nothing touches guest
//! memory until [`PciFunction::process`], which services every marked queue if the driver set
//! DRIVER_OK (and the device is not FAILED or in NEEDS_RESET). Setting DRIVER_OK marks every
//! queue, in case buffers were made available before. A device may also use a queue on its own
//! initiative (virtio-net's received frame), through `VirtioPci::on_queue`, under the same rules. After each queue's pass (successful or
//! not) the transport writes that queue's used index again, so the used index in guest RAM is the
//! device's once `process` returns, even if the driver laid a device-writable buffer over its own
//! used ring (virtio 1.2 2.7.8: only the device writes the used ring).
//!
//! Does not: offer MSI-X, the PCI configuration access capability, shared memory regions,
//! VIRTIO_F_NOTIFICATION_DATA or queue reset (1.2 `queue_reset`).

use alloc::vec::Vec;

use keel_addr::Gpa;
use keel_devices::guest_memory::GuestMemory;
use keel_devices::pci::{Bar, BarKind, ConfigSpace, PciFunction};
use keel_devices::{ClockNs, WriteEffect};

use crate::queue::{QueueError, SplitQueue};
use crate::{features, status, VirtioDevice};

mod legacy;
pub use legacy::legacy_bar_size;

/// PCI vendor ID of virtio devices (4.1.2).
pub const VENDOR: u16 = keel_virtio_spec::PCI_VENDOR;
/// Modern device IDs are this plus the virtio device ID (4.1.2.1).
pub const DEVICE_BASE: u16 = keel_virtio_spec::PCI_DEVICE_MODERN_BASE;
/// Subsystem ID reported by a modern device (informational, 4.1.2.1).
pub const SUBSYSTEM: u16 = 0x1100;

/// The transitional PCI device ID of virtio device type `id` (4.1.2.3), if it has one.
pub fn transitional_device_id(id: u16) -> Option<u16> {
    use keel_virtio_spec::device_id as t;
    match id {
        t::NET => Some(keel_virtio_spec::PCI_DEVICE_TRANSITIONAL_NET),
        t::BLOCK => Some(keel_virtio_spec::PCI_DEVICE_TRANSITIONAL_BLOCK),
        t::CONSOLE => Some(keel_virtio_spec::PCI_DEVICE_TRANSITIONAL_CONSOLE),
        t::ENTROPY => Some(keel_virtio_spec::PCI_DEVICE_TRANSITIONAL_ENTROPY),
        t::SCSI => Some(keel_virtio_spec::PCI_DEVICE_TRANSITIONAL_SCSI),
        _ => None,
    }
}

/// The port BAR (transitional devices): its size, the shared notify register (16 bits: the
/// queue index is written) and the ISR status byte.
pub const PIO_BAR: usize = 2;
pub const PIO_BAR_SIZE: u64 = 8;
pub const PIO_NOTIFY: u64 = 0;
pub const PIO_ISR: u64 = 4;

/// The modern BAR's size and layout.
pub const BAR_SIZE: u64 = 0x4000;
pub const COMMON: u64 = 0x0000;
pub const ISR: u64 = 0x1000;
pub const DEVICE_CFG: u64 = 0x2000;
pub const NOTIFY: u64 = 0x3000;
/// Each block's length in the capabilities.
pub const BLOCK_LEN: u64 = 0x1000;
pub const NOTIFY_OFF_MULTIPLIER: u32 = 4;
/// The most queues the transport handles (the notify block holds 1024).
pub const MAX_QUEUES: u16 = 64;

/// Capability types (4.1.4).
pub const CAP_COMMON_CFG: u8 = keel_virtio_spec::cap_type::COMMON;
pub const CAP_NOTIFY_CFG: u8 = keel_virtio_spec::cap_type::NOTIFY;
pub const CAP_ISR_CFG: u8 = keel_virtio_spec::cap_type::ISR;
pub const CAP_DEVICE_CFG: u8 = keel_virtio_spec::cap_type::DEVICE;
/// PCI capability ID of vendor-specific capabilities.
const CAP_ID_VENDOR: u8 = 0x09;

/// "No MSI-X vector" (4.1.4.3).
pub const NO_VECTOR: u16 = 0xFFFF;
/// ISR status bits (4.1.4.5).
pub const ISR_QUEUE: u8 = keel_virtio_spec::isr::QUEUE;
pub const ISR_CONFIG: u8 = keel_virtio_spec::isr::CONFIG;

/// Common configuration register offsets (4.1.4.3), from keel-virtio-spec, as the `u64` offsets
/// the device's register accesses carry.
pub mod common {
    use keel_virtio_spec::common as spec;
    pub const DEVICE_FEATURE_SELECT: u64 = spec::DEVICE_FEATURE_SELECT as u64;
    pub const DEVICE_FEATURE: u64 = spec::DEVICE_FEATURE as u64;
    pub const DRIVER_FEATURE_SELECT: u64 = spec::DRIVER_FEATURE_SELECT as u64;
    pub const DRIVER_FEATURE: u64 = spec::DRIVER_FEATURE as u64;
    pub const CONFIG_MSIX_VECTOR: u64 = spec::CONFIG_MSIX_VECTOR as u64;
    pub const NUM_QUEUES: u64 = spec::NUM_QUEUES as u64;
    pub const DEVICE_STATUS: u64 = spec::DEVICE_STATUS as u64;
    pub const CONFIG_GENERATION: u64 = spec::CONFIG_GENERATION as u64;
    pub const QUEUE_SELECT: u64 = spec::QUEUE_SELECT as u64;
    pub const QUEUE_SIZE: u64 = spec::QUEUE_SIZE as u64;
    pub const QUEUE_MSIX_VECTOR: u64 = spec::QUEUE_MSIX_VECTOR as u64;
    pub const QUEUE_ENABLE: u64 = spec::QUEUE_ENABLE as u64;
    pub const QUEUE_NOTIFY_OFF: u64 = spec::QUEUE_NOTIFY_OFF as u64;
    pub const QUEUE_DESC: u64 = spec::QUEUE_DESC as u64;
    pub const QUEUE_DRIVER: u64 = spec::QUEUE_DRIVER as u64;
    pub const QUEUE_DEVICE: u64 = spec::QUEUE_DEVICE as u64;
    /// Bytes of registers.
    pub const LEN: usize = spec::LEN;
}

/// The writable common-configuration fields: offset and width.
const WRITABLE_FIELDS: [(u64, u64); 12] = [
    (common::DEVICE_FEATURE_SELECT, 4),
    (common::DRIVER_FEATURE_SELECT, 4),
    (common::DRIVER_FEATURE, 4),
    (common::CONFIG_MSIX_VECTOR, 2),
    (common::DEVICE_STATUS, 1),
    (common::QUEUE_SELECT, 2),
    (common::QUEUE_SIZE, 2),
    (common::QUEUE_MSIX_VECTOR, 2),
    (common::QUEUE_ENABLE, 2),
    (common::QUEUE_DESC, 8),
    (common::QUEUE_DRIVER, 8),
    (common::QUEUE_DEVICE, 8),
];

/// A virtio device on PCI.
#[derive(Debug)]
pub struct VirtioPci<D: VirtioDevice> {
    cs: ConfigSpace,
    device: D,
    queues: Vec<SplitQueue>,
    device_feature_select: u32,
    driver_feature_select: u32,
    driver_features: u64,
    /// The features in force: fixed at DRIVER_OK (0 before, and after a reset).
    negotiated: u64,
    status: u8,
    queue_select: u16,
    isr: u8,
    /// Queues notified and not yet processed (bit n = queue n).
    notified: u64,
    /// The BAR of the modern register blocks (0 for a modern device, 1 for a transitional one).
    modern_bar: usize,
    /// The legacy I/O BAR (transitional devices: 0).
    legacy_bar: Option<usize>,
    /// The port BAR (transitional devices: [`PIO_BAR`]).
    pio_bar: Option<usize>,
}

impl<D: VirtioDevice> VirtioPci<D> {
    /// The modern-only transport for `device`, its BAR unassigned and decoding off (firmware or
    /// the OS assigns it: see `PciHost::assign_resources`). BAR0 is the modern BAR.
    pub fn new(device: D) -> Self {
        let id = device.device_id();
        Self::build(device, DEVICE_BASE.wrapping_add(id), 1, SUBSYSTEM, None)
    }

    /// The transitional transport for `device` (4.1.2.3): the legacy registers in I/O BAR0 (their
    /// size is [`legacy_bar_size`]) and the modern ones in memory BAR1, so that drivers of either
    /// kind find it. None if the device type has no transitional PCI device ID.
    pub fn transitional(device: D) -> Option<Self> {
        let id = device.device_id();
        let pci_id = transitional_device_id(id)?;
        let legacy = Bar { kind: BarKind::Io, size: legacy_bar_size(device.config_len())? };
        Some(Self::build(device, pci_id, 0, id, Some(legacy)))
    }

    fn build(device: D, pci_id: u16, revision: u8, subsystem: u16, legacy: Option<Bar>) -> Self {
        let mut cs = ConfigSpace::new(VENDOR, pci_id, device.pci_class(), revision);
        cs.set_subsystem(VENDOR, subsystem);
        cs.set_interrupt_pin(1);
        let (legacy_bar, modern_bar, pio_bar) = match legacy {
            Some(bar) => {
                let ok = cs.set_bar(0, bar) && cs.set_bar(PIO_BAR, Bar { kind: BarKind::Io, size: PIO_BAR_SIZE });
                debug_assert!(ok);
                (Some(0), 1, Some(PIO_BAR))
            }
            None => (None, 0, None),
        };
        let bar = Bar { kind: BarKind::Memory32 { prefetchable: false }, size: BAR_SIZE };
        let ok = cs.set_bar(modern_bar, bar);
        debug_assert!(ok);
        let num_queues = device.num_queues().min(MAX_QUEUES);
        let cap = |cfg_type: u8, bar: usize, offset: u64, len: u64, extra: &[u8]| {
            let mut body = Vec::with_capacity(18);
            let cap_len = 16 + extra.len() as u8;
            // cap_len, cfg_type, bar, id, padding
            body.extend_from_slice(&[cap_len, cfg_type, bar as u8, 0, 0, 0]);
            body.extend_from_slice(&(offset as u32).to_le_bytes());
            body.extend_from_slice(&(len as u32).to_le_bytes());
            body.extend_from_slice(extra);
            body
        };
        let mut caps = Vec::new();
        if let Some(bar) = pio_bar {
            caps.push(cap(CAP_NOTIFY_CFG, bar, PIO_NOTIFY, 2, &0u32.to_le_bytes()));
            caps.push(cap(CAP_ISR_CFG, bar, PIO_ISR, 1, &[]));
        }
        caps.push(cap(CAP_COMMON_CFG, modern_bar, COMMON, BLOCK_LEN, &[]));
        caps.push(cap(CAP_NOTIFY_CFG, modern_bar, NOTIFY, BLOCK_LEN, &NOTIFY_OFF_MULTIPLIER.to_le_bytes()));
        caps.push(cap(CAP_ISR_CFG, modern_bar, ISR, BLOCK_LEN, &[]));
        for body in &caps {
            let placed = cs.add_capability(CAP_ID_VENDOR, body);
            debug_assert!(placed.is_some());
        }
        if device.config_len() > 0 {
            let placed = cs.add_capability(CAP_ID_VENDOR, &cap(CAP_DEVICE_CFG, modern_bar, DEVICE_CFG, BLOCK_LEN, &[]));
            debug_assert!(placed.is_some());
        }
        let max = device.max_queue_size();
        let queues = (0..num_queues).map(|_| SplitQueue::new(max)).collect();
        Self {
            cs,
            device,
            queues,
            device_feature_select: 0,
            driver_feature_select: 0,
            driver_features: 0,
            negotiated: 0,
            status: 0,
            queue_select: 0,
            isr: 0,
            notified: 0,
            modern_bar,
            legacy_bar,
            pio_bar,
        }
    }

    /// The BAR holding the modern register blocks (0, or 1 on a transitional device).
    pub fn modern_bar(&self) -> usize {
        self.modern_bar
    }

    /// The legacy I/O BAR, on a transitional device.
    pub fn legacy_bar(&self) -> Option<usize> {
        self.legacy_bar
    }

    pub fn device(&self) -> &D {
        &self.device
    }

    pub fn device_mut(&mut self) -> &mut D {
        &mut self.device
    }

    /// The device status byte.
    pub fn status(&self) -> u8 {
        self.status
    }

    /// The features the driver accepted.
    pub fn driver_features(&self) -> u64 {
        self.driver_features
    }

    /// The features in force since the driver set DRIVER_OK (0 before).
    pub fn negotiated_features(&self) -> u64 {
        self.negotiated
    }

    /// The ISR status byte (without clearing it).
    pub fn isr(&self) -> u8 {
        self.isr
    }

    pub fn queue(&self, index: u16) -> Option<&SplitQueue> {
        self.queues.get(usize::from(index))
    }

    /// Everything the device offers.
    pub fn offered_features(&self) -> u64 {
        self.device.features() | features::VERSION_1
    }

    /// Device reset (4.1.4.3.1: a write of 0 to device_status).
    fn reset(&mut self) {
        self.device_feature_select = 0;
        self.driver_feature_select = 0;
        self.driver_features = 0;
        self.negotiated = 0;
        self.status = 0;
        self.queue_select = 0;
        self.isr = 0;
        self.notified = 0;
        for q in &mut self.queues {
            q.reset();
        }
        self.device.reset();
    }

    fn live(&self) -> bool {
        self.status & status::DRIVER_OK != 0 && self.status & (status::FAILED | status::DEVICE_NEEDS_RESET) == 0
    }

    fn all_queues(&self) -> u64 {
        match self.queues.len() {
            64 => u64::MAX,
            n => (1u64 << n) - 1,
        }
    }

    fn write_status(&mut self, value: u8) {
        if value == 0 {
            self.reset();
            return;
        }
        let mut value = value;
        if value & status::FEATURES_OK != 0 && self.status & status::FEATURES_OK == 0 {
            let offered = self.offered_features();
            let acceptable = self.driver_features & !offered == 0 && self.driver_features & features::VERSION_1 != 0;
            if !acceptable {
                value &= !status::FEATURES_OK;
            }
        }
        let was_ok = self.status & status::DRIVER_OK != 0;
        // DEVICE_NEEDS_RESET belongs to the device: the driver can neither set nor clear it.
        self.status = value & !status::DEVICE_NEEDS_RESET | self.status & status::DEVICE_NEEDS_RESET;
        if self.status & status::DRIVER_OK != 0 {
            if !was_ok {
                // Only bits that were offered, even from a driver that went on after FEATURES_OK
                // was refused.
                self.negotiated = self.driver_features & self.offered_features();
                self.device.activate(self.negotiated);
            }
            self.notified = self.all_queues();
        }
    }

    /// Whether VIRTIO_F_EVENT_IDX is in force.
    fn event_idx(&self) -> bool {
        self.negotiated & features::RING_EVENT_IDX != 0
    }

    /// Lets the device use queue `index` on its own initiative, outside a notification
    /// (virtio-net: a frame arrived for the guest): `work` gets the device, the queue and guest
    /// memory. Then, as after a pass of `process`, the used index (and `avail_event`) is written
    /// again, the queue interrupt raised if the driver wants one, and a protocol error puts the
    /// device in DEVICE_NEEDS_RESET. Returns what `work` returned and whether the queue interrupt
    /// was raised; None, and `work` is not called, unless the driver set DRIVER_OK, the device
    /// is neither FAILED nor in NEEDS_RESET, and the queue is enabled.
    pub(crate) fn on_queue<R>(
        &mut self,
        index: u16,
        mem: &mut dyn GuestMemory,
        work: impl FnOnce(&mut D, &mut SplitQueue, &mut dyn GuestMemory) -> Result<R, QueueError>,
    ) -> Option<(Result<R, QueueError>, bool)> {
        if !self.live() {
            return None;
        }
        let event_idx = self.event_idx();
        let queue = self.queues.get_mut(usize::from(index)).filter(|q| q.enabled())?;
        queue.set_event_idx(event_idx);
        let result = work(&mut self.device, queue, mem);
        // As in `process`: the device's used index last; buffers returned get their interrupt.
        let _ = queue.publish_used(mem);
        let interrupt = queue.take_notification(mem);
        if interrupt {
            self.isr |= ISR_QUEUE;
        }
        if result.is_err() {
            self.needs_reset();
        }
        Some((result, interrupt))
    }

    fn selected(&self) -> Option<&SplitQueue> {
        self.queues.get(usize::from(self.queue_select))
    }

    fn selected_mut(&mut self) -> Option<&mut SplitQueue> {
        self.queues.get_mut(usize::from(self.queue_select))
    }

    /// The common configuration registers as bytes.
    fn common_bytes(&self) -> [u8; common::LEN] {
        let mut b = [0u8; common::LEN];
        let mut put = |offset: u64, value: &[u8]| {
            let at = offset as usize;
            b[at..at + value.len()].copy_from_slice(value);
        };
        let offered = self.offered_features();
        let device_feature = match self.device_feature_select {
            0 => offered as u32,
            1 => (offered >> 32) as u32,
            _ => 0,
        };
        let driver_feature = match self.driver_feature_select {
            0 => self.driver_features as u32,
            1 => (self.driver_features >> 32) as u32,
            _ => 0,
        };
        put(common::DEVICE_FEATURE_SELECT, &self.device_feature_select.to_le_bytes());
        put(common::DEVICE_FEATURE, &device_feature.to_le_bytes());
        put(common::DRIVER_FEATURE_SELECT, &self.driver_feature_select.to_le_bytes());
        put(common::DRIVER_FEATURE, &driver_feature.to_le_bytes());
        put(common::CONFIG_MSIX_VECTOR, &NO_VECTOR.to_le_bytes());
        put(common::NUM_QUEUES, &(self.queues.len() as u16).to_le_bytes());
        put(common::DEVICE_STATUS, &[self.status]);
        put(common::CONFIG_GENERATION, &[0]);
        put(common::QUEUE_SELECT, &self.queue_select.to_le_bytes());
        if let Some(q) = self.selected() {
            let (desc, driver, device) = q.addresses();
            put(common::QUEUE_SIZE, &q.size().to_le_bytes());
            put(common::QUEUE_MSIX_VECTOR, &NO_VECTOR.to_le_bytes());
            put(common::QUEUE_ENABLE, &u16::from(q.enabled()).to_le_bytes());
            put(common::QUEUE_NOTIFY_OFF, &self.queue_select.to_le_bytes());
            put(common::QUEUE_DESC, &desc.0.to_le_bytes());
            put(common::QUEUE_DRIVER, &driver.0.to_le_bytes());
            put(common::QUEUE_DEVICE, &device.0.to_le_bytes());
        } else {
            // 4.1.4.3.1: a queue that does not exist has size 0.
            put(common::QUEUE_MSIX_VECTOR, &NO_VECTOR.to_le_bytes());
        }
        b
    }

    fn common_read(&self, offset: u64, data: &mut [u8]) {
        let b = self.common_bytes();
        for (i, byte) in data.iter_mut().enumerate() {
            *byte = offset.checked_add(i as u64).and_then(|at| b.get(at as usize)).copied().unwrap_or(0);
        }
    }

    /// Merges the written bytes into the registers, then acts on every writable field the write
    /// touched, in address order.
    fn common_write(&mut self, offset: u64, data: &[u8]) {
        let Some(end) = offset.checked_add(data.len() as u64) else { return };
        let mut b = self.common_bytes();
        for (i, &value) in data.iter().enumerate() {
            if let Some(byte) = b.get_mut(offset as usize + i) {
                *byte = value;
            }
        }
        for &(field, width) in &WRITABLE_FIELDS {
            if offset >= field + width || end <= field {
                continue;
            }
            let at = field as usize;
            let mut raw = [0u8; 8];
            raw[..width as usize].copy_from_slice(&b[at..at + width as usize]);
            let value = u64::from_le_bytes(raw);
            self.write_field(field, value);
        }
    }

    fn write_field(&mut self, field: u64, value: u64) {
        match field {
            common::DEVICE_FEATURE_SELECT => self.device_feature_select = value as u32,
            common::DRIVER_FEATURE_SELECT => self.driver_feature_select = value as u32,
            // Feature negotiation is over once FEATURES_OK is set (3.1.1).
            common::DRIVER_FEATURE if self.status & status::FEATURES_OK == 0 => match self.driver_feature_select {
                0 => self.driver_features = self.driver_features & !0xFFFF_FFFF | value,
                1 => self.driver_features = self.driver_features & 0xFFFF_FFFF | value << 32,
                _ => {}
            },
            common::DEVICE_STATUS => self.write_status(value as u8),
            common::QUEUE_SELECT => self.queue_select = value as u16,
            common::QUEUE_SIZE => {
                if let Some(q) = self.selected_mut() {
                    q.set_size(value as u16);
                }
            }
            common::QUEUE_ENABLE if value == 1 => {
                if let Some(q) = self.selected_mut() {
                    q.enable();
                }
            }
            common::QUEUE_DESC | common::QUEUE_DRIVER | common::QUEUE_DEVICE => {
                if let Some(q) = self.selected_mut() {
                    let (mut desc, mut driver, mut device) = q.addresses();
                    // The register's value becomes the area's guest-physical address.
                    match field {
                        common::QUEUE_DESC => desc = Gpa(value),
                        common::QUEUE_DRIVER => driver = Gpa(value),
                        _ => device = Gpa(value),
                    }
                    q.set_addresses(desc, driver, device);
                }
            }
            // MSI-X vectors: no MSI-X, the write is dropped (reads stay NO_VECTOR).
            _ => {}
        }
    }

    /// Marks queue `queue` for the next `process` (a queue that does not exist: nothing).
    fn notify(&mut self, queue: u64) {
        if queue < self.queues.len() as u64 {
            self.notified |= 1 << queue;
        }
    }

    /// The device broke down because of the driver: DEVICE_NEEDS_RESET and a configuration
    /// change interrupt (2.1.2).
    fn needs_reset(&mut self) {
        self.status |= status::DEVICE_NEEDS_RESET;
        self.isr |= ISR_CONFIG;
    }
}

impl<D: VirtioDevice> PciFunction for VirtioPci<D> {
    fn config(&self) -> &ConfigSpace {
        &self.cs
    }

    fn config_mut(&mut self) -> &mut ConfigSpace {
        &mut self.cs
    }

    fn bar_read(&mut self, bar: usize, offset: u64, data: &mut [u8], _now: ClockNs) {
        data.fill(0);
        if Some(bar) == self.legacy_bar {
            self.legacy_read(offset, data);
            return;
        }
        if Some(bar) == self.pio_bar {
            // 4.1.4.5.1: reading the ISR status resets it.
            if let (PIO_ISR, Some(first)) = (offset, data.first_mut()) {
                *first = core::mem::take(&mut self.isr);
            }
            return;
        }
        if bar != self.modern_bar {
            return;
        }
        match offset {
            COMMON..ISR => self.common_read(offset - COMMON, data),
            // 4.1.4.5.1: reading the ISR status resets it.
            ISR => {
                if let Some(first) = data.first_mut() {
                    *first = core::mem::take(&mut self.isr);
                }
            }
            DEVICE_CFG..NOTIFY => {
                let at = offset - DEVICE_CFG;
                let len = u64::from(self.device.config_len());
                if at.checked_add(data.len() as u64).is_some_and(|end| end <= len) {
                    self.device.read_config(at, data);
                }
            }
            _ => {}
        }
    }

    fn bar_write(&mut self, bar: usize, offset: u64, data: &[u8], _now: ClockNs) -> WriteEffect {
        if Some(bar) == self.legacy_bar {
            self.legacy_write(offset, data);
            return WriteEffect::None;
        }
        if Some(bar) == self.pio_bar {
            // The queue's index, as to the legacy QUEUE_NOTIFY (a byte write gives the low byte).
            if offset == PIO_NOTIFY {
                let index = match *data {
                    [low, high, ..] => u16::from_le_bytes([low, high]),
                    [low] => u16::from(low),
                    [] => return WriteEffect::None,
                };
                self.notify(u64::from(index));
            }
            return WriteEffect::None;
        }
        if bar != self.modern_bar {
            return WriteEffect::None;
        }
        match offset {
            COMMON..ISR => self.common_write(offset - COMMON, data),
            DEVICE_CFG..NOTIFY => {
                let at = offset - DEVICE_CFG;
                let len = u64::from(self.device.config_len());
                if at.checked_add(data.len() as u64).is_some_and(|end| end <= len) {
                    self.device.write_config(at, data);
                }
            }
            NOTIFY..BAR_SIZE => self.notify((offset - NOTIFY) / u64::from(NOTIFY_OFF_MULTIPLIER)),
            _ => {}
        }
        WriteEffect::None
    }

    fn irq_level(&self) -> bool {
        self.isr != 0
    }

    fn process(&mut self, mem: &mut dyn GuestMemory) {
        let pending = core::mem::take(&mut self.notified);
        if pending == 0 || !self.live() {
            return;
        }
        let event_idx = self.event_idx();
        for index in 0..self.queues.len() {
            if pending & (1 << index) == 0 || !self.queues[index].enabled() {
                continue;
            }
            let queue = &mut self.queues[index];
            queue.set_event_idx(event_idx);
            let result = self.device.process_queue(index as u16, queue, mem);
            // The used index again, last: a buffer the driver laid over its own used ring, written
            // by this pass, must not leave a count that is not the device's (see
            // `SplitQueue::publish_used`; virtio 1.2 2.7.8). A ring outside RAM was already an
            // error of the pass, so a failed write here changes nothing.
            let _ = queue.publish_used(mem);
            match result {
                Ok(()) => {
                    if queue.take_notification(mem) {
                        self.isr |= ISR_QUEUE;
                    }
                }
                Err(_) => {
                    // Buffers already returned still get their interrupt.
                    if queue.take_notification(mem) {
                        self.isr |= ISR_QUEUE;
                    }
                    self.needs_reset();
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod transitional_tests;

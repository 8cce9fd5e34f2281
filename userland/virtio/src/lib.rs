//! Virtio 1.2 devices for the per-VM monitor: the PCI transport ([`VirtioPci`], modern-only or
//! transitional), split virtqueues ([`SplitQueue`]), the entropy device ([`VirtioRng`]) and a
//! ChaCha20 stream to feed it ([`ChaCha20Rng`]), the guest's disks: virtio-blk ([`VirtioBlk`])
//! and a virtio-scsi CD-ROM ([`VirtioScsi`]), both over a [`BlockBackend`] (an image the monitor
//! opens; [`MemBackend`] holds one in memory), and the guest's network card: virtio-net
//! ([`VirtioNet`]), which sends what the guest transmits to a [`FrameSink`] and is given frames
//! for the guest with [`VirtioPci::deliver`].
//!
//! How the pieces fit: a device model implements [`VirtioDevice`] (its id, features, queues and
//! what it does with a queue's buffers); [`VirtioPci`] wraps it into a PCI function
//! ([`keel_devices::pci::PciFunction`]): [`VirtioPci::new`] with the modern register layout in
//! memory BAR0, or [`VirtioPci::transitional`] with the legacy (0.9.5) registers in I/O BAR0 and
//! the modern ones in memory BAR1, so that old and new drivers both work. The monitor puts it on
//! its [`keel_devices::pci::PciHost`]. A guest write to the notify region only marks the queue;
//! the monitor then calls `PciHost::process` with guest memory, the device walks its queues, and
//! the transport raises INTx through the ISR status byte. The features the driver negotiated are
//! fixed when it sets DRIVER_OK and given to the device ([`VirtioDevice::activate`]); a device
//! that offers VIRTIO_F_EVENT_IDX (virtio-net) gets event-index notification suppression on its
//! queues (virtio 1.2 2.7.7, 2.7.10), the others keep VIRTQ_AVAIL_F_NO_INTERRUPT.
//!
//! The guest is hostile: every descriptor index, chain length, ring index and guest address is
//! checked before use, a chain is never longer than the queue, one `process` call does at most
//! one pass over each ring, and guest memory is reached only through
//! [`keel_devices::guest_memory::GuestMemory`] copies. A driver that breaks the queue protocol (a
//! bad index, an indirect descriptor that was not negotiated, a ring outside RAM) puts the device
//! in DEVICE_NEEDS_RESET (virtio 1.2, 2.1.2) and it does nothing more until reset; a bad request
//! in a well-formed chain gets an error status (the disks), or is dropped and counted (a network
//! frame), and the queue goes on. No buffer is sized by the guest: the disks copy through one
//! chunk buffer each, the network card through one frame buffer each way, allocated at creation.
//!
//! Does not: offer MSI-X, packed virtqueues, indirect descriptors, or the PCI configuration
//! access capability (VIRTIO_PCI_CAP_PCI_CFG; Linux does not use it); offer event-index
//! suppression on the disks and the entropy device (it would be the same queue code, but they
//! have run without it on real guests).
//!
//! See: Virtual I/O Device (VIRTIO) Version 1.2, OASIS Committee Specification 01 (cited as
//! "virtio 1.2"); RFC 8439 for ChaCha20; SPC-4, SBC-3 and MMC-6 (T10) for the CD-ROM's commands.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod backend;
pub mod blk;
pub mod chacha20;
pub mod chain;
pub mod net;
pub mod pci;
pub mod queue;
pub mod rng;
pub mod scsi;

#[cfg(test)]
mod testdriver;

pub use backend::{BackendError, BlockBackend, MemBackend};
pub use blk::VirtioBlk;
pub use chacha20::ChaCha20Rng;
pub use keel_devices::guest_memory::GuestMemory;
pub use net::{Checksum, Delivered, FrameSink, NetStats, RxDrop, VirtioNet};
pub use pci::VirtioPci;
pub use queue::{QueueError, SplitQueue};
pub use rng::{Entropy, VirtioRng};
pub use scsi::VirtioScsi;

/// The spec's numbers (status bits, feature bits, device IDs) have one home, shared with the
/// host's drivers.
pub use keel_virtio_spec::{device_id, features, status};

/// A device's configuration read at `offset`, from its bytes `config`: what lies past them reads
/// as zero (a driver may read any offset of the configuration window).
pub(crate) fn read_config_bytes(config: &[u8], offset: u64, data: &mut [u8]) {
    for (i, byte) in data.iter_mut().enumerate() {
        *byte = offset.checked_add(i as u64).and_then(|at| config.get(usize::try_from(at).ok()?)).copied().unwrap_or(0);
    }
}

/// What a virtio device model provides to a transport.
pub trait VirtioDevice {
    /// The virtio device ID (virtio 1.2, 5).
    fn device_id(&self) -> u16;

    /// Device-specific feature bits offered (the transport adds VIRTIO_F_VERSION_1).
    fn features(&self) -> u64 {
        0
    }

    /// Number of virtqueues (at most 64).
    fn num_queues(&self) -> u16;

    /// The largest size of every queue (a power of two, at most 32768).
    fn max_queue_size(&self) -> u16;

    /// The PCI class code the transport reports (default: "other", 0xFF0000).
    fn pci_class(&self) -> u32 {
        0xFF_00_00
    }

    /// Bytes of device-specific configuration (0: none, and no device configuration capability).
    fn config_len(&self) -> u32 {
        0
    }

    /// Reads device configuration at `offset` (inside `config_len`).
    fn read_config(&self, _offset: u64, data: &mut [u8]) {
        data.fill(0);
    }

    /// Writes device configuration at `offset`.
    fn write_config(&mut self, _offset: u64, _data: &[u8]) {}

    /// The driver reset the device.
    fn reset(&mut self) {}

    /// The driver set DRIVER_OK: `negotiated` are the features in force until the next reset
    /// (the offered bits the driver accepted; VERSION_1 only for a modern driver). Called before
    /// any [`VirtioDevice::process_queue`].
    fn activate(&mut self, _negotiated: u64) {}

    /// Services queue `index` after a notification: takes available buffers and returns used
    /// ones. An error means the driver broke the protocol; the transport then stops the device.
    /// The transport writes the queue's used index again after every pass (successful or not).
    fn process_queue(
        &mut self,
        index: u16,
        queue: &mut SplitQueue,
        mem: &mut dyn GuestMemory,
    ) -> Result<(), QueueError>;
}

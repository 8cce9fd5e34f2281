//! Virtio 1.2 devices for the per-VM monitor: the PCI transport ([`VirtioPci`]), split
//! virtqueues ([`SplitQueue`]), the entropy device ([`VirtioRng`]) and a ChaCha20 stream to feed
//! it ([`ChaCha20Rng`]).
//!
//! How the pieces fit: a device model implements [`VirtioDevice`] (its id, features, queues and
//! what it does with a queue's buffers); [`VirtioPci`] wraps it into a PCI function
//! ([`keel_devices::pci::PciFunction`]) with the modern (non-transitional) register layout in
//! BAR0, which the monitor puts on its [`keel_devices::pci::PciHost`]. A guest write to the notify
//! region only marks the queue; the monitor then calls `PciHost::process` with guest memory, the
//! device walks its queues, and the transport raises INTx through the ISR status byte.
//!
//! The guest is hostile: every descriptor index, chain length, ring index and guest address is
//! checked before use, a chain is never longer than the queue, one `process` call does at most
//! one pass over each ring, and guest memory is reached only through
//! [`keel_devices::guest_memory::GuestMemory`] copies. A driver that breaks the protocol (a bad
//! index, an indirect descriptor that was not negotiated, a ring outside RAM) puts the device in
//! DEVICE_NEEDS_RESET (virtio 1.2, 2.1.2) and it does nothing more until reset.
//!
//! Does not: offer the legacy (0.9.5) interface, MSI-X, packed virtqueues, indirect descriptors,
//! event index suppression or the PCI configuration access capability (VIRTIO_PCI_CAP_PCI_CFG;
//! Linux does not use it).
//!
//! See: Virtual I/O Device (VIRTIO) Version 1.2, OASIS Committee Specification 01 (cited as
//! "virtio 1.2"); RFC 8439 for ChaCha20.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod backend;
pub mod blk;
pub mod chacha20;
pub mod chain;
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
pub use pci::VirtioPci;
pub use queue::{QueueError, SplitQueue};
pub use rng::{Entropy, VirtioRng};
pub use scsi::VirtioScsi;

/// The spec's numbers (status bits, feature bits, device IDs) have one home, shared with the
/// host's drivers.
pub use keel_virtio_spec::{device_id, features, status};

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

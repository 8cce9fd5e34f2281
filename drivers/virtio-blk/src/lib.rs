//! The host's virtio-blk driver (virtio 1.2 5.2) over the modern virtio-pci transport (4.1), as a
//! [`keel_block::BlockDevice`]: QEMU's `virtio-blk-pci` and any virtio 1.x block device.
//!
//! - [`find_layout`]: the four virtio-pci structures from the function's vendor capabilities;
//! - [`VirtioBlk::new`]: initialise the device (feature negotiation with VERSION_1, one split
//!   virtqueue in one DMA buffer, FLUSH, BLK_SIZE, SIZE_MAX/SEG_MAX, WRITE_ZEROES, RO);
//! - [`VirtioBlk`] as a `BlockDevice`: requests split to the device's limits and the bounce
//!   buffer, each waited for with [`keel_drv_hal::wait_until`] and a timeout;
//! - [`VirtioBlk::serial`]: the disk's serial number (GET_ID) for listings.
//!
//! Why not the `virtio-drivers` crate, which the issue suggests: its `Hal` trait is an `unsafe
//! trait` of static functions that hand out raw pointers (`dma_alloc` returns a `NonNull<u8>` the
//! crate writes through, `mmio_phys_to_virt` maps BARs), and its PCI transport reads the
//! structures through those pointers: neither fits behind `keel-drv-hal`'s `Dma` and `Registers`
//! (offset accesses a fake device can watch) without unsafe code in this crate, which Keel's
//! driver crates forbid. Its blocking requests also spin on the used ring without a deadline, and
//! Keel's rule is that a device that stops answering gives `Timeout`, never a hang. virtio-blk is
//! small enough (one queue, four request types) that owning it costs less than adapting it.
//!
//! What it does not do: see `device.rs`. The service brings the PCI function up (memory decode,
//! bus mastering with `keel_drv_pci::enable_device`; MSI-X with `keel_drv_pci::MsiX`, passing the
//! vector to [`Options::msix_vector`]) and maps the BAR named by [`VirtioPciLayout::bar`].
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
extern crate alloc;

mod device;
mod layout;
mod queue;
mod serial;
pub mod spec;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;

pub use device::{protocol_error, DeviceInfo, VirtioBlk, BOUNCE_LEN};
pub use layout::{find_layout, Region, VirtioPciLayout};
pub use serial::Serial;

use keel_drv_hal::HwError;

/// How long to wait, and which interrupt vector the queue uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// A request the device has not completed by then fails with `Timeout` (30 s by default, as
    /// Linux's block layer waits).
    pub request_timeout_ns: u64,
    /// How long a reset may take (1 s).
    pub reset_timeout_ns: u64,
    /// The MSI-X table entry for queue 0, when MSI-X is enabled; `None` for INTx or polling.
    pub msix_vector: Option<u16>,
}

impl Default for Options {
    fn default() -> Self {
        Options { request_timeout_ns: 30_000_000_000, reset_timeout_ns: 1_000_000_000, msix_vector: None }
    }
}

/// Why the device could not be brought up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VirtioError {
    /// The function lacks the virtio-pci capabilities (or they are too short).
    NotVirtioPci,
    /// Something this driver does not do (the reason says what).
    Unsupported(&'static str),
    /// A structure lies past the end of the register window given.
    BarTooSmall,
    /// The device did not finish its reset in time.
    ResetTimeout,
    /// The device cleared FEATURES_OK: it refused the features chosen.
    FeaturesRefused,
    /// Queue 0 does not exist, is too small, or is already enabled.
    NoQueue,
    /// The device would not take the MSI-X vector (it read back NO_VECTOR).
    VectorRefused,
    /// DMA memory could not be had.
    Hw(HwError),
}

impl core::fmt::Display for VirtioError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            VirtioError::NotVirtioPci => f.write_str("not a virtio-pci device"),
            VirtioError::Unsupported(why) => write!(f, "unsupported virtio device: {why}"),
            VirtioError::BarTooSmall => f.write_str("virtio structures outside the BAR"),
            VirtioError::ResetTimeout => f.write_str("virtio device did not reset"),
            VirtioError::FeaturesRefused => f.write_str("virtio device refused the features"),
            VirtioError::NoQueue => f.write_str("virtio device has no usable queue"),
            VirtioError::VectorRefused => f.write_str("virtio device refused the MSI-X vector"),
            VirtioError::Hw(e) => write!(f, "{e}"),
        }
    }
}

//! Keel's NVMe host driver (NVMe 1.4 base specification, NVM command set): it brings up a
//! controller behind its mapped BAR0 registers and offers each usable namespace as a
//! [`keel_block::BlockDevice`].
//!
//! - [`Nvme::new`]: reset and enable (CC/CSTS within CAP.TO, the doorbell stride CAP.DSTRD,
//!   memory pages of CAP.MPSMIN), the admin queues, Identify Controller and Namespace, one I/O
//!   queue pair;
//! - [`Nvme::disk`] / [`NvmeDisk`]: a namespace as a block device: Read and Write through PRP1,
//!   PRP2 or a PRP list, split at MDTS; Flush when the controller has a volatile write cache;
//!   Write Zeroes when ONCS offers it;
//! - [`Nvme::describe`] / [`DiskInfo`]: model, serial, size and block size for the disk listing.
//!
//! Errors: a command's error status is `BlockError::Device(SCT << 8 | SC)`; a controller that
//! stops answering gives `Timeout` (after the command's timeout, never a hang; the controller is
//! then reset before the next command); a fatal status (CSTS.CFS) or a controller that cannot
//! be brought back gives `Gone`. Nothing a controller writes can make the driver panic.
//!
//! What it does not do: PCI (finding the controller, mapping BAR0, MSI/MSI-X set-up are
//! keel-drv-pci's and the platform's), more than one command in flight, namespace management,
//! metadata or end-to-end protection (such namespaces are skipped), or zero-copy transfers.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
extern crate alloc;

mod command;
mod controller;
mod disk;
mod error;
mod identify;
mod io;
mod page_buffer;
mod prp;
mod queue;
mod regs;

#[cfg(test)]
mod tests;

/// The drivers' one wait (keel-drv-hal's, re-checking every millisecond without an interrupt).
use keel_drv_hal::poll;

pub use controller::{Namespace, Nvme};
pub use disk::NvmeDisk;
pub use error::NvmeError;
pub use identify::NamespaceUnusable;
pub use keel_block::DiskInfo;

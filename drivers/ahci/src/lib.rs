//! Keel's AHCI host driver (AHCI 1.3.1, SATA disks through ATA8-ACS commands): it brings up an
//! HBA behind its mapped ABAR (BAR5) registers and offers each SATA disk as a
//! [`keel_block::BlockDevice`].
//!
//! - [`Ahci::new`]: HBA reset (GHC.HR) into AHCI mode (GHC.AE); for each implemented port
//!   (PI): stop (PxCMD.ST/FRE, wait CR/FR), command list and received-FIS area in DMA memory,
//!   link detection (PxSSTS.DET), the device's signature (ATA disks driven, ATAPI recognized and
//!   skipped), IDENTIFY DEVICE (LBA48 size, logical sector size, model, serial);
//! - [`Ahci::disk`] / [`AhciDisk`]: a disk as a block device: READ/WRITE DMA EXT through a
//!   bounce buffer of several pieces, PRDT entries of at most 4 MiB, requests split to fit;
//!   FLUSH CACHE EXT;
//! - [`Ahci::describe`] / [`DiskInfo`]: model, serial, size and sector size for the listing.
//!
//! Errors: a command that ends with PxIS.TFES (or another PxIS error, or PxTFD.ERR) gives
//! `BlockError::Device(code)` (code: PxIS error bits >> 24 in bits 23:16, PxTFD in 15:0) and the
//! port is recovered (stopped, errors cleared, COMRESET if the device stays busy, started);
//! a command that never completes gives `Timeout` and the same recovery; a port that cannot be
//! recovered, or an HBA that reads all ones, gives `Gone`. Nothing the HBA or a device writes
//! can make the driver panic.
//!
//! What it does not do: PCI (finding the HBA, mapping ABAR, MSI: keel-drv-pci's), the BIOS/OS
//! handoff, NCQ or more than one command at a time, ATAPI, port multipliers, hot-plug, TRIM.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
extern crate alloc;

mod command_list;
mod disk;
mod error;
mod fis;
mod hba;
mod identify;
mod io;
mod port;
mod regs;

#[cfg(test)]
mod tests;

/// The drivers' one wait (keel-drv-hal's, re-checking every millisecond without an interrupt).
use keel_drv_hal::poll;

pub use disk::AhciDisk;
pub use error::{AhciError, PortSkip};
pub use hba::{Ahci, Options};
pub use identify::AtaUnusable;
pub use keel_block::DiskInfo;

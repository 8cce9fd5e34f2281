//! Why an HBA could not be brought up, why a port is not offered as a disk, and how a failed
//! command reaches a block device's caller. Descriptions only.

use keel_block::BlockError;
use keel_drv_hal::HwError;

use crate::identify::AtaUnusable;

/// Why bringing up the HBA failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AhciError {
    /// The registers read all ones: nothing answers at this BAR.
    NotPresent,
    /// The register window is smaller than the generic host control registers.
    WindowTooSmall,
    /// GHC.HR did not clear within 1 s. See: AHCI 1.3.1 10.4.3
    ResetTimeout,
    /// DMA memory could not be had.
    Memory(HwError),
}

impl From<HwError> for AhciError {
    fn from(error: HwError) -> Self {
        AhciError::Memory(error)
    }
}

impl core::fmt::Display for AhciError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            AhciError::NotPresent => f.write_str("no AHCI controller answers"),
            AhciError::WindowTooSmall => f.write_str("AHCI register window too small"),
            AhciError::ResetTimeout => f.write_str("AHCI controller did not reset in time"),
            AhciError::Memory(error) => write!(f, "AHCI DMA memory: {error}"),
        }
    }
}

/// Why an implemented port with something attached is not offered as a disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortSkip {
    /// An ATAPI device (CD/DVD): recognized, not driven yet.
    Atapi,
    /// A signature the driver does not drive (port multiplier, enclosure), as read from PxSIG.
    Unknown(u32),
    /// The port's DMA engines did not stop (PxCMD.CR or FR stayed set).
    Stuck,
    /// The device stayed busy (PxTFD.BSY or DRQ) after the link came up.
    NotReady,
    /// IDENTIFY DEVICE failed.
    Identify(BlockError),
    /// IDENTIFY DEVICE data the driver cannot use.
    Unusable(AtaUnusable),
    /// No DMA memory for the port.
    Memory(HwError),
}

/// A failed access to DMA memory the driver sized itself: the disk cannot be reached.
pub(crate) fn memory_gone(_: HwError) -> BlockError {
    BlockError::Gone
}

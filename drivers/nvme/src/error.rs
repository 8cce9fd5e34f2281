//! Why bringing up a controller or running a command failed, and how that reaches a block
//! device's caller ([`BlockError`]). Only the description: the decisions are the controller's.

use keel_block::BlockError;
use keel_drv_hal::HwError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NvmeError {
    /// The registers read all ones: no device answers at this BAR.
    NotPresent,
    /// The controller lacks something the driver needs (the NVM command set, a usable memory
    /// page size, doorbells inside the BAR).
    Unsupported(&'static str),
    /// CSTS.RDY did not clear within CAP.TO after CC.EN was cleared. See: NVMe 1.4 3.1.5
    ResetTimeout,
    /// CSTS.RDY did not set within CAP.TO after CC.EN was set.
    ReadyTimeout,
    /// CSTS.CFS: the controller hit a fatal error (or vanished); only a reset could help.
    Fatal,
    /// A command was not completed in time (the controller was then disabled).
    CommandTimeout { opcode: u8 },
    /// A command completed with an error status (`SCT << 8 | SC`).
    CommandFailed { opcode: u8, status: u16 },
    /// DMA memory could not be had (or was reached out of range).
    Memory(HwError),
}

impl From<HwError> for NvmeError {
    fn from(error: HwError) -> Self {
        NvmeError::Memory(error)
    }
}

impl From<NvmeError> for BlockError {
    fn from(error: NvmeError) -> Self {
        match error {
            NvmeError::CommandFailed { status, .. } => BlockError::Device(status as u32),
            NvmeError::CommandTimeout { .. } | NvmeError::ResetTimeout | NvmeError::ReadyTimeout => BlockError::Timeout,
            // The disk cannot be reached any more: a dead controller, or DMA memory gone.
            NvmeError::NotPresent | NvmeError::Unsupported(_) | NvmeError::Fatal | NvmeError::Memory(_) => {
                BlockError::Gone
            }
        }
    }
}

impl core::fmt::Display for NvmeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            NvmeError::NotPresent => f.write_str("no NVMe controller answers"),
            NvmeError::Unsupported(what) => write!(f, "unsupported NVMe controller: {what}"),
            NvmeError::ResetTimeout => f.write_str("NVMe controller did not reset in time"),
            NvmeError::ReadyTimeout => f.write_str("NVMe controller did not become ready in time"),
            NvmeError::Fatal => f.write_str("NVMe controller reported a fatal error"),
            NvmeError::CommandTimeout { opcode } => write!(f, "NVMe command {opcode:#04x} timed out"),
            NvmeError::CommandFailed { opcode, status } => {
                write!(f, "NVMe command {opcode:#04x} failed (status {status:#05x})")
            }
            NvmeError::Memory(error) => write!(f, "NVMe DMA memory: {error}"),
        }
    }
}

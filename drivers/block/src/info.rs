//! What a disk listing shows of a disk, whichever driver found it: the one description every disk
//! driver fills in (`describe`), so the storage service formats all disks alike.

use alloc::string::String;

/// A disk as the listing shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskInfo {
    /// The controller kind: "NVMe", "AHCI", "virtio-blk".
    pub controller: &'static str,
    pub model: String,
    pub serial: String,
    pub firmware: String,
    /// What `unit` numbers on the controller ("namespace", "port") and the number.
    pub unit_kind: &'static str,
    pub unit: u32,
    pub block_size: u32,
    pub block_count: u64,
    /// The disk has a volatile write cache (flushes matter).
    pub write_cache: bool,
}

impl DiskInfo {
    /// The size in bytes.
    pub fn size_bytes(&self) -> u64 {
        self.block_count.saturating_mul(self.block_size as u64)
    }
}

impl core::fmt::Display for DiskInfo {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{} {} (serial {}, firmware {}) {} {}: {} blocks of {} bytes",
            self.controller,
            self.model,
            self.serial,
            self.firmware,
            self.unit_kind,
            self.unit,
            self.block_count,
            self.block_size
        )
    }
}

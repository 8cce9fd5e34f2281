//! The numbers of the virtio 1.2 specification that Keel uses, defined once: the guest-facing
//! device models (`userland/virtio`) and the host's drivers (`drivers/virtio-blk`) both take them
//! from here, so the two sides cannot disagree about the spec.
//!
//! What it does not do: any logic. Register offsets are `usize` (a register window's offsets);
//! a user with another offset type converts at its own definitions.
#![no_std]
#![forbid(unsafe_code)]

/// The PCI vendor ID of virtio devices (4.1.2).
pub const PCI_VENDOR: u16 = 0x1AF4;
/// Modern (virtio 1.x) PCI device IDs are this plus the virtio device ID (4.1.2.1).
pub const PCI_DEVICE_MODERN_BASE: u16 = 0x1040;
/// The transitional virtio-blk's PCI device ID (4.1.2.3).
pub const PCI_DEVICE_TRANSITIONAL_BLOCK: u16 = 0x1001;

/// Virtio device IDs (5).
pub mod device_id {
    pub const NET: u16 = 1;
    pub const BLOCK: u16 = 2;
    pub const CONSOLE: u16 = 3;
    pub const ENTROPY: u16 = 4;
}

/// Device status bits (2.1).
pub mod status {
    pub const ACKNOWLEDGE: u8 = 1;
    pub const DRIVER: u8 = 2;
    pub const DRIVER_OK: u8 = 4;
    pub const FEATURES_OK: u8 = 8;
    pub const DEVICE_NEEDS_RESET: u8 = 64;
    pub const FAILED: u8 = 128;
}

/// Feature bits: the reserved ones (6) and virtio-blk's (5.2.3).
pub mod features {
    pub const RING_INDIRECT_DESC: u64 = 1 << 28;
    pub const RING_EVENT_IDX: u64 = 1 << 29;
    /// A virtio 1.x device.
    pub const VERSION_1: u64 = 1 << 32;
    /// The device reaches memory through the platform's translation (an IOMMU).
    pub const ACCESS_PLATFORM: u64 = 1 << 33;
    pub const BLK_SIZE_MAX: u64 = 1 << 1;
    pub const BLK_SEG_MAX: u64 = 1 << 2;
    pub const BLK_RO: u64 = 1 << 5;
    pub const BLK_BLK_SIZE: u64 = 1 << 6;
    pub const BLK_FLUSH: u64 = 1 << 9;
    pub const BLK_WRITE_ZEROES: u64 = 1 << 14;
}

/// The virtio-pci capability types (4.1.4).
pub mod cap_type {
    pub const COMMON: u8 = 1;
    pub const NOTIFY: u8 = 2;
    pub const ISR: u8 = 3;
    pub const DEVICE: u8 = 4;
}

/// The common configuration structure's fields (4.1.4.3, `struct virtio_pci_common_cfg`), as
/// offsets.
pub mod common {
    pub const DEVICE_FEATURE_SELECT: usize = 0x00;
    pub const DEVICE_FEATURE: usize = 0x04;
    pub const DRIVER_FEATURE_SELECT: usize = 0x08;
    pub const DRIVER_FEATURE: usize = 0x0C;
    pub const CONFIG_MSIX_VECTOR: usize = 0x10;
    pub const NUM_QUEUES: usize = 0x12;
    pub const DEVICE_STATUS: usize = 0x14;
    pub const CONFIG_GENERATION: usize = 0x15;
    pub const QUEUE_SELECT: usize = 0x16;
    pub const QUEUE_SIZE: usize = 0x18;
    pub const QUEUE_MSIX_VECTOR: usize = 0x1A;
    pub const QUEUE_ENABLE: usize = 0x1C;
    pub const QUEUE_NOTIFY_OFF: usize = 0x1E;
    pub const QUEUE_DESC: usize = 0x20;
    pub const QUEUE_DRIVER: usize = 0x28;
    pub const QUEUE_DEVICE: usize = 0x30;
    /// The structure's length.
    pub const LEN: usize = 0x38;
}

/// "No MSI-X vector" (4.1.4.3).
pub const NO_VECTOR: u16 = 0xFFFF;

/// ISR status bits (4.1.4.5).
pub mod isr {
    pub const QUEUE: u8 = 1;
    pub const CONFIG: u8 = 2;
}

/// Split virtqueue descriptor flags (2.7.5).
pub mod desc_flags {
    pub const NEXT: u16 = 1;
    pub const WRITE: u16 = 2;
}

/// The virtio-blk device configuration (5.2.4), as offsets.
pub mod blk_config {
    pub const CAPACITY: usize = 0;
    pub const SIZE_MAX: usize = 8;
    pub const SEG_MAX: usize = 12;
    pub const BLK_SIZE: usize = 20;
    pub const MAX_WRITE_ZEROES_SECTORS: usize = 48;
    pub const MAX_WRITE_ZEROES_SEG: usize = 52;
}

/// virtio-blk request types and header (5.2.6).
pub mod blk_request {
    pub const IN: u32 = 0;
    pub const OUT: u32 = 1;
    pub const FLUSH: u32 = 4;
    /// The device's serial number: 20 bytes, NUL-padded.
    pub const GET_ID: u32 = 8;
    pub const ID_LEN: usize = 20;
    pub const WRITE_ZEROES: u32 = 13;
    /// The request header: type, reserved, sector.
    pub const HEADER_LEN: usize = 16;
    /// One write-zeroes segment: sector, num_sectors, flags.
    pub const ZEROES_SEGMENT_LEN: usize = 16;
    /// Requests count in 512-byte sectors whatever the block size.
    pub const SECTOR: u64 = 512;
}

/// virtio-blk request statuses (5.2.6).
pub mod blk_status {
    pub const OK: u8 = 0;
    pub const IOERR: u8 = 1;
    pub const UNSUPP: u8 = 2;
}

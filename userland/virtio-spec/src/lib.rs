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
/// The transitional virtio-net's PCI device ID (4.1.2.3).
pub const PCI_DEVICE_TRANSITIONAL_NET: u16 = 0x1000;
/// The transitional virtio-console's PCI device ID (4.1.2.3).
pub const PCI_DEVICE_TRANSITIONAL_CONSOLE: u16 = 0x1003;
/// The transitional virtio-scsi's PCI device ID (4.1.2.3).
pub const PCI_DEVICE_TRANSITIONAL_SCSI: u16 = 0x1004;
/// The transitional entropy device's PCI device ID (4.1.2.3).
pub const PCI_DEVICE_TRANSITIONAL_ENTROPY: u16 = 0x1005;

/// Virtio device IDs (5).
pub mod device_id {
    pub const NET: u16 = 1;
    pub const BLOCK: u16 = 2;
    pub const CONSOLE: u16 = 3;
    pub const ENTROPY: u16 = 4;
    pub const SCSI: u16 = 8;
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

/// Feature bits: the reserved ones (6), virtio-net's (5.1.3) and virtio-blk's (5.2.3).
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
    pub const BLK_DISCARD: u64 = 1 << 13;
    pub const BLK_WRITE_ZEROES: u64 = 1 << 14;
    /// The device handles frames with a partial checksum (the driver may send NEEDS_CSUM).
    pub const NET_CSUM: u64 = 1 << 0;
    /// The driver handles frames with a partial checksum (the device may deliver NEEDS_CSUM).
    pub const NET_GUEST_CSUM: u64 = 1 << 1;
    /// The configuration's `mac` is the device's address.
    pub const NET_MAC: u64 = 1 << 5;
    /// The driver can merge receive buffers (the header then carries `num_buffers`).
    pub const NET_MRG_RXBUF: u64 = 1 << 15;
    /// The configuration's `status` exists.
    pub const NET_STATUS: u64 = 1 << 16;
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

/// The legacy (0.9.5) register block at the start of a transitional device's I/O BAR 0, without
/// MSI-X (4.1.4.8), as offsets; and the legacy virtqueue layout (2.7.2, 4.1.5.1.2 legacy).
pub mod legacy {
    /// Device features bits 0-31 (read-only).
    pub const DEVICE_FEATURES: usize = 0x00;
    /// Driver features bits 0-31.
    pub const DRIVER_FEATURES: usize = 0x04;
    /// The selected queue's address, in 4096-byte units (a page frame number).
    pub const QUEUE_ADDRESS: usize = 0x08;
    /// The selected queue's size (read-only: legacy drivers cannot choose it).
    pub const QUEUE_SIZE: usize = 0x0C;
    pub const QUEUE_SELECT: usize = 0x0E;
    pub const QUEUE_NOTIFY: usize = 0x10;
    pub const DEVICE_STATUS: usize = 0x12;
    pub const ISR_STATUS: usize = 0x13;
    /// Where the device-specific configuration starts when MSI-X is off.
    pub const DEVICE_CONFIG: usize = 0x14;
    /// QUEUE_ADDRESS counts in units of 1 << this.
    pub const QUEUE_ADDRESS_SHIFT: u32 = 12;
    /// The legacy queue layout's alignment of the used ring.
    pub const QUEUE_ALIGN: u64 = 4096;
}

/// virtio-net's queues without multiqueue or a control queue (5.1.2).
pub mod net_queue {
    pub const RECEIVE: u16 = 0;
    pub const TRANSMIT: u16 = 1;
}

/// The virtio-net device configuration (5.1.4), as offsets, up to `status` (no multiqueue, no
/// MTU, no speed or duplex).
pub mod net_config {
    pub const MAC: usize = 0;
    pub const STATUS: usize = 6;
    pub const LEN: usize = 8;
    /// `status` bits.
    pub const S_LINK_UP: u16 = 1;
    pub const S_ANNOUNCE: u16 = 2;
}

/// The header before every virtio-net frame, `struct virtio_net_hdr` (5.1.6), as offsets, and
/// the values of its fields.
pub mod net_hdr {
    pub const FLAGS: usize = 0;
    pub const GSO_TYPE: usize = 1;
    pub const HDR_LEN: usize = 2;
    pub const GSO_SIZE: usize = 4;
    pub const CSUM_START: usize = 6;
    pub const CSUM_OFFSET: usize = 8;
    pub const NUM_BUFFERS: usize = 10;
    /// Its length: with `num_buffers` (VIRTIO_F_VERSION_1 or VIRTIO_NET_F_MRG_RXBUF
    /// negotiated), without hash reporting.
    pub const LEN: usize = 12;
    /// Its length for a legacy driver without VIRTIO_NET_F_MRG_RXBUF: no `num_buffers`
    /// (5.1.6.1).
    pub const LEN_LEGACY: usize = 10;
    /// `flags`.
    pub const F_NEEDS_CSUM: u8 = 1;
    pub const F_DATA_VALID: u8 = 2;
    pub const F_RSC_INFO: u8 = 4;
    /// `gso_type`: not a segmentation offload.
    pub const GSO_NONE: u8 = 0;
}

/// The virtio-blk device configuration (5.2.4), as offsets.
pub mod blk_config {
    pub const CAPACITY: usize = 0;
    pub const SIZE_MAX: usize = 8;
    pub const SEG_MAX: usize = 12;
    pub const GEOMETRY: usize = 16;
    pub const BLK_SIZE: usize = 20;
    pub const TOPOLOGY: usize = 24;
    pub const WRITEBACK: usize = 32;
    pub const NUM_QUEUES: usize = 34;
    pub const MAX_DISCARD_SECTORS: usize = 36;
    pub const MAX_DISCARD_SEG: usize = 40;
    pub const DISCARD_SECTOR_ALIGNMENT: usize = 44;
    pub const MAX_WRITE_ZEROES_SECTORS: usize = 48;
    pub const MAX_WRITE_ZEROES_SEG: usize = 52;
    pub const WRITE_ZEROES_MAY_UNMAP: usize = 56;
    /// The structure up to and including the write-zeroes fields (no secure erase, no zones).
    pub const LEN: usize = 60;
}

/// virtio-blk request types and header (5.2.6).
pub mod blk_request {
    pub const IN: u32 = 0;
    pub const OUT: u32 = 1;
    pub const FLUSH: u32 = 4;
    /// The device's serial number: 20 bytes, NUL-padded.
    pub const GET_ID: u32 = 8;
    pub const ID_LEN: usize = 20;
    pub const DISCARD: u32 = 11;
    pub const WRITE_ZEROES: u32 = 13;
    /// A discard or write-zeroes segment's flag: the range may be unmapped.
    pub const SEGMENT_FLAG_UNMAP: u32 = 1;
    /// The request header: type, reserved, sector.
    pub const HEADER_LEN: usize = 16;
    /// One discard or write-zeroes segment: sector, num_sectors, flags.
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

/// The virtio-scsi device configuration (5.6.4), as offsets.
pub mod scsi_config {
    pub const NUM_QUEUES: usize = 0;
    pub const SEG_MAX: usize = 4;
    pub const MAX_SECTORS: usize = 8;
    pub const CMD_PER_LUN: usize = 12;
    pub const EVENT_INFO_SIZE: usize = 16;
    /// Writable by the driver.
    pub const SENSE_SIZE: usize = 20;
    /// Writable by the driver.
    pub const CDB_SIZE: usize = 24;
    pub const MAX_CHANNEL: usize = 28;
    pub const MAX_TARGET: usize = 30;
    pub const MAX_LUN: usize = 32;
    pub const LEN: usize = 36;
    /// The defaults of the two writable sizes (5.6.4).
    pub const DEFAULT_SENSE_SIZE: u32 = 96;
    pub const DEFAULT_CDB_SIZE: u32 = 32;
}

/// virtio-scsi's queues (5.6.2): control, event, then the request queues.
pub mod scsi_queue {
    pub const CONTROL: u16 = 0;
    pub const EVENT: u16 = 1;
    pub const REQUEST: u16 = 2;
}

/// virtio-scsi requests (5.6.6).
pub mod scsi_request {
    /// `struct virtio_scsi_req_cmd` up to the CDB: lun[8], id, task_attr, prio, crn.
    pub const CMD_HEADER_LEN: usize = 19;
    /// The response up to the sense bytes: sense_len, residual, status_qualifier, status,
    /// response.
    pub const RESPONSE_HEADER_LEN: usize = 12;
    pub const RESPONSE_SENSE_LEN: usize = 0;
    pub const RESPONSE_RESIDUAL: usize = 4;
    pub const RESPONSE_STATUS: usize = 10;
    pub const RESPONSE_RESPONSE: usize = 11;
    /// lun[0] of an addressed logical unit.
    pub const LUN_ADDRESSED: u8 = 1;
    /// Control queue request types (5.6.6.2).
    pub const T_TMF: u32 = 0;
    pub const T_AN_QUERY: u32 = 1;
    pub const T_AN_SUBSCRIBE: u32 = 2;
    /// Task management functions (5.6.6.2.1).
    pub const T_TMF_ABORT_TASK: u32 = 0;
    pub const T_TMF_ABORT_TASK_SET: u32 = 1;
    pub const T_TMF_CLEAR_ACA: u32 = 2;
    pub const T_TMF_CLEAR_TASK_SET: u32 = 3;
    pub const T_TMF_I_T_NEXUS_RESET: u32 = 4;
    pub const T_TMF_LOGICAL_UNIT_RESET: u32 = 5;
    pub const T_TMF_QUERY_TASK: u32 = 6;
    pub const T_TMF_QUERY_TASK_SET: u32 = 7;
    /// A TMF request: type, subtype, lun[8], id. Its response is one byte.
    pub const TMF_LEN: usize = 24;
    /// An asynchronous notification query or subscription: type, lun[8], event_requested. Its
    /// response: event_actual (le32), response (u8).
    pub const AN_LEN: usize = 16;
    pub const AN_RESPONSE_LEN: usize = 5;
}

/// virtio-scsi response codes (5.6.6.1, 5.6.6.2).
pub mod scsi_response {
    pub const OK: u8 = 0;
    pub const OVERRUN: u8 = 1;
    pub const ABORTED: u8 = 2;
    pub const BAD_TARGET: u8 = 3;
    pub const RESET: u8 = 4;
    pub const BUSY: u8 = 5;
    pub const TRANSPORT_FAILURE: u8 = 6;
    pub const TARGET_FAILURE: u8 = 7;
    pub const NEXUS_FAILURE: u8 = 8;
    pub const FAILURE: u8 = 9;
    /// Task management: the function completed (the same value as OK).
    pub const FUNCTION_COMPLETE: u8 = 0;
    pub const FUNCTION_SUCCEEDED: u8 = 10;
    pub const FUNCTION_REJECTED: u8 = 11;
    pub const INCORRECT_LUN: u8 = 12;
}

//! The controller registers in BAR0 (NVMe 1.4 3.1): their offsets, the fields of CAP, CC and
//! CSTS the driver uses, and where a queue's doorbell lies. Pure decoding: nothing here touches
//! the device.

/// Controller Capabilities, 64 bits. See: NVMe 1.4 3.1.1
pub const CAP: usize = 0x00;
/// Version. See: NVMe 1.4 3.1.2
pub const VS: usize = 0x08;
/// Controller Configuration. See: NVMe 1.4 3.1.5
pub const CC: usize = 0x14;
/// Controller Status. See: NVMe 1.4 3.1.6
pub const CSTS: usize = 0x1c;
/// Admin Queue Attributes. See: NVMe 1.4 3.1.8
pub const AQA: usize = 0x24;
/// Admin Submission Queue base address, 64 bits. See: NVMe 1.4 3.1.9
pub const ASQ: usize = 0x28;
/// Admin Completion Queue base address, 64 bits. See: NVMe 1.4 3.1.10
pub const ACQ: usize = 0x30;
/// The first doorbell. See: NVMe 1.4 3.1.24
pub const DOORBELLS: usize = 0x1000;

/// CC.EN: enable. See: NVMe 1.4 3.1.5
pub const CC_ENABLE: u32 = 1;
/// CSTS.RDY: the controller is ready to process commands.
pub const CSTS_READY: u32 = 1 << 0;
/// CSTS.CFS: Controller Fatal Status, only a reset recovers.
pub const CSTS_FATAL: u32 = 1 << 1;

/// The fields of CAP the driver reads. See: NVMe 1.4 3.1.1
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// Maximum Queue Entries Supported, as a count (CAP.MQES is 0-based).
    pub max_queue_entries: u32,
    /// Worst-case time for CSTS.RDY to follow CC.EN, in nanoseconds (CAP.TO, 500 ms units).
    pub ready_timeout_ns: u64,
    /// Doorbell Stride: the distance between doorbells in bytes (4 << CAP.DSTRD).
    pub doorbell_stride: usize,
    /// The NVM command set is supported (CAP.CSS bit 0).
    pub nvm_command_set: bool,
    /// CAP.MPSMIN: the smallest memory page is 2 ^ (12 + this) bytes.
    pub min_page_shift: u32,
    /// CAP.MPSMAX.
    pub max_page_shift: u32,
}

impl Capabilities {
    pub fn decode(cap: u64) -> Self {
        let field = |shift: u32, bits: u32| (cap >> shift) & ((1 << bits) - 1);
        // CAP.TO 0 would mean no wait at all; allow one unit (500 ms) at least.
        let timeout_units = field(24, 8).max(1);
        Capabilities {
            max_queue_entries: field(0, 16) as u32 + 1,
            ready_timeout_ns: timeout_units * 500_000_000,
            doorbell_stride: 4 << field(32, 4),
            nvm_command_set: field(37, 8) & 1 != 0,
            min_page_shift: 12 + field(48, 4) as u32,
            max_page_shift: 12 + field(52, 4) as u32,
        }
    }

    /// The offset of queue `queue`'s submission tail doorbell. See: NVMe 1.4 3.1.24
    pub fn submission_doorbell(&self, queue: u16) -> usize {
        DOORBELLS + (2 * queue as usize) * self.doorbell_stride
    }

    /// The offset of queue `queue`'s completion head doorbell. See: NVMe 1.4 3.1.25
    pub fn completion_doorbell(&self, queue: u16) -> usize {
        DOORBELLS + (2 * queue as usize + 1) * self.doorbell_stride
    }
}

/// The CC value that enables the controller: NVM command set (CSS 000b), memory pages of
/// 2 ^ `page_shift` bytes, round-robin arbitration, 64-byte submission and 16-byte completion
/// entries (IOSQES 6, IOCQES 4, which QEMU checks when an I/O queue is created).
/// See: NVMe 1.4 3.1.5
pub fn enabled_configuration(page_shift: u32) -> u32 {
    let mps = page_shift.saturating_sub(12) & 0xf;
    CC_ENABLE | (mps << 7) | (6 << 16) | (4 << 20)
}

/// AQA for admin queues of `entries` entries each (0-based fields). See: NVMe 1.4 3.1.8
pub fn admin_queue_attributes(entries: u16) -> u32 {
    let size = entries.saturating_sub(1) as u32 & 0xfff;
    size | (size << 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_decode() {
        // MQES 2047, CQR, TO 40 (20 s), DSTRD 1, CSS NVM, MPSMIN 0, MPSMAX 4.
        let cap = 2047 | 1 << 16 | 40 << 24 | 1 << 32 | 1 << 37 | 4 << 52;
        let caps = Capabilities::decode(cap);
        assert_eq!(caps.max_queue_entries, 2048);
        assert_eq!(caps.ready_timeout_ns, 20_000_000_000);
        assert_eq!(caps.doorbell_stride, 8);
        assert!(caps.nvm_command_set);
        assert_eq!((caps.min_page_shift, caps.max_page_shift), (12, 16));
        assert_eq!(caps.submission_doorbell(1), 0x1010);
        assert_eq!(caps.completion_doorbell(1), 0x1018);
        assert_eq!(Capabilities::decode(u64::MAX).max_queue_entries, 65536);
        assert_eq!(Capabilities::decode(0).ready_timeout_ns, 500_000_000);
    }

    #[test]
    fn configuration_values() {
        assert_eq!(enabled_configuration(12), 0x0046_0001);
        assert_eq!(enabled_configuration(13), 0x0046_0081);
        assert_eq!(admin_queue_attributes(32), 0x001f_001f);
    }
}

//! What the virtio-blk, virtio-scsi and virtio-net fuzz targets share: a backend that checks what
//! the device models ask of it, and a driver that sets a transitional device up through its
//! modern (BAR1) or legacy (I/O BAR0) registers, as Linux's virtio_pci_modern or
//! virtio_pci_legacy would, accepting all the offered features or some of them.

use keel_devices::pci::PciFunction;
use keel_virtio::pci::{common, COMMON};
use keel_virtio::{features, status, BackendError, BlockBackend, MemBackend, VirtioDevice, VirtioPci};
use keel_virtio_spec::legacy;

/// A backend that asserts the device models' promises: every range inside the image, at most
/// `chunk` bytes per call, and no modification when `read_only` (the CD-ROM never writes).
pub struct Checked {
    pub inner: MemBackend,
    pub chunk: usize,
    pub modified: bool,
}

impl Checked {
    fn check(&self, offset: u64, len: u64) {
        let end = offset.checked_add(len).expect("range overflows");
        assert!(end <= self.inner.size_bytes(), "range past the image: {offset}+{len}");
    }
    fn check_write(&mut self, offset: u64, len: u64) {
        assert!(!self.inner.read_only(), "a read-only image was modified");
        self.check(offset, len);
        self.modified = true;
    }
}

impl BlockBackend for Checked {
    fn size_bytes(&self) -> u64 {
        self.inner.size_bytes()
    }
    fn read_only(&self) -> bool {
        self.inner.read_only()
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BackendError> {
        assert!(buf.len() <= self.chunk);
        self.check(offset, buf.len() as u64);
        self.inner.read(offset, buf)
    }
    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), BackendError> {
        assert!(data.len() <= self.chunk);
        self.check_write(offset, data.len() as u64);
        self.inner.write(offset, data)
    }
    fn read_into(&mut self, offset: u64, len: u64, sink: &mut keel_virtio::backend::Sink<'_>) -> Result<(), BackendError> {
        assert!(len <= self.chunk as u64);
        self.check(offset, len);
        self.inner.read_into(offset, len, sink)
    }
    fn write_from(&mut self, offset: u64, len: u64, source: &mut keel_virtio::backend::Source<'_>) -> Result<(), BackendError> {
        assert!(len <= self.chunk as u64);
        self.check_write(offset, len);
        self.inner.write_from(offset, len, source)
    }
    fn flush(&mut self) -> Result<(), BackendError> {
        self.inner.flush()
    }
    fn discard(&mut self, offset: u64, len: u64) -> Result<(), BackendError> {
        self.check_write(offset, len);
        self.inner.discard(offset, len)
    }
    fn write_zeroes(&mut self, offset: u64, len: u64, may_unmap: bool) -> Result<(), BackendError> {
        self.check_write(offset, len);
        self.inner.write_zeroes(offset, len, may_unmap)
    }
}

pub fn write<D: VirtioDevice>(dev: &mut VirtioPci<D>, bar: usize, offset: u64, size: usize, value: u64) {
    dev.bar_write(bar, offset, &value.to_le_bytes()[..size], 0);
}

pub fn read<D: VirtioDevice>(dev: &mut VirtioPci<D>, bar: usize, offset: u64, size: usize) -> u64 {
    let mut b = [0u8; 8];
    dev.bar_read(bar, offset, &mut b[..size], 0);
    u64::from_le_bytes(b)
}

/// Where queue `q` lives: a 16 KiB area per queue from `base`.
pub fn queue_area(base: u64, q: u16) -> u64 {
    base + 0x4000 * u64::from(q)
}

/// Resets and sets up `queues` (indices) with the modern or the legacy interface; returns, per
/// queue index, its (size, available ring, used ring).
pub fn set_up<D: VirtioDevice>(dev: &mut VirtioPci<D>, legacy_mode: bool, base: u64, queues: &[u16]) -> [(u16, u64, u64); 4] {
    set_up_with(dev, legacy_mode, base, queues, u64::MAX)
}

/// [`set_up`] with the driver accepting only the offered features in `accept` (a modern driver
/// that drops VERSION_1 is refused FEATURES_OK and carries on regardless).
pub fn set_up_with<D: VirtioDevice>(
    dev: &mut VirtioPci<D>,
    legacy_mode: bool,
    base: u64,
    queues: &[u16],
    accept: u64,
) -> [(u16, u64, u64); 4] {
    let mut rings = [(0u16, 0u64, 0u64); 4];
    if legacy_mode {
        let io = 0;
        write(dev, io, legacy::DEVICE_STATUS as u64, 1, 0);
        write(dev, io, legacy::DEVICE_STATUS as u64, 1, u64::from(status::ACKNOWLEDGE | status::DRIVER));
        let offered = read(dev, io, legacy::DEVICE_FEATURES as u64, 4);
        write(dev, io, legacy::DRIVER_FEATURES as u64, 4, offered & accept);
        for &q in queues {
            write(dev, io, legacy::QUEUE_SELECT as u64, 2, u64::from(q));
            let size = read(dev, io, legacy::QUEUE_SIZE as u64, 2) as u16;
            let desc = queue_area(base, q);
            write(dev, io, legacy::QUEUE_ADDRESS as u64, 4, desc >> 12);
            let avail = desc + 16 * u64::from(size);
            let used = (avail + 6 + 2 * u64::from(size)).next_multiple_of(4096);
            rings[usize::from(q)] = (size, avail, used);
        }
        let s = status::ACKNOWLEDGE | status::DRIVER | status::DRIVER_OK;
        write(dev, io, legacy::DEVICE_STATUS as u64, 1, u64::from(s));
    } else {
        let m = 1;
        let st = |dev: &mut VirtioPci<D>, v: u8| write(dev, m, COMMON + common::DEVICE_STATUS, 1, u64::from(v));
        st(dev, 0);
        st(dev, status::ACKNOWLEDGE | status::DRIVER);
        write(dev, m, COMMON + common::DEVICE_FEATURE_SELECT, 4, 0);
        let lo = read(dev, m, COMMON + common::DEVICE_FEATURE, 4);
        write(dev, m, COMMON + common::DRIVER_FEATURE_SELECT, 4, 0);
        write(dev, m, COMMON + common::DRIVER_FEATURE, 4, lo & accept);
        write(dev, m, COMMON + common::DRIVER_FEATURE_SELECT, 4, 1);
        write(dev, m, COMMON + common::DRIVER_FEATURE, 4, 1 & (accept >> 32));
        st(dev, status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK);
        for &q in queues {
            let size = 16u16;
            let desc = queue_area(base, q);
            let avail = desc + 16 * u64::from(size);
            let used = (avail + 6 + 2 * u64::from(size)).next_multiple_of(4);
            write(dev, m, COMMON + common::QUEUE_SELECT, 2, u64::from(q));
            write(dev, m, COMMON + common::QUEUE_SIZE, 2, u64::from(size));
            write(dev, m, COMMON + common::QUEUE_DESC, 8, desc);
            write(dev, m, COMMON + common::QUEUE_DRIVER, 8, avail);
            write(dev, m, COMMON + common::QUEUE_DEVICE, 8, used);
            write(dev, m, COMMON + common::QUEUE_ENABLE, 2, 1);
            rings[usize::from(q)] = (size, avail, used);
        }
        st(dev, status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK | status::DRIVER_OK);
    }
    rings
}

/// Notifies queue `q` through the interface in use.
pub fn notify<D: VirtioDevice>(dev: &mut VirtioPci<D>, legacy_mode: bool, q: u16) {
    if legacy_mode {
        write(dev, 0, legacy::QUEUE_NOTIFY as u64, 2, u64::from(q));
    } else {
        write(dev, 1, keel_virtio::pci::NOTIFY + 4 * u64::from(q), 2, 0);
    }
}

/// The virtio-net features a fuzzed byte accepts: each bit one feature.
#[allow(dead_code)] // Used by the virtio-net targets only.
pub fn net_features(bits: u8) -> u64 {
    let choices = [
        features::NET_CSUM,
        features::NET_GUEST_CSUM,
        features::NET_MRG_RXBUF,
        features::RING_EVENT_IDX,
        features::VERSION_1,
        features::NET_MAC,
        features::NET_STATUS,
    ];
    choices.iter().enumerate().filter(|&(i, _)| bits & (1 << i) != 0).fold(0, |all, (_, &f)| all | f)
}

//! Host tests for virtio-net behind its transitional PCI transport, driven as Linux's
//! virtio_pci_modern and virtio_pci_legacy drivers drive it (both queues in one guest RAM):
//! feature negotiation and the configuration through either interface, frames sent by
//! notification and `process` and received with `deliver`, VIRTIO_F_EVENT_IDX suppressing
//! interrupts and notifications in both directions, and frames refused before DRIVER_OK or after
//! the driver broke the receive queue.

use keel_addr::Gpa;
use keel_devices::guest_memory::{GuestMemory, VecMemory};
use keel_devices::pci::PciFunction;
use keel_virtio_spec::legacy as reg;

use super::tests::{frame, tx_header, VecSink, MAC, MODERN};
use super::*;
use crate::pci::{common, COMMON, DEVICE_CFG, ISR, ISR_CONFIG, ISR_QUEUE, NOTIFY};
use crate::status;
use crate::testdriver::{Ring, DATA, DESC, RAM};

const MODERN_BAR: usize = 1;
const LEGACY_BAR: usize = 0;

struct Guest {
    dev: VirtioPci<VirtioNet<VecSink>>,
    mem: VecMemory,
    rx: Ring,
    tx: Ring,
    legacy: bool,
}

fn w(dev: &mut VirtioPci<VirtioNet<VecSink>>, bar: usize, offset: u64, size: usize, value: u64) {
    dev.bar_write(bar, offset, &value.to_le_bytes()[..size], 0);
}

fn r(dev: &mut VirtioPci<VirtioNet<VecSink>>, bar: usize, offset: u64, size: usize) -> u64 {
    let mut b = [0u8; 8];
    dev.bar_read(bar, offset, &mut b[..size], 0);
    u64::from_le_bytes(b)
}

fn device() -> VirtioPci<VirtioNet<VecSink>> {
    VirtioPci::transitional(VirtioNet::new(MAC, VecSink::default())).expect("virtio-net is transitional")
}

/// virtio_pci_modern's probe: reset, features (the device must offer exactly `MODERN`), the
/// driver's `accept`, FEATURES_OK, both queues at `size`, DRIVER_OK.
fn modern(accept: u64, size: u16) -> Guest {
    let mut dev = device();
    let st = |dev: &mut VirtioPci<VirtioNet<VecSink>>, s: u8| {
        w(dev, MODERN_BAR, COMMON + common::DEVICE_STATUS, 1, u64::from(s))
    };
    st(&mut dev, 0);
    st(&mut dev, status::ACKNOWLEDGE | status::DRIVER);
    let mut offered = 0;
    for select in 0..2 {
        w(&mut dev, MODERN_BAR, COMMON + common::DEVICE_FEATURE_SELECT, 4, select);
        offered |= r(&mut dev, MODERN_BAR, COMMON + common::DEVICE_FEATURE, 4) << (32 * select);
    }
    assert_eq!(offered, MODERN);
    for select in 0..2 {
        w(&mut dev, MODERN_BAR, COMMON + common::DRIVER_FEATURE_SELECT, 4, select);
        w(&mut dev, MODERN_BAR, COMMON + common::DRIVER_FEATURE, 4, (accept >> (32 * select)) & 0xFFFF_FFFF);
    }
    st(&mut dev, status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK);
    assert_ne!(dev.status() & status::FEATURES_OK, 0, "features accepted");
    let rings = [Ring::new(size, DESC), Ring::new(size, DESC + 0x8000)];
    for (q, ring) in rings.iter().enumerate() {
        w(&mut dev, MODERN_BAR, COMMON + common::QUEUE_SELECT, 2, q as u64);
        assert_eq!(r(&mut dev, MODERN_BAR, COMMON + common::QUEUE_SIZE, 2), u64::from(QUEUE_SIZE));
        w(&mut dev, MODERN_BAR, COMMON + common::QUEUE_SIZE, 2, u64::from(size));
        w(&mut dev, MODERN_BAR, COMMON + common::QUEUE_DESC, 8, ring.desc.0);
        w(&mut dev, MODERN_BAR, COMMON + common::QUEUE_DRIVER, 8, ring.avail.0);
        w(&mut dev, MODERN_BAR, COMMON + common::QUEUE_DEVICE, 8, ring.used.0);
        w(&mut dev, MODERN_BAR, COMMON + common::QUEUE_ENABLE, 2, 1);
    }
    st(&mut dev, status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK | status::DRIVER_OK);
    let [rx, tx] = rings;
    Guest { dev, mem: VecMemory::new(Gpa(0), RAM), rx, tx, legacy: false }
}

/// virtio_pci_legacy's probe: 32 feature bits, queues of the device's size by page frame
/// number in the legacy layout.
fn legacy(accept: u32) -> Guest {
    let mut dev = device();
    let io = LEGACY_BAR;
    w(&mut dev, io, reg::DEVICE_STATUS as u64, 1, 0);
    w(&mut dev, io, reg::DEVICE_STATUS as u64, 1, u64::from(status::ACKNOWLEDGE | status::DRIVER));
    assert_eq!(r(&mut dev, io, reg::DEVICE_FEATURES as u64, 4), MODERN & 0xFFFF_FFFF, "no VERSION_1 here");
    w(&mut dev, io, reg::DRIVER_FEATURES as u64, 4, u64::from(accept));
    let rings = [Ring::legacy(QUEUE_SIZE, DESC), Ring::legacy(QUEUE_SIZE, DESC + 0x4000)];
    for (q, ring) in rings.iter().enumerate() {
        w(&mut dev, io, reg::QUEUE_SELECT as u64, 2, q as u64);
        assert_eq!(r(&mut dev, io, reg::QUEUE_SIZE as u64, 2), u64::from(QUEUE_SIZE));
        w(&mut dev, io, reg::QUEUE_ADDRESS as u64, 4, ring.desc.0 >> 12);
    }
    w(&mut dev, io, reg::DEVICE_STATUS as u64, 1, u64::from(status::ACKNOWLEDGE | status::DRIVER | status::DRIVER_OK));
    let [rx, tx] = rings;
    Guest { dev, mem: VecMemory::new(Gpa(0), RAM), rx, tx, legacy: true }
}

impl Guest {
    fn notify(&mut self, q: u16) {
        if self.legacy {
            w(&mut self.dev, LEGACY_BAR, reg::QUEUE_NOTIFY as u64, 2, u64::from(q));
        } else {
            w(&mut self.dev, MODERN_BAR, NOTIFY + 4 * u64::from(q), 2, 0);
        }
    }

    /// Reads (and so clears) the ISR.
    fn isr(&mut self) -> u8 {
        if self.legacy {
            r(&mut self.dev, LEGACY_BAR, reg::ISR_STATUS as u64, 1) as u8
        } else {
            r(&mut self.dev, MODERN_BAR, ISR, 1) as u8
        }
    }

    /// Sends `f` with a header of `header_len` bytes from `at`: notify, process.
    fn send(&mut self, at: Gpa, header_len: usize, f: &[u8]) {
        let bytes = [tx_header(header_len, 0, 0, 0, 0), f.to_vec()].concat();
        assert!(self.mem.write(at, &bytes));
        self.tx.add_chain(&mut self.mem, &[(at, bytes.len() as u32, false)]);
        self.notify(TRANSMIT);
        self.dev.process(&mut self.mem);
    }

    fn post(&mut self, at: Gpa, len: u32) -> u16 {
        let head = self.rx.add_chain(&mut self.mem, &[(at, len, true)]);
        self.notify(RECEIVE);
        self.dev.process(&mut self.mem);
        head
    }
}

#[test]
fn identity_and_configuration() {
    let mut g = modern(MODERN, 16);
    let cfg = |g: &Guest, at: usize| {
        let mut b = [0u8; 4];
        g.dev.config().read(at, &mut b);
        u32::from_le_bytes(b)
    };
    assert_eq!(cfg(&g, 0x00), 0x1000_1AF4, "transitional network device");
    assert_eq!(cfg(&g, 0x2C), 0x0001_1AF4, "subsystem: virtio device 1");
    assert_eq!(cfg(&g, 0x08) >> 8, PCI_CLASS);
    assert_eq!(g.dev.negotiated_features(), MODERN);
    assert_eq!(g.dev.device().negotiated(), MODERN);
    let mut c = [0u8; 8];
    g.dev.bar_read(MODERN_BAR, DEVICE_CFG, &mut c, 0);
    assert_eq!(c, [0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 1, 0]);
    let mut c = [0u8; 8];
    g.dev.bar_read(LEGACY_BAR, reg::DEVICE_CONFIG as u64, &mut c, 0);
    assert_eq!(c, [0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 1, 0], "the same through the legacy BAR");
    assert_eq!(crate::pci::legacy_bar_size(8), Some(32));
    // A driver that accepts less negotiates less; a reset forgets it.
    let mut g = modern(features::VERSION_1 | features::NET_MAC, 16);
    assert_eq!(g.dev.device().negotiated(), features::VERSION_1 | features::NET_MAC);
    w(&mut g.dev, MODERN_BAR, COMMON + common::DEVICE_STATUS, 1, 0);
    assert_eq!((g.dev.negotiated_features(), g.dev.device().negotiated()), (0, 0));
}

/// Frames both ways through the transport, for a modern driver and a legacy one with and
/// without MRG_RXBUF (10- or 12-byte headers).
#[test]
fn frames_both_ways() {
    let cases = [
        (modern(MODERN, 16), 12),
        (legacy((features::NET_MAC | features::NET_STATUS) as u32), 10),
        (legacy((features::NET_MAC | features::NET_MRG_RXBUF | features::NET_CSUM) as u32), 12),
    ];
    for (mut g, header_len) in cases {
        let f = frame(200);
        g.send(DATA, header_len, &f);
        assert_eq!(g.dev.device().sink().frames, vec![(Checksum::Unverified, f.clone())]);
        assert_eq!(g.tx.take_used(&g.mem).len(), 1);
        assert!(g.dev.irq_level());
        assert_eq!(g.isr(), ISR_QUEUE);
        assert!(!g.dev.irq_level(), "reading the ISR clears it");

        let head = g.post(DATA + 0x1000, 2048);
        assert!(g.dev.device_mut().take_receive_notified());
        let got = g.dev.deliver(&mut g.mem, Checksum::Unverified, &f);
        assert_eq!(got, Ok(Delivered { buffers: 1, interrupt: true }));
        assert!(g.dev.irq_level());
        assert_eq!(g.rx.take_used(&g.mem), vec![(u32::from(head), (header_len + 200) as u32)]);
        let mut b = alloc::vec![0u8; header_len + 200];
        assert!(g.mem.read(DATA + 0x1000, &mut b));
        assert_eq!(b[header_len..], f[..]);
        if header_len == 12 {
            assert_eq!(b[10..12], [1, 0], "num_buffers");
        }
        let s = g.dev.device().stats();
        assert_eq!((s.tx_frames, s.rx_frames), (1, 1));
    }
}

/// With EVENT_IDX the device interrupts only at the driver's `used_event`, ignoring
/// NO_INTERRUPT, and writes `avail_event` so the driver notifies only when the device has taken
/// everything; without it, neither.
#[test]
fn event_idx_through_the_transport() {
    let mut g = modern(MODERN, 16);
    // Transmit: an interrupt only once the used entry at index 2 is written.
    g.tx.set_used_event(&mut g.mem, 2);
    g.tx.set_no_interrupt(&mut g.mem, true);
    for (i, expected) in [(0u64, false), (1, false), (2, true), (3, false)] {
        g.send(DATA + 0x100 * i, 12, &frame(60));
        assert_eq!(g.isr(), if expected { ISR_QUEUE } else { 0 }, "frame {i}");
        assert_eq!(g.tx.avail_event(&g.mem), i as u16 + 1, "caught up: notify me for the next one");
    }
    // Receive: the same through `deliver`.
    for i in 0..4u16 {
        g.post(DATA + 0x1000 * u64::from(i + 1), 2048);
    }
    assert_eq!(g.rx.avail_event(&g.mem), 0, "nothing taken yet: no notification needed");
    g.rx.set_used_event(&mut g.mem, 1);
    let mut interrupts = alloc::vec::Vec::new();
    for _ in 0..3 {
        interrupts.push(g.dev.deliver(&mut g.mem, Checksum::Unverified, &frame(60)).unwrap().interrupt);
    }
    assert_eq!(interrupts, [false, true, false]);
    assert_eq!(g.rx.avail_event(&g.mem), 3, "the device's next receive buffer");
    assert_eq!(g.rx.take_used(&g.mem).len(), 3);

    // Not negotiated: used_event ignored, avail_event never written, NO_INTERRUPT obeyed.
    let mut g = modern(MODERN & !features::RING_EVENT_IDX, 16);
    let avail_event_at = g.tx.used + 4 + 8 * 16;
    assert!(g.mem.write(avail_event_at, &0x5A5Au16.to_le_bytes()));
    g.tx.set_used_event(&mut g.mem, 7);
    g.send(DATA, 12, &frame(60));
    assert_eq!(g.isr(), ISR_QUEUE);
    assert_eq!(g.tx.avail_event(&g.mem), 0x5A5A);
    g.tx.set_no_interrupt(&mut g.mem, true);
    g.send(DATA, 12, &frame(60));
    assert_eq!(g.isr(), 0);
    assert_eq!(g.dev.device().stats().tx_frames, 2);
}

/// No frame reaches a driver that is not ready; one whose receive ring is broken puts the
/// device in DEVICE_NEEDS_RESET until the driver resets it.
#[test]
fn refused_until_ready_and_after_breaking() {
    let mut dev = device();
    let mut mem = VecMemory::new(Gpa(0), RAM);
    assert_eq!(dev.deliver(&mut mem, Checksum::Unverified, &frame(60)), Err(RxDrop::NotReady));
    assert_eq!(dev.device().stats().rx_drops, 1);
    assert!(mem.bytes().iter().all(|&b| b == 0), "nothing written");

    let mut g = modern(MODERN, 16);
    g.post(DATA, 2048);
    g.rx.set_avail_idx(&mut g.mem, 100);
    assert_eq!(g.dev.deliver(&mut g.mem, Checksum::Unverified, &frame(60)), Err(RxDrop::NotReady));
    assert_ne!(g.dev.status() & status::DEVICE_NEEDS_RESET, 0);
    assert_eq!(g.isr() & ISR_CONFIG, ISR_CONFIG);
    assert_eq!(g.dev.deliver(&mut g.mem, Checksum::Unverified, &frame(60)), Err(RxDrop::NotReady));
    assert_eq!(g.dev.device().stats().rx_drops, 2);
    // A transmit notification does nothing either.
    g.send(DATA + 0x4000, 12, &frame(60));
    assert!(g.dev.device().sink().frames.is_empty());

    // After a reset and a new set-up, frames flow again.
    let mut again = modern(MODERN, 16);
    again.post(DATA, 2048);
    assert_eq!(again.dev.deliver(&mut again.mem, Checksum::Unverified, &frame(60)).map(|d| d.buffers), Ok(1));
}

//! Host tests for the virtio PCI transport, through a `PciHost` as the monitor uses it: Linux's
//! virtio_pci_modern probe and virtio-rng traffic, feature negotiation, reset, error handling and
//! a random register stream.

use alloc::boxed::Box;
use alloc::vec::Vec;

use keel_devices::pci::{PciHost, CONFIG_ADDRESS, CONFIG_DATA, PORT_BASE};
use keel_devices::Device;

use super::*;
use crate::chacha20::ChaCha20Rng;
use crate::queue::{QueueError, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_WRITE};
use crate::rng::VirtioRng;
use crate::testdriver::{Driver, DATA};

const SLOT: u32 = 1;
const IRQ: u8 = 11;
const WINDOW: Gpa = Gpa(0xE000_0000);

fn cfg_read(host: &mut PciHost, reg: u32, size: usize) -> u32 {
    host.write(u64::from(CONFIG_ADDRESS - PORT_BASE), &(0x8000_0000 | SLOT << 11 | (reg & !3)).to_le_bytes(), 0);
    let mut b = [0u8; 4];
    host.read(u64::from(CONFIG_DATA + (reg & 3) as u16 - PORT_BASE), &mut b[..size], 0);
    u32::from_le_bytes(b)
}

/// A host with virtio-rng in slot 1, its BAR assigned as firmware would.
fn host() -> PciHost {
    let mut host = PciHost::new();
    let rng = VirtioPci::new(VirtioRng::new(ChaCha20Rng::from_seed([0x5E; 32])));
    host.insert(SLOT as usize, IRQ, Box::new(rng)).unwrap();
    host.assign_resources(WINDOW, 0x1000_0000, 0xC000, 0x1000).unwrap();
    host
}

/// What Linux's virtio_pci_find_capability and vp_modern_map_capability read: for each vendor
/// capability, (cfg_type, bar, offset, length, notify multiplier).
fn capabilities(host: &mut PciHost) -> Vec<(u8, u8, u32, u32, u32)> {
    assert_ne!(cfg_read(host, 0x06, 2) & 0x10, 0, "capability list");
    let mut caps = Vec::new();
    let mut at = cfg_read(host, 0x34, 1) & 0xFC;
    let mut guard = 0;
    while at != 0 {
        guard += 1;
        assert!(guard < 48, "capability loop");
        assert_eq!(cfg_read(host, at, 1), 0x09, "vendor-specific");
        let cfg_type = cfg_read(host, at + 3, 1) as u8;
        let bar = cfg_read(host, at + 4, 1) as u8;
        let offset = cfg_read(host, at + 8, 4);
        let length = cfg_read(host, at + 12, 4);
        let mult = if cfg_type == CAP_NOTIFY_CFG { cfg_read(host, at + 16, 4) } else { 0 };
        caps.push((cfg_type, bar, offset, length, mult));
        at = cfg_read(host, at + 1, 1) & 0xFC;
    }
    caps
}

struct Bar0 {
    base: Gpa,
}

impl Bar0 {
    fn r(&self, host: &mut PciHost, offset: u64, size: usize) -> u64 {
        let mut b = [0u8; 8];
        assert!(host.mmio_read(self.base + offset, &mut b[..size], 0));
        u64::from_le_bytes(b)
    }
    fn w(&self, host: &mut PciHost, offset: u64, size: usize, value: u64) {
        assert!(host.mmio_write(self.base + offset, &value.to_le_bytes()[..size], 0).is_some());
    }
    fn status(&self, host: &mut PciHost) -> u8 {
        self.r(host, COMMON + common::DEVICE_STATUS, 1) as u8
    }
    fn set_status(&self, host: &mut PciHost, s: u8) {
        self.w(host, COMMON + common::DEVICE_STATUS, 1, u64::from(s));
    }
    /// vp_iowrite64_twopart.
    fn w64(&self, host: &mut PciHost, offset: u64, value: u64) {
        self.w(host, offset, 4, value & 0xFFFF_FFFF);
        self.w(host, offset + 4, 4, value >> 32);
    }
    fn isr(&self, host: &mut PciHost) -> u8 {
        self.r(host, ISR, 1) as u8
    }
}

/// Linux's probe and virtio-rng setup: reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK, queue
/// 0 at `size`, DRIVER_OK. Returns the BAR and the driver.
fn linux_setup(host: &mut PciHost, size: u16) -> (Bar0, Driver) {
    assert_eq!(cfg_read(host, 0, 4), 0x1044_1AF4, "virtio 1.x entropy device");
    assert_eq!(cfg_read(host, 0x08, 1), 1, "revision 1");
    assert_eq!(cfg_read(host, 0x2C, 4), 0x1100_1AF4);
    assert_eq!(cfg_read(host, 0x3D, 1), 1, "INTA#");
    assert_eq!(cfg_read(host, 0x3C, 1), u32::from(IRQ), "routed by assign_resources");
    let bar_reg = cfg_read(host, 0x10, 4);
    assert_eq!(bar_reg & 0xF, 0, "32-bit memory BAR");
    let base = Gpa(u64::from(bar_reg & !0xF));
    assert!(base >= WINDOW);
    let caps = capabilities(host);
    for (cfg_type, min) in [(CAP_COMMON_CFG, common::LEN as u32), (CAP_ISR_CFG, 1), (CAP_NOTIFY_CFG, 2)] {
        let c = caps.iter().find(|c| c.0 == cfg_type).expect("capability present");
        assert_eq!(c.1, 0, "in BAR0");
        assert!(c.3 >= min && u64::from(c.2) + u64::from(c.3) <= BAR_SIZE);
    }
    assert!(!caps.iter().any(|c| c.0 == CAP_DEVICE_CFG), "virtio-rng has no device configuration");
    let notify = *caps.iter().find(|c| c.0 == CAP_NOTIFY_CFG).unwrap();
    assert_eq!(notify.4, NOTIFY_OFF_MULTIPLIER);
    let bar = Bar0 { base };

    // vp_reset: write 0, wait for 0.
    bar.set_status(host, 0);
    assert_eq!(bar.status(host), 0);
    bar.set_status(host, status::ACKNOWLEDGE);
    bar.set_status(host, status::ACKNOWLEDGE | status::DRIVER);
    bar.w(host, COMMON + common::DEVICE_FEATURE_SELECT, 4, 0);
    let lo = bar.r(host, COMMON + common::DEVICE_FEATURE, 4);
    bar.w(host, COMMON + common::DEVICE_FEATURE_SELECT, 4, 1);
    let hi = bar.r(host, COMMON + common::DEVICE_FEATURE, 4);
    let offered = hi << 32 | lo;
    assert_eq!(offered, features::VERSION_1);
    bar.w(host, COMMON + common::DRIVER_FEATURE_SELECT, 4, 0);
    bar.w(host, COMMON + common::DRIVER_FEATURE, 4, offered & 0xFFFF_FFFF);
    bar.w(host, COMMON + common::DRIVER_FEATURE_SELECT, 4, 1);
    bar.w(host, COMMON + common::DRIVER_FEATURE, 4, offered >> 32);
    let s = status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK;
    bar.set_status(host, s);
    assert_eq!(bar.status(host), s, "features accepted");

    assert_eq!(bar.r(host, COMMON + common::NUM_QUEUES, 2), 1);
    bar.w(host, COMMON + common::QUEUE_SELECT, 2, 0);
    assert_eq!(bar.r(host, COMMON + common::QUEUE_SIZE, 2), 256);
    assert_eq!(bar.r(host, COMMON + common::QUEUE_ENABLE, 2), 0);
    let d = Driver::new(size);
    bar.w(host, COMMON + common::QUEUE_SIZE, 2, u64::from(size));
    bar.w64(host, COMMON + common::QUEUE_DESC, d.desc.0);
    bar.w64(host, COMMON + common::QUEUE_DRIVER, d.avail.0);
    bar.w64(host, COMMON + common::QUEUE_DEVICE, d.used.0);
    assert_eq!(bar.r(host, COMMON + common::QUEUE_SIZE, 2), u64::from(size));
    assert_eq!(bar.r(host, COMMON + common::QUEUE_DESC, 8), d.desc.0);
    assert_eq!(bar.r(host, COMMON + common::QUEUE_NOTIFY_OFF, 2), 0);
    assert_eq!(bar.r(host, COMMON + common::QUEUE_MSIX_VECTOR, 2), u64::from(NO_VECTOR));
    bar.w(host, COMMON + common::QUEUE_ENABLE, 2, 1);
    assert_eq!(bar.r(host, COMMON + common::QUEUE_ENABLE, 2), 1);
    bar.set_status(host, s | status::DRIVER_OK);
    (bar, d)
}

fn notify(bar: &Bar0, host: &mut PciHost, queue: u16) {
    bar.w(host, NOTIFY + u64::from(queue) * u64::from(NOTIFY_OFF_MULTIPLIER), 2, u64::from(queue));
}

#[test]
fn linux_virtio_rng_round_trip() {
    let mut host = host();
    let (bar, mut d) = linux_setup(&mut host, 64);
    host.process(&mut d.mem);
    assert_eq!(host.irq_levels(), 0, "nothing available yet");
    let h = d.add_chain(&[(DATA, 64, true)]);
    notify(&bar, &mut host, 0);
    assert!(d.take_used().is_empty(), "nothing happens before process");
    host.process(&mut d.mem);
    assert_eq!(d.take_used(), vec![(u32::from(h), 64)]);
    assert_ne!(d.bytes(DATA, 64), vec![0u8; 64]);
    assert_eq!(host.irq_levels(), 1 << IRQ);
    assert_eq!(cfg_read(&mut host, 0x06, 2) & 0x08, 0x08, "interrupt status in config space");
    // vp_interrupt: read ISR (clears it), then the used ring.
    assert_eq!(bar.isr(&mut host), ISR_QUEUE);
    assert_eq!(host.irq_levels(), 0);
    assert_eq!(bar.isr(&mut host), 0);
    // Many requests, wrapping the 64-entry ring several times.
    for i in 0..300u64 {
        let h = d.add_chain(&[(DATA + (i % 16) * 64, 32, true)]);
        notify(&bar, &mut host, 0);
        host.process(&mut d.mem);
        assert_eq!(d.take_used(), vec![(u32::from(h), 32)]);
        assert_eq!(bar.isr(&mut host), ISR_QUEUE);
    }
    // Suppressed interrupts.
    d.set_no_interrupt(true);
    d.add_chain(&[(DATA, 8, true)]);
    notify(&bar, &mut host, 0);
    host.process(&mut d.mem);
    assert_eq!(d.take_used().len(), 1);
    assert_eq!(host.irq_levels(), 0);
    // A notify for a queue that does not exist is ignored.
    notify(&bar, &mut host, 5);
    host.process(&mut d.mem);
}

#[test]
fn nothing_before_driver_ok() {
    let mut host = host();
    let mut d = Driver::new(8);
    let bar = Bar0 { base: Gpa(u64::from(cfg_read(&mut host, 0x10, 4) & !0xF)) };
    bar.w64(&mut host, COMMON + common::QUEUE_DESC, d.desc.0);
    bar.w64(&mut host, COMMON + common::QUEUE_DRIVER, d.avail.0);
    bar.w64(&mut host, COMMON + common::QUEUE_DEVICE, d.used.0);
    bar.w(&mut host, COMMON + common::QUEUE_SIZE, 2, 8);
    bar.w(&mut host, COMMON + common::QUEUE_ENABLE, 2, 1);
    d.add_chain(&[(DATA, 8, true)]);
    notify(&bar, &mut host, 0);
    host.process(&mut d.mem);
    assert!(d.take_used().is_empty());
    // DRIVER_OK picks up what was already available.
    bar.set_status(&mut host, status::ACKNOWLEDGE | status::DRIVER | status::DRIVER_OK);
    host.process(&mut d.mem);
    assert_eq!(d.take_used().len(), 1);
    // FAILED stops it.
    bar.set_status(&mut host, status::ACKNOWLEDGE | status::DRIVER | status::DRIVER_OK | status::FAILED);
    d.add_chain(&[(DATA, 8, true)]);
    notify(&bar, &mut host, 0);
    host.process(&mut d.mem);
    assert!(d.take_used().is_empty());
}

#[test]
fn feature_negotiation() {
    let mut host = host();
    let bar = Bar0 { base: Gpa(u64::from(cfg_read(&mut host, 0x10, 4) & !0xF)) };
    let s = status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK;
    // Without VERSION_1: refused.
    bar.set_status(&mut host, status::ACKNOWLEDGE | status::DRIVER);
    bar.set_status(&mut host, s);
    assert_eq!(bar.status(&mut host) & status::FEATURES_OK, 0);
    // A bit that was not offered: refused.
    bar.set_status(&mut host, 0);
    bar.w(&mut host, COMMON + common::DRIVER_FEATURE_SELECT, 4, 1);
    bar.w(&mut host, COMMON + common::DRIVER_FEATURE, 4, 1 | 2);
    bar.set_status(&mut host, s);
    assert_eq!(bar.status(&mut host) & status::FEATURES_OK, 0);
    // Exactly VERSION_1: accepted; later feature writes are ignored.
    bar.set_status(&mut host, 0);
    bar.w(&mut host, COMMON + common::DRIVER_FEATURE_SELECT, 4, 1);
    bar.w(&mut host, COMMON + common::DRIVER_FEATURE, 4, 1);
    assert_eq!(bar.r(&mut host, COMMON + common::DRIVER_FEATURE, 4), 1);
    bar.set_status(&mut host, s);
    assert_eq!(bar.status(&mut host), s);
    bar.w(&mut host, COMMON + common::DRIVER_FEATURE, 4, 0xFFFF);
    assert_eq!(bar.r(&mut host, COMMON + common::DRIVER_FEATURE, 4), 1);
    // Feature words beyond 1 read 0.
    bar.w(&mut host, COMMON + common::DEVICE_FEATURE_SELECT, 4, 7);
    assert_eq!(bar.r(&mut host, COMMON + common::DEVICE_FEATURE, 4), 0);
    bar.w(&mut host, COMMON + common::DRIVER_FEATURE_SELECT, 4, 2);
    assert_eq!(bar.r(&mut host, COMMON + common::DRIVER_FEATURE, 4), 0);
    // MSI-X vectors cannot be set.
    bar.w(&mut host, COMMON + common::CONFIG_MSIX_VECTOR, 2, 0);
    assert_eq!(bar.r(&mut host, COMMON + common::CONFIG_MSIX_VECTOR, 2), u64::from(NO_VECTOR));
    // Reset clears everything.
    bar.set_status(&mut host, 0);
    assert_eq!(bar.status(&mut host), 0);
    bar.w(&mut host, COMMON + common::DRIVER_FEATURE_SELECT, 4, 1);
    assert_eq!(bar.r(&mut host, COMMON + common::DRIVER_FEATURE, 4), 0);
}

#[test]
fn queue_registers() {
    let mut host = host();
    let bar = Bar0 { base: Gpa(u64::from(cfg_read(&mut host, 0x10, 4) & !0xF)) };
    bar.w(&mut host, COMMON + common::QUEUE_SIZE, 2, 100);
    assert_eq!(bar.r(&mut host, COMMON + common::QUEUE_SIZE, 2), 256, "not a power of two");
    bar.w(&mut host, COMMON + common::QUEUE_SIZE, 2, 1024);
    assert_eq!(bar.r(&mut host, COMMON + common::QUEUE_SIZE, 2), 256, "above the maximum");
    bar.w(&mut host, COMMON + common::QUEUE_DESC, 8, 0x1234_5678_9ABC_DEF0);
    assert_eq!(bar.r(&mut host, COMMON + common::QUEUE_DESC, 8), 0x1234_5678_9ABC_DEF0);
    bar.w(&mut host, COMMON + common::QUEUE_DESC + 4, 4, 0);
    assert_eq!(bar.r(&mut host, COMMON + common::QUEUE_DESC, 8), 0x9ABC_DEF0);
    bar.w(&mut host, COMMON + common::QUEUE_ENABLE, 2, 0);
    assert_eq!(bar.r(&mut host, COMMON + common::QUEUE_ENABLE, 2), 0, "0 does not enable");
    bar.w(&mut host, COMMON + common::QUEUE_ENABLE, 2, 1);
    bar.w(&mut host, COMMON + common::QUEUE_DESC, 8, 0);
    assert_eq!(bar.r(&mut host, COMMON + common::QUEUE_DESC, 8), 0x9ABC_DEF0, "fixed once enabled");
    // A queue that does not exist.
    bar.w(&mut host, COMMON + common::QUEUE_SELECT, 2, 3);
    assert_eq!(bar.r(&mut host, COMMON + common::QUEUE_SIZE, 2), 0);
    assert_eq!(bar.r(&mut host, COMMON + common::QUEUE_ENABLE, 2), 0);
    bar.w(&mut host, COMMON + common::QUEUE_ENABLE, 2, 1);
    bar.w(&mut host, COMMON + common::QUEUE_DESC, 8, 0x1000);
    assert_eq!(bar.r(&mut host, COMMON + common::QUEUE_DESC, 8), 0);
    // Whole-block reads: unknown offsets read 0, the ISR's other bytes too, writes there do nothing.
    assert_eq!(bar.r(&mut host, COMMON + 0x38, 8), 0);
    assert_eq!(bar.r(&mut host, ISR + 1, 4), 0);
    assert_eq!(bar.r(&mut host, DEVICE_CFG, 4), 0);
    bar.w(&mut host, DEVICE_CFG, 4, 0xFFFF_FFFF);
    bar.w(&mut host, ISR, 1, 0xFF);
    assert_eq!(bar.isr(&mut host), 0);
    assert_eq!(bar.r(&mut host, NOTIFY, 2), 0);
    // One wide write across status, generation, select and size acts on each field in order.
    bar.w(&mut host, COMMON + common::DEVICE_STATUS, 8, 0x0040_0000_0000_0001);
    assert_eq!(bar.status(&mut host), status::ACKNOWLEDGE);
    assert_eq!(bar.r(&mut host, COMMON + common::QUEUE_SELECT, 2), 0);
    assert_eq!(bar.r(&mut host, COMMON + common::QUEUE_SIZE, 2), 256, "queue 0 is enabled: size fixed");
}

#[test]
fn protocol_errors_need_reset() {
    let mut host = host();
    let (bar, mut d) = linux_setup(&mut host, 8);
    // A self-looping chain.
    d.write_desc(0, DATA, 8, crate::queue::VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 0);
    d.publish(0);
    notify(&bar, &mut host, 0);
    host.process(&mut d.mem);
    assert_ne!(bar.status(&mut host) & status::DEVICE_NEEDS_RESET, 0);
    assert_eq!(host.irq_levels(), 1 << IRQ);
    assert_eq!(bar.isr(&mut host), ISR_CONFIG);
    // The driver cannot clear NEEDS_RESET; the device stays quiet.
    bar.set_status(&mut host, 0x0F);
    assert_ne!(bar.status(&mut host) & status::DEVICE_NEEDS_RESET, 0);
    d.add_chain(&[(DATA, 8, true)]);
    notify(&bar, &mut host, 0);
    host.process(&mut d.mem);
    assert!(d.take_used().is_empty());
    // Reset and set up again: works.
    let (bar, mut d) = linux_setup(&mut host, 8);
    assert_eq!(bar.status(&mut host) & status::DEVICE_NEEDS_RESET, 0);
    d.add_chain(&[(DATA, 8, true)]);
    notify(&bar, &mut host, 0);
    host.process(&mut d.mem);
    assert_eq!(d.take_used().len(), 1);
    // An indirect descriptor (not negotiated).
    d.write_desc(5, DATA, 32, VIRTQ_DESC_F_INDIRECT, 0);
    d.publish(5);
    notify(&bar, &mut host, 0);
    host.process(&mut d.mem);
    assert_ne!(bar.status(&mut host) & status::DEVICE_NEEDS_RESET, 0);
}

/// Issue 12: a driver lays a device-writable buffer over its own used index, in a chain that then
/// fails (its next buffer is outside RAM). The device writes the random bytes it was asked to,
/// stops (NEEDS_RESET), and the used index in RAM is still the device's: exactly the one request
/// it returned. Without the transport's `publish_used` the index read back was random.
#[test]
fn a_buffer_over_the_used_index_then_a_failing_chain() {
    use keel_devices::guest_memory::read_u16;
    let mut host = host();
    let (bar, mut d) = linux_setup(&mut host, 8);
    let ok = d.add_chain(&[(DATA, 8, true)]);
    d.add_chain(&[(d.used + 2, 2, true), (Gpa(1 << 40), 16, true)]);
    notify(&bar, &mut host, 0);
    host.process(&mut d.mem);
    assert_ne!(bar.status(&mut host) & status::DEVICE_NEEDS_RESET, 0);
    assert_eq!(read_u16(&d.mem, d.used + 2), Some(1), "the device's used index");
    assert_eq!(d.take_used(), vec![(u32::from(ok), 8)]);
    assert_eq!(bar.isr(&mut host), ISR_QUEUE | ISR_CONFIG);

    // The same buffer in a chain that succeeds: the device writes it, then returns the chain and
    // publishes its index after the data (2.7.8.2).
    let (bar, mut d) = linux_setup(&mut host, 8);
    let h = d.add_chain(&[(d.used + 2, 2, true)]);
    notify(&bar, &mut host, 0);
    host.process(&mut d.mem);
    assert_eq!(bar.status(&mut host) & status::DEVICE_NEEDS_RESET, 0);
    assert_eq!(d.take_used(), vec![(u32::from(h), 2)]);
    // A driver that overwrites its used index itself gets the device's back at the next pass.
    assert!(d.mem.write(d.used + 2, &0x8038u16.to_le_bytes()));
    notify(&bar, &mut host, 0);
    host.process(&mut d.mem);
    assert_eq!(read_u16(&d.mem, d.used + 2), Some(1));
}

#[test]
fn device_ids_for_other_types() {
    struct Net;
    impl VirtioDevice for Net {
        fn device_id(&self) -> u16 {
            crate::device_id::NET
        }
        fn num_queues(&self) -> u16 {
            100
        }
        fn max_queue_size(&self) -> u16 {
            1024
        }
        fn config_len(&self) -> u32 {
            8
        }
        fn read_config(&self, offset: u64, data: &mut [u8]) {
            for (i, b) in data.iter_mut().enumerate() {
                *b = 0xA0 + offset as u8 + i as u8;
            }
        }
        fn process_queue(&mut self, _: u16, _: &mut SplitQueue, _: &mut dyn GuestMemory) -> Result<(), QueueError> {
            Ok(())
        }
    }
    let mut dev = VirtioPci::new(Net);
    assert_eq!(dev.config().u16_at(2), 0x1041);
    assert_eq!(dev.queues.len(), usize::from(MAX_QUEUES), "capped");
    assert_eq!(dev.all_queues(), u64::MAX);
    let mut b = [0u8; 4];
    dev.bar_read(0, DEVICE_CFG + 4, &mut b, 0);
    assert_eq!(b, [0xA4, 0xA5, 0xA6, 0xA7]);
    dev.bar_read(0, DEVICE_CFG + 6, &mut b, 0);
    assert_eq!(b, [0; 4], "past the end of the device configuration");
    dev.bar_read(1, 0, &mut b, 0);
    dev.bar_write(1, 0, &b, 0);
    // Four capabilities, the last one the device configuration.
    let mut types = Vec::new();
    let mut at = usize::from(dev.config().u8_at(0x34));
    while at != 0 {
        types.push(dev.config().u8_at(at + 3));
        at = usize::from(dev.config().u8_at(at + 1));
    }
    assert_eq!(types, [CAP_COMMON_CFG, CAP_NOTIFY_CFG, CAP_ISR_CFG, CAP_DEVICE_CFG]);
    assert_eq!(dev.device().device_id(), 1);
    let _ = dev.device_mut();
    assert_eq!((dev.status(), dev.driver_features(), dev.isr()), (0, 0, 0));
    assert!(dev.queue(0).is_some() && dev.queue(64).is_none());
}

/// Random MMIO and memory: never panics, never loops, the ids survive.
#[test]
fn random_stream() {
    use keel_devices::guest_memory::VecMemory;
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut host = host();
    let base = Gpa(u64::from(cfg_read(&mut host, 0x10, 4) & !0xF));
    let mut mem = VecMemory::new(Gpa(0), 64 * 1024);
    for _ in 0..200_000 {
        let r = next();
        match r % 8 {
            0 => {
                // Scribble on guest memory where the rings might be.
                let at = next() % (64 * 1024 - 8);
                mem.write(Gpa(at), &next().to_le_bytes());
            }
            1 => host.process(&mut mem),
            _ => {
                let offset = match next() % 4 {
                    0 => COMMON + next() % 0x40,
                    1 => NOTIFY + next() % 8,
                    2 => ISR,
                    _ => next() % BAR_SIZE,
                };
                let size = [1usize, 2, 4, 8][(next() % 4) as usize];
                let value = match next() % 4 {
                    0 => next() % 0x1_0000,
                    1 => 0x0F,
                    _ => next(),
                };
                let mut b = value.to_le_bytes();
                if next() % 2 == 0 {
                    host.mmio_write(base + offset, &b[..size], 0);
                } else {
                    host.mmio_read(base + offset, &mut b[..size], 0);
                }
            }
        }
    }
    assert_eq!(cfg_read(&mut host, 0, 4), 0x1044_1AF4);
}

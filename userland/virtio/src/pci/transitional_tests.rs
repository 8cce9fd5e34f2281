//! Host tests for the transitional transport, through a `PciHost` as the monitor uses it, with a
//! virtio-blk behind it: the IDs and BARs a transitional device shows (4.1.2.3), Linux's modern
//! probe through BAR1's capabilities, and Linux's legacy probe (virtio_pci_legacy) through the
//! I/O BAR: 32-bit features without VERSION_1, the queue by page frame number in the legacy
//! layout, notify, ISR, and reset.

use alloc::boxed::Box;

use keel_devices::guest_memory::{read_u16, read_u32, GuestMemory, VecMemory};
use keel_devices::pci::{PciHost, CONFIG_ADDRESS, CONFIG_DATA, PORT_BASE};
use keel_devices::Device;
use keel_virtio_spec::{blk_request, blk_status, legacy};

use super::*;
use crate::backend::MemBackend;
use crate::blk::VirtioBlk;

const SLOT: u32 = 2;
const IRQ: u8 = 10;
const WINDOW: Gpa = Gpa(0xE000_0000);
const IO_BASE: u16 = 0xC000;

fn cfg_read(host: &mut PciHost, reg: u32, size: usize) -> u32 {
    host.write(u64::from(CONFIG_ADDRESS - PORT_BASE), &(0x8000_0000 | SLOT << 11 | (reg & !3)).to_le_bytes(), 0);
    let mut b = [0u8; 4];
    host.read(u64::from(CONFIG_DATA + (reg & 3) as u16 - PORT_BASE), &mut b[..size], 0);
    u32::from_le_bytes(b)
}

fn disk() -> MemBackend {
    let mut b = MemBackend::zeroed(64 * 1024);
    b.bytes_mut()[512..1024].fill(0xD5);
    b
}

fn host() -> PciHost {
    let mut host = PciHost::new();
    let blk = VirtioPci::transitional(VirtioBlk::new(disk(), b"serial")).unwrap();
    host.insert(SLOT as usize, IRQ, Box::new(blk)).unwrap();
    host.assign_resources(WINDOW, 0x1000_0000, IO_BASE, 0x1000).unwrap();
    host
}

fn io_r(host: &mut PciHost, base: u16, offset: usize, size: usize) -> u32 {
    let mut b = [0u8; 4];
    assert!(host.io_read(base + offset as u16, &mut b[..size], 0));
    u32::from_le_bytes(b)
}

fn io_w(host: &mut PciHost, base: u16, offset: usize, size: usize, value: u32) {
    assert!(host.io_write(base + offset as u16, &value.to_le_bytes()[..size], 0).is_some());
}

/// A one-request virtio-blk read of sector 1 laid out at `data`: returns the chain's buffers.
fn read_request(mem: &mut VecMemory, data: Gpa) -> [(Gpa, u32, u16); 3] {
    let mut h = [0u8; 16];
    h[..4].copy_from_slice(&blk_request::IN.to_le_bytes());
    h[8..].copy_from_slice(&1u64.to_le_bytes());
    assert!(mem.write(data, &h));
    let f = keel_virtio_spec::desc_flags::NEXT;
    let w = keel_virtio_spec::desc_flags::WRITE;
    [(data, 16, f), (data + 0x100, 512, f | w), (data + 0x400, 1, w)]
}

/// Writes descriptors 0..3 at `desc` and makes head 0 available at `avail`.
fn publish(mem: &mut VecMemory, desc: Gpa, avail: Gpa, bufs: &[(Gpa, u32, u16)], avail_idx: u16) {
    for (i, &(addr, len, flags)) in bufs.iter().enumerate() {
        let mut raw = [0u8; 16];
        raw[..8].copy_from_slice(&addr.0.to_le_bytes());
        raw[8..12].copy_from_slice(&len.to_le_bytes());
        raw[12..14].copy_from_slice(&flags.to_le_bytes());
        raw[14..].copy_from_slice(&(i as u16 + 1).to_le_bytes());
        assert!(mem.write(desc + 16 * i as u64, &raw));
    }
    assert!(mem.write(avail + 4 + 2 * u64::from(avail_idx - 1), &0u16.to_le_bytes()));
    assert!(mem.write(avail + 2, &avail_idx.to_le_bytes()));
}

#[test]
fn transitional_identity_and_bars() {
    let mut host = host();
    assert_eq!(cfg_read(&mut host, 0, 4), 0x1001_1AF4, "transitional virtio-blk");
    assert_eq!(cfg_read(&mut host, 0x08, 1), 0, "revision 0 (4.1.2.2)");
    assert_eq!(cfg_read(&mut host, 0x2C, 4), 0x0002_1AF4, "subsystem device ID = device type");
    assert_eq!(cfg_read(&mut host, 0x08, 4) >> 8, 0x01_0000, "class: mass storage");
    let bar0 = cfg_read(&mut host, 0x10, 4);
    assert_eq!(bar0 & 1, 1, "BAR0 is I/O");
    assert!(bar0 & !3 >= u32::from(IO_BASE));
    assert_eq!(legacy_bar_size(60), Some(128));
    assert_eq!(legacy_bar_size(36), Some(64));
    assert_eq!(legacy_bar_size(0), Some(32));
    assert_eq!(legacy_bar_size(300), None);
    let bar1 = cfg_read(&mut host, 0x14, 4);
    assert_eq!(bar1 & 0xF, 0, "BAR1 is 32-bit memory");
    let bar2 = cfg_read(&mut host, 0x18, 4);
    assert_eq!(bar2 & 1, 1, "BAR2 (the port BAR) is I/O");
    // The port BAR's notify (multiplier 0) and ISR first, then the memory BAR's four.
    let mut at = cfg_read(&mut host, 0x34, 1);
    let mut caps = Vec::new();
    while at != 0 {
        caps.push((cfg_read(&mut host, at + 3, 1) as u8, cfg_read(&mut host, at + 4, 1)));
        if caps.len() == 1 {
            assert_eq!(cfg_read(&mut host, at + 16, 4), 0, "notify_off_multiplier 0");
        }
        at = cfg_read(&mut host, at + 1, 1);
    }
    let expected = [
        (CAP_NOTIFY_CFG, 2),
        (CAP_ISR_CFG, 2),
        (CAP_COMMON_CFG, 1),
        (CAP_NOTIFY_CFG, 1),
        (CAP_ISR_CFG, 1),
        (CAP_DEVICE_CFG, 1),
    ];
    assert_eq!(caps, expected);
    // BAR sizing of the I/O BAR: all ones reads back the 128-byte mask with the I/O bit.
    host.write(u64::from(CONFIG_ADDRESS - PORT_BASE), &(0x8000_0000u32 | SLOT << 11 | 0x10).to_le_bytes(), 0);
    host.write(u64::from(CONFIG_DATA - PORT_BASE), &u32::MAX.to_le_bytes(), 0);
    assert_eq!(cfg_read(&mut host, 0x10, 4) & 0xFFFF, 0xFF81);
    // A device type without a transitional ID gets no transitional transport.
    struct Odd;
    impl VirtioDevice for Odd {
        fn device_id(&self) -> u16 {
            42
        }
        fn num_queues(&self) -> u16 {
            1
        }
        fn max_queue_size(&self) -> u16 {
            8
        }
        fn process_queue(
            &mut self,
            _: u16,
            _: &mut SplitQueue,
            _: &mut dyn GuestMemory,
        ) -> Result<(), crate::QueueError> {
            Ok(())
        }
    }
    assert!(VirtioPci::transitional(Odd).is_none());
}

#[test]
fn modern_driver_on_a_transitional_device() {
    let mut host = host();
    let base = Gpa(u64::from(cfg_read(&mut host, 0x14, 4) & !0xF));
    let w = |host: &mut PciHost, off: u64, size: usize, v: u64| {
        assert!(host.mmio_write(base + off, &v.to_le_bytes()[..size], 0).is_some());
    };
    let r = |host: &mut PciHost, off: u64, size: usize| {
        let mut b = [0u8; 8];
        assert!(host.mmio_read(base + off, &mut b[..size], 0));
        u64::from_le_bytes(b)
    };
    w(&mut host, COMMON + common::DEVICE_STATUS, 1, 0);
    w(&mut host, COMMON + common::DEVICE_STATUS, 1, u64::from(status::ACKNOWLEDGE | status::DRIVER));
    w(&mut host, COMMON + common::DEVICE_FEATURE_SELECT, 4, 1);
    assert_eq!(r(&mut host, COMMON + common::DEVICE_FEATURE, 4), 1, "VERSION_1 offered");
    w(&mut host, COMMON + common::DEVICE_FEATURE_SELECT, 4, 0);
    let lo = r(&mut host, COMMON + common::DEVICE_FEATURE, 4);
    assert_ne!(lo & features::BLK_FLUSH, 0);
    w(&mut host, COMMON + common::DRIVER_FEATURE_SELECT, 4, 0);
    w(&mut host, COMMON + common::DRIVER_FEATURE, 4, lo);
    w(&mut host, COMMON + common::DRIVER_FEATURE_SELECT, 4, 1);
    w(&mut host, COMMON + common::DRIVER_FEATURE, 4, 1);
    let s = status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK;
    w(&mut host, COMMON + common::DEVICE_STATUS, 1, u64::from(s));
    assert_eq!(r(&mut host, COMMON + common::DEVICE_STATUS, 1), u64::from(s));
    // Capacity from the device configuration: 128 sectors.
    assert_eq!(r(&mut host, DEVICE_CFG, 8), 128);
    let mut mem = VecMemory::new(Gpa(0), 1 << 20);
    let (desc, avail, used) = (Gpa(0x1_0000), Gpa(0x1_1000), Gpa(0x1_2000));
    w(&mut host, COMMON + common::QUEUE_SELECT, 2, 0);
    w(&mut host, COMMON + common::QUEUE_SIZE, 2, 16);
    w(&mut host, COMMON + common::QUEUE_DESC, 8, desc.0);
    w(&mut host, COMMON + common::QUEUE_DRIVER, 8, avail.0);
    w(&mut host, COMMON + common::QUEUE_DEVICE, 8, used.0);
    w(&mut host, COMMON + common::QUEUE_ENABLE, 2, 1);
    w(&mut host, COMMON + common::DEVICE_STATUS, 1, u64::from(s | status::DRIVER_OK));
    let bufs = read_request(&mut mem, Gpa(0x4_0000));
    publish(&mut mem, desc, avail, &bufs, 1);
    w(&mut host, NOTIFY, 2, 0);
    host.process(&mut mem);
    assert_eq!(read_u16(&mem, used + 2), Some(1));
    assert_eq!(read_u32(&mem, used + 8), Some(513));
    let mut status_byte = [0xFF];
    assert!(mem.read(Gpa(0x4_0400), &mut status_byte));
    assert_eq!(status_byte[0], blk_status::OK);
    let mut sector = [0u8; 512];
    assert!(mem.read(Gpa(0x4_0100), &mut sector));
    assert_eq!(sector, [0xD5; 512]);
    assert_eq!(host.irq_levels(), 1 << IRQ);
    assert_eq!(r(&mut host, ISR, 1), u64::from(ISR_QUEUE));
    assert_eq!(host.irq_levels(), 0);

    // The same through the port BAR: the queue's index to the shared notify register, the ISR
    // read (and cleared) there.
    let ports = (cfg_read(&mut host, 0x18, 4) & !3) as u16;
    publish(&mut mem, desc, avail, &bufs, 2);
    io_w(&mut host, ports, PIO_NOTIFY as usize, 2, 1);
    host.process(&mut mem);
    assert_eq!(read_u16(&mem, used + 2), Some(1), "queue 1 does not exist: nothing done");
    io_w(&mut host, ports, PIO_NOTIFY as usize, 2, 0);
    host.process(&mut mem);
    assert_eq!(read_u16(&mem, used + 2), Some(2));
    assert_eq!(host.irq_levels(), 1 << IRQ);
    assert_eq!(io_r(&mut host, ports, PIO_ISR as usize, 1), u32::from(ISR_QUEUE));
    assert_eq!(io_r(&mut host, ports, PIO_ISR as usize, 1), 0, "read clears");
    assert_eq!(host.irq_levels(), 0);
}

#[test]
fn legacy_driver_on_a_transitional_device() {
    let mut host = host();
    let io = (cfg_read(&mut host, 0x10, 4) & !3) as u16;
    // vp_legacy_probe / virtio_dev_probe: reset, ACKNOWLEDGE, DRIVER.
    io_w(&mut host, io, legacy::DEVICE_STATUS, 1, 0);
    assert_eq!(io_r(&mut host, io, legacy::DEVICE_STATUS, 1), 0);
    io_w(&mut host, io, legacy::DEVICE_STATUS, 1, u32::from(status::ACKNOWLEDGE | status::DRIVER));
    // 32 feature bits: the device's, no VERSION_1 (bit 32) to see or accept.
    let offered = io_r(&mut host, io, legacy::DEVICE_FEATURES, 4);
    assert_eq!(u64::from(offered), VirtioBlk::new(disk(), b"").features());
    // A bit that was not offered is dropped (there is no FEATURES_OK to refuse it by).
    io_w(&mut host, io, legacy::DRIVER_FEATURES, 4, offered | 1 << 27);
    assert_eq!(io_r(&mut host, io, legacy::DRIVER_FEATURES, 4), offered);
    // The device configuration at 0x14: capacity, and a byte at a time.
    assert_eq!(io_r(&mut host, io, legacy::DEVICE_CONFIG, 4), 128);
    assert_eq!(io_r(&mut host, io, legacy::DEVICE_CONFIG + 20, 1), 0, "blk_size low byte (512)");
    assert_eq!(io_r(&mut host, io, legacy::DEVICE_CONFIG + 21, 1), 2);
    // setup_vq: select, read the size (read-only), check the queue is not active, set its frame.
    io_w(&mut host, io, legacy::QUEUE_SELECT, 2, 0);
    let size = io_r(&mut host, io, legacy::QUEUE_SIZE, 2);
    assert_eq!(size, u32::from(crate::blk::QUEUE_SIZE));
    io_w(&mut host, io, legacy::QUEUE_SIZE, 2, 8);
    assert_eq!(io_r(&mut host, io, legacy::QUEUE_SIZE, 2), size, "read-only");
    assert_eq!(io_r(&mut host, io, legacy::QUEUE_ADDRESS, 4), 0);
    let pfn = 0x20u32;
    io_w(&mut host, io, legacy::QUEUE_ADDRESS, 4, pfn);
    assert_eq!(io_r(&mut host, io, legacy::QUEUE_ADDRESS, 4), pfn);
    // A queue that does not exist reads size 0.
    io_w(&mut host, io, legacy::QUEUE_SELECT, 2, 1);
    assert_eq!(io_r(&mut host, io, legacy::QUEUE_SIZE, 2), 0);
    io_w(&mut host, io, legacy::QUEUE_SELECT, 2, 0);
    io_w(&mut host, io, legacy::DEVICE_STATUS, 1, u32::from(status::ACKNOWLEDGE | status::DRIVER | status::DRIVER_OK));
    // The legacy layout (2.7.2): descriptors at the frame, the available ring after them, the
    // used ring at the next 4 KiB boundary.
    let size = size as u64;
    let desc = Gpa(u64::from(pfn) << 12);
    let avail = desc + 16 * size;
    let used = Gpa((avail.0 + 2 * (3 + size)).next_multiple_of(4096));
    assert_eq!(used, Gpa(0x2_2000));
    let mut mem = VecMemory::new(Gpa(0), 1 << 20);
    let bufs = read_request(&mut mem, Gpa(0x4_0000));
    publish(&mut mem, desc, avail, &bufs, 1);
    io_w(&mut host, io, legacy::QUEUE_NOTIFY, 2, 0);
    host.process(&mut mem);
    assert_eq!(read_u16(&mem, used + 2), Some(1), "used ring where a legacy driver looks");
    assert_eq!(read_u32(&mem, used + 8), Some(513));
    let mut sector = [0u8; 512];
    assert!(mem.read(Gpa(0x4_0100), &mut sector));
    assert_eq!(sector, [0xD5; 512]);
    // vp_interrupt: the ISR byte at 0x13, cleared by the read.
    assert_eq!(host.irq_levels(), 1 << IRQ);
    assert_eq!(io_r(&mut host, io, legacy::ISR_STATUS, 1), u32::from(ISR_QUEUE));
    assert_eq!(host.irq_levels(), 0);
    assert_eq!(io_r(&mut host, io, legacy::ISR_STATUS, 1), 0);
    // del_vq writes frame 0, then reset: the queue is gone.
    io_w(&mut host, io, legacy::QUEUE_ADDRESS, 4, 0);
    assert_eq!(io_r(&mut host, io, legacy::QUEUE_ADDRESS, 4), 0);
    io_w(&mut host, io, legacy::DEVICE_STATUS, 1, 0);
    assert_eq!(io_r(&mut host, io, legacy::DEVICE_STATUS, 1), 0);
    assert_eq!(io_r(&mut host, io, legacy::DRIVER_FEATURES, 4), 0);
    // Accesses past the registers and configuration read 0 and are ignored.
    assert_eq!(io_r(&mut host, io, 0x7C, 4), 0);
    io_w(&mut host, io, 0x7C, 4, u32::MAX);
}

#[test]
fn legacy_features_are_frozen_once_the_driver_is_ok() {
    let mut host = host();
    let io = (cfg_read(&mut host, 0x10, 4) & !3) as u16;
    io_w(&mut host, io, legacy::DRIVER_FEATURES, 4, features::BLK_FLUSH as u32);
    io_w(&mut host, io, legacy::DEVICE_STATUS, 1, u32::from(status::DRIVER_OK));
    io_w(&mut host, io, legacy::DRIVER_FEATURES, 4, 0);
    assert_eq!(io_r(&mut host, io, legacy::DRIVER_FEATURES, 4), features::BLK_FLUSH as u32);
    // A legacy driver cannot get FEATURES_OK: VERSION_1 was not accepted.
    io_w(&mut host, io, legacy::DEVICE_STATUS, 1, u32::from(status::DRIVER_OK | status::FEATURES_OK));
    assert_eq!(io_r(&mut host, io, legacy::DEVICE_STATUS, 1) & u32::from(status::FEATURES_OK), 0);
    // A 4-byte read at 0x10 covers the ISR byte: it clears it too.
    io_r(&mut host, io, 0x10, 4);
}

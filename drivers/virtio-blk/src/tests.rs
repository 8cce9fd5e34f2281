//! The driver against the fake device (`fake.rs`): initialisation and its failures, reads and
//! writes split to the device's limits, flush, write-zeroes, read-only, device errors, and
//! devices that stop answering or break the queue protocol (which must end in an error, never a
//! hang).

extern crate std;

use alloc::rc::Rc;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;

use keel_block::{BlockDevice, BlockError};
use keel_drv_pci::fake::{q35, q35_at};

use crate::fake::{Device, FakeBar, FakePlatform, Fault};
use crate::spec::{feature, request, status};
use crate::{find_layout, protocol_error, Options, VirtioBlk, VirtioError, BOUNCE_LEN};

type Driver = VirtioBlk<FakePlatform, FakeBar>;

const BASIC: u64 = feature::VERSION_1 | feature::BLK_FLUSH;
/// A request timeout of 100 ms: 100 of the fake platform's 1 ms waits.
const TIMEOUT_NS: u64 = 100_000_000;

fn options() -> Options {
    Options { request_timeout_ns: TIMEOUT_NS, ..Options::default() }
}

/// The driver over a fake device of `sectors` sectors offering `offered`, after `tweak`.
fn try_setup(
    sectors: usize,
    offered: u64,
    options: Options,
    tweak: impl FnOnce(&mut Device, &mut FakePlatform),
) -> (Result<Driver, VirtioError>, Rc<RefCell<Device>>) {
    let memory = Rc::new(RefCell::new(Vec::new()));
    let device = Rc::new(RefCell::new(Device::new(memory.clone(), sectors, offered)));
    let mut platform = FakePlatform::new(memory);
    tweak(&mut device.borrow_mut(), &mut platform);
    let layout = find_layout(&mut q35(), q35_at::VIRTIO_BLK).unwrap();
    (VirtioBlk::new(platform, FakeBar(device.clone()), layout, options), device)
}

fn setup(sectors: usize, offered: u64, tweak: impl FnOnce(&mut Device)) -> (Driver, Rc<RefCell<Device>>) {
    let (driver, device) = try_setup(sectors, offered, options(), |d, _| tweak(d));
    (driver.unwrap(), device)
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(7) ^ seed).collect()
}

#[test]
fn initialisation_negotiates_what_the_driver_knows() {
    let offered = BASIC | feature::BLK_SEG_MAX | (1 << 12) /* MQ */ | (1 << 13) /* DISCARD */;
    let (driver, device) = setup(2048, offered, |_| {});
    let info = *driver.info();
    assert_eq!(info.features, BASIC | feature::BLK_SEG_MAX);
    assert_eq!((info.capacity_sectors, info.block_size, info.read_only, info.queue_size), (2048, 512, false, 128));
    assert_eq!(driver.block_count(), 2048);
    let d = device.borrow();
    assert_eq!(d.status, status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK | status::DRIVER_OK);
    assert_eq!((d.queue_size, d.queue_enable), (128, 1));
    assert_eq!(d.driver_features, BASIC | feature::BLK_SEG_MAX);
}

#[test]
fn reads_and_writes_reach_the_disk() {
    let (mut driver, device) = setup(2048, BASIC, |_| {});
    let original = device.borrow().disk[5 * 512..8 * 512].to_vec();
    let mut buf = vec![0u8; 3 * 512];
    driver.read_blocks(5, &mut buf).unwrap();
    assert_eq!(buf, original);
    let data = pattern(10 * 512, 0x5A);
    driver.write_blocks(100, &data).unwrap();
    assert_eq!(&device.borrow().disk[100 * 512..110 * 512], &data[..]);
    let mut back = vec![0u8; 10 * 512];
    driver.read_blocks(100, &mut back).unwrap();
    assert_eq!(back, data);
    // More requests than the queue has entries: the rings wrap.
    for i in 0..300u64 {
        driver.read_blocks(i % 2048, &mut buf[..512]).unwrap();
    }
    assert_eq!(device.borrow().served.len(), 3 + 300);
}

#[test]
fn requests_are_split_to_seg_max_size_max_and_the_bounce_buffer() {
    let (mut driver, device) = setup(2048, BASIC | feature::BLK_SIZE_MAX | feature::BLK_SEG_MAX, |d| {
        d.size_max = 4096;
        d.seg_max = 4;
    });
    assert_eq!(driver.info().max_request_bytes, 16384);
    let mut buf = vec![0u8; 40 * 1024];
    driver.read_blocks(8, &mut buf).unwrap();
    let served: Vec<(u64, Vec<u32>)> = device.borrow().served.iter().map(|s| (s.sector, s.segments.clone())).collect();
    assert_eq!(served, [(8, vec![4096; 4]), (40, vec![4096; 4]), (72, vec![4096, 4096])]);
    assert_eq!(buf, device.borrow().disk[8 * 512..8 * 512 + 40 * 1024]);

    // An odd SIZE_MAX: segments of 1000 bytes, the request still whole blocks.
    let (mut driver, device) = setup(2048, BASIC | feature::BLK_SIZE_MAX | feature::BLK_SEG_MAX, |d| {
        d.size_max = 1000;
        d.seg_max = 3;
    });
    assert_eq!(driver.info().max_request_bytes, 2560);
    driver.write_blocks(0, &pattern(2560, 1)).unwrap();
    assert_eq!(device.borrow().served[0].segments, [1000, 1000, 560]);

    // No limits: one segment per request, the bounce buffer's size.
    let (mut driver, device) = setup(2048, BASIC, |_| {});
    let mut big = vec![0u8; 2 * BOUNCE_LEN + 4096];
    driver.read_blocks(0, &mut big).unwrap();
    let segments: Vec<Vec<u32>> = device.borrow().served.iter().map(|s| s.segments.clone()).collect();
    assert_eq!(segments, [vec![BOUNCE_LEN as u32], vec![BOUNCE_LEN as u32], vec![4096]]);
    assert_eq!(big, device.borrow().disk[..big.len()]);
}

#[test]
fn a_4k_block_size_counts_requests_in_512_byte_sectors() {
    let (mut driver, device) = setup(4096, BASIC | feature::BLK_BLK_SIZE, |d| d.blk_size = 4096);
    assert_eq!((driver.block_size(), driver.block_count()), (4096, 512));
    driver.write_blocks(3, &pattern(4096, 9)).unwrap();
    assert_eq!(device.borrow().served[0].sector, 24);
    assert_eq!(&device.borrow().disk[24 * 512..32 * 512], &pattern(4096, 9)[..]);
    // A block size that is no power of two is ignored.
    let (driver, _) = setup(4096, BASIC | feature::BLK_BLK_SIZE, |d| d.blk_size = 3000);
    assert_eq!(driver.block_size(), 512);
}

#[test]
fn flush_is_sent_only_when_offered() {
    let (mut driver, device) = setup(64, BASIC, |_| {});
    driver.flush().unwrap();
    assert_eq!(device.borrow().flushes, 1);
    assert_eq!(device.borrow().served[0].kind, request::FLUSH);
    let (mut driver, device) = setup(64, feature::VERSION_1, |_| {});
    driver.flush().unwrap();
    assert_eq!(device.borrow().served.len(), 0);
}

#[test]
fn write_zeroes_uses_the_command_or_zeroed_writes() {
    let (mut driver, device) = setup(4096, BASIC | feature::BLK_WRITE_ZEROES, |d| {
        d.write_zeroes_max_sectors = 64;
        d.write_zeroes_max_seg = 1;
    });
    driver.write_zeroes(10, 100).unwrap();
    let served: Vec<(u32, usize)> = device.borrow().served.iter().map(|s| (s.kind, s.segments.len())).collect();
    assert_eq!(served, [(request::WRITE_ZEROES, 1), (request::WRITE_ZEROES, 1)]);
    let disk = device.borrow().disk.clone();
    assert!(disk[10 * 512..110 * 512].iter().all(|&b| b == 0));
    assert!(disk[110 * 512..111 * 512].iter().any(|&b| b != 0));
    assert_eq!(driver.write_zeroes(4000, 97), Err(BlockError::OutOfRange));

    let (mut driver, device) = setup(4096, BASIC, |_| {});
    driver.write_zeroes(1, 300).unwrap();
    let disk = device.borrow().disk.clone();
    assert!(disk[512..301 * 512].iter().all(|&b| b == 0));
    assert!(device.borrow().served.iter().all(|s| s.kind == request::OUT));
    assert_eq!(device.borrow().served.len(), 3, "300 blocks in 128-block writes");
}

#[test]
fn a_read_only_device_refuses_writes_before_the_device_sees_them() {
    let (mut driver, device) = setup(64, BASIC | feature::BLK_RO, |_| {});
    assert!(driver.read_only());
    assert_eq!(driver.write_blocks(0, &[0u8; 512]), Err(BlockError::ReadOnly));
    assert_eq!(driver.write_zeroes(0, 1), Err(BlockError::ReadOnly));
    assert_eq!(driver.flush(), Err(BlockError::ReadOnly));
    assert_eq!(device.borrow().served.len(), 0);
    driver.read_blocks(0, &mut [0u8; 512]).unwrap();
}

#[test]
fn bad_requests_never_reach_the_device() {
    let (mut driver, device) = setup(64, BASIC, |_| {});
    assert_eq!(driver.read_blocks(64, &mut [0u8; 512]), Err(BlockError::OutOfRange));
    assert_eq!(driver.read_blocks(u64::MAX, &mut [0u8; 512]), Err(BlockError::OutOfRange));
    assert_eq!(driver.write_blocks(0, &[0u8; 100]), Err(BlockError::Misaligned));
    assert_eq!(driver.read_blocks(0, &mut []), Err(BlockError::Misaligned));
    assert_eq!(driver.write_zeroes(u64::MAX, 2), Err(BlockError::OutOfRange));
    assert_eq!(device.borrow().served.len(), 0);
}

#[test]
fn device_errors_are_reported_and_the_driver_goes_on() {
    let (mut driver, device) = setup(64, BASIC, |d| d.fault = Fault::Status(1));
    assert_eq!(driver.read_blocks(0, &mut [0u8; 512]), Err(BlockError::Device(1)));
    device.borrow_mut().fault = Fault::Status(2);
    assert_eq!(driver.flush(), Err(BlockError::Device(2)));
    device.borrow_mut().fault = Fault::NoStatus;
    assert_eq!(driver.write_blocks(0, &[0u8; 512]), Err(BlockError::Device(0xFF)));
    device.borrow_mut().fault = Fault::None;
    driver.read_blocks(0, &mut [0u8; 512]).unwrap();
    // The device's own range check: a disk that shrank under the driver.
    device.borrow_mut().disk.truncate(32 * 512);
    assert_eq!(driver.read_blocks(40, &mut [0u8; 512]), Err(BlockError::Device(1)));
}

#[test]
fn a_device_that_never_completes_times_out_then_is_gone() {
    let (mut driver, device) = setup(64, BASIC, |d| d.fault = Fault::NeverComplete);
    assert_eq!(driver.read_blocks(0, &mut [0u8; 512]), Err(BlockError::Timeout));
    let (platform, _) = driver_parts_peek(&driver);
    assert!((TIMEOUT_NS..TIMEOUT_NS + 2_000_000).contains(&platform), "waited {platform} ns");
    assert_eq!(device.borrow().status, 0, "reset so it lets go of the queue");
    device.borrow_mut().fault = Fault::None;
    assert_eq!(driver.read_blocks(0, &mut [0u8; 512]), Err(BlockError::Gone));
    assert_eq!(driver.flush(), Err(BlockError::Gone));
}

/// The fake clock's time and wait count.
fn driver_parts_peek(driver: &Driver) -> (u64, u64) {
    let platform = &driver.platform_for_tests();
    (platform.now, platform.waits)
}

#[test]
fn a_vanished_device_is_gone() {
    let (mut driver, device) = setup(64, BASIC, |_| {});
    device.borrow_mut().fault = Fault::Vanish;
    assert_eq!(driver.write_blocks(0, &[1u8; 512]), Err(BlockError::Gone));
    assert_eq!(driver.read_blocks(0, &mut [0u8; 512]), Err(BlockError::Gone));
}

#[test]
fn a_device_that_breaks_the_used_ring_is_given_up() {
    let (mut driver, device) = setup(64, BASIC, |d| d.fault = Fault::BadUsedIndex);
    let err = driver.read_blocks(0, &mut [0u8; 512]);
    assert_eq!(err, Err(BlockError::Device(protocol_error::BAD_USED_INDEX)));
    assert_eq!(device.borrow().status, 0);
    device.borrow_mut().fault = Fault::None;
    assert_eq!(driver.read_blocks(0, &mut [0u8; 512]), Err(BlockError::Gone));

    let (mut driver, _) = setup(64, BASIC, |d| d.fault = Fault::WrongUsedId);
    assert_eq!(driver.flush(), Err(BlockError::Device(protocol_error::BAD_USED_ID)));
}

#[test]
fn initialisation_failures() {
    let fails = |offered: u64, options: Options, tweak: fn(&mut Device, &mut FakePlatform)| {
        let (driver, device) = try_setup(64, offered, options, tweak);
        let status = device.borrow().status;
        (driver.err().unwrap(), status)
    };
    // A device a previous owner left running, which never finishes its reset.
    let (e, _) = fails(BASIC, options(), |d, _| {
        d.fault = Fault::StuckReset;
        d.status = status::DRIVER_OK;
    });
    assert_eq!(e, VirtioError::ResetTimeout);
    let (e, st) = fails(BASIC, options(), |d, _| d.fault = Fault::RefuseFeatures);
    assert_eq!(e, VirtioError::FeaturesRefused);
    assert_ne!(st & status::FAILED, 0);
    let (e, st) = fails(feature::BLK_FLUSH, options(), |_, _| {});
    assert_eq!(e, VirtioError::Unsupported("device lacks VIRTIO_F_VERSION_1"));
    assert_ne!(st & status::FAILED, 0);
    let with_vector = Options { msix_vector: Some(1), ..options() };
    assert_eq!(fails(BASIC, with_vector, |d, _| d.fault = Fault::RefuseVector).0, VirtioError::VectorRefused);
    let (e, _) = fails(BASIC, options(), |d, _| d.fault = Fault::RestlessGeneration);
    assert_eq!(e, VirtioError::Unsupported("configuration generation never settles"));
    assert_eq!(fails(BASIC, options(), |d, _| d.max_queue_size = 0).0, VirtioError::NoQueue);
    assert_eq!(fails(BASIC, options(), |d, _| d.max_queue_size = 2).0, VirtioError::NoQueue);
    let (e, _) = fails(BASIC | feature::BLK_SIZE_MAX | feature::BLK_SEG_MAX, options(), |d, _| {
        d.size_max = 100;
        d.seg_max = 2;
    });
    assert_eq!(e, VirtioError::Unsupported("SIZE_MAX and SEG_MAX allow less than one block"));
    let (e, _) = fails(BASIC, options(), |_, p| p.no_memory = true);
    assert_eq!(e, VirtioError::Hw(keel_drv_hal::HwError::NoMemory));

    // A layout reaching past the BAR.
    let memory = Rc::new(RefCell::new(Vec::new()));
    let device = Rc::new(RefCell::new(Device::new(memory.clone(), 64, BASIC)));
    let mut layout = find_layout(&mut q35(), q35_at::VIRTIO_BLK).unwrap();
    layout.notify.length = 0x2000;
    let result = VirtioBlk::new(FakePlatform::new(memory), FakeBar(device), layout, options());
    assert_eq!(result.err(), Some(VirtioError::BarTooSmall));
}

#[test]
fn an_odd_queue_size_is_rounded_down_to_a_power_of_two() {
    let (driver, device) = setup(64, BASIC, |d| d.max_queue_size = 100);
    assert_eq!(driver.info().queue_size, 64);
    assert_eq!(device.borrow().queue_size, 64);
}

#[test]
fn the_serial_number() {
    let (mut driver, device) = setup(64, BASIC, |_| {});
    assert_eq!(
        driver.serial().unwrap().map(|s| std::string::String::from(s.as_str())).as_deref(),
        Some("KEEL-FAKE-0001")
    );
    device.borrow_mut().serial = None;
    assert_eq!(driver.serial(), Ok(None));
    device.borrow_mut().serial = Some(b"\x01bad");
    assert_eq!(driver.serial(), Ok(None));
    device.borrow_mut().serial = Some(b"");
    assert_eq!(driver.serial(), Ok(None));
    driver.read_blocks(0, &mut [0u8; 512]).unwrap();
}

#[test]
fn the_ring_indices_wrap_at_65536() {
    let (mut driver, device) = setup(64, BASIC, |d| d.max_queue_size = 4);
    for _ in 0..65_540 {
        driver.flush().unwrap();
    }
    assert_eq!(device.borrow().flushes, 65_540);
    driver.read_blocks(1, &mut [0u8; 512]).unwrap();
}

//! Fuzz descriptor chains through the virtio-pci transport, driven as a guest driver drives it:
//! feature negotiation (sometimes wrong), queue setup through the common configuration (a size
//! that may be refused, rings placed like Linux does or anywhere: misaligned, overlapping each
//! other, outside RAM), DRIVER_OK, then rounds of notify, `process`, the ISR read an interrupt
//! handler does, more buffers made available, and sometimes a reset and a new setup. Guest RAM
//! (descriptor table, rings, buffers) is the input, so every index, flag, length and address is
//! hostile; a buffer may overlap any ring.
//!
//! Checks what the device guarantees, whatever the driver did:
//! - no panic; a walk of any chain is never longer than the queue;
//! - after a pass over the queue, the used index in RAM is the device's (the transport publishes
//!   it again last, virtio 1.2 2.7.8), and a pass returns at most a queue's worth of buffers;
//! - nothing in RAM changes when the device was not asked to (no notify, not DRIVER_OK, or in
//!   DEVICE_NEEDS_RESET: it does nothing more until reset, 2.1.2);
//! - FEATURES_OK stays set only for exactly VERSION_1 (3.1.1); NEEDS_RESET raises the
//!   configuration interrupt and only a reset clears it; buffers returned without
//!   VIRTQ_AVAIL_F_NO_INTERRUPT raise the queue interrupt (2.7.10); INTx follows the ISR, and
//!   reading the ISR clears it (4.1.4.5);
//! - bytes served stay within 4 KiB per request.
//!
//! Does not: check which bytes the device wrote (an overlapping buffer makes the ring contents
//! whatever the driver asked for), or drive the PCI host's configuration space (`pci_stream`).
#![no_main]

use keel_addr::Gpa;
use keel_devices::guest_memory::{read_u16, GuestMemory, VecMemory};
use keel_devices::pci::PciFunction;
use keel_virtio::pci::{common, COMMON, ISR, ISR_CONFIG, ISR_QUEUE, NOTIFY, NOTIFY_OFF_MULTIPLIER};
use keel_virtio::queue::VIRTQ_AVAIL_F_NO_INTERRUPT;
use keel_virtio::rng::{MAX_BYTES_PER_REQUEST, QUEUE_SIZE};
use keel_virtio::{features, status, ChaCha20Rng, SplitQueue, VirtioPci, VirtioRng};
use libfuzzer_sys::fuzz_target;

const RAM: usize = 64 * 1024;
/// Where the input's RAM image starts (the descriptor table, in the Linux layout).
const RINGS: u64 = 0x1000;
/// The fixed header: shape, layout, negotiation, placement (2 bytes), rounds (4 bytes).
const HEADER: usize = 9;

type Device = VirtioPci<VirtioRng<ChaCha20Rng>>;

/// How the driver sets the device up, from the header.
#[derive(Clone, Copy)]
struct Setup {
    shape: u8,
    layout: u8,
    negotiation: u8,
    placement: u64,
}

fn read(dev: &mut Device, offset: u64, size: usize) -> u64 {
    let mut b = [0u8; 8];
    dev.bar_read(0, offset, &mut b[..size], 0);
    u64::from_le_bytes(b)
}

fn write(dev: &mut Device, offset: u64, size: usize, value: u64) {
    dev.bar_write(0, offset, &value.to_le_bytes()[..size], 0);
}

fn set_status(dev: &mut Device, s: u8) {
    write(dev, COMMON + common::DEVICE_STATUS, 1, u64::from(s));
}

fn dev_status(dev: &mut Device) -> u8 {
    read(dev, COMMON + common::DEVICE_STATUS, 1) as u8
}

/// A 64-bit queue address, in one access or two 32-bit halves (what Linux does).
fn write_addr(dev: &mut Device, offset: u64, value: u64, halves: bool) {
    if halves {
        write(dev, COMMON + offset, 4, value & 0xFFFF_FFFF);
        write(dev, COMMON + offset + 4, 4, value >> 32);
    } else {
        write(dev, COMMON + offset, 8, value);
    }
}

/// Reset, negotiation and queue 0's setup as a driver does them (3.1.1, 4.1.5.1.3); returns the
/// queue size the device took and the three ring addresses, or None if the driver gave up.
fn set_up(dev: &mut Device, s: Setup) -> Option<(u16, u64, u64, u64)> {
    set_status(dev, 0);
    assert_eq!(dev_status(dev), 0, "reset reads back 0 at once");
    assert_eq!(dev.isr(), 0);
    set_status(dev, status::ACKNOWLEDGE | status::DRIVER);
    let mut offered = 0u64;
    for word in 0..3u64 {
        write(dev, COMMON + common::DEVICE_FEATURE_SELECT, 4, word);
        offered |= read(dev, COMMON + common::DEVICE_FEATURE, 4) << (32 * word).min(63);
    }
    assert_eq!(offered, features::VERSION_1, "virtio-rng offers VERSION_1 only");
    let n = s.negotiation;
    let lo = if n & 1 != 0 { features::RING_INDIRECT_DESC } else { 0 };
    let hi = if n & 2 != 0 { 0 } else { features::VERSION_1 >> 32 };
    write(dev, COMMON + common::DRIVER_FEATURE_SELECT, 4, 0);
    write(dev, COMMON + common::DRIVER_FEATURE, 4, lo);
    write(dev, COMMON + common::DRIVER_FEATURE_SELECT, 4, 1);
    write(dev, COMMON + common::DRIVER_FEATURE, 4, hi);
    let negotiating = status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK;
    set_status(dev, negotiating);
    let accepted = lo == 0 && hi == 1;
    assert_eq!(dev_status(dev) & status::FEATURES_OK != 0, accepted, "FEATURES_OK only for exactly VERSION_1");
    if !accepted && n & 4 == 0 {
        // A correct driver gives up (3.1.1); a hostile one goes on regardless.
        set_status(dev, status::FAILED);
        return None;
    }
    assert_eq!(read(dev, COMMON + common::NUM_QUEUES, 2), 1);
    write(dev, COMMON + common::QUEUE_SELECT, 2, 0);
    assert_eq!(read(dev, COMMON + common::QUEUE_SIZE, 2), u64::from(QUEUE_SIZE));
    let wanted = if n & 8 != 0 { u64::from(s.shape) * 3 } else { 1 << (s.shape % 9) };
    write(dev, COMMON + common::QUEUE_SIZE, 2, wanted);
    // The size the device took (a refused size leaves the maximum), as a driver reads it back.
    let size = read(dev, COMMON + common::QUEUE_SIZE, 2) as u16;
    assert!(size.is_power_of_two() && size <= QUEUE_SIZE);
    let l = s.layout;
    let desc = RINGS + u64::from(l & 1) * 8;
    let avail = if l & 8 != 0 { s.placement << 1 } else { RINGS + 16 * u64::from(size) + u64::from(l >> 1 & 1) };
    let used = (avail + 6 + 2 * u64::from(size) + 3) & !3;
    let used = if l & 4 == 0 {
        used
    } else if l & 0x80 != 0 {
        1 << 40
    } else {
        s.placement << 2
    };
    let halves = l & 0x10 != 0;
    write_addr(dev, common::QUEUE_DESC, desc, halves);
    write_addr(dev, common::QUEUE_DRIVER, avail, halves);
    write_addr(dev, common::QUEUE_DEVICE, used, halves);
    assert_eq!(read(dev, COMMON + common::QUEUE_DEVICE, 8), used);
    if l & 0x20 == 0 {
        write(dev, COMMON + common::QUEUE_ENABLE, 2, 1);
    }
    let s = dev_status(dev);
    set_status(dev, s | status::DRIVER_OK);
    Some((size, desc, avail, used))
}

fn live(dev: &Device) -> bool {
    dev.status() & status::DRIVER_OK != 0 && dev.status() & (status::FAILED | status::DEVICE_NEEDS_RESET) == 0
}

fuzz_target!(|data: &[u8]| {
    let Some((header, image)) = data.split_first_chunk::<HEADER>() else { return };
    let [shape, layout, negotiation, p0, p1, rounds @ ..] = *header;
    let setup = Setup { shape, layout, negotiation, placement: u64::from(u16::from_le_bytes([p0, p1])) };
    let mut mem = VecMemory::new(Gpa(0), RAM);
    let take = image.len().min(RAM - RINGS as usize);
    mem.write(Gpa(RINGS), &image[..take]);

    let mut dev = VirtioPci::new(VirtioRng::new(ChaCha20Rng::from_seed([0x42; 32])));
    let Some((mut size, desc, mut avail, mut used)) = set_up(&mut dev, setup) else { return };

    // The walk alone, on a queue of the same shape: never more descriptors than the queue has.
    let mut q = SplitQueue::new(QUEUE_SIZE);
    if q.set_size(size) && q.set_addresses(Gpa(desc), Gpa(avail), Gpa(used)) {
        q.enable();
        for head in [0, u16::from(layout), size.wrapping_sub(1)] {
            let mut count = 0u32;
            let _ = q.for_each_desc(&mut mem, head, |_, _| {
                count += 1;
                Ok(())
            });
            assert!(count <= u32::from(size));
        }
    }

    // DRIVER_OK marks every queue: the first `process` looks at queue 0 even without a notify.
    let mut marked = true;
    for op in rounds {
        match op & 3 {
            0 => {
                write(&mut dev, NOTIFY, 2, 0);
                marked = true;
            }
            // A notify for a queue that does not exist marks nothing.
            1 => write(&mut dev, NOTIFY + u64::from(op >> 2) * u64::from(NOTIFY_OFF_MULTIPLIER) + 4, 2, 1),
            2 => {}
            _ => {
                let Some(s) = set_up(&mut dev, setup) else { return };
                (size, _, avail, used) = s;
                assert_eq!(dev.queue(0).map(|q| q.indices()), Some((0, 0)));
                marked = true;
            }
        }
        let queue_on = dev.queue(0).is_some_and(|q| q.enabled());
        let serviced = marked && live(&dev) && queue_on;
        let before = mem.bytes().to_vec();
        let (_, used_before) = dev.queue(0).map_or((0, 0), |q| q.indices());
        let needed_reset = dev.status() & status::DEVICE_NEEDS_RESET != 0;
        dev.process(&mut mem);
        // `process` takes the marks whether or not it could serve them.
        marked = false;
        let (_, next_used) = dev.queue(0).map_or((0, 0), |q| q.indices());
        // Rings not aligned as 2.7 requires: the device refuses to touch them at all.
        let aligned = desc % 16 == 0 && avail % 2 == 0 && used % 4 == 0;
        if !serviced || !aligned {
            assert!(mem.bytes() == &before[..], "RAM changed without a pass over the queue");
            assert_eq!(next_used, used_before);
        } else {
            if let Some(idx) = read_u16(&mem, Gpa(used + 2)) {
                assert_eq!(idx, next_used, "the used index in RAM is the device's");
            }
            assert!(next_used.wrapping_sub(used_before) <= size, "at most a queue's worth per pass");
            let no_interrupt = read_u16(&mem, Gpa(avail)).is_some_and(|f| f & VIRTQ_AVAIL_F_NO_INTERRUPT != 0);
            if next_used != used_before && !no_interrupt {
                assert_ne!(dev.isr() & ISR_QUEUE, 0, "returned buffers raise the queue interrupt");
            }
        }
        let needs_reset = dev.status() & status::DEVICE_NEEDS_RESET != 0;
        assert!(needs_reset || !needed_reset, "only a reset clears NEEDS_RESET");
        if needs_reset && !needed_reset {
            assert_ne!(dev.isr() & ISR_CONFIG, 0, "NEEDS_RESET raises the configuration interrupt");
        }
        // The interrupt handler: INTx follows the ISR, and reading the ISR clears both.
        assert_eq!(dev.irq_level(), dev.isr() != 0);
        if op & 4 != 0 {
            let isr = read(&mut dev, ISR, 1) as u8;
            assert_eq!(isr & !(ISR_QUEUE | ISR_CONFIG), 0);
            assert!(!dev.irq_level() && dev.isr() == 0);
        }
        // More buffers "made available": the available index moves by an input-chosen amount
        // (wrap-around and "too far ahead" included).
        if let Some(idx) = read_u16(&mem, Gpa(avail + 2)) {
            mem.write(Gpa(avail + 2), &idx.wrapping_add(u16::from(op >> 3)).to_le_bytes());
        }
    }
    let rng = dev.device();
    assert!(rng.bytes_served() <= rng.requests() * u64::from(MAX_BYTES_PER_REQUEST));
});

//! Fuzz the guest's virtio-net receive path: a transitional device set up through its modern or
//! legacy registers with a fuzzed subset of the offered features (10- or 12-byte header, merged
//! buffers or not, GUEST_CSUM or software checksum completion, EVENT_IDX), then rounds of
//! `deliver` with frames of fuzzed length (empty to one byte past the largest) and checksum
//! state (partial offsets anywhere), receive-queue notifications, ISR reads and "more buffers
//! available". Guest RAM (descriptor table, rings, receive buffers) is the input, so every
//! buffer address, length, flag and chain shape is hostile, and buffers may overlap the rings.
//!
//! Checks: no panic; a delivered frame took at least one buffer, exactly one without
//! MRG_RXBUF, and the device returned exactly those; a frame refused for want of room or as
//! malformed took nothing; bad buffers are returned (taken and used together); every frame is
//! counted once (delivered, dropped or "no buffers"); after a delivery the used index in RAM is
//! the device's and, with EVENT_IDX, `avail_event` is the device's next available index; INTx
//! follows the ISR, and a delivery that wants an interrupt has raised it.
#![no_main]

#[path = "common.rs"]
#[allow(dead_code)]
mod common;

use common::{net_features, notify, read, set_up_with};
use keel_addr::Gpa;
use keel_devices::guest_memory::{read_u16, GuestMemory, VecMemory};
use keel_devices::pci::PciFunction;
use keel_virtio::net::{MAX_FRAME_LEN, RECEIVE, TRANSMIT};
use keel_virtio::pci::ISR_QUEUE;
use keel_virtio::{features, status, Checksum, FrameSink, RxDrop, VirtioNet, VirtioPci};
use libfuzzer_sys::fuzz_target;

const RAM: usize = 128 * 1024;
/// The receive queue's rings (the input's RAM image starts here).
const RINGS: u64 = 0x4000;
/// mode, accepted features, then 4 rounds of 4 bytes: operation, length (2), checksum.
const HEADER: usize = 18;

/// Nothing is transmitted here.
struct NoTransmit;

impl FrameSink for NoTransmit {
    fn send(&mut self, _: Checksum, _: &[u8]) {}
}

/// A frame's length from a round's operation bits and its two length bytes.
fn length(class: u8, raw: u16) -> usize {
    match class {
        0 => usize::from(raw),
        1 => 14,
        2 => 60,
        3 => 1514,
        4 => MAX_FRAME_LEN,
        5 => MAX_FRAME_LEN + 1,
        6 => 13,
        _ => usize::from(raw % 2000),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((header, image)) = data.split_first_chunk::<HEADER>() else { return };
    let (mode, accept, rounds) = (header[0], header[1], &header[2..]);
    let legacy = mode & 1 != 0;
    let mut mem = VecMemory::new(Gpa(0), RAM);
    let take = image.len().min(RAM - RINGS as usize);
    mem.write(Gpa(RINGS), &image[..take]);
    let frame: Vec<u8> = (0..=MAX_FRAME_LEN).map(|i| (i * 7) as u8).chain(image.iter().copied()).collect();

    let Some(mut dev) = VirtioPci::transitional(VirtioNet::new([2, 0, 0, 0, 0, 1], NoTransmit)) else { return };
    let rings = set_up_with(&mut dev, legacy, RINGS, &[RECEIVE, TRANSMIT], net_features(accept));
    let negotiated = dev.negotiated_features();
    let mergeable = negotiated & features::NET_MRG_RXBUF != 0;
    let event_idx = negotiated & features::RING_EVENT_IDX != 0;
    let (size, avail, used) = rings[usize::from(RECEIVE)];
    let mut deliveries = 0u64;
    for round in rounds.chunks_exact(4) {
        let [op, len_lo, len_hi, csum] = [round[0], round[1], round[2], round[3]];
        if op & 1 != 0 {
            notify(&mut dev, legacy, RECEIVE);
            dev.process(&mut mem);
        }
        let len = length(op >> 5, u16::from_le_bytes([len_lo, len_hi]));
        let checksum = match csum & 3 {
            0 => Checksum::Unverified,
            1 => Checksum::Verified,
            _ => Checksum::Partial {
                start: u16::from(csum >> 2) * 2 + u16::from(len_hi & 1) * 30,
                offset: u16::from(len_lo & 31),
            },
        };
        let before = dev.queue(RECEIVE).map_or((0, 0), |q| q.indices());
        let result = dev.deliver(&mut mem, checksum, &frame[..len]);
        deliveries += 1;
        let after = dev.queue(RECEIVE).map_or((0, 0), |q| q.indices());
        let taken = after.0.wrapping_sub(before.0);
        let returned = after.1.wrapping_sub(before.1);
        let needs_reset = dev.status() & status::DEVICE_NEEDS_RESET != 0;
        match result {
            Ok(delivered) => {
                assert!(delivered.buffers >= 1 && delivered.buffers <= size);
                assert!(mergeable || delivered.buffers == 1, "one buffer without MRG_RXBUF");
                assert_eq!((taken, returned), (delivered.buffers, delivered.buffers));
                assert!(!delivered.interrupt || dev.isr() & ISR_QUEUE != 0);
            }
            Err(RxDrop::NoBuffers | RxDrop::TooBig | RxDrop::Malformed) => {
                assert_eq!((taken, returned), (0, 0), "nothing taken");
            }
            Err(RxDrop::BadBuffer) => assert!(taken >= 1 && taken == returned, "bad buffers returned"),
            Err(RxDrop::NotReady) => {}
        }
        let s = dev.device().stats();
        assert_eq!(s.rx_frames + s.rx_drops + s.rx_no_buffers, deliveries, "every frame counted once");
        if !needs_reset {
            if let Some(idx) = read_u16(&mem, Gpa(used + 2)) {
                assert_eq!(idx, after.1, "the used index in RAM is the device's");
            }
            if event_idx && result.is_ok() {
                if let Some(event) = read_u16(&mem, Gpa(used + 4 + 8 * u64::from(size))) {
                    assert_eq!(event, after.0, "avail_event is the device's next available index");
                }
            }
        }
        assert_eq!(dev.irq_level(), dev.isr() != 0);
        if op & 2 != 0 {
            let isr_bar = if legacy { 0 } else { 1 };
            let isr_at = if legacy { 0x13 } else { keel_virtio::pci::ISR };
            read(&mut dev, isr_bar, isr_at, 1);
            assert!(!dev.irq_level());
        }
        if let Some(idx) = read_u16(&mem, Gpa(avail + 2)) {
            mem.write(Gpa(avail + 2), &idx.wrapping_add(u16::from((op >> 2) & 7)).to_le_bytes());
        }
    }
});

//! Fuzz the guest's virtio-net transmit path as a hostile driver drives it: a transitional device
//! set up through its modern or legacy registers, the driver accepting a fuzzed subset of the
//! offered features (so the header is 10 or 12 bytes, with or without checksum offload and
//! EVENT_IDX, and sometimes without VERSION_1 on the modern interface), then rounds of notify,
//! `process`, the ISR read and "more buffers available". Guest RAM (descriptor table, rings,
//! virtio-net headers, frames) is the input, so every flag, offset, length, address and chain
//! shape is hostile, and buffers may overlap the rings.
//!
//! Checks: no panic; every frame the sink gets is 14 to 65,550 bytes, never "verified", and a
//! partial checksum only with VIRTIO_NET_F_CSUM negotiated and its field inside the frame; every
//! chain the device returned was sent or counted as a drop; after a pass the used index in RAM is
//! the device's and, with EVENT_IDX, `avail_event` is the device's next available index; INTx
//! follows the ISR.
#![no_main]

#[path = "common.rs"]
#[allow(dead_code)]
mod common;

use common::{net_features, notify, read, set_up_with};
use keel_addr::Gpa;
use keel_devices::guest_memory::{read_u16, GuestMemory, VecMemory};
use keel_devices::pci::PciFunction;
use keel_virtio::net::{MAX_FRAME_LEN, MIN_FRAME_LEN, RECEIVE, TRANSMIT};
use keel_virtio::{features, status, Checksum, FrameSink, VirtioNet, VirtioPci};
use libfuzzer_sys::fuzz_target;

const RAM: usize = 128 * 1024;
/// The receive queue's rings (the input's RAM image starts here); the transmit queue's follow.
const RINGS: u64 = 0x4000;
/// The fixed header: mode, accepted features, rounds (4 bytes).
const HEADER: usize = 6;

/// A sink that checks the device's promises about what it sends.
struct Checked {
    csum_negotiated: bool,
    frames: u64,
}

impl FrameSink for Checked {
    fn send(&mut self, checksum: Checksum, frame: &[u8]) {
        assert!((MIN_FRAME_LEN..=MAX_FRAME_LEN).contains(&frame.len()), "frame of {} bytes", frame.len());
        match checksum {
            Checksum::Unverified => {}
            Checksum::Partial { start, offset } => {
                assert!(self.csum_negotiated, "NEEDS_CSUM honoured without VIRTIO_NET_F_CSUM");
                assert!(usize::from(start) + usize::from(offset) + 2 <= frame.len(), "field outside the frame");
            }
            Checksum::Verified => panic!("a transmitted frame is never verified"),
        }
        self.frames += 1;
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((header, image)) = data.split_first_chunk::<HEADER>() else { return };
    let [mode, accept, rounds @ ..] = *header;
    let legacy = mode & 1 != 0;
    let mut mem = VecMemory::new(Gpa(0), RAM);
    let take = image.len().min(RAM - RINGS as usize);
    mem.write(Gpa(RINGS), &image[..take]);

    let sink = Checked { csum_negotiated: false, frames: 0 };
    let Some(mut dev) = VirtioPci::transitional(VirtioNet::new([2, 0, 0, 0, 0, 1], sink)) else { return };
    let rings = set_up_with(&mut dev, legacy, RINGS, &[RECEIVE, TRANSMIT], net_features(accept));
    let negotiated = dev.negotiated_features();
    dev.device_mut().sink_mut().csum_negotiated = negotiated & features::NET_CSUM != 0;
    let event_idx = negotiated & features::RING_EVENT_IDX != 0;
    let (size, avail, used) = rings[usize::from(TRANSMIT)];
    for op in rounds {
        notify(&mut dev, legacy, TRANSMIT);
        if op & 1 != 0 {
            notify(&mut dev, legacy, RECEIVE);
        }
        dev.process(&mut mem);
        let (next_avail, next_used) = dev.queue(TRANSMIT).map_or((0, 0), |q| q.indices());
        let stats = dev.device().stats();
        assert_eq!(stats.tx_frames, dev.device().sink().frames);
        if dev.status() & status::DEVICE_NEEDS_RESET == 0 {
            // At most 4 rounds of a queue's worth: no wrap of the used index.
            assert_eq!(stats.tx_frames + stats.tx_drops, u64::from(next_used), "every returned chain sent or dropped");
            if let Some(idx) = read_u16(&mem, Gpa(used + 2)) {
                assert_eq!(idx, next_used, "the used index in RAM is the device's");
            }
            if event_idx {
                if let Some(event) = read_u16(&mem, Gpa(used + 4 + 8 * u64::from(size))) {
                    assert_eq!(event, next_avail, "avail_event is the device's next available index");
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
            mem.write(Gpa(avail + 2), &idx.wrapping_add(u16::from(op >> 2)).to_le_bytes());
        }
    }
});

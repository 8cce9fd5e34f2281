//! Host tests for virtio-net's receive path, against the fake driver: frames into one posted
//! buffer or merged over several (legacy and modern header sizes, with and without
//! VIRTIO_NET_F_MRG_RXBUF), too few buffers (nothing taken), buffers too small, buffers a hostile
//! driver got wrong, and checksum offload: NEEDS_CSUM passed to a guest that negotiated
//! VIRTIO_NET_F_GUEST_CSUM, completed in software for one that did not (checked by a reference
//! computed independently).

use alloc::vec::Vec;

use keel_addr::Gpa;

use super::tests::{frame, ipv4_partial, net, queue_for, sum_mod_ffff, VecSink, MODERN};
use super::*;
use crate::queue::{VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE};
use crate::testdriver::{Driver, DATA};

type Net = VirtioNet<VecSink>;

fn rx(negotiated: u64, size: u16) -> (Driver, SplitQueue, Net) {
    let d = Driver::new(size);
    let q = queue_for(&d, negotiated);
    (d, q, net(negotiated))
}

fn give(n: &mut Net, q: &mut SplitQueue, d: &mut Driver, checksum: Checksum, f: &[u8]) -> Result<u16, RxDrop> {
    n.receive(q, &mut d.mem, checksum, f).expect("the queue is not broken")
}

/// Posts `count` one-descriptor buffers of `len` bytes, at DATA + i x 0x1_0000 / 16.
fn post(d: &mut Driver, count: u16, len: u32) -> Vec<u16> {
    (0..count).map(|i| d.add_chain(&[(buffer_at(i), len, true)])).collect()
}

fn buffer_at(i: u16) -> Gpa {
    DATA + u64::from(i) * 0x1000
}

/// A header as the device should have written it.
fn header(flags: u8, start: u16, offset: u16, num_buffers: u16, len: usize) -> Vec<u8> {
    let mut h = alloc::vec![0u8; 12];
    h[0] = flags;
    h[6..8].copy_from_slice(&start.to_le_bytes());
    h[8..10].copy_from_slice(&offset.to_le_bytes());
    h[10..12].copy_from_slice(&num_buffers.to_le_bytes());
    h.truncate(len);
    h
}

/// Without MRG_RXBUF the frame goes into one buffer: 12-byte header (modern) with num_buffers
/// 1, or 10 bytes (legacy).
#[test]
fn one_buffer_per_frame() {
    for (negotiated, header_len) in [(features::VERSION_1, 12), (0, 10)] {
        let (mut d, mut q, mut n) = rx(negotiated, 8);
        let heads = post(&mut d, 2, 1526);
        let f = frame(1514);
        assert_eq!(give(&mut n, &mut q, &mut d, Checksum::Unverified, &f), Ok(1));
        assert_eq!(d.take_used(), vec![(u32::from(heads[0]), (header_len + 1514) as u32)]);
        let got = d.bytes(buffer_at(0), header_len + 1514);
        assert_eq!(got[..header_len], header(0, 0, 0, 1, header_len)[..]);
        assert_eq!(got[header_len..], f[..]);
        let g = frame(60);
        assert_eq!(give(&mut n, &mut q, &mut d, Checksum::Unverified, &g), Ok(1));
        assert_eq!(d.take_used(), vec![(u32::from(heads[1]), (header_len + 60) as u32)]);
        assert_eq!(d.bytes(buffer_at(1) + header_len as u64, 60), g);
        assert_eq!(n.stats(), NetStats { rx_frames: 2, rx_bytes: 1574, ..NetStats::default() });
        assert!(q.take_notification(&d.mem));
    }
}

/// A buffer may be split into descriptors anywhere, the header included (Linux's legacy driver
/// puts the header in a descriptor of its own).
#[test]
fn one_buffer_of_several_descriptors() {
    let (mut d, mut q, mut n) = rx(0, 8);
    let h =
        d.add_chain(&[(DATA, 10, true), (DATA + 0x100, 3, true), (DATA + 0x200, 0, true), (DATA + 0x300, 1600, true)]);
    let f = frame(100);
    assert_eq!(give(&mut n, &mut q, &mut d, Checksum::Unverified, &f), Ok(1));
    assert_eq!(d.take_used(), vec![(u32::from(h), 110)]);
    assert_eq!(d.bytes(DATA, 10), header(0, 0, 0, 1, 10));
    assert_eq!(d.bytes(DATA + 0x100, 3), f[..3]);
    assert_eq!(d.bytes(DATA + 0x300, 97), f[3..]);
}

/// With MRG_RXBUF a frame spreads over as many buffers as it takes, each filled before the
/// next; `num_buffers` says how many, and they are returned together.
#[test]
fn merged_buffers() {
    for (negotiated, header_len) in [(MODERN, 12), (features::NET_MRG_RXBUF, 12)] {
        let (mut d, mut q, mut n) = rx(negotiated, 8);
        let heads = post(&mut d, 5, 100);
        let f = frame(250);
        assert_eq!(give(&mut n, &mut q, &mut d, Checksum::Unverified, &f), Ok(3));
        assert_eq!(
            d.take_used(),
            vec![(u32::from(heads[0]), 100), (u32::from(heads[1]), 100), (u32::from(heads[2]), 62)]
        );
        let mut got = d.bytes(buffer_at(0), 100);
        got.extend(d.bytes(buffer_at(1), 100));
        got.extend(d.bytes(buffer_at(2), 62));
        assert_eq!(got[..header_len], header(0, 0, 0, 3, header_len)[..]);
        assert_eq!(got[header_len..], f[..]);
        // A frame that fits one buffer exactly.
        assert_eq!(give(&mut n, &mut q, &mut d, Checksum::Unverified, &frame(88)), Ok(1));
        assert_eq!(d.take_used(), vec![(u32::from(heads[3]), 100)]);
        assert_eq!(d.bytes(buffer_at(3), 12), header(0, 0, 0, 1, 12));
    }
}

/// The longest frame over page-sized buffers, as Linux's mergeable buffers are.
#[test]
fn longest_frame_merged() {
    let (mut d, mut q, mut n) = rx(MODERN, 32);
    post(&mut d, 20, 4096);
    let f = frame(MAX_FRAME_LEN);
    let total = 12 + MAX_FRAME_LEN;
    let buffers = total.div_ceil(4096) as u16;
    assert_eq!(give(&mut n, &mut q, &mut d, Checksum::Unverified, &f), Ok(buffers));
    let used = d.take_used();
    assert_eq!(used.len(), usize::from(buffers));
    assert!(used[..used.len() - 1].iter().all(|&(_, len)| len == 4096));
    assert_eq!(used.last().unwrap().1 as usize, total - 4096 * (usize::from(buffers) - 1));
    let mut got = Vec::new();
    for i in 0..buffers {
        got.extend(d.bytes(buffer_at(i), 4096));
    }
    assert_eq!(got[12..total], f[..]);
    assert_eq!(u16::from_le_bytes([got[10], got[11]]), buffers);
}

/// Too few buffers: nothing is taken, and the frame goes in once the driver posts more.
#[test]
fn no_buffers_takes_nothing() {
    let (mut d, mut q, mut n) = rx(MODERN, 8);
    let f = frame(250);
    assert_eq!(give(&mut n, &mut q, &mut d, Checksum::Unverified, &f), Err(RxDrop::NoBuffers));
    post(&mut d, 2, 100);
    assert_eq!(give(&mut n, &mut q, &mut d, Checksum::Unverified, &f), Err(RxDrop::NoBuffers));
    assert_eq!(q.indices().0, 0, "nothing taken");
    assert!(d.take_used().is_empty());
    d.add_chain(&[(buffer_at(2), 100, true)]);
    assert_eq!(give(&mut n, &mut q, &mut d, Checksum::Unverified, &f), Ok(3));
    let s = n.stats();
    assert_eq!((s.rx_frames, s.rx_no_buffers, s.rx_drops), (1, 2, 0));
    // Without MRG_RXBUF, an empty ring is "no buffers" as well.
    let (mut d, mut q, mut n) = rx(features::VERSION_1, 8);
    assert_eq!(give(&mut n, &mut q, &mut d, Checksum::Unverified, &f), Err(RxDrop::NoBuffers));
}

/// Without MRG_RXBUF a buffer too small for the frame stays posted for the next frame; with it,
/// a frame larger than everything the full ring holds is too big.
#[test]
fn too_big() {
    let (mut d, mut q, mut n) = rx(features::VERSION_1, 8);
    let heads = post(&mut d, 1, 1526);
    assert_eq!(give(&mut n, &mut q, &mut d, Checksum::Unverified, &frame(1515)), Err(RxDrop::TooBig));
    assert_eq!(q.indices().0, 0, "the buffer stays");
    assert_eq!(give(&mut n, &mut q, &mut d, Checksum::Unverified, &frame(1514)), Ok(1));
    assert_eq!(d.take_used(), vec![(u32::from(heads[0]), 1526)]);
    // With MRG_RXBUF: 4 buffers of 100 fill the ring.
    let (mut d, mut q, mut n) = rx(MODERN, 4);
    post(&mut d, 4, 100);
    assert_eq!(give(&mut n, &mut q, &mut d, Checksum::Unverified, &frame(389)), Err(RxDrop::TooBig));
    assert_eq!(give(&mut n, &mut q, &mut d, Checksum::Unverified, &frame(388)), Ok(4));
    let s = n.stats();
    assert_eq!((s.rx_frames, s.rx_drops), (1, 1));
}

/// Frames the device refuses whatever the buffers.
#[test]
fn malformed_frames() {
    let (mut d, mut q, mut n) = rx(MODERN, 8);
    post(&mut d, 8, 4096);
    for (checksum, len) in [
        (Checksum::Unverified, 13),
        (Checksum::Unverified, 0),
        (Checksum::Unverified, MAX_FRAME_LEN + 1),
        (Checksum::Partial { start: 50, offset: 9 }, 60),
        (Checksum::Partial { start: u16::MAX, offset: u16::MAX }, 60),
    ] {
        assert_eq!(give(&mut n, &mut q, &mut d, checksum, &frame(len)), Err(RxDrop::Malformed));
    }
    assert_eq!(q.indices().0, 0, "nothing taken");
    assert_eq!(give(&mut n, &mut q, &mut d, Checksum::Partial { start: 50, offset: 8 }, &frame(60)), Ok(1));
    assert_eq!(n.stats().rx_drops, 5);
}

/// Buffers a driver got wrong are returned empty, with the ones before them in this frame, the
/// frame is dropped, and the queue goes on.
#[test]
fn bad_buffers() {
    // A device-readable descriptor in a receive buffer.
    let (mut d, mut q, mut n) = rx(MODERN, 8);
    let bad = d.add_chain(&[(DATA, 100, false), (DATA + 0x100, 2000, true)]);
    let good = post(&mut d, 1, 2000);
    assert_eq!(give(&mut n, &mut q, &mut d, Checksum::Unverified, &frame(60)), Err(RxDrop::BadBuffer));
    assert_eq!(d.take_used(), vec![(u32::from(bad), 0)]);
    assert_eq!(give(&mut n, &mut q, &mut d, Checksum::Unverified, &frame(60)), Ok(1));
    assert_eq!(d.take_used(), vec![(u32::from(good[0]), 72)]);

    // With MRG_RXBUF, a buffer smaller than a header, second in line: both go back empty.
    let (mut d, mut q, mut n) = rx(MODERN, 8);
    let first = d.add_chain(&[(buffer_at(0), 100, true)]);
    let small = d.add_chain(&[(buffer_at(1), 11, true)]);
    assert_eq!(give(&mut n, &mut q, &mut d, Checksum::Unverified, &frame(200)), Err(RxDrop::BadBuffer));
    assert_eq!(d.take_used(), vec![(u32::from(first), 0), (u32::from(small), 0)]);
    assert_eq!(q.indices().0, 2);

    // Outside RAM, in the second buffer: the first (already written) and second go back empty;
    // the third is not taken.
    let (mut d, mut q, mut n) = rx(MODERN, 8);
    let first = d.add_chain(&[(buffer_at(0), 100, true)]);
    let outside = d.add_chain(&[(Gpa(1 << 40), 100, true)]);
    d.add_chain(&[(buffer_at(2), 100, true)]);
    assert_eq!(give(&mut n, &mut q, &mut d, Checksum::Unverified, &frame(250)), Err(RxDrop::BadBuffer));
    assert_eq!(d.take_used(), vec![(u32::from(first), 0), (u32::from(outside), 0)]);
    assert_eq!(q.indices().0, 2);
    assert_eq!(give(&mut n, &mut q, &mut d, Checksum::Unverified, &frame(60)), Ok(1), "the third is still there");
    // An address whose end wraps.
    d.add_chain(&[(Gpa(u64::MAX - 20), 100, true)]);
    assert_eq!(give(&mut n, &mut q, &mut d, Checksum::Unverified, &frame(60)), Err(RxDrop::BadBuffer));
    let s = n.stats();
    assert_eq!((s.rx_frames, s.rx_drops), (1, 2));
}

/// Receive buffers that hold more descriptors between them than the queue has (the same
/// descriptors posted twice) break the protocol; so does a loop in one buffer.
#[test]
fn protocol_errors() {
    let (mut d, mut q, mut n) = rx(MODERN, 8);
    for i in 0..5u16 {
        let flags = VIRTQ_DESC_F_WRITE | if i < 4 { VIRTQ_DESC_F_NEXT } else { 0 };
        d.write_desc(i, buffer_at(i), 20, flags, i + 1);
    }
    d.publish(0);
    d.publish(0);
    assert_eq!(n.receive(&mut q, &mut d.mem, Checksum::Unverified, &frame(150)), Err(QueueError::ChainTooLong));
    let (mut d, mut q, mut n) = rx(MODERN, 8);
    d.write_desc(0, DATA, 20, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 0);
    d.publish(0);
    assert_eq!(n.receive(&mut q, &mut d.mem, Checksum::Unverified, &frame(60)), Err(QueueError::ChainTooLong));
    let (mut d, mut q, mut n) = rx(MODERN, 8);
    d.set_avail_idx(9);
    assert_eq!(n.receive(&mut q, &mut d.mem, Checksum::Unverified, &frame(60)), Err(QueueError::AvailIndex));
    assert_eq!(n.stats().rx_drops, 1, "counted as a drop");
}

/// A guest with GUEST_CSUM gets NEEDS_CSUM and the offsets, the frame untouched, or DATA_VALID.
#[test]
fn checksum_offload_passed_on() {
    let (mut d, mut q, mut n) = rx(MODERN, 8);
    post(&mut d, 2, 2048);
    let (f, _, partial) = ipv4_partial(6, b"payload");
    assert_eq!(give(&mut n, &mut q, &mut d, partial, &f), Ok(1));
    assert_eq!(d.bytes(buffer_at(0), 12), header(1, 34, 16, 1, 12));
    assert_eq!(d.bytes(buffer_at(0) + 12, f.len()), f, "nothing checksummed");
    assert_eq!(give(&mut n, &mut q, &mut d, Checksum::Verified, &f), Ok(1));
    assert_eq!(d.bytes(buffer_at(1), 12), header(2, 0, 0, 1, 12));
}

/// A guest without GUEST_CSUM gets `flags` 0 and a frame whose TCP or UDP checksum is complete,
/// checked against the independent reference (pseudo-header and segment sum to 0 modulo
/// 65535), for even and odd lengths, with and without MRG_RXBUF and the legacy header.
#[test]
fn checksum_completed_in_software() {
    for negotiated in [features::VERSION_1 | features::NET_CSUM, features::NET_MRG_RXBUF, 0] {
        for (protocol, payload_len) in [(6u8, 0usize), (6, 1), (6, 1000), (17, 7), (17, 1400), (6, 3000)] {
            let (mut d, mut q, mut n) = rx(negotiated, 8);
            let header_len = header_len(negotiated);
            let buffer_len = if negotiated & features::NET_MRG_RXBUF != 0 { 1024 } else { 4096 };
            let heads = post(&mut d, 8, buffer_len);
            let payload: Vec<u8> = (0..payload_len).map(|i| (i * 13 + 5) as u8).collect();
            let (f, pseudo, partial) = ipv4_partial(protocol, &payload);
            assert_ne!(sum_mod_ffff(&[&pseudo, &f[34..]]), 0, "really partial before");
            let buffers = give(&mut n, &mut q, &mut d, partial, &f).unwrap();
            let used = d.take_used();
            assert_eq!(used.len(), usize::from(buffers));
            let mut got = Vec::new();
            for (i, &(head, len)) in used.iter().enumerate() {
                assert_eq!(head, u32::from(heads[i]));
                got.extend(d.bytes(buffer_at(i as u16), len as usize));
            }
            assert_eq!(got[0], 0, "flags 0");
            let delivered = &got[header_len..];
            assert_eq!(delivered.len(), f.len());
            assert_eq!(sum_mod_ffff(&[&pseudo, &delivered[34..]]), 0, "protocol {protocol}, {payload_len} bytes");
            let field = if protocol == 6 { 34 + 16 } else { 34 + 6 };
            let mut rest = delivered.to_vec();
            rest[field..field + 2].copy_from_slice(&f[field..field + 2]);
            assert_eq!(rest, f, "only the checksum field changed");
        }
    }
    // DATA_VALID cannot be said either: flags 0.
    let (mut d, mut q, mut n) = rx(features::VERSION_1, 8);
    post(&mut d, 1, 2048);
    assert_eq!(give(&mut n, &mut q, &mut d, Checksum::Verified, &frame(60)), Ok(1));
    assert_eq!(d.bytes(buffer_at(0), 12), header(0, 0, 0, 1, 12));
}

/// Every receive path leaves the used ring with the device's index and the frames in order,
/// over many frames and the ring's wrap.
#[test]
fn many_frames_wrap_the_ring() {
    let (mut d, mut q, mut n) = rx(MODERN, 4);
    for round in 0..20_000u32 {
        let len = 14 + (round as usize * 31) % 300;
        let heads = post(&mut d, 4, 128);
        let expected = (12 + len).div_ceil(128);
        assert_eq!(give(&mut n, &mut q, &mut d, Checksum::Unverified, &frame(len)), Ok(expected as u16));
        let used = d.take_used();
        assert_eq!(used.len(), expected);
        assert!(used.iter().zip(&heads).all(|(&(h, _), &head)| h == u32::from(head)));
        // Take back what was not used.
        q.consume(4 - expected as u16);
    }
    assert_eq!(n.stats().rx_frames, 20_000);
}

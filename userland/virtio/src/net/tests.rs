//! Host tests for virtio-net's device side and its transmit path, against the fake driver:
//! frames in one descriptor or many (the header split anywhere, legacy and modern header sizes),
//! checksum offload on transmit, and every malformed chain a hostile driver can send. Also the
//! helpers the receive and transport tests share: a sink that keeps frames, and IPv4 TCP and UDP
//! frames with partial checksums, checked by a reference computed independently of
//! `net/checksum.rs`.

use alloc::vec::Vec;

use keel_addr::Gpa;
use keel_devices::guest_memory::GuestMemory;

use super::*;
use crate::queue::{VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT};
use crate::testdriver::{Driver, DATA};

pub(super) const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
/// What a modern Linux driver accepts of what the device offers.
pub(super) const MODERN: u64 = features::VERSION_1
    | features::NET_MAC
    | features::NET_STATUS
    | features::NET_MRG_RXBUF
    | features::NET_CSUM
    | features::NET_GUEST_CSUM
    | features::RING_EVENT_IDX;

/// Keeps every frame sent.
#[derive(Debug, Default)]
pub(super) struct VecSink {
    pub frames: Vec<(Checksum, Vec<u8>)>,
}

impl FrameSink for VecSink {
    fn send(&mut self, checksum: Checksum, frame: &[u8]) {
        self.frames.push((checksum, frame.to_vec()));
    }
}

/// A device as if the driver had negotiated `negotiated`.
pub(super) fn net(negotiated: u64) -> VirtioNet<VecSink> {
    let mut n = VirtioNet::new(MAC, VecSink::default());
    n.activate(negotiated);
    n
}

/// The queue the device sees for `d`'s ring.
pub(super) fn queue_for(d: &Driver, negotiated: u64) -> SplitQueue {
    let mut q = SplitQueue::new(QUEUE_SIZE);
    assert!(q.set_size(d.size));
    assert!(q.set_addresses(d.desc, d.avail, d.used));
    q.enable();
    q.set_event_idx(negotiated & features::RING_EVENT_IDX != 0);
    q
}

/// A frame of `len` bytes: an Ethernet header to our MAC, then a counting pattern.
pub(super) fn frame(len: usize) -> Vec<u8> {
    let mut f: Vec<u8> = (0..len).map(|i| (i * 7 + 1) as u8).collect();
    let n = len.min(14);
    f[..n].copy_from_slice(&[MAC.as_slice(), &[2, 0, 0, 0, 0, 1], &[0x08, 0x00]].concat()[..n]);
    f
}

/// A virtio-net header of `len` bytes (10 or 12) with `flags`, `gso_type` and the checksum
/// offsets.
pub(super) fn tx_header(len: usize, flags: u8, gso_type: u8, start: u16, offset: u16) -> Vec<u8> {
    let mut h = alloc::vec![0u8; len];
    h[0] = flags;
    h[1] = gso_type;
    h[6..8].copy_from_slice(&start.to_le_bytes());
    h[8..10].copy_from_slice(&offset.to_le_bytes());
    h
}

/// The reference the checksum tests use, independent of `net/checksum.rs`: a ones' complement
/// sum is the plain sum of the 16-bit words modulo 65535, so a correctly checksummed segment
/// (its pseudo-header included) sums to a multiple of 65535.
pub(super) fn sum_mod_ffff(parts: &[&[u8]]) -> u64 {
    let mut bytes: Vec<u8> = parts.concat();
    if bytes.len() % 2 == 1 {
        bytes.push(0);
    }
    bytes.chunks(2).map(|w| u64::from(w[0]) * 256 + u64::from(w[1])).sum::<u64>() % 0xFFFF
}

/// An IPv4 frame carrying `payload` over TCP (protocol 6) or UDP (17), as Linux hands it to a
/// device with checksum offload: the transport checksum field holds the folded pseudo-header
/// sum, not complemented. Returns the frame and its pseudo-header.
pub(super) fn ipv4_partial(protocol: u8, payload: &[u8]) -> (Vec<u8>, Vec<u8>, Checksum) {
    let transport_len = if protocol == 6 { 20 } else { 8 };
    let segment_len = transport_len + payload.len();
    let (src, dst) = ([10, 0, 0, 1], [10, 0, 0, 2]);
    let mut f = frame(14);
    let mut ip = alloc::vec![0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, protocol, 0, 0];
    ip[2..4].copy_from_slice(&((20 + segment_len) as u16).to_be_bytes());
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    let ip_sum = sum_mod_ffff(&[&ip]) as u16;
    ip[10..12].copy_from_slice(&(!ip_sum).to_be_bytes());
    f.extend_from_slice(&ip);
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&src);
    pseudo.extend_from_slice(&dst);
    pseudo.extend_from_slice(&[0, protocol]);
    pseudo.extend_from_slice(&(segment_len as u16).to_be_bytes());
    let folded = match sum_mod_ffff(&[&pseudo]) {
        0 => 0xFFFF,
        m => m as u16,
    };
    let offset = if protocol == 6 {
        // Ports 5000 -> 80, sequence, ack, data offset 5, ACK|PSH, window.
        f.extend_from_slice(&[0x13, 0x88, 0, 80, 0, 0, 0, 1, 0, 0, 0, 2, 0x50, 0x18, 0xFF, 0xFF]);
        f.extend_from_slice(&folded.to_be_bytes());
        f.extend_from_slice(&[0, 0]);
        16
    } else {
        f.extend_from_slice(&[0x13, 0x88, 0, 53]);
        f.extend_from_slice(&(segment_len as u16).to_be_bytes());
        f.extend_from_slice(&folded.to_be_bytes());
        6
    };
    f.extend_from_slice(payload);
    (f, pseudo, Checksum::Partial { start: 34, offset })
}

/// Transmit set-up: a device with `negotiated`, a transmit ring of `size`.
fn tx(negotiated: u64, size: u16) -> (Driver, SplitQueue, VirtioNet<VecSink>) {
    let d = Driver::new(size);
    let q = queue_for(&d, negotiated);
    (d, q, net(negotiated))
}

/// Writes `bytes` at `at` and returns the readable descriptor for them.
fn put(d: &mut Driver, at: Gpa, bytes: &[u8]) -> (Gpa, u32, bool) {
    assert!(d.mem.write(at, bytes));
    (at, bytes.len() as u32, false)
}

fn send(n: &mut VirtioNet<VecSink>, q: &mut SplitQueue, d: &mut Driver) -> Result<(), QueueError> {
    n.process_queue(TRANSMIT, q, &mut d.mem)
}

#[test]
fn the_device() {
    let mut n = net(0);
    assert_eq!(n.device_id(), 1);
    assert_eq!(n.num_queues(), 2);
    assert_eq!(n.max_queue_size(), 256);
    assert_eq!(n.pci_class(), 0x02_00_00);
    assert_eq!(n.features(), MODERN & !features::VERSION_1);
    assert_eq!(n.config_len(), 8);
    let mut c = [0xEEu8; 12];
    n.read_config(0, &mut c);
    assert_eq!(c, [0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 1, 0, 0, 0, 0, 0], "mac, LINK_UP, zeros past the end");
    let mut status = [0u8; 2];
    n.read_config(6, &mut status);
    assert_eq!(u16::from_le_bytes(status), net_config::S_LINK_UP);
    n.write_config(0, &[0; 6]);
    n.read_config(0, &mut c[..6]);
    assert_eq!(c[..6], MAC, "read-only");
    assert_eq!(n.mac(), MAC);
    n.activate(MODERN);
    assert_eq!(n.negotiated(), MODERN);
    n.reset();
    assert_eq!(n.negotiated(), 0);
    // A notification of the receive queue is only remembered; another queue is ignored.
    let d = Driver::new(8);
    let mut q = queue_for(&d, 0);
    let mut mem = d.mem.clone();
    assert!(!n.take_receive_notified());
    n.process_queue(RECEIVE, &mut q, &mut mem).unwrap();
    n.process_queue(7, &mut q, &mut mem).unwrap();
    assert!(n.take_receive_notified());
    assert!(!n.take_receive_notified());
    assert_eq!(mem.bytes(), d.mem.bytes(), "nothing written");
}

#[test]
fn one_descriptor_frames() {
    let (mut d, mut q, mut n) = tx(MODERN, 8);
    let f = frame(60);
    let h = {
        let c = [put(&mut d, DATA, &[tx_header(12, 0, 0, 0, 0), f.clone()].concat())];
        d.add_chain(&c)
    };
    let g = frame(1514);
    let h2 = {
        let c = [put(&mut d, DATA + 0x1000, &[tx_header(12, 0, 0, 0, 0), g.clone()].concat())];
        d.add_chain(&c)
    };
    send(&mut n, &mut q, &mut d).unwrap();
    assert_eq!(d.take_used(), vec![(u32::from(h), 0), (u32::from(h2), 0)], "nothing written back");
    assert_eq!(n.sink().frames, vec![(Checksum::Unverified, f), (Checksum::Unverified, g)]);
    assert_eq!(n.stats(), NetStats { tx_frames: 2, tx_bytes: 60 + 1514, ..NetStats::default() });
    assert!(q.take_notification(&d.mem));
}

/// The header and frame split any way across descriptors (2.6.4 message framing), with the
/// legacy 10-byte header (legacy driver, no MRG_RXBUF) and the 12-byte one.
#[test]
fn header_split_across_descriptors() {
    for (negotiated, header_len) in [(0, 10), (features::NET_MRG_RXBUF, 12), (features::VERSION_1, 12)] {
        let (mut d, mut q, mut n) = tx(negotiated, 16);
        let f = frame(100);
        let bytes = [tx_header(header_len, 0, 0, 0, 0), f.clone()].concat();
        // The legacy framing: header alone, then the frame.
        {
            let c = [put(&mut d, DATA, &bytes[..header_len]), put(&mut d, DATA + 0x100, &bytes[header_len..])];
            d.add_chain(&c)
        };
        // The header in three pieces, the last one sharing its descriptor with the frame's start,
        // a zero-length descriptor, and the frame's tail in two more.
        {
            let c = [
                put(&mut d, DATA + 0x1000, &bytes[..3]),
                put(&mut d, DATA + 0x1100, &bytes[3..7]),
                put(&mut d, DATA + 0x1200, &bytes[7..header_len + 20]),
                (DATA + 0x1300, 0, false),
                put(&mut d, DATA + 0x1400, &bytes[header_len + 20..header_len + 21]),
                put(&mut d, DATA + 0x1500, &bytes[header_len + 21..]),
            ];
            d.add_chain(&c)
        };
        send(&mut n, &mut q, &mut d).unwrap();
        assert_eq!(n.sink().frames, vec![(Checksum::Unverified, f.clone()), (Checksum::Unverified, f)]);
        assert_eq!(d.take_used().len(), 2);
    }
    // A 12-byte header read by a device that expects 10 shifts the frame by two bytes: the
    // header length really follows the negotiation.
    let (mut d, mut q, mut n) = tx(0, 8);
    let f = frame(100);
    {
        let c = [put(&mut d, DATA, &[tx_header(12, 0, 0, 0, 0), f.clone()].concat())];
        d.add_chain(&c)
    };
    send(&mut n, &mut q, &mut d).unwrap();
    assert_eq!(n.sink().frames[0].1, [&[0u8, 0][..], &f].concat());
}

/// NEEDS_CSUM passes through as a partial checksum when VIRTIO_NET_F_CSUM was negotiated, the
/// frame untouched; otherwise the flag is ignored. Other flags never count.
#[test]
fn transmit_checksum_offload() {
    let (f, _, partial) = ipv4_partial(6, b"hello, world");
    let Checksum::Partial { start, offset } = partial else { unreachable!() };
    let cases = [
        (MODERN, 1, partial),
        (MODERN & !features::NET_CSUM, 1, Checksum::Unverified),
        (MODERN, net_hdr::F_DATA_VALID | net_hdr::F_RSC_INFO, Checksum::Unverified),
        (MODERN, 0, Checksum::Unverified),
    ];
    for (negotiated, flags, expected) in cases {
        let (mut d, mut q, mut n) = tx(negotiated, 8);
        {
            let c = [put(&mut d, DATA, &[tx_header(12, flags, 0, start, offset), f.clone()].concat())];
            d.add_chain(&c)
        };
        send(&mut n, &mut q, &mut d).unwrap();
        assert_eq!(n.sink().frames, vec![(expected, f.clone())], "negotiated {negotiated:#x} flags {flags}");
    }
    // The field's two bytes must be inside the frame: the last two bytes are, one past is not.
    let (mut d, mut q, mut n) = tx(MODERN, 8);
    let f = frame(60);
    {
        let c = [put(&mut d, DATA, &[tx_header(12, 1, 0, 50, 8), f.clone()].concat())];
        d.add_chain(&c)
    };
    {
        let c = [put(&mut d, DATA + 0x100, &[tx_header(12, 1, 0, 50, 9), f.clone()].concat())];
        d.add_chain(&c)
    };
    {
        let c = [put(&mut d, DATA + 0x200, &[tx_header(12, 1, 0, 0xFFFF, 0xFFFF), f.clone()].concat())];
        d.add_chain(&c)
    };
    send(&mut n, &mut q, &mut d).unwrap();
    assert_eq!(n.sink().frames, vec![(Checksum::Partial { start: 50, offset: 8 }, f)]);
    assert_eq!((n.stats().tx_frames, n.stats().tx_drops), (1, 2));
    assert_eq!(d.take_used().len(), 3, "dropped chains are returned too");
}

/// Every malformed chain is dropped, counted and returned, and the queue goes on.
#[test]
fn malformed_chains_are_dropped() {
    let (mut d, mut q, mut n) = tx(MODERN, 32);
    let h = tx_header(12, 0, 0, 0, 0);
    let good = [h.clone(), frame(64)].concat();
    let bad: Vec<Vec<(Gpa, u32, bool)>> = vec![
        // A device-writable descriptor: after the frame, before it, or an empty one.
        vec![put(&mut d, DATA, &good), (DATA + 0x800, 64, true)],
        vec![(DATA + 0x800, 64, true), put(&mut d, DATA, &good)],
        vec![put(&mut d, DATA, &good), (DATA + 0x800, 0, true)],
        // Too short: no header, a header only, 13 bytes of frame; nothing at all.
        vec![put(&mut d, DATA + 0x1000, &h[..11])],
        vec![put(&mut d, DATA + 0x1100, &h)],
        vec![put(&mut d, DATA + 0x1200, &[h.clone(), frame(13)].concat())],
        vec![(DATA, 0, false)],
        // Segmentation offload asked for.
        vec![put(&mut d, DATA + 0x2000, &[tx_header(12, 1, 1, 34, 16), frame(64)].concat())],
        // Buffers outside RAM, or whose end wraps.
        vec![(Gpa(1 << 40), 76, false)],
        vec![put(&mut d, DATA + 0x3000, &h), (Gpa(u64::MAX - 10), 64, false)],
        // Too long: one byte over, and a claim of 4 GiB.
        vec![(DATA, 12 + MAX_FRAME_LEN as u32 + 1, false)],
        vec![(DATA, u32::MAX, false), (DATA, u32::MAX, false)],
    ];
    for chain in &bad {
        d.add_chain(chain);
    }
    let last = {
        let c = [put(&mut d, DATA + 0x4000, &good)];
        d.add_chain(&c)
    };
    send(&mut n, &mut q, &mut d).unwrap();
    let used = d.take_used();
    assert_eq!(used.len(), bad.len() + 1);
    assert!(used.iter().all(|&(_, len)| len == 0));
    assert_eq!(used.last(), Some(&(u32::from(last), 0)));
    assert_eq!(n.sink().frames, vec![(Checksum::Unverified, frame(64))], "only the good frame");
    let s = n.stats();
    assert_eq!((s.tx_frames, s.tx_drops), (1, bad.len() as u64));
}

/// The shortest and the longest frames pass.
#[test]
fn frame_length_limits() {
    let (mut d, mut q, mut n) = tx(MODERN, 8);
    let longest = frame(MAX_FRAME_LEN);
    assert!(d.mem.write(DATA, &tx_header(12, 0, 0, 0, 0)));
    assert!(d.mem.write(DATA + 12, &longest));
    d.add_chain(&[(DATA, 12 + MAX_FRAME_LEN as u32, false)]);
    {
        let c = [put(&mut d, DATA + 0x2_0000, &[tx_header(12, 0, 0, 0, 0), frame(14)].concat())];
        d.add_chain(&c)
    };
    send(&mut n, &mut q, &mut d).unwrap();
    assert_eq!(n.sink().frames, vec![(Checksum::Unverified, longest), (Checksum::Unverified, frame(14))]);
}

/// A broken queue (a loop, a bad index, an indirect descriptor) is a protocol error, not a drop.
#[test]
fn protocol_errors() {
    let (mut d, mut q, mut n) = tx(MODERN, 8);
    d.write_desc(0, DATA, 40, VIRTQ_DESC_F_NEXT, 1);
    d.write_desc(1, DATA, 40, VIRTQ_DESC_F_NEXT, 0);
    d.publish(0);
    assert_eq!(send(&mut n, &mut q, &mut d), Err(QueueError::ChainTooLong));
    let (mut d, mut q, mut n) = tx(MODERN, 8);
    d.write_desc(0, DATA, 16, VIRTQ_DESC_F_INDIRECT, 0);
    d.publish(0);
    assert_eq!(send(&mut n, &mut q, &mut d), Err(QueueError::Indirect));
    let (mut d, mut q, mut n) = tx(MODERN, 8);
    d.write_desc(0, DATA, 40, VIRTQ_DESC_F_NEXT, 99);
    d.publish(0);
    assert_eq!(send(&mut n, &mut q, &mut d), Err(QueueError::DescIndex));
    assert!(n.sink().frames.is_empty());
}

/// One notification takes at most a queue's worth of chains, and sends them all.
#[test]
fn one_pass_per_notification() {
    let (mut d, mut q, mut n) = tx(MODERN, 4);
    let bytes = [tx_header(12, 0, 0, 0, 0), frame(60)].concat();
    assert!(d.mem.write(DATA, &bytes));
    for _ in 0..4 {
        d.add_chain(&[(DATA, bytes.len() as u32, false)]);
    }
    send(&mut n, &mut q, &mut d).unwrap();
    assert_eq!(d.take_used().len(), 4);
    assert_eq!(n.stats().tx_frames, 4);
    send(&mut n, &mut q, &mut d).unwrap();
    assert_eq!(n.stats().tx_frames, 4, "nothing new");
}

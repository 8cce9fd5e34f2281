//! Host tests for virtio-blk: requests through a split queue over an in-memory backend (every
//! request type, read-only disks, bad chains, ranges past the end), and a Linux-like driver
//! negotiating through the transitional transport's modern and legacy interfaces.

use alloc::vec;
use alloc::vec::Vec;

use keel_addr::Gpa;
use keel_devices::guest_memory::GuestMemory;

use super::*;
use crate::backend::MemBackend;
use crate::testdriver::{Driver, DATA};

const HEADER: Gpa = DATA;
const BUF: Gpa = Gpa(DATA.0 + 0x1000);
const STATUS: Gpa = Gpa(DATA.0 + 0x7_0000);
/// 1 MiB disk.
const DISK: usize = 1 << 20;

struct Rig {
    d: Driver,
    q: SplitQueue,
    blk: VirtioBlk<MemBackend>,
}

fn rig_with(backend: MemBackend) -> Rig {
    let d = Driver::new(16);
    let mut q = SplitQueue::new(QUEUE_SIZE);
    assert!(q.set_size(16));
    q.set_addresses(d.desc, d.avail, d.used);
    q.enable();
    Rig { d, q, blk: VirtioBlk::new(backend, b"KEEL-DISK-0001") }
}

fn rig() -> Rig {
    let mut b = MemBackend::zeroed(DISK);
    for (i, byte) in b.bytes_mut().iter_mut().enumerate() {
        *byte = (i / 512) as u8 ^ (i as u8);
    }
    rig_with(b)
}

fn header(kind: u32, sector: u64) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[..4].copy_from_slice(&kind.to_le_bytes());
    h[8..].copy_from_slice(&sector.to_le_bytes());
    h
}

impl Rig {
    /// Runs one chain; returns the used length and the status byte at STATUS.
    fn run(&mut self, bufs: &[(Gpa, u32, bool)]) -> (u32, u8) {
        assert!(self.d.mem.write(STATUS, &[0xEE]));
        let head = self.d.add_chain(bufs);
        self.blk.process_queue(0, &mut self.q, &mut self.d.mem).unwrap();
        let used = self.d.take_used();
        assert_eq!(used.len(), 1);
        assert_eq!(used[0].0, u32::from(head));
        (used[0].1, self.d.bytes(STATUS, 1)[0])
    }

    /// The usual Linux chain: header, data (one descriptor), status.
    fn request(&mut self, kind: u32, sector: u64, data: &[u8], data_in: u32) -> (u32, u8) {
        assert!(self.d.mem.write(HEADER, &header(kind, sector)));
        assert!(self.d.mem.write(BUF, data));
        let mut bufs = vec![(HEADER, 16, false)];
        if !data.is_empty() {
            bufs.push((BUF, data.len() as u32, false));
        }
        if data_in > 0 {
            bufs.push((BUF, data_in, true));
        }
        bufs.push((STATUS, 1, true));
        self.run(&bufs)
    }

    fn segments(&mut self, kind: u32, segs: &[(u64, u32, u32)]) -> u8 {
        let mut raw = Vec::new();
        for &(sector, n, flags) in segs {
            raw.extend_from_slice(&sector.to_le_bytes());
            raw.extend_from_slice(&n.to_le_bytes());
            raw.extend_from_slice(&flags.to_le_bytes());
        }
        self.request(kind, 0, &raw, 0).1
    }
}

#[test]
fn configuration_and_features() {
    let r = rig();
    let blk = &r.blk;
    let mut c = [0u8; blk_config::LEN];
    blk.read_config(0, &mut c);
    assert_eq!(u64::from_le_bytes(c[0..8].try_into().unwrap()), (DISK / 512) as u64);
    assert_eq!(u32::from_le_bytes(c[12..16].try_into().unwrap()), SEG_MAX);
    assert_eq!(u32::from_le_bytes(c[20..24].try_into().unwrap()), 512);
    assert_eq!(u32::from_le_bytes(c[36..40].try_into().unwrap()), MAX_DISCARD_SECTORS);
    assert_eq!(u32::from_le_bytes(c[40..44].try_into().unwrap()), MAX_DISCARD_SEG);
    assert_eq!(c[56], 1, "write_zeroes_may_unmap");
    let mut past = [0xAAu8; 4];
    blk.read_config(58, &mut past);
    assert_eq!(past, [0; 4]);
    let f = blk.features();
    for bit in [
        features::BLK_SEG_MAX,
        features::BLK_BLK_SIZE,
        features::BLK_FLUSH,
        features::BLK_DISCARD,
        features::BLK_WRITE_ZEROES,
    ] {
        assert_ne!(f & bit, 0);
    }
    assert_eq!(f & features::BLK_RO, 0);
    let ro = VirtioBlk::new(MemBackend::from_bytes(vec![0; 1000], true), b"");
    assert_ne!(ro.features() & features::BLK_RO, 0);
    assert_eq!(ro.capacity_sectors(), 1, "a partial last sector is not visible");
    assert_eq!((blk.device_id(), blk.num_queues(), blk.pci_class()), (2, 1, 0x01_00_00));
}

#[test]
fn read_write_flush() {
    let mut r = rig();
    let (len, status) = r.request(blk_request::IN, 3, &[], 1024);
    assert_eq!((len, status), (1025, blk_status::OK));
    assert_eq!(r.d.bytes(BUF, 1024), r.blk.backend().bytes()[3 * 512..5 * 512]);
    let data: Vec<u8> = (0..2048u32).map(|i| (i * 7) as u8).collect();
    assert_eq!(r.request(blk_request::OUT, 100, &data, 0), (1, blk_status::OK));
    assert_eq!(&r.blk.backend().bytes()[100 * 512..100 * 512 + 2048], &data[..]);
    assert_eq!(r.request(blk_request::FLUSH, 0, &[], 0), (1, blk_status::OK));
    assert_eq!(r.blk.backend().flushes(), 1);
    // The last sector, exactly.
    assert_eq!(r.request(blk_request::IN, (DISK / 512 - 1) as u64, &[], 512).1, blk_status::OK);
    let s = r.blk.stats();
    assert_eq!((s.requests, s.errors, s.bytes_read, s.bytes_written), (4, 0, 1536, 2048));
}

#[test]
fn large_requests_go_through_the_chunk_buffer() {
    let mut r = rig();
    // 320 KiB over three descriptors of odd sizes: five chunks, split across descriptors.
    let total = 320 * 1024u32;
    assert!(r.d.mem.write(HEADER, &header(blk_request::IN, 16)));
    let bufs = [
        (HEADER, 16, false),
        (BUF, 1000, true),
        (BUF + 1000, 200_000, true),
        (BUF + 201_000, total - 201_000, true),
        (STATUS, 1, true),
    ];
    assert_eq!(r.run(&bufs), (total + 1, blk_status::OK));
    assert_eq!(r.d.bytes(BUF, total as usize), r.blk.backend().bytes()[16 * 512..16 * 512 + total as usize]);
    // And back out, header and data sharing a descriptor (VIRTIO_F_ANY_LAYOUT style).
    let mut out = header(blk_request::OUT, 0).to_vec();
    out.extend((0..1024u32).map(|i| (i % 251) as u8));
    assert!(r.d.mem.write(HEADER, &out));
    assert_eq!(r.run(&[(HEADER, out.len() as u32, false), (STATUS, 1, true)]), (1, blk_status::OK));
    assert_eq!(&r.blk.backend().bytes()[..1024], &out[16..]);
}

#[test]
fn get_id() {
    let mut r = rig();
    assert_eq!(r.request(blk_request::GET_ID, 0, &[], 20), (21, blk_status::OK));
    assert_eq!(&r.d.bytes(BUF, 20)[..], b"KEEL-DISK-0001\0\0\0\0\0\0");
    // A short buffer takes what fits; a long serial is cut to 20 bytes.
    assert_eq!(r.request(blk_request::GET_ID, 0, &[], 4), (5, blk_status::OK));
    let mut long = rig_with(MemBackend::zeroed(4096));
    long.blk = VirtioBlk::new(MemBackend::zeroed(4096), b"0123456789abcdefghijKLMN");
    assert_eq!(long.request(blk_request::GET_ID, 0, &[], 64), (21, blk_status::OK));
    assert_eq!(&long.d.bytes(BUF, 21)[..], b"0123456789abcdefghij\0");
}

#[test]
fn discard_and_write_zeroes() {
    let mut r = rig();
    assert_eq!(r.segments(blk_request::DISCARD, &[(8, 2, 0), (100, 1, 0)]), blk_status::OK);
    assert!(r.blk.backend().bytes()[8 * 512..10 * 512].iter().all(|&b| b == 0));
    assert!(r.blk.backend().bytes()[100 * 512..101 * 512].iter().all(|&b| b == 0));
    assert_ne!(r.blk.backend().bytes()[10 * 512 + 1], 0);
    assert_eq!(r.segments(blk_request::WRITE_ZEROES, &[(20, 4, blk_request::SEGMENT_FLAG_UNMAP)]), blk_status::OK);
    assert!(r.blk.backend().bytes()[20 * 512..24 * 512].iter().all(|&b| b == 0));
    // Refused: unmap on a discard, unknown flags, too many segments, too long a segment,
    // no segment, a partial segment; past the end is an I/O error. None touches the disk.
    let before = r.blk.backend().bytes().to_vec();
    assert_eq!(r.segments(blk_request::DISCARD, &[(30, 1, 1)]), blk_status::UNSUPP);
    assert_eq!(r.segments(blk_request::WRITE_ZEROES, &[(30, 1, 2)]), blk_status::UNSUPP);
    let many = vec![(30u64, 1u32, 0u32); MAX_DISCARD_SEG as usize + 1];
    assert_eq!(r.segments(blk_request::DISCARD, &many), blk_status::UNSUPP);
    assert_eq!(r.segments(blk_request::DISCARD, &[(0, MAX_DISCARD_SECTORS + 1, 0)]), blk_status::UNSUPP);
    assert_eq!(r.segments(blk_request::DISCARD, &[]), blk_status::UNSUPP);
    assert_eq!(r.request(blk_request::DISCARD, 0, &[0; 20], 0).1, blk_status::UNSUPP);
    assert_eq!(r.segments(blk_request::DISCARD, &[(30, 1, 0), ((DISK / 512) as u64, 1, 0)]), blk_status::IOERR);
    assert_eq!(r.segments(blk_request::WRITE_ZEROES, &[(u64::MAX, 1, 0)]), blk_status::IOERR);
    assert_eq!(r.blk.backend().bytes(), &before[..], "a refused request changes nothing");
    // The most segments, each the longest allowed, on a disk large enough is fine.
    assert_eq!(r.segments(blk_request::DISCARD, &[(0, 1, 0); MAX_DISCARD_SEG as usize]), blk_status::OK);
}

#[test]
fn read_only_disks_refuse_every_write() {
    let image: Vec<u8> = (0..DISK).map(|i| i as u8).collect();
    let mut r = rig_with(MemBackend::from_bytes(image.clone(), true));
    assert_eq!(r.request(blk_request::OUT, 0, &[1; 512], 0).1, blk_status::IOERR);
    assert_eq!(r.segments(blk_request::DISCARD, &[(0, 1, 0)]), blk_status::IOERR);
    assert_eq!(r.segments(blk_request::WRITE_ZEROES, &[(0, 1, 0)]), blk_status::IOERR);
    assert_eq!(r.request(blk_request::IN, 0, &[], 512).1, blk_status::OK);
    assert_eq!(r.request(blk_request::FLUSH, 0, &[], 0).1, blk_status::OK);
    assert_eq!(r.blk.backend().bytes(), &image[..]);
    assert_eq!(r.blk.stats().errors, 3);
}

#[test]
fn ranges_past_the_end_and_odd_lengths() {
    let mut r = rig();
    let last = (DISK / 512) as u64;
    assert_eq!(r.request(blk_request::IN, last, &[], 512).1, blk_status::IOERR);
    assert_eq!(r.request(blk_request::IN, last - 1, &[], 1024).1, blk_status::IOERR);
    assert_eq!(r.request(blk_request::IN, u64::MAX / 512 + 1, &[], 512).1, blk_status::IOERR, "sector x 512 overflows");
    assert_eq!(r.request(blk_request::IN, u64::MAX, &[], 512).1, blk_status::IOERR);
    assert_eq!(r.request(blk_request::OUT, last, &[0; 512], 0).1, blk_status::IOERR);
    assert_eq!(r.request(blk_request::IN, 0, &[], 100).1, blk_status::IOERR, "not whole sectors");
    assert_eq!(r.request(blk_request::OUT, 0, &[0; 100], 0).1, blk_status::IOERR);
    // A 4 GiB claim is refused before anything is copied or allocated.
    assert_eq!(r.run(&[(HEADER, 16, false), (BUF, u32::MAX - 511, true), (STATUS, 1, true)]).1, blk_status::IOERR);
}

#[test]
fn bad_chains_get_an_error_status_or_nothing() {
    let mut r = rig();
    // Unknown request type, and the legacy SCSI passthrough type: UNSUPP.
    assert_eq!(r.request(77, 0, &[], 0).1, blk_status::UNSUPP);
    assert_eq!(r.request(2, 0, &[], 0).1, blk_status::UNSUPP);
    // Header too short.
    assert!(r.d.mem.write(HEADER, &header(blk_request::IN, 0)));
    assert_eq!(r.run(&[(HEADER, 15, false), (BUF, 512, true), (STATUS, 1, true)]), (1, blk_status::IOERR));
    // Data in the wrong direction: readable data on a read, writable data on a write.
    assert_eq!(r.run(&[(HEADER, 16, false), (BUF, 512, false), (STATUS, 1, true)]).1, blk_status::IOERR);
    assert!(r.d.mem.write(HEADER, &header(blk_request::OUT, 0)));
    assert_eq!(r.run(&[(HEADER, 16, false), (BUF, 512, true), (STATUS, 1, true)]).1, blk_status::IOERR);
    // A readable descriptor after a writable one (2.7.4.2).
    assert_eq!(r.run(&[(BUF, 512, true), (HEADER, 16, false), (STATUS, 1, true)]).1, blk_status::IOERR);
    // A data buffer outside RAM: IOERR, the queue goes on.
    assert!(r.d.mem.write(HEADER, &header(blk_request::IN, 0)));
    assert_eq!(r.run(&[(HEADER, 16, false), (Gpa(1 << 40), 512, true), (STATUS, 1, true)]).1, blk_status::IOERR);
    assert!(r.d.mem.write(HEADER, &header(blk_request::OUT, 0)));
    assert_eq!(r.run(&[(HEADER, 16, false), (Gpa(u64::MAX - 8), 512, false), (STATUS, 1, true)]).1, blk_status::IOERR);
    // No place for a status: the status descriptor missing, read-only or empty. Returned with
    // nothing written and nothing done.
    let before = r.blk.backend().bytes().to_vec();
    assert!(r.d.mem.write(BUF, &[0x55; 512]));
    assert_eq!(r.run(&[(HEADER, 16, false), (BUF, 512, false)]), (0, 0xEE));
    assert_eq!(r.run(&[(HEADER, 16, false), (BUF, 512, false), (STATUS, 1, false)]), (0, 0xEE));
    assert_eq!(r.run(&[(HEADER, 16, false), (BUF, 512, false), (STATUS, 0, true)]), (0, 0xEE));
    assert_eq!(r.blk.backend().bytes(), &before[..]);
    // Still serving.
    assert_eq!(r.request(blk_request::IN, 0, &[], 512).1, blk_status::OK);
}

#[test]
fn a_status_byte_outside_ram_is_a_queue_error() {
    let mut r = rig();
    assert!(r.d.mem.write(HEADER, &header(blk_request::FLUSH, 0)));
    r.d.add_chain(&[(HEADER, 16, false), (Gpa(1 << 40), 1, true)]);
    assert_eq!(r.blk.process_queue(0, &mut r.q, &mut r.d.mem), Err(QueueError::Memory));
}

//! Host tests for the virtio-scsi plumbing: command requests through the request queue (data-in,
//! sense, residual, overrun, bad target, bad chains), the control queue, the event queue, the
//! configuration, and a transitional transport's identity.

use alloc::vec;
use alloc::vec::Vec;

use keel_addr::Gpa;
use keel_devices::guest_memory::{read_u32, GuestMemory};

use super::*;
use crate::backend::MemBackend;
use crate::testdriver::{Driver, DATA};

const REQ: Gpa = DATA;
const RESP: Gpa = Gpa(DATA.0 + 0x1000);
const DATA_IN: Gpa = Gpa(DATA.0 + 0x2000);
/// Linux's lun[] for target 0, LUN `lun`.
fn lun(target: u8, lun: u16) -> [u8; 8] {
    [1, target, 0x40 | (lun >> 8) as u8, lun as u8, 0, 0, 0, 0]
}

struct Rig {
    d: Driver,
    q: SplitQueue,
    scsi: VirtioScsi<MemBackend>,
}

/// A 64-block "ISO": block n is filled with n.
fn rig() -> Rig {
    let image: Vec<u8> = (0..64 * 2048).map(|i| (i / 2048) as u8).collect();
    let d = Driver::new(16);
    let mut q = SplitQueue::new(QUEUE_SIZE);
    assert!(q.set_size(16));
    q.set_addresses(d.desc, d.avail, d.used);
    q.enable();
    Rig { d, q, scsi: VirtioScsi::new(MemBackend::from_bytes(image, true), b"ISO-1") }
}

struct Resp {
    used: u32,
    sense_len: u32,
    residual: u32,
    status: u8,
    response: u8,
    sense: Vec<u8>,
}

impl Rig {
    fn run(&mut self, queue: u16, bufs: &[(Gpa, u32, bool)]) -> u32 {
        assert!(self.d.mem.write(RESP, &[0xEE; 12]));
        let head = self.d.add_chain(bufs);
        self.scsi.process_queue(queue, &mut self.q, &mut self.d.mem).unwrap();
        let used = self.d.take_used();
        assert_eq!(used.len(), 1);
        assert_eq!(used[0].0, u32::from(head));
        used[0].1
    }

    fn resp(&self, used: u32) -> Resp {
        let m = &self.d.mem;
        let b = self.d.bytes(RESP, 12 + 96);
        Resp {
            used,
            sense_len: read_u32(m, RESP).unwrap(),
            residual: read_u32(m, RESP + 4).unwrap(),
            status: b[10],
            response: b[11],
            sense: b[12..12 + (read_u32(m, RESP).unwrap() as usize).min(96)].to_vec(),
        }
    }

    /// A command as Linux sends it: request header + 32-byte CDB, then response header + 96
    /// bytes of sense, then `data_in` bytes.
    fn command(&mut self, lun_bytes: [u8; 8], cdb: &[u8], data_in: u32) -> Resp {
        let mut req = vec![0u8; 19 + 32];
        req[..8].copy_from_slice(&lun_bytes);
        req[19..19 + cdb.len()].copy_from_slice(cdb);
        assert!(self.d.mem.write(REQ, &req));
        let mut bufs = vec![(REQ, 51, false), (RESP, 12 + 96, true)];
        if data_in > 0 {
            bufs.push((DATA_IN, data_in, true));
        }
        let used = self.run(scsi_queue::REQUEST, &bufs);
        self.resp(used)
    }

    fn control(&mut self, req: &[u8], resp_len: u32) -> (u32, Vec<u8>) {
        assert!(self.d.mem.write(REQ, req));
        assert!(self.d.mem.write(RESP, &[0xEE; 8]));
        let used = self.run(scsi_queue::CONTROL, &[(REQ, req.len() as u32, false), (RESP, resp_len, true)]);
        (used, self.d.bytes(RESP, resp_len as usize))
    }
}

#[test]
fn configuration() {
    let mut r = rig();
    let s = &mut r.scsi;
    let mut c = [0u8; scsi_config::LEN];
    s.read_config(0, &mut c);
    let word = |c: &[u8], at: usize| u32::from_le_bytes(c[at..at + 4].try_into().unwrap());
    assert_eq!(word(&c, 0), 1, "one request queue");
    assert_eq!(word(&c, 8), 8192, "max_sectors: 4 MiB");
    assert_eq!((word(&c, 20), word(&c, 24)), (96, 32));
    assert_eq!(&c[28..36], [0; 8], "max_channel, max_target, max_lun 0");
    // Linux writes sense_size and cdb_size; other fields stay.
    s.write_config(20, &64u32.to_le_bytes());
    s.write_config(24, &[16]);
    s.write_config(0, &[9, 9, 9, 9]);
    s.read_config(0, &mut c);
    assert_eq!((word(&c, 0), word(&c, 20), word(&c, 24)), (1, 64, 16));
    s.reset();
    s.read_config(0, &mut c);
    assert_eq!((word(&c, 20), word(&c, 24)), (96, 32));
    assert_eq!((s.device_id(), s.num_queues(), s.features()), (8, 3, 0));
    let pci = crate::VirtioPci::transitional(VirtioScsi::new(MemBackend::zeroed(2048), b"")).unwrap();
    use keel_devices::pci::PciFunction;
    assert_eq!(pci.config().u32_at(0), 0x1004_1AF4);
    assert_eq!(pci.config().u16_at(0x2E), 8);
    assert_eq!(pci.config().bar(0).map(|b| b.size), Some(64));
}

#[test]
fn inquiry_and_read_capacity() {
    let mut r = rig();
    let resp = r.command(lun(0, 0), &[0x12, 0, 0, 0, 36, 0], 36);
    assert_eq!((resp.response, resp.status, resp.residual, resp.sense_len), (scsi_response::OK, 0, 0, 0));
    assert_eq!(resp.used, 12 + 96 + 36);
    let inq = r.d.bytes(DATA_IN, 36);
    assert_eq!((inq[0], &inq[8..16]), (5, &b"KEEL    "[..]));
    // A larger buffer: the residual is what was not written.
    let resp = r.command(lun(0, 0), &[0x12, 0, 0, 0, 255, 0], 255);
    assert_eq!(resp.residual, 255 - 36);
    let resp = r.command(lun(0, 0), &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], 8);
    assert_eq!(resp.status, 0);
    assert_eq!(r.d.bytes(DATA_IN, 8), [0, 0, 0, 63, 0, 0, 8, 0]);
    // A reply longer than the buffer is cut to it.
    let resp = r.command(lun(0, 0), &[0x12, 0, 0, 0, 36, 0], 10);
    assert_eq!((resp.response, resp.residual), (scsi_response::OK, 0));
}

#[test]
fn read10_data() {
    let mut r = rig();
    let resp = r.command(lun(0, 0), &[0x28, 0, 0, 0, 0, 5, 0, 0, 3, 0], 3 * 2048);
    assert_eq!((resp.response, resp.status, resp.residual), (scsi_response::OK, 0, 0));
    let data = r.d.bytes(DATA_IN, 3 * 2048);
    assert!(data[..2048].iter().all(|&b| b == 5));
    assert!(data[2048 * 2..].iter().all(|&b| b == 7));
    assert_eq!(r.scsi.stats().bytes_read, 3 * 2048);
    // Across several data-in descriptors.
    let mut req = vec![0u8; 51];
    req[..8].copy_from_slice(&lun(0, 0));
    req[19..29].copy_from_slice(&[0x28, 0, 0, 0, 0, 9, 0, 0, 2, 0]);
    assert!(r.d.mem.write(REQ, &req));
    let bufs = [(REQ, 51, false), (RESP, 108, true), (DATA_IN, 1000, true), (DATA_IN + 0x1000, 3096, true)];
    r.run(scsi_queue::REQUEST, &bufs);
    assert_eq!(r.d.bytes(DATA_IN, 1000), vec![9; 1000]);
    assert_eq!(r.d.bytes(DATA_IN + 0x1000 + 1048, 2048), vec![10; 2048]);
    // A buffer too small for the READ: OVERRUN, nothing transferred.
    let resp = r.command(lun(0, 0), &[0x28, 0, 0, 0, 0, 1, 0, 0, 2, 0], 2048);
    assert_eq!(resp.response, scsi_response::OVERRUN);
    // Past the end: CHECK CONDITION, LBA out of range.
    let resp = r.command(lun(0, 0), &[0x28, 0, 0, 0, 0, 63, 0, 0, 2, 0], 4096);
    assert_eq!((resp.status, resp.sense[12]), (sense::STATUS_CHECK_CONDITION, 0x21));
}

#[test]
fn sense_after_a_bad_opcode() {
    let mut r = rig();
    let resp = r.command(lun(0, 0), &[0xEF, 0, 0, 0, 0, 0], 64);
    assert_eq!((resp.response, resp.status, resp.sense_len), (scsi_response::OK, sense::STATUS_CHECK_CONDITION, 18));
    assert_eq!(resp.sense, Sense::INVALID_OPCODE.fixed());
    assert_eq!((resp.residual, resp.used), (64, 12 + 18));
    // REQUEST SENSE afterwards: the sense went with the CHECK CONDITION (autosense).
    let resp = r.command(lun(0, 0), &[0x03, 0, 0, 0, 18, 0], 18);
    assert_eq!(resp.status, 0);
    assert_eq!(r.d.bytes(DATA_IN, 18), Sense::NONE.fixed());
    // A driver that shrank sense_size gets no more than that.
    r.scsi.write_config(scsi_config::SENSE_SIZE as u64, &8u32.to_le_bytes());
    let mut req = vec![0u8; 51];
    req[..8].copy_from_slice(&lun(0, 0));
    req[19] = 0xEF;
    assert!(r.d.mem.write(REQ, &req));
    let used = r.run(scsi_queue::REQUEST, &[(REQ, 51, false), (RESP, 12 + 8, true)]);
    assert_eq!((r.resp(used).sense_len, used), (8, 20));
}

#[test]
fn bad_target_and_lun() {
    let mut r = rig();
    for l in
        [lun(1, 0), lun(0, 1), [2, 0, 0x40, 0, 0, 0, 0, 0], [1, 0, 0x80, 0, 0, 0, 0, 0], [1, 0, 0x40, 0, 0, 0, 0, 1]]
    {
        let resp = r.command(l, &[0x12, 0, 0, 0, 36, 0], 36);
        assert_eq!(resp.response, scsi_response::BAD_TARGET, "{l:?}");
        assert_eq!(r.d.bytes(DATA_IN, 4), [0; 4], "nothing transferred");
    }
    // The peripheral form of LUN 0 is LUN 0 too.
    assert_eq!(r.command([1, 0, 0, 0, 0, 0, 0, 0], &[0; 6], 0).response, scsi_response::OK);
}

#[test]
fn bad_chains() {
    let mut r = rig();
    // Response header does not fit: returned with nothing written.
    assert_eq!(r.run(scsi_queue::REQUEST, &[(REQ, 51, false), (RESP, 11, true)]), 0);
    assert_eq!(r.d.bytes(RESP, 1), [0xEE]);
    assert_eq!(r.run(scsi_queue::REQUEST, &[(REQ, 51, false)]), 0);
    // Request shorter than the header and CDB; a readable descriptor after a writable one.
    let used = r.run(scsi_queue::REQUEST, &[(REQ, 40, false), (RESP, 108, true)]);
    assert_eq!(r.resp(used).response, scsi_response::FAILURE);
    let used = r.run(scsi_queue::REQUEST, &[(RESP, 108, true), (REQ, 51, false)]);
    assert_eq!(r.resp(used).response, scsi_response::FAILURE);
    // A data-in buffer outside RAM.
    let mut req = vec![0u8; 51];
    req[..8].copy_from_slice(&lun(0, 0));
    req[19..29].copy_from_slice(&[0x28, 0, 0, 0, 0, 1, 0, 0, 1, 0]);
    assert!(r.d.mem.write(REQ, &req));
    let used = r.run(scsi_queue::REQUEST, &[(REQ, 51, false), (RESP, 108, true), (Gpa(1 << 40), 2048, true)]);
    assert_eq!(r.resp(used).response, scsi_response::FAILURE);
    // A huge cdb_size from the driver is only an offset: the request is too short for it.
    r.scsi.write_config(scsi_config::CDB_SIZE as u64, &u32::MAX.to_le_bytes());
    assert_eq!(r.command(lun(0, 0), &[0; 6], 0).response, scsi_response::FAILURE);
    // A huge sense_size leaves no room for data-in: a READ overruns.
    r.scsi.write_config(scsi_config::CDB_SIZE as u64, &32u32.to_le_bytes());
    r.scsi.write_config(scsi_config::SENSE_SIZE as u64, &u32::MAX.to_le_bytes());
    assert_eq!(r.command(lun(0, 0), &[0x28, 0, 0, 0, 0, 1, 0, 0, 1, 0], 2048).response, scsi_response::OVERRUN);
    let s = r.scsi.stats();
    assert_eq!((s.commands, s.failures), (7, 7));
    // A response header outside RAM is a queue error.
    r.d.add_chain(&[(REQ, 51, false), (Gpa(1 << 40), 108, true)]);
    assert_eq!(r.scsi.process_queue(scsi_queue::REQUEST, &mut r.q, &mut r.d.mem), Err(QueueError::Memory));
}

#[test]
fn control_queue() {
    let mut r = rig();
    let tmf = |subtype: u32, l: [u8; 8]| {
        let mut req = vec![0u8; 24];
        req[4..8].copy_from_slice(&subtype.to_le_bytes());
        req[8..16].copy_from_slice(&l);
        req
    };
    assert_eq!(
        r.control(&tmf(scsi_request::T_TMF_ABORT_TASK, lun(0, 0)), 1),
        (1, vec![scsi_response::FUNCTION_COMPLETE])
    );
    r.scsi.cdrom.execute(&[0x1E, 0, 0, 0, 1, 0], &mut [0; REPLY_MAX]);
    assert!(r.scsi.cdrom().removal_prevented());
    assert_eq!(
        r.control(&tmf(scsi_request::T_TMF_LOGICAL_UNIT_RESET, lun(0, 0)), 1).1,
        [scsi_response::FUNCTION_COMPLETE]
    );
    assert!(!r.scsi.cdrom().removal_prevented(), "a LUN reset allows removal again");
    assert_eq!(r.control(&tmf(scsi_request::T_TMF_CLEAR_ACA, lun(0, 0)), 1).1, [scsi_response::FUNCTION_REJECTED]);
    assert_eq!(r.control(&tmf(99, lun(0, 0)), 1).1, [scsi_response::FUNCTION_REJECTED]);
    assert_eq!(r.control(&tmf(scsi_request::T_TMF_ABORT_TASK, lun(3, 0)), 1).1, [scsi_response::BAD_TARGET]);
    // Asynchronous notification: no event supported.
    let mut an = vec![0u8; 16];
    an[..4].copy_from_slice(&scsi_request::T_AN_SUBSCRIBE.to_le_bytes());
    an[4..12].copy_from_slice(&lun(0, 0));
    an[12..16].copy_from_slice(&0x7Eu32.to_le_bytes());
    assert_eq!(r.control(&an, 5), (5, vec![0, 0, 0, 0, scsi_response::OK]));
    // Too short, unknown type, no room for the response: nothing written.
    assert_eq!(r.control(&tmf(0, lun(0, 0))[..20], 1), (0, vec![0xEE]));
    assert_eq!(r.control(&[7, 0, 0, 0, 0, 0, 0, 0], 8), (0, vec![0xEE; 8]));
    assert_eq!(r.control(&an, 4), (0, vec![0xEE; 4]));
    // The event queue keeps its buffers.
    r.d.add_chain(&[(DATA_IN, 16, true)]);
    r.scsi.process_queue(scsi_queue::EVENT, &mut r.q, &mut r.d.mem).unwrap();
    assert!(r.d.take_used().is_empty());
}

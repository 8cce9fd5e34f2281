//! A fake NVMe controller for the driver's tests: BAR0 registers that react to CC and to the
//! doorbells, and a command processor that reads submission entries and PRPs out of the fake
//! DMA memory, runs them against in-memory namespaces (`MemDisk`) and posts completions with the
//! phase tag, as a controller does. Knobs make it slow, silent, fatal or hostile.
//!
//! The fake checks the driver: a queue, PRP or doorbell value a real controller would reject is
//! a test failure (an assertion here), not a status.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

use keel_block::{BlockDevice, MemDisk};
use keel_drv_hal::fake::FakeMemory;
use keel_drv_hal::Registers;

use crate::command::{admin, nvm, Command, Completion, COMMAND_BYTES, COMPLETION_BYTES};
use crate::identify::IDENTIFY_BYTES;
use crate::regs;

/// Status codes the fake answers with. See: NVMe 1.4 4.6.1.2
pub const INVALID_OPCODE: u16 = 0x01;
pub const INVALID_FIELD: u16 = 0x02;
pub const LBA_OUT_OF_RANGE: u16 = 0x80;
pub const UNRECOVERED_READ_ERROR: u16 = 0x281;

pub struct FakeNamespace {
    pub id: u32,
    pub identify: [u8; IDENTIFY_BYTES],
    pub disk: MemDisk,
}

struct SubmissionQueue {
    base: u64,
    size: u16,
    head: u16,
    completion_queue: u16,
}

struct CompletionQueue {
    base: u64,
    size: u16,
    tail: u16,
    head: u16,
    phase: bool,
}

pub struct Controller {
    memory: FakeMemory,
    clock: Rc<Cell<u64>>,
    pub cap: u64,
    pub bar_len: usize,
    cc: u32,
    fatal: bool,
    aqa: u32,
    asq: u64,
    acq: u64,
    /// When CC.EN was last set (RDY follows after `ready_delay_ns`).
    enabled_at: Option<u64>,
    pub ready_delay_ns: u64,
    /// RDY never sets.
    pub never_ready: bool,
    /// RDY never clears once set.
    pub never_resets: bool,
    /// Commands are taken but never completed.
    pub silent: bool,
    /// CSTS.CFS sets when this many more commands have been taken.
    pub fatal_after: Option<u32>,
    /// Every register reads all ones (surprise removal).
    pub removed: bool,
    /// Reads and writes touching this LBA fail with this status.
    pub failing_lba: Option<(u64, u16)>,
    /// Identify CNS 02h is refused (an NVMe 1.0 controller).
    pub no_active_list: bool,
    pub identify_controller: [u8; IDENTIFY_BYTES],
    pub namespaces: Vec<FakeNamespace>,
    submission_queues: BTreeMap<u16, SubmissionQueue>,
    completion_queues: BTreeMap<u16, CompletionQueue>,
    /// Every command taken, in order, with the queue it came from.
    pub log: Vec<(u16, Command)>,
    /// Completions posted per queue (wrap-around checks).
    pub posted: BTreeMap<u16, u32>,
    pub resets: u32,
}

/// The fake's BAR0, shared between the driver (as its `Registers`) and the test.
#[derive(Clone)]
pub struct FakeNvme(pub Rc<RefCell<Controller>>);

/// CAP of a plain controller: MQES 255, CQR, TO 2 (1 s), DSTRD 0, NVM command set, pages 4 KiB
/// to 64 KiB.
pub const PLAIN_CAP: u64 = 255 | 1 << 16 | 2 << 24 | 1 << 37 | 4 << 52;

impl FakeNvme {
    pub fn new(memory: FakeMemory, clock: Rc<Cell<u64>>) -> Self {
        FakeNvme(Rc::new(RefCell::new(Controller {
            memory,
            clock,
            cap: PLAIN_CAP,
            bar_len: 0x2000,
            cc: 0,
            fatal: false,
            aqa: 0,
            asq: 0,
            acq: 0,
            enabled_at: None,
            ready_delay_ns: 3_000_000,
            never_ready: false,
            never_resets: false,
            silent: false,
            fatal_after: None,
            removed: false,
            failing_lba: None,
            no_active_list: false,
            identify_controller: controller_data("KEEL FAKE NVME", "FAKE0001", 0, true, 1 << 3, 1),
            namespaces: Vec::new(),
            submission_queues: BTreeMap::new(),
            completion_queues: BTreeMap::new(),
            log: Vec::new(),
            posted: BTreeMap::new(),
            resets: 0,
        })))
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut Controller) -> T) -> T {
        f(&mut self.0.borrow_mut())
    }

    /// Add namespace `id` of `blocks` blocks of 2 ^ `block_shift` bytes.
    pub fn add_namespace(&self, id: u32, blocks: u64, block_shift: u8) {
        let disk = MemDisk::new(1 << block_shift, blocks);
        let identify = namespace_data(blocks, 0, 0, &[(block_shift as u32) << 16]);
        self.with(|c| c.namespaces.push(FakeNamespace { id, identify, disk }));
    }
}

/// Identify Controller data. See: NVMe 1.4 Figure 247
pub fn controller_data(model: &str, serial: &str, mdts: u8, vwc: bool, oncs: u16, nn: u32) -> [u8; IDENTIFY_BYTES] {
    let mut data = [0u8; IDENTIFY_BYTES];
    data[4..24].fill(b' ');
    data[4..4 + serial.len()].copy_from_slice(serial.as_bytes());
    data[24..64].fill(b' ');
    data[24..24 + model.len()].copy_from_slice(model.as_bytes());
    data[64..72].copy_from_slice(b"1.0     ");
    data[77] = mdts;
    data[512] = 0x66;
    data[513] = 0x44;
    data[516..520].copy_from_slice(&nn.to_le_bytes());
    data[520..522].copy_from_slice(&oncs.to_le_bytes());
    data[525] = vwc as u8;
    data
}

/// Identify Namespace data. See: NVMe 1.4 Figure 245
pub fn namespace_data(blocks: u64, nlbaf: u8, flbas: u8, formats: &[u32]) -> [u8; IDENTIFY_BYTES] {
    let mut data = [0u8; IDENTIFY_BYTES];
    data[0..8].copy_from_slice(&blocks.to_le_bytes());
    data[8..16].copy_from_slice(&blocks.to_le_bytes());
    data[25] = nlbaf;
    data[26] = flbas;
    for (index, format) in formats.iter().enumerate() {
        data[128 + 4 * index..132 + 4 * index].copy_from_slice(&format.to_le_bytes());
    }
    data
}

impl Controller {
    fn page_size(&self) -> usize {
        1 << (12 + ((self.cc >> 7) & 0xf))
    }

    fn ready(&self) -> bool {
        match self.enabled_at {
            Some(at) => !self.never_ready && self.clock.get() >= at + self.ready_delay_ns,
            None => self.never_resets && self.resets > 0,
        }
    }

    /// As the firmware may leave it: enabled and ready, with no queues the driver knows.
    pub fn left_enabled(&mut self) {
        self.cc = 1;
        self.enabled_at = Some(0);
        self.ready_delay_ns = 0;
    }

    pub fn status(&self) -> u32 {
        let shutdown = if (self.cc >> 14) & 0b11 != 0 { 0b10 << 2 } else { 0 };
        self.ready() as u32 | (self.fatal as u32) << 1 | shutdown
    }

    fn write_configuration(&mut self, value: u32) {
        let was_enabled = self.cc & 1 != 0;
        self.cc = value;
        match (was_enabled, value & 1 != 0) {
            (true, false) => {
                // Controller reset. See: NVMe 1.4 7.3.1
                self.resets += 1;
                self.enabled_at = None;
                self.fatal = false;
                self.submission_queues.clear();
                self.completion_queues.clear();
            }
            (false, true) => {
                let page = self.page_size() as u64;
                let mps = (value >> 7) & 0xf;
                assert!(mps as u64 >= (self.cap >> 48) & 0xf, "CC.MPS below CAP.MPSMIN");
                assert_eq!((value >> 16) & 0xf, 6, "IOSQES");
                assert_eq!((value >> 20) & 0xf, 4, "IOCQES");
                assert_eq!(value >> 4 & 0b111, 0, "CSS");
                assert!(self.asq != 0 && self.asq.is_multiple_of(page), "ASQ not page aligned");
                assert!(self.acq != 0 && self.acq.is_multiple_of(page), "ACQ not page aligned");
                let sq_size = (self.aqa & 0xfff) as u16 + 1;
                let cq_size = ((self.aqa >> 16) & 0xfff) as u16 + 1;
                assert!(sq_size >= 2 && cq_size >= 2);
                self.submission_queues
                    .insert(0, SubmissionQueue { base: self.asq, size: sq_size, head: 0, completion_queue: 0 });
                self.completion_queues
                    .insert(0, CompletionQueue { base: self.acq, size: cq_size, tail: 0, head: 0, phase: true });
                self.enabled_at = Some(self.clock.get());
            }
            _ => {}
        }
    }

    fn doorbell(&mut self, offset: usize, value: u32) {
        let stride = 4usize << ((self.cap >> 32) & 0xf);
        assert_eq!((offset - regs::DOORBELLS) % stride, 0, "doorbell off the stride");
        let index = (offset - regs::DOORBELLS) / stride;
        let queue = (index / 2) as u16;
        if index % 2 == 1 {
            let cq = self.completion_queues.get_mut(&queue).expect("head doorbell of a missing completion queue");
            assert!(value < cq.size as u32, "completion head past the queue");
            cq.head = value as u16;
            return;
        }
        let size = self.submission_queues.get(&queue).expect("tail doorbell of a missing submission queue").size;
        assert!(value < size as u32, "submission tail past the queue");
        if !self.ready() {
            return;
        }
        loop {
            let sq = &self.submission_queues[&queue];
            if sq.head == value as u16 {
                break;
            }
            let mut entry = [0u8; COMMAND_BYTES];
            assert!(self.memory.read(sq.base + sq.head as u64 * COMMAND_BYTES as u64, &mut entry));
            let command = Command::from_bytes(&entry);
            let cq_id = sq.completion_queue;
            let sq = self.submission_queues.get_mut(&queue).unwrap();
            sq.head = (sq.head + 1) % sq.size;
            let head = sq.head;
            self.log.push((queue, command));
            if let Some(left) = &mut self.fatal_after {
                if *left == 0 {
                    self.fatal = true;
                    return;
                }
                *left -= 1;
            }
            if self.silent {
                continue;
            }
            let (result, status) = if queue == 0 { self.admin(&command) } else { self.io(&command) };
            self.post(cq_id, queue, head, command.dwords[0] >> 16, result, status);
        }
    }

    fn post(&mut self, cq_id: u16, sq_id: u16, sq_head: u16, id: u32, result: u32, status: u16) {
        let cq = self.completion_queues.get_mut(&cq_id).expect("completion queue");
        assert_ne!((cq.tail + 1) % cq.size, cq.head, "completion queue overflow: the driver did not free entries");
        let entry = Completion {
            result,
            submission_head: sq_head,
            submission_queue: sq_id,
            command_id: id as u16,
            phase: cq.phase,
            status,
        };
        assert!(self.memory.write(cq.base + cq.tail as u64 * COMPLETION_BYTES as u64, &entry.to_bytes()));
        cq.tail += 1;
        if cq.tail == cq.size {
            cq.tail = 0;
            cq.phase = !cq.phase;
        }
        *self.posted.entry(cq_id).or_default() += 1;
    }

    fn admin(&mut self, command: &Command) -> (u32, u16) {
        let d = &command.dwords;
        let prp1 = d[6] as u64 | (d[7] as u64) << 32;
        match command.opcode() {
            admin::IDENTIFY => {
                let data = match d[10] & 0xff {
                    0x01 => self.identify_controller,
                    0x00 => {
                        self.namespaces.iter().find(|ns| ns.id == d[1]).map_or([0; IDENTIFY_BYTES], |ns| ns.identify)
                    }
                    0x02 if self.no_active_list => return (0, INVALID_FIELD),
                    0x02 => {
                        let mut list = [0u8; IDENTIFY_BYTES];
                        let mut ids: Vec<u32> =
                            self.namespaces.iter().map(|ns| ns.id).filter(|&id| id > d[1]).collect();
                        ids.sort();
                        for (slot, id) in list.chunks_exact_mut(4).zip(ids) {
                            slot.copy_from_slice(&id.to_le_bytes());
                        }
                        list
                    }
                    _ => return (0, INVALID_FIELD),
                };
                assert_eq!(prp1 % 4, 0);
                assert!(self.memory.write(prp1, &data), "identify buffer not in DMA memory");
                (0, 0)
            }
            admin::SET_FEATURES => (0, 0),
            admin::CREATE_IO_COMPLETION_QUEUE => {
                let (id, size) = ((d[10] & 0xffff) as u16, (d[10] >> 16) as u16 + 1);
                assert!(d[11] & 1 == 1, "completion queue not physically contiguous (CAP.CQR)");
                assert!(id != 0 && !self.completion_queues.contains_key(&id));
                assert!(size as u64 <= (self.cap & 0xffff) + 1, "queue larger than MQES");
                assert_eq!(prp1 % self.page_size() as u64, 0);
                self.completion_queues.insert(id, CompletionQueue { base: prp1, size, tail: 0, head: 0, phase: true });
                (0, 0)
            }
            admin::CREATE_IO_SUBMISSION_QUEUE => {
                let (id, size) = ((d[10] & 0xffff) as u16, (d[10] >> 16) as u16 + 1);
                let completion_queue = (d[11] >> 16) as u16;
                assert!(d[11] & 1 == 1, "submission queue not physically contiguous");
                assert!(
                    self.completion_queues.contains_key(&completion_queue),
                    "submission queue before its completion queue"
                );
                assert!(size as u64 <= (self.cap & 0xffff) + 1, "queue larger than MQES");
                self.submission_queues.insert(id, SubmissionQueue { base: prp1, size, head: 0, completion_queue });
                (0, 0)
            }
            _ => (0, INVALID_OPCODE),
        }
    }

    /// The pages a transfer of `len` bytes covers, from PRP1 and PRP2 (following lists and
    /// their chains). See: NVMe 1.4 4.3
    fn data_pages(&self, prp1: u64, prp2: u64, len: usize) -> Vec<(u64, usize)> {
        let page = self.page_size();
        assert_eq!(prp1 % 4, 0, "PRP1 not dword aligned");
        let first = (page - (prp1 as usize % page)).min(len);
        let mut pages = vec![(prp1, first)];
        let mut left = len - first;
        if left == 0 {
            return pages;
        }
        if left <= page {
            assert_eq!(prp2 % page as u64, 0, "PRP2 data page not page aligned");
            pages.push((prp2, left));
            return pages;
        }
        let mut list = prp2;
        assert_eq!(list % 8, 0, "PRP list not qword aligned");
        let entries_per_page = page / 8;
        let mut index = (list as usize % page) / 8;
        while left > 0 {
            let entry = self.memory.read_u64(list).expect("PRP list entry not in DMA memory");
            if index == entries_per_page - 1 && left > page {
                // The last entry of a list page chains to the next list page.
                list = entry;
                index = 0;
                continue;
            }
            assert_eq!(entry % page as u64, 0, "PRP entry not page aligned");
            let now = left.min(page);
            pages.push((entry, now));
            left -= now;
            list += 8;
            index += 1;
        }
        pages
    }

    fn io(&mut self, command: &Command) -> (u32, u16) {
        let d = command.dwords;
        let Some(index) = self.namespaces.iter().position(|ns| ns.id == d[1]) else {
            return (0, 0x0b); // Invalid Namespace or Format
        };
        let lba = d[10] as u64 | (d[11] as u64) << 32;
        let blocks = (d[12] & 0xffff) as u64 + 1;
        let block_size = self.namespaces[index].disk.block_size() as usize;
        let zeroes_supported =
            u16::from_le_bytes([self.identify_controller[520], self.identify_controller[521]]) & 1 << 3 != 0;
        let touches_failing = self.failing_lba.filter(|&(bad, _)| (lba..lba + blocks).contains(&bad));
        let disk = &mut self.namespaces[index].disk;
        match command.opcode() {
            nvm::FLUSH => {
                disk.flush().unwrap();
                return (0, 0);
            }
            nvm::WRITE_ZEROES if zeroes_supported => {
                if lba + blocks > disk.block_count() {
                    return (0, LBA_OUT_OF_RANGE);
                }
                disk.write_blocks(lba, &vec![0; blocks as usize * block_size]).unwrap();
                return (0, 0);
            }
            nvm::READ | nvm::WRITE => {}
            _ => return (0, INVALID_OPCODE),
        }
        if lba + blocks > disk.block_count() {
            return (0, LBA_OUT_OF_RANGE);
        }
        if let Some((_, status)) = touches_failing {
            return (0, status);
        }
        let prp1 = d[6] as u64 | (d[7] as u64) << 32;
        let prp2 = d[8] as u64 | (d[9] as u64) << 32;
        let len = blocks as usize * block_size;
        let pages = self.data_pages(prp1, prp2, len);
        let disk = &mut self.namespaces[index].disk;
        let mut data = vec![0u8; len];
        if command.opcode() == nvm::READ {
            disk.read_blocks(lba, &mut data).unwrap();
            let mut at = 0;
            for (address, now) in pages {
                assert!(self.memory.write(address, &data[at..at + now]), "read into memory outside DMA buffers");
                at += now;
            }
        } else {
            let mut at = 0;
            for (address, now) in pages {
                assert!(self.memory.read(address, &mut data[at..at + now]), "write from memory outside DMA buffers");
                at += now;
            }
            disk.write_blocks(lba, &data).unwrap();
        }
        (0, 0)
    }
}

impl Registers for FakeNvme {
    fn len(&self) -> usize {
        self.0.borrow().bar_len
    }
    fn read8(&mut self, offset: usize) -> u8 {
        self.read32(offset & !3).to_le_bytes()[offset & 3]
    }
    fn read16(&mut self, offset: usize) -> u16 {
        (self.read32(offset & !3) >> ((offset & 2) * 8)) as u16
    }
    fn read32(&mut self, offset: usize) -> u32 {
        let c = self.0.borrow();
        if c.removed {
            return u32::MAX;
        }
        match offset {
            0x00 => c.cap as u32,
            0x04 => (c.cap >> 32) as u32,
            regs::VS => 0x0001_0400,
            regs::CC => c.cc,
            regs::CSTS => c.status(),
            regs::AQA => c.aqa,
            0x28 => c.asq as u32,
            0x2c => (c.asq >> 32) as u32,
            0x30 => c.acq as u32,
            0x34 => (c.acq >> 32) as u32,
            _ => 0,
        }
    }
    fn write8(&mut self, _: usize, _: u8) {
        panic!("the NVMe registers take 32-bit writes");
    }
    fn write16(&mut self, _: usize, _: u16) {
        panic!("the NVMe registers take 32-bit writes");
    }
    fn write32(&mut self, offset: usize, value: u32) {
        let mut c = self.0.borrow_mut();
        if c.removed {
            return;
        }
        match offset {
            regs::CC => c.write_configuration(value),
            regs::AQA => c.aqa = value,
            0x28 => c.asq = (c.asq & !0xffff_ffff) | value as u64,
            0x2c => c.asq = (c.asq & 0xffff_ffff) | (value as u64) << 32,
            0x30 => c.acq = (c.acq & !0xffff_ffff) | value as u64,
            0x34 => c.acq = (c.acq & 0xffff_ffff) | (value as u64) << 32,
            offset if offset >= regs::DOORBELLS => c.doorbell(offset, value),
            _ => {}
        }
    }
}

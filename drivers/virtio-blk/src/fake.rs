//! A fake virtio-blk device on the virtio-pci transport for the driver's host tests: the BAR's
//! registers (common configuration at 0, ISR at 0x1000, device configuration at 0x2000, notify at
//! 0x3000, as `keel_drv_pci::fake::q35` announces them), and a device that, when notified, walks
//! the split virtqueue in fake physical memory and carries out IN, OUT, FLUSH and WRITE_ZEROES on
//! a disk in a `Vec`, as QEMU's would. A [`Fault`] makes it misbehave. The platform hands out DMA
//! buffers from the same fake physical memory and a clock that moves only when the driver waits.
//! It does not model event suppression, indirect descriptors or more than one queue.

use alloc::rc::Rc;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;

use keel_drv_hal::{Dma, HwError, Platform, Registers};

use crate::spec::{common, feature, request, request_status, status, NO_VECTOR};

/// Physical memory shared by the driver's DMA buffers and the device.
pub type Memory = Rc<RefCell<Vec<u8>>>;

/// How the device misbehaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    None,
    /// Never completes a request.
    NeverComplete,
    /// Moves the used index by 3 for one request.
    BadUsedIndex,
    /// Names the wrong descriptor in the used entry.
    WrongUsedId,
    /// Completes every request with this status.
    Status(u8),
    /// Completes without writing the status byte.
    NoStatus,
    /// Reads all ones from the next request on (hot-unplugged), and completes nothing.
    Vanish,
    /// Never finishes a reset.
    StuckReset,
    /// Clears FEATURES_OK.
    RefuseFeatures,
    /// Reads NO_VECTOR back for the queue's MSI-X vector.
    RefuseVector,
    /// The configuration generation changes on every read.
    RestlessGeneration,
}

/// One request the device carried out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Served {
    pub kind: u32,
    pub sector: u64,
    /// The data segments' lengths.
    pub segments: Vec<u32>,
}

/// The device's state.
pub struct Device {
    pub memory: Memory,
    pub disk: Vec<u8>,
    pub offered: u64,
    pub driver_features: u64,
    device_feature_select: u32,
    driver_feature_select: u32,
    pub status: u8,
    pub max_queue_size: u16,
    pub queue_size: u16,
    pub queue_vector: u16,
    pub queue_enable: u16,
    queue_desc: u64,
    queue_driver: u64,
    queue_device: u64,
    pub size_max: u32,
    pub seg_max: u32,
    pub blk_size: u32,
    pub write_zeroes_max_sectors: u32,
    pub write_zeroes_max_seg: u32,
    generation: u8,
    isr: u8,
    last_avail: u16,
    used_idx: u16,
    pub fault: Fault,
    /// What GET_ID answers (`None`: UNSUPP).
    pub serial: Option<&'static [u8]>,
    pub served: Vec<Served>,
    pub flushes: u32,
    pub notifies: u32,
}

/// The BAR: a handle on the shared device state (the test keeps another).
#[derive(Clone)]
pub struct FakeBar(pub Rc<RefCell<Device>>);

pub const ISR_AT: usize = 0x1000;
pub const DEVICE_AT: usize = 0x2000;
pub const NOTIFY_AT: usize = 0x3000;
pub const BAR_LEN: usize = 0x4000;

impl Device {
    /// A device with a disk of `sectors` 512-byte sectors (filled with a pattern) offering
    /// `offered` features.
    pub fn new(memory: Memory, sectors: usize, offered: u64) -> Self {
        let disk = (0..sectors * 512).map(|i| (i / 512) as u8 ^ (i % 251) as u8).collect();
        Device {
            memory,
            disk,
            offered,
            driver_features: 0,
            device_feature_select: 0,
            driver_feature_select: 0,
            status: 0,
            max_queue_size: 256,
            queue_size: 256,
            queue_vector: NO_VECTOR,
            queue_enable: 0,
            queue_desc: 0,
            queue_driver: 0,
            queue_device: 0,
            size_max: 0,
            seg_max: 0,
            blk_size: 512,
            write_zeroes_max_sectors: 0,
            write_zeroes_max_seg: 0,
            generation: 0,
            isr: 0,
            last_avail: 0,
            used_idx: 0,
            fault: Fault::None,
            serial: Some(b"KEEL-FAKE-0001"),
            served: Vec::new(),
            flushes: 0,
            notifies: 0,
        }
    }

    fn mem_read(&self, phys: u64, len: usize) -> Vec<u8> {
        let mem = self.memory.borrow();
        let start = phys as usize;
        mem.get(start..start + len).map(|b| b.to_vec()).unwrap_or_else(|| vec![0; len])
    }

    fn mem_write(&self, phys: u64, data: &[u8]) {
        let mut mem = self.memory.borrow_mut();
        let start = phys as usize;
        if let Some(dst) = mem.get_mut(start..start + data.len()) {
            dst.copy_from_slice(data);
        }
    }

    fn mem_u16(&self, phys: u64) -> u16 {
        let b = self.mem_read(phys, 2);
        u16::from_le_bytes([b[0], b[1]])
    }

    fn reset(&mut self) {
        if self.fault == Fault::StuckReset {
            return;
        }
        self.status = 0;
        self.driver_features = 0;
        self.queue_enable = 0;
        self.queue_size = self.max_queue_size;
        self.queue_vector = NO_VECTOR;
        self.last_avail = 0;
        self.used_idx = 0;
    }

    fn read(&mut self, offset: usize, len: usize) -> u32 {
        if self.fault == Fault::Vanish {
            return u32::MAX >> (32 - 8 * len);
        }
        let feature_half = |features: u64, select: u32| if select < 2 { (features >> (32 * select)) as u32 } else { 0 };
        match offset {
            common::DEVICE_FEATURE_SELECT => self.device_feature_select,
            common::DEVICE_FEATURE => feature_half(self.offered, self.device_feature_select),
            common::DRIVER_FEATURE_SELECT => self.driver_feature_select,
            common::DRIVER_FEATURE => feature_half(self.driver_features, self.driver_feature_select),
            common::CONFIG_MSIX_VECTOR => NO_VECTOR as u32,
            common::NUM_QUEUES => 1,
            common::DEVICE_STATUS => self.status as u32,
            common::CONFIG_GENERATION => {
                if self.fault == Fault::RestlessGeneration {
                    self.generation = self.generation.wrapping_add(1);
                }
                self.generation as u32
            }
            common::QUEUE_SELECT => 0,
            common::QUEUE_SIZE => self.queue_size as u32,
            common::QUEUE_MSIX_VECTOR => self.queue_vector as u32,
            common::QUEUE_ENABLE => self.queue_enable as u32,
            common::QUEUE_NOTIFY_OFF => 0,
            ISR_AT => core::mem::take(&mut self.isr) as u32,
            o if (DEVICE_AT..DEVICE_AT + 0x40).contains(&o) => {
                let capacity = (self.disk.len() / 512) as u64;
                match o - DEVICE_AT {
                    0 => capacity as u32,
                    4 => (capacity >> 32) as u32,
                    8 => self.size_max,
                    12 => self.seg_max,
                    20 => self.blk_size,
                    48 => self.write_zeroes_max_sectors,
                    52 => self.write_zeroes_max_seg,
                    _ => 0,
                }
            }
            _ => 0,
        }
    }

    fn write(&mut self, offset: usize, value: u32) {
        let set_half = |field: &mut u64, high: bool, value: u32| {
            *field = if high {
                (*field & 0xFFFF_FFFF) | (value as u64) << 32
            } else {
                (*field & !0xFFFF_FFFF) | value as u64
            };
        };
        match offset {
            common::DEVICE_FEATURE_SELECT => self.device_feature_select = value,
            common::DRIVER_FEATURE_SELECT => self.driver_feature_select = value,
            common::DRIVER_FEATURE if self.driver_feature_select < 2 => {
                let high = self.driver_feature_select == 1;
                set_half(&mut self.driver_features, high, value)
            }
            common::DEVICE_STATUS => {
                let value = value as u8;
                if value == 0 {
                    self.reset();
                    return;
                }
                let mut value = value;
                if value & status::FEATURES_OK != 0 && self.status & status::FEATURES_OK == 0 {
                    let acceptable = self.driver_features & !self.offered == 0
                        && self.driver_features & feature::VERSION_1 != 0
                        && self.fault != Fault::RefuseFeatures;
                    if !acceptable {
                        value &= !status::FEATURES_OK;
                    }
                }
                self.status = value;
            }
            common::QUEUE_SIZE => self.queue_size = value as u16,
            common::QUEUE_MSIX_VECTOR => {
                self.queue_vector = if self.fault == Fault::RefuseVector { NO_VECTOR } else { value as u16 }
            }
            common::QUEUE_ENABLE => self.queue_enable = value as u16,
            o @ (0x20 | 0x24) => set_half(&mut self.queue_desc, o == 0x24, value),
            o @ (0x28 | 0x2C) => set_half(&mut self.queue_driver, o == 0x2C, value),
            o @ (0x30 | 0x34) => set_half(&mut self.queue_device, o == 0x34, value),
            NOTIFY_AT => {
                self.notifies += 1;
                self.process_queue();
            }
            _ => {}
        }
    }

    /// Serve every newly available chain (virtio 1.2 2.7.13 from the device's side).
    fn process_queue(&mut self) {
        if matches!(self.fault, Fault::NeverComplete | Fault::Vanish) || self.queue_enable == 0 {
            return;
        }
        let size = self.queue_size as u64;
        let avail_idx = self.mem_u16(self.queue_driver + 2);
        while self.last_avail != avail_idx {
            let head = self.mem_u16(self.queue_driver + 4 + 2 * (self.last_avail as u64 % size));
            self.last_avail = self.last_avail.wrapping_add(1);
            let written = self.serve(head);
            let slot = self.used_idx as u64 % size;
            let id = if self.fault == Fault::WrongUsedId { head as u32 + 1 } else { head as u32 };
            let mut entry = [0u8; 8];
            entry[..4].copy_from_slice(&id.to_le_bytes());
            entry[4..].copy_from_slice(&written.to_le_bytes());
            self.mem_write(self.queue_device + 4 + 8 * slot, &entry);
            let step = if self.fault == Fault::BadUsedIndex { 3 } else { 1 };
            self.used_idx = self.used_idx.wrapping_add(step);
            self.mem_write(self.queue_device + 2, &self.used_idx.to_le_bytes());
            self.isr |= 1;
        }
    }

    /// Carry out the chain at `head`; the bytes written into device-writable buffers.
    fn serve(&mut self, head: u16) -> u32 {
        let mut chain = Vec::new(); // (addr, len, writable)
        let mut index = head;
        for _ in 0..self.queue_size {
            let d = self.mem_read(self.queue_desc + 16 * index as u64, 16);
            let addr = u64::from_le_bytes(d[0..8].try_into().unwrap());
            let len = u32::from_le_bytes(d[8..12].try_into().unwrap());
            let flags = u16::from_le_bytes([d[12], d[13]]);
            chain.push((addr, len, flags & 2 != 0));
            if flags & 1 == 0 {
                break;
            }
            index = u16::from_le_bytes([d[14], d[15]]);
        }
        let (Some(&(header_addr, _, false)), Some(&(status_addr, _, true))) = (chain.first(), chain.last()) else {
            return 0;
        };
        let header = self.mem_read(header_addr, 16);
        let kind = u32::from_le_bytes(header[0..4].try_into().unwrap());
        let sector = u64::from_le_bytes(header[8..16].try_into().unwrap());
        let data = &chain[1..chain.len() - 1];
        self.served.push(Served { kind, sector, segments: data.iter().map(|d| d.1).collect() });
        let mut written = 0;
        let mut at = sector as usize * 512;
        let read_only = self.driver_features & feature::BLK_RO != 0;
        let mut outcome = request_status::OK;
        match kind {
            request::IN => {
                for &(addr, len, _) in data {
                    match self.disk.get(at..at + len as usize) {
                        Some(bytes) => {
                            let bytes = bytes.to_vec();
                            self.mem_write(addr, &bytes);
                            written += len;
                        }
                        None => outcome = request_status::IOERR,
                    }
                    at += len as usize;
                }
            }
            request::OUT if read_only => outcome = request_status::IOERR,
            request::OUT => {
                for &(addr, len, _) in data {
                    let bytes = self.mem_read(addr, len as usize);
                    match self.disk.get_mut(at..at + len as usize) {
                        Some(dst) => dst.copy_from_slice(&bytes),
                        None => outcome = request_status::IOERR,
                    }
                    at += len as usize;
                }
            }
            request::FLUSH => self.flushes += 1,
            request::GET_ID => match self.serial {
                Some(serial) => {
                    let mut id = [0u8; 20];
                    id[..serial.len()].copy_from_slice(serial);
                    self.mem_write(data[0].0, &id[..data[0].1.min(20) as usize]);
                    written += 20;
                }
                None => outcome = request_status::UNSUPP,
            },
            request::WRITE_ZEROES => {
                let segment = self.mem_read(data[0].0, 16);
                let first = u64::from_le_bytes(segment[0..8].try_into().unwrap()) as usize * 512;
                let count = u32::from_le_bytes(segment[8..12].try_into().unwrap()) as usize * 512;
                match self.disk.get_mut(first..first + count) {
                    Some(dst) => dst.fill(0),
                    None => outcome = request_status::IOERR,
                }
            }
            _ => outcome = request_status::UNSUPP,
        }
        match self.fault {
            Fault::Status(forced) => self.mem_write(status_addr, &[forced]),
            Fault::NoStatus => {}
            _ => self.mem_write(status_addr, &[outcome]),
        }
        written + 1
    }
}

impl Registers for FakeBar {
    fn len(&self) -> usize {
        BAR_LEN
    }
    fn read8(&mut self, offset: usize) -> u8 {
        self.0.borrow_mut().read(offset, 1) as u8
    }
    fn read16(&mut self, offset: usize) -> u16 {
        self.0.borrow_mut().read(offset, 2) as u16
    }
    fn read32(&mut self, offset: usize) -> u32 {
        self.0.borrow_mut().read(offset, 4)
    }
    fn write8(&mut self, offset: usize, value: u8) {
        self.0.borrow_mut().write(offset, value as u32)
    }
    fn write16(&mut self, offset: usize, value: u16) {
        self.0.borrow_mut().write(offset, value as u32)
    }
    fn write32(&mut self, offset: usize, value: u32) {
        self.0.borrow_mut().write(offset, value)
    }
}

/// A DMA buffer: a range of the fake physical memory.
pub struct FakeDma {
    memory: Memory,
    phys: u64,
    len: usize,
}

impl Dma for FakeDma {
    fn phys(&self) -> u64 {
        self.phys
    }
    fn len(&self) -> usize {
        self.len
    }
    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), HwError> {
        match offset.checked_add(buf.len()) {
            Some(end) if end <= self.len => {
                let start = self.phys as usize + offset;
                buf.copy_from_slice(&self.memory.borrow()[start..start + buf.len()]);
                Ok(())
            }
            _ => Err(HwError::OutOfRange),
        }
    }
    fn write(&mut self, offset: usize, data: &[u8]) -> Result<(), HwError> {
        match offset.checked_add(data.len()) {
            Some(end) if end <= self.len => {
                let start = self.phys as usize + offset;
                self.memory.borrow_mut()[start..start + data.len()].copy_from_slice(data);
                Ok(())
            }
            _ => Err(HwError::OutOfRange),
        }
    }
}

/// The platform: DMA from the fake memory (from 64 KiB up, page-aligned), a clock that moves
/// 1 ms per wait, no interrupts.
pub struct FakePlatform {
    pub memory: Memory,
    pub now: u64,
    pub waits: u64,
    /// Refuse DMA allocations.
    pub no_memory: bool,
}

impl FakePlatform {
    pub fn new(memory: Memory) -> Self {
        FakePlatform { memory, now: 0, waits: 0, no_memory: false }
    }
}

impl Platform for FakePlatform {
    type Buffer = FakeDma;
    fn alloc_dma(&mut self, len: usize) -> Result<FakeDma, HwError> {
        if self.no_memory {
            return Err(HwError::NoMemory);
        }
        let mut memory = self.memory.borrow_mut();
        let phys = memory.len().max(0x10000).next_multiple_of(4096);
        memory.resize(phys + len, 0);
        Ok(FakeDma { memory: self.memory.clone(), phys: phys as u64, len })
    }
    fn wait_interrupt(&mut self, timeout_ns: u64) -> bool {
        self.waits += 1;
        self.now += timeout_ns.min(1_000_000);
        false
    }
    fn now_ns(&self) -> u64 {
        self.now
    }
}

//! A fake AHCI HBA for the driver's tests: the generic and port registers, reacting to GHC.HR,
//! PxCMD (ST/FRE with CR/FR), PxSCTL (COMRESET) and PxCI, and a command processor that reads
//! the command header, command FIS and PRDT out of the fake DMA memory and runs IDENTIFY,
//! READ/WRITE DMA EXT and FLUSH CACHE (EXT) against in-memory disks (`MemDisk`), completing
//! with a D2H FIS, PxTFD and PxIS as an HBA does. Knobs make a port silent, stuck, busy or
//! failing, or the HBA unable to reset.
//!
//! The fake checks the driver: a structure an HBA would misread (misaligned, odd byte counts,
//! an address above 4 GiB without S64A, a command issued to a stopped port) is a test failure.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use keel_block::{BlockDevice, MemDisk};
use keel_drv_hal::fake::FakeMemory;
use keel_drv_hal::Registers;

use crate::command_list::{MAX_ENTRY_BYTES, RECEIVED_D2H};
use crate::fis;
use crate::identify::IDENTIFY_BYTES;
use crate::regs::{self, port as p};

/// ATA error register bits. See: ATA8-ACS 6.2
pub const ERROR_ABORT: u32 = 0x04;
pub const ERROR_ID_NOT_FOUND: u32 = 0x10;
pub const ERROR_UNCORRECTABLE: u32 = 0x40;
/// Status: DRDY | DSC (ready), with ERR.
const STATUS_READY: u32 = 0x50;
const STATUS_ERROR: u32 = 0x51;

#[allow(clippy::large_enum_variant)] // a test fixture, a handful per HBA
pub enum FakeDevice {
    Disk { identify: [u8; IDENTIFY_BYTES], disk: MemDisk },
    Atapi,
    Other(u32),
}

#[derive(Default)]
pub struct FakePort {
    pub device: Option<FakeDevice>,
    pub clb: u64,
    fb: u64,
    is: u32,
    ie: u32,
    cmd: u32,
    tfd: u32,
    sctl: u32,
    serr: u32,
    ci: u32,
    link_down: bool,
    /// The device keeps BSY set (until a COMRESET when `busy_until_comreset`).
    pub busy: bool,
    pub busy_until_comreset: bool,
    /// Commands are taken and never completed.
    pub silent: bool,
    /// PxCMD.CR never clears.
    pub stuck: bool,
    /// Reads and writes touching this LBA fail as uncorrectable.
    pub failing_lba: Option<u64>,
    /// After a failed command the device stays busy until a COMRESET.
    pub busy_after_error: bool,
    /// Every command taken: (ATA command, LBA, sectors, PRDT entries).
    pub log: Vec<(u8, u64, u32, usize)>,
    pub comresets: u32,
    pub starts: u32,
}

pub struct Hba {
    memory: FakeMemory,
    #[allow(dead_code)]
    clock: Rc<Cell<u64>>,
    pub cap: u32,
    ghc: u32,
    is: u32,
    pub pi: u32,
    pub bar_len: usize,
    /// GHC.HR never clears.
    pub reset_stuck: bool,
    /// Every register reads all ones.
    pub removed: bool,
    pub ports: Vec<FakePort>,
}

#[derive(Clone)]
pub struct FakeAhci(pub Rc<RefCell<Hba>>);

/// Identify data of a disk: LBA48, FLUSH CACHE EXT, write cache on. See: ATA8-ACS Table 22
pub fn disk_identify(model: &str, serial: &str, sectors: u64, sector_size: u32) -> [u8; IDENTIFY_BYTES] {
    let mut data = [0u8; IDENTIFY_BYTES];
    let mut put = |index: usize, value: u16| data[2 * index..2 * index + 2].copy_from_slice(&value.to_le_bytes());
    let strings = [(10, 20, serial), (23, 27, "1.0"), (27, 47, model)];
    for (first, end, text) in strings {
        let mut bytes = text.as_bytes().to_vec();
        bytes.resize(2 * (end - first), b' ');
        for (offset, pair) in bytes.chunks(2).enumerate() {
            put(first + offset, (pair[0] as u16) << 8 | pair[1] as u16);
        }
    }
    put(49, 1 << 9 | 1 << 8);
    put(83, 1 << 10 | 1 << 13);
    put(85, 1 << 5);
    for index in 0..4 {
        put(100 + index, (sectors >> (16 * index)) as u16);
    }
    if sector_size != 512 {
        put(106, 0x4000 | 1 << 12);
        put(117, (sector_size / 2) as u16);
        put(118, ((sector_size / 2) >> 16) as u16);
    }
    data
}

impl FakeAhci {
    /// An HBA with 64-bit addressing and 32 slots, no ports implemented yet.
    pub fn new(memory: FakeMemory, clock: Rc<Cell<u64>>) -> Self {
        let cap = regs::CAP_S64A | 31 << 8 | 5;
        let ports = (0..32).map(|_| FakePort::default()).collect();
        FakeAhci(Rc::new(RefCell::new(Hba {
            memory,
            clock,
            cap,
            ghc: 0,
            is: 0,
            pi: 0,
            bar_len: 0x100 + 6 * 0x80,
            reset_stuck: false,
            removed: false,
            ports,
        })))
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut Hba) -> T) -> T {
        f(&mut self.0.borrow_mut())
    }

    /// Attach `device` to `port` (and mark the port implemented).
    pub fn attach(&self, port: usize, device: FakeDevice) {
        self.with(|hba| {
            hba.pi |= 1 << port;
            hba.ports[port].device = Some(device);
        });
    }

    /// Attach a disk of `sectors` sectors of `sector_size` bytes to `port`.
    pub fn attach_disk(&self, port: usize, sectors: u64, sector_size: u32) {
        let identify = disk_identify("KEEL FAKE SATA", &format!("SN{port}"), sectors, sector_size);
        self.attach(port, FakeDevice::Disk { identify, disk: MemDisk::new(sector_size, sectors) });
    }

    pub fn disk_bytes(&self, port: usize) -> Vec<u8> {
        self.with(|hba| match &hba.ports[port].device {
            Some(FakeDevice::Disk { disk, .. }) => disk.bytes().to_vec(),
            _ => Vec::new(),
        })
    }
}

impl Hba {
    fn reset(&mut self) {
        for port in &mut self.ports {
            port.cmd = 0;
            port.ci = 0;
            port.is = 0;
            port.ie = 0;
            port.serr = 0;
            port.link_down = false;
            port.tfd = if port.device.is_some() { STATUS_READY } else { 0x7f };
        }
        self.is = 0;
    }

    fn signature(port: &FakePort) -> u32 {
        match &port.device {
            Some(FakeDevice::Disk { .. }) => regs::SIG_ATA,
            Some(FakeDevice::Atapi) => regs::SIG_ATAPI,
            Some(FakeDevice::Other(signature)) => *signature,
            None => u32::MAX,
        }
    }

    fn check_address(&self, address: u64, what: &str) {
        assert!(self.cap & regs::CAP_S64A != 0 || address >> 32 == 0, "{what} above 4 GiB on a 32-bit HBA");
    }

    fn read_port(&self, number: usize, register: usize) -> u32 {
        let port = &self.ports[number];
        match register {
            p::CLB => port.clb as u32,
            p::CLBU => (port.clb >> 32) as u32,
            p::FB => port.fb as u32,
            p::FBU => (port.fb >> 32) as u32,
            p::IS => port.is,
            p::IE => port.ie,
            p::CMD => port.cmd,
            p::TFD if port.busy => 0x80,
            p::TFD => port.tfd,
            p::SIG => Self::signature(port),
            p::SSTS if port.device.is_some() && !port.link_down => 0x113,
            p::SSTS => 0,
            p::SCTL => port.sctl,
            p::SERR => port.serr,
            p::CI => port.ci,
            _ => 0,
        }
    }

    fn write_port(&mut self, number: usize, register: usize, value: u32) {
        let port = &mut self.ports[number];
        match register {
            p::CLB => port.clb = (port.clb & !0xffff_ffff) | value as u64,
            p::CLBU => port.clb = (port.clb & 0xffff_ffff) | (value as u64) << 32,
            p::FB => port.fb = (port.fb & !0xffff_ffff) | value as u64,
            p::FBU => port.fb = (port.fb & 0xffff_ffff) | (value as u64) << 32,
            p::IS => port.is &= !value,
            p::IE => port.ie = value,
            p::SERR => port.serr &= !value,
            p::SCTL => {
                let holding = port.sctl & 0xf == 1;
                port.sctl = value;
                if value & 0xf == 1 {
                    port.link_down = true;
                } else if holding {
                    // COMRESET released: the link comes back and the device sends its signature.
                    port.link_down = false;
                    port.comresets += 1;
                    if port.busy_until_comreset {
                        port.busy = false;
                    }
                    port.tfd = STATUS_READY;
                }
            }
            p::CMD => self.write_command(number, value),
            p::CI => {
                let port = &mut self.ports[number];
                assert!(port.cmd & regs::CMD_START != 0, "command issued to a stopped port");
                assert_eq!(value, 1, "only slot 0 is used");
                port.ci |= value;
                if !port.silent {
                    self.run_slot0(number);
                }
            }
            _ => {}
        }
    }

    fn write_command(&mut self, number: usize, value: u32) {
        let port = &mut self.ports[number];
        let old = port.cmd;
        let mut new = value & !(regs::CMD_LIST_RUNNING | regs::CMD_FIS_RUNNING)
            | old & (regs::CMD_LIST_RUNNING | regs::CMD_FIS_RUNNING);
        if value & regs::CMD_FIS_RECEIVE != 0 && old & regs::CMD_FIS_RECEIVE == 0 {
            assert!(port.fb != 0 && port.fb.is_multiple_of(256), "FIS area not 256-byte aligned");
            new |= regs::CMD_FIS_RUNNING;
        }
        if value & regs::CMD_FIS_RECEIVE == 0 {
            assert!(old & regs::CMD_START == 0 || value & regs::CMD_START == 0, "FRE cleared while running");
            new &= !regs::CMD_FIS_RUNNING;
        }
        if value & regs::CMD_START != 0 && old & regs::CMD_START == 0 {
            assert!(old & regs::CMD_FIS_RECEIVE != 0, "ST set before FRE");
            assert!(port.clb != 0 && port.clb.is_multiple_of(1024), "command list not 1 KiB aligned");
            assert_eq!(port.tfd & (regs::TFD_BSY | regs::TFD_DRQ), 0, "ST set while the device is busy");
            new |= regs::CMD_LIST_RUNNING;
            port.starts += 1;
        }
        if value & regs::CMD_START == 0 && old & regs::CMD_START != 0 {
            // Clearing ST clears PxCI. See: AHCI 1.3.1 3.3.14
            port.ci = 0;
            if !port.stuck {
                new &= !regs::CMD_LIST_RUNNING;
            }
        }
        port.cmd = new;
        let (clb, fb) = (port.clb, port.fb);
        self.check_address(clb, "command list");
        self.check_address(fb, "FIS area");
    }

    /// Run the command in slot 0 and complete it. See: AHCI 1.3.1 5.3 (the HBA's side)
    fn run_slot0(&mut self, number: usize) {
        let memory = self.memory.clone();
        let clb = self.ports[number].clb;
        let dw0 = memory.read_u32(clb).expect("command header in DMA memory");
        let table = memory.read_u64(clb + 8).expect("command header in DMA memory");
        assert_eq!(dw0 & 0x1f, 5, "CFL of a Register H2D FIS");
        assert_eq!(table % 128, 0, "command table not 128-byte aligned");
        self.check_address(table, "command table");
        let write = dw0 & 1 << 6 != 0;
        let entries = (dw0 >> 16) as usize;
        let mut cfis = [0u8; fis::H2D_BYTES];
        assert!(memory.read(table, &mut cfis));
        assert_eq!((cfis[0], cfis[1] & 0x80), (fis::REGISTER_H2D, 0x80), "not a command FIS");
        let mut prdt = Vec::new();
        for index in 0..entries {
            let at = table + 0x80 + 16 * index as u64;
            let address = memory.read_u64(at).expect("PRDT in DMA memory");
            let bytes = (memory.read_u32(at + 12).unwrap() & 0x3f_ffff) as usize + 1;
            assert_eq!(address % 2, 0, "PRD address not word aligned");
            assert_eq!(bytes % 2, 0, "PRD byte count odd");
            assert!(bytes <= MAX_ENTRY_BYTES);
            self.check_address(address, "PRD data");
            prdt.push((address, bytes));
        }
        let command = cfis[2];
        let lba = u64::from_le_bytes([cfis[4], cfis[5], cfis[6], cfis[8], cfis[9], cfis[10], 0, 0]);
        let count = match u16::from_le_bytes([cfis[12], cfis[13]]) {
            0 => 65536,
            count => count as u32,
        };
        let port = &mut self.ports[number];
        port.log.push((command, lba, count, prdt.len()));
        let result = match (&mut port.device, command) {
            (Some(FakeDevice::Disk { identify, .. }), fis::IDENTIFY_DEVICE) => {
                assert!(!write);
                scatter(&memory, &prdt, identify);
                Ok(IDENTIFY_BYTES)
            }
            (Some(FakeDevice::Disk { disk, .. }), fis::READ_DMA_EXT | fis::WRITE_DMA_EXT) => {
                assert_eq!(write, command == fis::WRITE_DMA_EXT, "W bit");
                let size = disk.block_size() as usize;
                let len = count as usize * size;
                if lba + count as u64 > disk.block_count() {
                    Err(ERROR_ID_NOT_FOUND)
                } else if port.failing_lba.is_some_and(|bad| (lba..lba + count as u64).contains(&bad)) {
                    Err(ERROR_UNCORRECTABLE)
                } else if write {
                    let data = gather(&memory, &prdt, len);
                    disk.write_blocks(lba, &data).unwrap();
                    Ok(len)
                } else {
                    let mut data = vec![0u8; len];
                    disk.read_blocks(lba, &mut data).unwrap();
                    scatter(&memory, &prdt, &data);
                    Ok(len)
                }
            }
            (Some(FakeDevice::Disk { disk, .. }), fis::FLUSH_CACHE_EXT | fis::FLUSH_CACHE) => {
                disk.flush().unwrap();
                Ok(0)
            }
            _ => Err(ERROR_ABORT),
        };
        let (status, error) = match result {
            Ok(bytes) => {
                assert!(memory.write(clb + 4, &(bytes as u32).to_le_bytes()));
                port.ci &= !1;
                port.is |= 1;
                (STATUS_READY, 0)
            }
            Err(error) => {
                // The HBA stops: PxCI stays set until software clears ST. See: AHCI 1.3.1 6.2.2
                port.is |= regs::IS_TASK_FILE_ERROR | 1;
                if port.busy_after_error {
                    port.busy = true;
                    port.busy_until_comreset = true;
                }
                (STATUS_ERROR, error)
            }
        };
        port.tfd = error << 8 | status;
        let d2h = [0x34, 0x40, status as u8, error as u8];
        assert!(memory.write(port.fb + RECEIVED_D2H as u64, &d2h), "FIS area in DMA memory");
        self.is |= 1 << number;
    }
}

/// The device writes `data` through the PRDT.
fn scatter(memory: &FakeMemory, prdt: &[(u64, usize)], data: &[u8]) {
    let mut at = 0;
    for &(address, bytes) in prdt {
        let now = bytes.min(data.len() - at);
        assert!(memory.write(address, &data[at..at + now]), "PRD outside DMA memory");
        at += now;
        if at == data.len() {
            return;
        }
    }
    panic!("PRDT shorter than the transfer");
}

/// The device reads `len` bytes through the PRDT.
fn gather(memory: &FakeMemory, prdt: &[(u64, usize)], len: usize) -> Vec<u8> {
    let mut data = vec![0u8; len];
    let mut at = 0;
    for &(address, bytes) in prdt {
        let now = bytes.min(len - at);
        assert!(memory.read(address, &mut data[at..at + now]), "PRD outside DMA memory");
        at += now;
        if at == len {
            return data;
        }
    }
    panic!("PRDT shorter than the transfer");
}

impl Registers for FakeAhci {
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
        let hba = self.0.borrow();
        if hba.removed {
            return u32::MAX;
        }
        match offset {
            regs::CAP => hba.cap,
            regs::GHC => hba.ghc,
            regs::IS => hba.is,
            regs::PI => hba.pi,
            regs::VS => 0x0001_0301,
            offset if offset >= regs::PORTS && offset < hba.bar_len => {
                let number = (offset - regs::PORTS) / regs::PORT_STRIDE;
                hba.read_port(number, (offset - regs::PORTS) % regs::PORT_STRIDE)
            }
            _ => u32::MAX,
        }
    }
    fn write8(&mut self, _: usize, _: u8) {
        panic!("the AHCI registers take 32-bit writes");
    }
    fn write16(&mut self, _: usize, _: u16) {
        panic!("the AHCI registers take 32-bit writes");
    }
    fn write32(&mut self, offset: usize, value: u32) {
        let mut hba = self.0.borrow_mut();
        if hba.removed {
            return;
        }
        match offset {
            regs::GHC => {
                if value & regs::GHC_RESET != 0 {
                    if hba.reset_stuck {
                        hba.ghc |= regs::GHC_RESET;
                        return;
                    }
                    hba.reset();
                }
                hba.ghc = value & !regs::GHC_RESET;
            }
            regs::IS => hba.is &= !value,
            offset if offset >= regs::PORTS && offset < hba.bar_len => {
                let number = (offset - regs::PORTS) / regs::PORT_STRIDE;
                hba.write_port(number, (offset - regs::PORTS) % regs::PORT_STRIDE, value);
            }
            _ => {}
        }
    }
}

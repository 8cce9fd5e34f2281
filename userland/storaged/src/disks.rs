//! The machine's disks: the storage controllers found on the PCI bus, brought up with their
//! host drivers (keel-drv-nvme, keel-drv-ahci), and each disk they offer as a
//! `keel_block::BlockDevice` ([`Disks::device`]), named in the order found (`sd0`, `sd1`, ...).
//!
//! What it does not do: partitions or file systems (the datastore layer above), or hot-plug. A
//! controller that fails to come up is reported in the listing, not fatal.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use keel_block::{BlockDevice, BlockError};
use keel_drv_ahci::Ahci;
use keel_drv_nvme::Nvme;

use crate::hal::{Machine, Mmio};
use crate::pci_config::ConfigPorts;

/// A controller with its driver.
enum Controller {
    Nvme(alloc::boxed::Box<Nvme<Mmio, Machine>>),
    Ahci(Ahci<Mmio, Machine>),
}

/// One disk: which controller, which of its disks, and its listing line.
struct Disk {
    name: String,
    controller: usize,
    index: usize,
    line: String,
}

/// Every disk the service drives.
pub struct Disks {
    controllers: Vec<Controller>,
    disks: Vec<Disk>,
    /// Controllers found but not driven, and why (for the listing).
    problems: Vec<String>,
}

/// A PCI function that is a storage controller Keel drives.
struct Found {
    location: String,
    kind: &'static str,
    bar: u64,
}

/// What a PCI class code (class, subclass, programming interface) says a storage function is.
fn storage_kind(vendor: u16, device: u16, class: u32) -> Option<&'static str> {
    match (vendor, device, class >> 8) {
        // Transitional (0x1001) and modern (0x1042) virtio-blk. See: virtio 1.2 4.1.2.
        (0x1af4, 0x1001 | 0x1042, _) => Some("virtio-blk"),
        (_, _, 0x01_06_01) => Some("AHCI"),
        (_, _, 0x01_08_02) => Some("NVMe"),
        _ => None,
    }
}

/// The memory BAR a driver needs (NVMe: BAR0, 64-bit; AHCI: BAR5, ABAR), with memory decode
/// and bus mastering turned on. See: PCI Local Bus 3.0 6.2.5.1 (BARs), 6.2.2 (command).
fn memory_bar(config: &mut ConfigPorts, (bus, dev, func): (u8, u8, u8), index: u8) -> u64 {
    let offset = 0x10 + 4 * index;
    let low = config.read32(bus, dev, func, offset);
    let high = if low & 0b110 == 0b100 { config.read32(bus, dev, func, offset + 4) } else { 0 };
    let command = config.read32(bus, dev, func, 4) & 0xffff;
    config.write32(bus, dev, func, 4, command | 0b110);
    (u64::from(high) << 32) | u64::from(low & !0xf)
}

fn scan(config: &mut ConfigPorts) -> Vec<Found> {
    let mut found = Vec::new();
    for bus in 0..=255u8 {
        for dev in 0..32u8 {
            for func in 0..8u8 {
                let id = config.read32(bus, dev, func, 0);
                if id == u32::MAX || id == 0 {
                    if func == 0 {
                        break;
                    }
                    continue;
                }
                let class = config.read32(bus, dev, func, 8);
                if let Some(kind) = storage_kind(id as u16, (id >> 16) as u16, class) {
                    let bar = match kind {
                        "NVMe" => memory_bar(config, (bus, dev, func), 0),
                        "AHCI" => memory_bar(config, (bus, dev, func), 5),
                        _ => 0,
                    };
                    let location = format!("{bus:02x}:{dev:02x}.{func}");
                    debug(format_args!("storaged: {location} {kind} ({:04x}:{:04x})", id as u16, id >> 16));
                    found.push(Found { location, kind, bar });
                }
                let header = config.read32(bus, dev, func, 0xc) >> 16;
                if func == 0 && header & 0x80 == 0 {
                    break;
                }
            }
        }
    }
    found
}

fn debug(args: core::fmt::Arguments) {
    keel_rt::io::debug(args)
}

/// What the first blocks of a disk hold, at a glance: a GPT (its header at LBA 1), an MBR or a
/// boot sector (the 0x55AA signature), nothing (all zero), or something else. The partition
/// readers say more. See: UEFI 2.10 5.3.2 (GPT header), 5.2.1 (legacy MBR).
fn first_blocks(disk: &mut impl BlockDevice) -> &'static str {
    let size = disk.block_size() as usize;
    let mut two = alloc::vec![0u8; 2 * size];
    if disk.block_count() < 2 {
        return "too small";
    }
    match disk.read_blocks(0, &mut two) {
        Err(_) => "unreadable",
        Ok(()) if &two[size..size + 8] == b"EFI PART" => "GPT",
        Ok(()) if two[510..512] == [0x55, 0xaa] => "MBR or boot sector",
        Ok(()) if two.iter().all(|&b| b == 0) => "blank",
        Ok(()) => "unknown contents",
    }
}

impl Disks {
    /// Find and bring up every storage controller, and list their disks.
    pub fn probe(config: &mut ConfigPorts) -> Disks {
        let mut disks = Disks { controllers: Vec::new(), disks: Vec::new(), problems: Vec::new() };
        for found in scan(config) {
            if let Err(why) = disks.bring_up(&found) {
                debug(format_args!("storaged: {} {}: {why}", found.location, found.kind));
                disks.problems.push(format!("{} {}: {why}", found.location, found.kind));
            }
        }
        for i in 0..disks.disks.len() {
            let contents = disks.device(i).map_or("?", |mut d| first_blocks(&mut d));
            let disk = &mut disks.disks[i];
            disk.line.push_str(", ");
            disk.line.push_str(contents);
            debug(format_args!("storaged: {}: {}", disk.name, disk.line));
        }
        disks
    }

    fn bring_up(&mut self, found: &Found) -> Result<(), String> {
        let machine = Machine::new().map_err(|e| format!("no notification: {e}"))?;
        let controller = match found.kind {
            "NVMe" => {
                let regs = Mmio::map(found.bar, 0x2000).map_err(|e| format!("BAR0 at {:#x}: {e}", found.bar))?;
                Controller::Nvme(alloc::boxed::Box::new(Nvme::new(regs, machine).map_err(|e| format!("{e}"))?))
            }
            "AHCI" => {
                let regs = Mmio::map(found.bar, 0x2000).map_err(|e| format!("ABAR at {:#x}: {e}", found.bar))?;
                Controller::Ahci(Ahci::new(regs, machine).map_err(|e| format!("{e}"))?)
            }
            _ => return Err(String::from("no driver yet")),
        };
        let number = self.controllers.len();
        let count = match &controller {
            Controller::Nvme(n) => n.namespaces().len(),
            Controller::Ahci(a) => a.disk_count(),
        };
        for index in 0..count {
            let (controller_kind, bytes, model) = match &controller {
                Controller::Nvme(n) => n.describe(index).map(|d| ("NVMe", d.size_bytes(), d.model)),
                Controller::Ahci(a) => a.describe(index).map(|d| ("AHCI", d.size_bytes(), d.model)),
            }
            .unwrap_or(("?", 0, String::new()));
            let name = format!("sd{}", self.disks.len());
            let line = format!(
                "{} {} at {}, {}",
                controller_kind,
                model.trim(),
                found.location,
                keel_vmlimits::fmt_scaled(bytes)
            );
            self.disks.push(Disk { name, controller: number, index, line });
        }
        self.controllers.push(controller);
        Ok(())
    }

    /// The `disks` listing: one line per disk, then what could not be driven.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for disk in &self.disks {
            let _ = writeln!(out, "{}: {}", disk.name, disk.line);
        }
        for problem in &self.problems {
            let _ = writeln!(out, "not driven: {problem}");
        }
        if out.is_empty() {
            out.push_str("no disks\n");
        }
        out
    }

    /// How many disks there are.
    pub fn len(&self) -> usize {
        self.disks.len()
    }

    /// Disk `i` as a block device.
    pub fn device(&mut self, i: usize) -> Option<DiskDevice<'_>> {
        let disk = self.disks.get(i)?;
        let (controller, index) = (disk.controller, disk.index);
        Some(DiskDevice { controller: self.controllers.get_mut(controller)?, index })
    }
}

/// One disk of a controller, as a block device.
pub struct DiskDevice<'a> {
    controller: &'a mut Controller,
    index: usize,
}

impl BlockDevice for DiskDevice<'_> {
    fn block_size(&self) -> u32 {
        match &*self.controller {
            Controller::Nvme(n) => n.describe(self.index).map_or(512, |d| d.block_size),
            Controller::Ahci(a) => a.describe(self.index).map_or(512, |d| d.block_size),
        }
    }
    fn block_count(&self) -> u64 {
        match &*self.controller {
            Controller::Nvme(n) => n.describe(self.index).map_or(0, |d| d.block_count),
            Controller::Ahci(a) => a.describe(self.index).map_or(0, |d| d.block_count),
        }
    }
    fn read_blocks(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        match &mut *self.controller {
            Controller::Nvme(n) => n.read_blocks(self.index, lba, buf),
            Controller::Ahci(a) => a.read_blocks(self.index, lba, buf),
        }
    }
    fn write_blocks(&mut self, lba: u64, buf: &[u8]) -> Result<(), BlockError> {
        match &mut *self.controller {
            Controller::Nvme(n) => n.write_blocks(self.index, lba, buf),
            Controller::Ahci(a) => a.write_blocks(self.index, lba, buf),
        }
    }
    fn flush(&mut self) -> Result<(), BlockError> {
        match &mut *self.controller {
            Controller::Nvme(n) => n.flush(self.index),
            Controller::Ahci(a) => a.flush(self.index),
        }
    }
    fn write_zeroes(&mut self, lba: u64, blocks: u64) -> Result<(), BlockError> {
        match &mut *self.controller {
            Controller::Nvme(n) => n.write_zeroes(self.index, lba, blocks),
            // SATA has no zeroing command Keel uses: write zeros.
            Controller::Ahci(_) => keel_block::zero_by_writing(self, lba, blocks),
        }
    }
}

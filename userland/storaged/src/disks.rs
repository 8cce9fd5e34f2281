//! The machine's disks: the storage controllers on the PCI bus (keel-drv-pci's enumeration),
//! brought up with their host drivers (virtio-blk, AHCI, NVMe) with an MSI or MSI-X routed to
//! them, and each disk they offer as a `keel_block::BlockDevice` ([`Disks::device`]), named in
//! the order found (`sd0`, `sd1`, ...).
//!
//! What it does not do: partitions or file systems (the datastore layer above), or hot-plug. A
//! controller that fails to come up is reported in the listing, not fatal; one without MSI is
//! polled.

use alloc::boxed::Box;
use alloc::format;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::fmt::Write;

use keel_block::{BlockDevice, BlockError};
use keel_drv_ahci::Ahci;
use keel_drv_nvme::Nvme;
use keel_drv_pci::{enable_device, enumerate, read_bars, Bar, Bdf, ConfigSpace, FunctionInfo, Msi, MsiX};
use keel_drv_virtio_blk::{find_layout, VirtioBlk};
use keel_virtio_spec::{device_id, PCI_DEVICE_MODERN_BASE, PCI_DEVICE_TRANSITIONAL_BLOCK, PCI_VENDOR};

use crate::hal::{Machine, Mmio};

/// A controller with its driver.
enum Controller {
    Nvme(Box<Nvme<Mmio, Machine>>),
    Ahci(Box<Ahci<Mmio, Machine>>),
    Virtio(Box<VirtioBlk<Machine, Mmio>>),
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
    /// Shared with the disks' block devices (the service is single-threaded: one borrow at a
    /// time, for one request).
    controllers: Vec<Rc<RefCell<Controller>>>,
    disks: Vec<Disk>,
    /// Controllers found but not driven, and why (for the listing).
    problems: Vec<String>,
}

/// The controller kinds Keel drives, by what a function says it is.
fn storage_kind(f: &FunctionInfo) -> Option<&'static str> {
    match (f.vendor_id, f.device_id) {
        // Transitional and modern virtio-blk. See: virtio 1.2 4.1.2.
        (PCI_VENDOR, PCI_DEVICE_TRANSITIONAL_BLOCK) => Some("virtio-blk"),
        (PCI_VENDOR, id) if id == PCI_DEVICE_MODERN_BASE + device_id::BLOCK => Some("virtio-blk"),
        _ if f.is_storage(0x06, 0x01) => Some("AHCI"),
        _ if f.is_storage(0x08, 0x02) => Some("NVMe"),
        _ => None,
    }
}

fn debug(args: core::fmt::Arguments) {
    keel_rt::io::debug(args)
}

/// Map memory BAR `index` of `bars` whole.
fn map_bar(bars: &[Option<Bar>; 6], index: u8) -> Result<Mmio, String> {
    match bars.get(usize::from(index)).copied().flatten() {
        Some(Bar::Memory { address, size, .. }) if address != 0 => {
            Mmio::map(address, size as usize).map_err(|e| format!("BAR{index} at {address:#x}: {e}"))
        }
        _ => Err(format!("BAR{index} is not an assigned memory BAR")),
    }
}

/// Route an MSI-X vector 0 (preferred) or an MSI to `machine`. Returns the MSI-X vector used,
/// `None` for MSI or for none at all (the driver then polls).
fn route_interrupt<C: ConfigSpace>(
    cfg: &mut C,
    at: Bdf,
    bars: &[Option<Bar>; 6],
    machine: &mut Machine,
) -> Option<u16> {
    if let Some(msix) = MsiX::find(cfg, at) {
        let (address, data) = machine.msi().ok()?;
        let mut table = map_bar(bars, msix.table_bar).ok()?;
        msix.set_vector(&mut table, 0, address, data).ok()?;
        msix.set_masked(&mut table, 0, false).ok()?;
        msix.enable(cfg, at);
        return Some(0);
    }
    if let Some(msi) = Msi::find(cfg, at) {
        let (address, data) = machine.msi().ok()?;
        msi.program(cfg, at, address, data as u16).ok()?;
        msi.enable(cfg, at);
    }
    None
}

impl Disks {
    /// Find and bring up every storage controller, and list their disks.
    pub fn probe<C: ConfigSpace>(cfg: &mut C) -> Disks {
        let mut disks = Disks { controllers: Vec::new(), disks: Vec::new(), problems: Vec::new() };
        for function in enumerate(cfg) {
            let Some(kind) = storage_kind(&function) else { continue };
            let location = format!("{}", function.bdf);
            debug(format_args!("storaged: {location} {kind} ({:04x}:{:04x})", function.vendor_id, function.device_id));
            if let Err(why) = disks.bring_up(cfg, &function, kind, &location) {
                debug(format_args!("storaged: {location} {kind}: {why}"));
                disks.problems.push(format!("{location} {kind}: {why}"));
            }
        }
        disks
    }

    fn bring_up<C: ConfigSpace>(
        &mut self,
        cfg: &mut C,
        function: &FunctionInfo,
        kind: &'static str,
        location: &str,
    ) -> Result<(), String> {
        let at = function.bdf;
        let bars = read_bars(cfg, at);
        enable_device(cfg, at, true, false, true);
        let mut machine = Machine::new().map_err(|e| format!("no notification: {e}"))?;
        let vector = route_interrupt(cfg, at, &bars, &mut machine);
        let controller = match kind {
            "NVMe" => Controller::Nvme(Box::new(Nvme::new(map_bar(&bars, 0)?, machine).map_err(|e| format!("{e}"))?)),
            "AHCI" => Controller::Ahci(Box::new(Ahci::new(map_bar(&bars, 5)?, machine).map_err(|e| format!("{e}"))?)),
            _ => {
                let layout = find_layout(cfg, at).map_err(|e| format!("{e:?}"))?;
                let options = keel_drv_virtio_blk::Options { msix_vector: vector, ..Default::default() };
                let regs = map_bar(&bars, layout.bar)?;
                Controller::Virtio(Box::new(
                    VirtioBlk::new(machine, regs, layout, options).map_err(|e| format!("{e:?}"))?,
                ))
            }
        };
        let number = self.controllers.len();
        self.controllers.push(Rc::new(RefCell::new(controller)));
        let count = match &*self.controllers[number].borrow() {
            Controller::Nvme(n) => n.namespaces().len(),
            Controller::Ahci(a) => a.disk_count(),
            Controller::Virtio(_) => 1,
        };
        for index in 0..count {
            let model = match &mut *self.controllers[number].borrow_mut() {
                Controller::Nvme(n) => n.describe(index).map(|d| d.model).unwrap_or_default(),
                Controller::Ahci(a) => a.describe(index).map(|d| d.model).unwrap_or_default(),
                Controller::Virtio(v) => match v.serial() {
                    Ok(Some(serial)) => format!("serial {}", serial.as_str()),
                    _ => String::new(),
                },
            };
            let name = format!("sd{}", self.disks.len());
            self.disks.push(Disk { name, controller: number, index, line: String::new() });
            let bytes = self.device(self.disks.len() - 1).map_or(0, |d| d.block_count() * u64::from(d.block_size()));
            let model = model.trim();
            let separator = if model.is_empty() { "" } else { " " };
            let line = format!("{kind}{separator}{model} at {location}, {}", keel_vmlimits::fmt_scaled(bytes));
            if let Some(disk) = self.disks.last_mut() {
                disk.line = line;
            }
        }
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
    pub fn device(&self, i: usize) -> Option<DiskDevice> {
        let disk = self.disks.get(i)?;
        let controller = self.controllers.get(disk.controller)?.clone();
        // A disk's geometry is fixed while it is driven: asked once here, not on every request
        // (a driver's `describe` builds the whole description, model string included).
        let (block_size, block_count) = match &*controller.borrow() {
            Controller::Nvme(n) => n.describe(disk.index).map_or((512, 0), |d| (d.block_size, d.block_count)),
            Controller::Ahci(a) => a.describe(disk.index).map_or((512, 0), |d| (d.block_size, d.block_count)),
            Controller::Virtio(v) => (v.block_size(), v.block_count()),
        };
        Some(DiskDevice { controller, index: disk.index, block_size, block_count })
    }

    /// Disk `i`'s name (`sd0`).
    pub fn name(&self, i: usize) -> &str {
        self.disks.get(i).map_or("?", |d| d.name.as_str())
    }

    /// Say what disk `i` holds (its partition table, as the partition reader found it) on its
    /// listing line, and log the line.
    pub fn set_contents(&mut self, i: usize, contents: &str) {
        if let Some(disk) = self.disks.get_mut(i) {
            disk.line.push_str(", ");
            disk.line.push_str(contents);
            debug(format_args!("storaged: {}: {}", disk.name, disk.line));
        }
    }

    /// Add a line under disk `name` in the listing (its partitions and datastores).
    pub fn annotate(&mut self, i: usize, line: &str) {
        if let Some(disk) = self.disks.get_mut(i) {
            disk.line.push_str("\n  ");
            disk.line.push_str(line);
        }
    }
}

/// One disk of a controller, as a block device.
pub struct DiskDevice {
    controller: Rc<RefCell<Controller>>,
    index: usize,
    block_size: u32,
    block_count: u64,
}

impl BlockDevice for DiskDevice {
    fn block_size(&self) -> u32 {
        self.block_size
    }
    fn block_count(&self) -> u64 {
        self.block_count
    }
    fn read_only(&self) -> bool {
        match &*self.controller.borrow() {
            Controller::Virtio(v) => v.read_only(),
            _ => false,
        }
    }
    fn read_blocks(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        match &mut *self.controller.borrow_mut() {
            Controller::Nvme(n) => n.read_blocks(self.index, lba, buf),
            Controller::Ahci(a) => a.read_blocks(self.index, lba, buf),
            Controller::Virtio(v) => v.read_blocks(lba, buf),
        }
    }
    fn write_blocks(&mut self, lba: u64, buf: &[u8]) -> Result<(), BlockError> {
        match &mut *self.controller.borrow_mut() {
            Controller::Nvme(n) => n.write_blocks(self.index, lba, buf),
            Controller::Ahci(a) => a.write_blocks(self.index, lba, buf),
            Controller::Virtio(v) => v.write_blocks(lba, buf),
        }
    }
    fn flush(&mut self) -> Result<(), BlockError> {
        match &mut *self.controller.borrow_mut() {
            Controller::Nvme(n) => n.flush(self.index),
            Controller::Ahci(a) => a.flush(self.index),
            Controller::Virtio(v) => v.flush(),
        }
    }
    fn write_zeroes(&mut self, lba: u64, blocks: u64) -> Result<(), BlockError> {
        let zeroed = match &mut *self.controller.borrow_mut() {
            Controller::Nvme(n) => Some(n.write_zeroes(self.index, lba, blocks)),
            Controller::Virtio(v) => Some(v.write_zeroes(lba, blocks)),
            // SATA has no zeroing command Keel uses: write zeros (below, the borrow ended).
            Controller::Ahci(_) => None,
        };
        zeroed.unwrap_or_else(|| keel_block::zero_by_writing(self, lba, blocks))
    }
}

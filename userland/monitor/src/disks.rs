//! The guest's disks and CD-ROM: images on the datastore (keel-diskimage, raw or qcow2, read
//! through the storage channel vmd granted for exactly these files), served by keel-virtio's
//! virtio-blk (one PCI function per disk, in order, slots [`FIRST_DISK_SLOT`]..) and a
//! virtio-scsi CD-ROM (slot [`CDROM_SLOT`]), all on INTx line [`DISK_IRQ`].
//!
//! An image error during a request is the guest's I/O error for that request, logged once; it
//! never stops the VM. What it does not do: check who may use an image (vmd did, and the storage
//! service enforces the grants), or run requests in the background (a request holds the vCPU
//! until the storage service answers).

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use keel_devices::pci::PciFunction;
use keel_diskimage::{split_disk_spec, Error, Image, OpenOptions};
use keel_rt::image_file::{DatastoreOpener, StorageFile};
use keel_rt::io::debug;
use keel_rt::storage::StorageClient;
use keel_virtio::backend::{Sink, Source};
use keel_virtio::{BackendError, BlockBackend, VirtioBlk, VirtioPci, VirtioScsi};
use keel_vmproto::ControlArea;

/// The first disk's PCI slot; disk n is in slot FIRST_DISK_SLOT + n.
pub const FIRST_DISK_SLOT: usize = 2;
/// The CD-ROM's slot, after the last disk's.
pub const CDROM_SLOT: usize = FIRST_DISK_SLOT + keel_vmlimits::MAX_DISKS_PER_VM;
/// The PIC IRQ the disks' and CD-ROM's INTx lines are wired to (shared, level-triggered).
pub const DISK_IRQ: u8 = 10;
/// The longest virtio-blk serial (GET_ID): 20 bytes. See: virtio 1.2 5.2.6.
const SERIAL_MAX: usize = 20;

/// A PCI function for the platform to insert: name, slot, IRQ, the function.
pub type PciDisk = (&'static str, usize, u8, Box<dyn PciFunction>);

/// An image as the device models see it.
struct ImageBackend {
    image: Image,
    /// An error was logged already (one line per disk, not one per request).
    logged: bool,
}

impl ImageBackend {
    fn fail(&mut self, what: &str, e: Error) -> BackendError {
        // The guest's own buffer was not in its memory: its error, not the disk's (no log line).
        if matches!(e, Error::Transfer) {
            return BackendError::Io;
        }
        if !self.logged {
            self.logged = true;
            debug(format_args!(
                "monitor: disk {}: {what} failed: {e} (the guest sees an I/O error)",
                self.image.name()
            ));
        }
        match e {
            Error::ReadOnly => BackendError::ReadOnly,
            _ => BackendError::Io,
        }
    }
}

impl BlockBackend for ImageBackend {
    fn size_bytes(&self) -> u64 {
        self.image.size()
    }
    fn read_only(&self) -> bool {
        self.image.read_only()
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BackendError> {
        self.image.read(offset, buf).map_err(|e| self.fail("read", e))
    }
    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), BackendError> {
        self.image.write(offset, data).map_err(|e| self.fail("write", e))
    }
    fn flush(&mut self) -> Result<(), BackendError> {
        self.image.flush().map_err(|e| self.fail("flush", e))
    }
    fn discard(&mut self, offset: u64, len: u64) -> Result<(), BackendError> {
        self.image.discard(offset, len).map_err(|e| self.fail("discard", e))
    }
    fn write_zeroes(&mut self, offset: u64, len: u64, _may_unmap: bool) -> Result<(), BackendError> {
        self.image.write_zeroes(offset, len).map_err(|e| self.fail("write zeroes", e))
    }
    /// Straight from the storage window into the guest's buffers (keel-rt's `StorageFile`).
    fn read_into(&mut self, offset: u64, len: u64, sink: &mut Sink<'_>) -> Result<(), BackendError> {
        self.image.read_into(offset, len, sink).map_err(|e| self.fail("read", e))
    }
    fn write_from(&mut self, offset: u64, len: u64, source: &mut Source<'_>) -> Result<(), BackendError> {
        self.image.write_from(offset, len, source).map_err(|e| self.fail("write", e))
    }
}

/// The serial a guest reads with GET_ID or INQUIRY: the image's file name, cut to 20 bytes.
fn serial(path: &str) -> Vec<u8> {
    let name = path.rsplit('/').next().unwrap_or(path).as_bytes();
    name[..name.len().min(SERIAL_MAX)].to_vec()
}

/// Open one image: `spec` is `qcow2:/path`, `raw:/path` or `/path` (format by magic).
fn open(client: &StorageClient, spec: &str, read_only: bool) -> Result<Image, String> {
    let (format, path) = split_disk_spec(spec);
    let file = StorageFile::open(client, path, !read_only, false).map_err(|e| alloc::format!("{path}: {e}"))?;
    let mut opener = DatastoreOpener { client: client.clone() };
    let image = Image::open(Box::new(file), path, OpenOptions { read_only, format }, &mut opener)
        .map_err(|e| alloc::format!("{e}"))?;
    if let Some(reason) = image.read_only_reason() {
        debug(format_args!("monitor: disk {path}: {reason}"));
    }
    Ok(image)
}

/// The VM's disks and CD-ROM as PCI functions (none when vmd gave none).
pub fn open_all(ctl: &ControlArea) -> Result<Vec<PciDisk>, String> {
    let disks: Vec<String> = ctl.disks.iter().map(crate::control::text).filter(|d| !d.is_empty()).collect();
    let cdrom = crate::control::text(&ctl.cdrom);
    if disks.is_empty() && cdrom.is_empty() {
        return Ok(Vec::new());
    }
    use crate::{H_STORAGE_CHANNEL, H_STORAGE_REPLIES, H_STORAGE_REQUESTS};
    let client = StorageClient::from_handles(H_STORAGE_CHANNEL, H_STORAGE_REQUESTS, H_STORAGE_REPLIES)?;
    let mut functions: Vec<PciDisk> = Vec::new();
    for (n, spec) in disks.iter().enumerate() {
        let image = open(&client, spec, false)?;
        let serial = serial(image.name());
        let device = VirtioBlk::new(ImageBackend { image, logged: false }, &serial);
        let pci = VirtioPci::transitional(device).ok_or("virtio-blk has no transitional PCI id")?;
        functions.push(("virtio-blk", FIRST_DISK_SLOT + n, DISK_IRQ, Box::new(pci)));
    }
    if !cdrom.is_empty() {
        let image = open(&client, &alloc::format!("raw:{cdrom}"), true)?;
        let serial = serial(image.name());
        let device = VirtioScsi::new(ImageBackend { image, logged: false }, &serial);
        let pci = VirtioPci::transitional(device).ok_or("virtio-scsi has no transitional PCI id")?;
        functions.push(("virtio-scsi", CDROM_SLOT, DISK_IRQ, Box::new(pci)));
    }
    Ok(functions)
}

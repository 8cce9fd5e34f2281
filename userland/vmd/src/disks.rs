//! A VM's disks and CD-ROM at `start`: each must be a file on the datastore, a writable image
//! must not be in use by another running VM (a base image may be shared, read-only), and the
//! monitor gets exactly these files: its disks writable, their backing chains and the ISO
//! read-only. `show` lists them.
//!
//! A qcow2 disk's backing chain is read here (keel-diskimage opens the image read-only through
//! the storage service), so the monitor is granted its base images and a VM whose base is
//! missing does not start. What it does not do: open images for the guest (the monitor does).

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use keel_diskimage::{split_disk_spec, Image, OpenOptions};
use keel_rt::image_file::{DatastoreOpener, StorageFile};
use keel_rt::storage::StorageClient;

use crate::create::absolute;

/// The files a running VM uses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VmFiles {
    /// Its disks as the monitor gets them (`qcow2:/path`, `raw:/path` or `/path`), in order.
    pub disks: Vec<String>,
    /// The disks' paths: written by the guest.
    pub writable: Vec<String>,
    /// Backing files and the ISO: read only.
    pub read_only: Vec<String>,
    /// The ISO image's path, or empty.
    pub cdrom: String,
}

impl VmFiles {
    /// Check and gather `disks` (specs as `start -d` takes them) and `cdrom`.
    pub fn gather(client: &StorageClient, disks: &[String], cdrom: Option<&str>) -> Result<VmFiles, String> {
        let mut files = VmFiles::default();
        let mut probe = client.clone();
        for spec in disks {
            let (format, path) = split_disk_spec(spec);
            let path = absolute(path);
            if files.writable.contains(&path) {
                return Err(format!("{path}: given twice"));
            }
            if probe.file_size(&path)?.is_none() {
                return Err(format!("{path}: no such file on the datastore"));
            }
            // Open it as the monitor will (read-only here): a corrupt image, an unknown feature
            // or a missing base is said now, and the chain is learnt.
            let file = StorageFile::open(client, &path, false, false).map_err(|e| format!("{path}: {e}"))?;
            let mut opener = DatastoreOpener { client: client.clone() };
            let image = Image::open(Box::new(file), &path, OpenOptions { read_only: true, format }, &mut opener)
                .map_err(|e| format!("{e}"))?;
            let mut base = image.backing();
            while let Some(b) = base {
                files.read_only.push(String::from(b.name()));
                base = b.backing();
            }
            files.disks.push(match format {
                Some(f) => format!("{}:{path}", f.name()),
                None => path.clone(),
            });
            files.writable.push(path);
        }
        if let Some(iso) = cdrom {
            let path = absolute(iso);
            if probe.file_size(&path)?.is_none() {
                return Err(format!("{path}: no such file on the datastore"));
            }
            files.read_only.push(path.clone());
            files.cdrom = path;
        }
        if let Some(both) = files.writable.iter().find(|w| files.read_only.contains(w)) {
            return Err(format!("{both}: a disk of this VM is also its base image or CD-ROM"));
        }
        Ok(files)
    }

    /// Why these files cannot be used while `other` (another running VM's) are: a file one of
    /// them writes that the other uses at all.
    pub fn conflict(&self, other: &VmFiles) -> Option<String> {
        let uses = |f: &VmFiles, path: &String| f.writable.contains(path) || f.read_only.contains(path);
        self.writable.iter().find(|p| uses(other, p)).or_else(|| other.writable.iter().find(|p| uses(self, p))).cloned()
    }

    /// What the monitor may open: (path, writable).
    pub fn grants(&self) -> Vec<(String, bool)> {
        let writable = self.writable.iter().map(|p| (p.clone(), true));
        writable.chain(self.read_only.iter().map(|p| (p.clone(), false))).collect()
    }
}

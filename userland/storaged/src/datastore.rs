//! The datastores: on each disk, the partitions (keel-partitions: GPT, MBR, or a file system on
//! the whole disk) and, on each, an exFAT or FAT32 volume (keel-datastore) if one mounts. The
//! first datastore found, in disk order then partition order, is the one paths name: `/etc/vm.conf`
//! is that file on it (docs/vm.conf.md). Every partition and volume is noted in the `disks`
//! listing.
//!
//! What it does not do: name a second datastore in paths (it is listed, marked not in use), or
//! format a disk (a shell verb to come).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use keel_block::{BlockDevice, Window};
use keel_datastore::{Format, Volume};
use keel_partitions::{read_partitions, PartitionKind, Scheme};

use crate::disks::{DiskDevice, Disks};

/// A mounted volume.
pub type DatastoreVolume = Volume<Window<DiskDevice>>;

/// Whether a partition of this kind may hold a datastore (the file-system crate decides).
fn may_hold_datastore(kind: PartitionKind) -> bool {
    matches!(kind, PartitionKind::ExFat | PartitionKind::Fat32 | PartitionKind::MicrosoftData | PartitionKind::Efi)
}

/// Read every disk's partitions, mount what holds a datastore, and note both in the listing.
/// Returns the datastores in order (the first is the one in use).
pub fn find(disks: &mut Disks) -> Vec<(String, DatastoreVolume)> {
    let mut found = Vec::new();
    for i in 0..disks.len() {
        let Some(mut device) = disks.device(i) else { continue };
        let disk = String::from(disks.name(i));
        let table = match read_partitions(&mut device) {
            Ok(table) => table,
            Err(e) => {
                disks.annotate(i, &format!("{disk}: {e}"));
                continue;
            }
        };
        for warning in &table.warnings {
            disks.annotate(i, &format!("{disk}: partition table: {warning:?}"));
        }
        if matches!(table.scheme, Scheme::Blank | Scheme::Unrecognized) {
            continue;
        }
        for partition in &table.partitions {
            let name = if partition.index == 0 { disk.clone() } else { format!("{disk}p{}", partition.index) };
            let size = keel_vmlimits::fmt_scaled(partition.block_count.saturating_mul(u64::from(device.block_size())));
            let mut line = format!("{name}: {} {size}", partition.kind.name());
            if may_hold_datastore(partition.kind) {
                let mounted = disks.device(i).ok_or(keel_datastore::Error::NotAFileSystem).and_then(|d| {
                    let window = partition.window(d).map_err(keel_datastore::Error::Disk)?;
                    Volume::mount(window)
                });
                match mounted {
                    Ok(volume) => {
                        let (total, free) = volume.space();
                        let format = match volume.format() {
                            Format::Exfat => "exFAT",
                            Format::Fat32 => "FAT32",
                        };
                        let role = if found.is_empty() { "datastore, in use" } else { "datastore, not in use" };
                        line = format!(
                            "{name}: {format} '{}' {}, {} free, {role}",
                            volume.label(),
                            keel_vmlimits::fmt_scaled(total),
                            keel_vmlimits::fmt_scaled(free)
                        );
                        found.push((name.clone(), volume));
                    }
                    Err(e) => line.push_str(&format!(", does not mount: {e}")),
                }
            }
            keel_rt::io::debug(format_args!("storaged: {line}"));
            disks.annotate(i, &line);
        }
    }
    found
}

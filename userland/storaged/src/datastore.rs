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

/// What a disk holds, as the listing says it.
fn scheme_text(scheme: &Scheme) -> &'static str {
    match scheme {
        Scheme::Blank => "blank",
        Scheme::Unrecognized => "unknown contents",
        Scheme::WholeDisk => "a file system on the whole disk",
        Scheme::Mbr { .. } => "MBR",
        Scheme::Gpt { from_backup: false, .. } => "GPT",
        Scheme::Gpt { from_backup: true, .. } => "GPT (from the backup: the primary is damaged)",
    }
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
                disks.set_contents(i, &format!("{e}"));
                continue;
            }
        };
        disks.set_contents(i, scheme_text(&table.scheme));
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

/// A disk or partition by its listing name (`sd1`, `sd1p2`): the disk's index and, for a
/// partition, its number.
fn parse_name(disks: &Disks, name: &str) -> Option<(usize, Option<u32>)> {
    (0..disks.len()).find_map(|i| {
        let disk = disks.name(i);
        let rest = name.strip_prefix(disk)?;
        match rest.strip_prefix('p') {
            None if rest.is_empty() => Some((i, None)),
            Some(number) => number.parse().ok().map(|n| (i, Some(n))),
            None => None,
        }
    })
}

/// A random GUID (RDRAND, or the TSC where there is none: a GUID only has to differ from the
/// other disks'). See: RFC 9562 5.4 (version 4: random).
fn random_guid() -> keel_partitions::Guid {
    let mut bytes = [0u8; 16];
    for half in bytes.chunks_mut(8) {
        let value = keel_rt::cpu::rdrand().unwrap_or_else(|| keel_rt::cpu::rdtsc().wrapping_mul(0x9e37_79b9_7f4a_7c15));
        half.copy_from_slice(&value.to_le_bytes());
    }
    bytes[7] = (bytes[7] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    keel_partitions::Guid(bytes)
}

/// `newfs`: make disk or partition `name` a datastore (exFAT, label KEEL). A whole disk gets a
/// GPT with one partition; a partition is formatted in place. Without `force`, only what holds
/// nothing (all zeros, or a partition whose kind is unknown and whose first blocks are blank)
/// is formatted. `in_use` is the datastore in use, never formatted. Returns what was done, and
/// the new volume; the error says why not.
pub fn format(
    disks: &mut Disks,
    name: &str,
    force: bool,
    in_use: Option<&str>,
) -> Result<(String, (String, DatastoreVolume)), String> {
    let (i, partition) = parse_name(disks, name).ok_or_else(|| format!("{name}: no such disk or partition"))?;
    let disk = String::from(disks.name(i));
    let on_disk = |used: &str| used == disk || used.strip_prefix(disk.as_str()).is_some_and(|r| r.starts_with('p'));
    if in_use.is_some_and(|used| used == name || (partition.is_none() && on_disk(used))) {
        return Err(format!("{name}: holds the datastore in use"));
    }
    let mut device = disks.device(i).ok_or_else(|| format!("{name}: no such disk"))?;
    let table = read_partitions(&mut device).map_err(|e| format!("{name}: {e}"))?;
    let (target, window) = match partition {
        None => {
            if !force && table.scheme != Scheme::Blank {
                return Err(format!(
                    "{name}: not empty ({}); newfs -f {name} formats it anyway",
                    scheme_text(&table.scheme)
                ));
            }
            let new = keel_partitions::NewGpt {
                disk_guid: random_guid(),
                partition_guid: random_guid(),
                type_guid: keel_partitions::types::MICROSOFT_BASIC_DATA,
                name: "Keel datastore",
            };
            let part = keel_partitions::write_gpt(&mut device, &new).map_err(|e| format!("{name}: {e:?}"))?;
            let window = part.window(device).map_err(|e| format!("{name}: {e}"))?;
            (format!("{disk}p{}", part.index), window)
        }
        Some(number) => {
            let part = table
                .partitions
                .iter()
                .find(|p| p.index == number)
                .ok_or_else(|| format!("{name}: no such partition"))?;
            if !force && part.kind != PartitionKind::Unknown {
                return Err(format!("{name}: holds {}; newfs -f {name} formats it anyway", part.kind.name()));
            }
            (String::from(name), part.window(device).map_err(|e| format!("{name}: {e}"))?)
        }
    };
    let serial = keel_rt::cpu::rdtsc() as u32;
    keel_datastore::mkfs_exfat(window, "KEEL", serial).map_err(|e| format!("{target}: {e}"))?;
    let device = disks.device(i).ok_or_else(|| format!("{name}: no such disk"))?;
    let table = read_partitions(&mut disks.device(i).ok_or_else(|| format!("{name}: no such disk"))?)
        .map_err(|e| format!("{name}: {e}"))?;
    let part = table
        .partitions
        .iter()
        .find(|p| if partition.is_none() { p.index == 1 } else { Some(p.index) == partition })
        .ok_or_else(|| format!("{target}: the new partition is not in the table"))?;
    let volume = Volume::mount(part.window(device).map_err(|e| format!("{target}: {e}"))?)
        .map_err(|e| format!("{target}: does not mount after newfs: {e}"))?;
    let (total, _) = volume.space();
    let line = format!("{target}: exFAT 'KEEL' {}, a datastore (newfs)", keel_vmlimits::fmt_scaled(total));
    disks.annotate(i, &line);
    Ok((line, (target, volume)))
}

//! Power cuts: a MemDisk records every write and flush while the volume is used; the image is
//! rebuilt as a cut would leave it at every flush point, and with random subsets of the writes
//! since the last flush. Each must mount, pass `fsck.exfat -n`, and hold every write the volume
//! had flushed (`ExfatVolume::flush`) before the cut.

mod common;

use std::collections::BTreeMap;

use common::*;
use keel_block::{DiskEvent, MemDisk};
use keel_datastore::ExfatVolume;

/// What the volume had acknowledged as flushed: the log length then, and each file's contents.
struct Ack {
    events: usize,
    files: BTreeMap<String, Vec<u8>>,
}

fn run_workload(image: Vec<u8>) -> (MemDisk, Vec<Ack>, usize) {
    let mut disk = MemDisk::from_bytes(512, image);
    disk.start_log();
    let mut vol = ExfatVolume::mount(&mut disk).unwrap();
    let mut acks = Vec::new();
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    vol.mkdir("/logs").unwrap();
    let mut log = vol.create("/logs/records").unwrap();
    let mut other = vol.create("/logs/other").unwrap();
    let mut record_log = Vec::new();
    let mut other_data = Vec::new();
    // Phase 1: numbered records appended and flushed, with a second file growing beside them
    // (so the first fragments and turns into a FAT chain), and new files now and then.
    for n in 0..24u64 {
        let record = pattern(n, 300 + (n as usize * 37) % 700);
        vol.write(&mut log, record_log.len() as u64, &record).unwrap();
        record_log.extend_from_slice(&record);
        let more = pattern(n + 1000, 400);
        vol.write(&mut other, other_data.len() as u64, &more).unwrap();
        other_data.extend_from_slice(&more);
        if n % 6 == 5 {
            let path = format!("/file {n} with a long name to take several entries");
            let mut f = vol.create(&path).unwrap();
            vol.write(&mut f, 0, &pattern(n + 77, 900)).unwrap();
            files.insert(path, pattern(n + 77, 900));
        }
        vol.flush().unwrap();
        files.insert("/logs/records".into(), record_log.clone());
        files.insert("/logs/other".into(), other_data.clone());
        acks.push(Ack { events: vol_log_len(&vol), files: files.clone() });
    }
    let phase_two = acks.last().unwrap().events;
    // Phase 2: metadata changes (only consistency is checked across these).
    vol.rename("/logs/other", "/moved other").unwrap();
    vol.truncate(&mut log, 100).unwrap();
    let mut sparse = vol.create("/sparse").unwrap();
    vol.truncate(&mut sparse, 20_000).unwrap();
    vol.write(&mut sparse, 15_000, b"past valid data").unwrap();
    vol.flush().unwrap();
    vol.remove("/moved other").unwrap();
    for i in 0..20 {
        vol.create(&format!("/logs/entry {i}")).unwrap();
    }
    vol.flush().unwrap();
    drop(vol);
    (disk, acks, phase_two)
}

fn vol_log_len(vol: &ExfatVolume<&mut MemDisk>) -> usize {
    vol.device().log().len()
}

fn check_image(image: Vec<u8>, cut: usize, acks: &[Ack], phase_two: usize, verdicts: &mut BTreeMap<String, usize>) {
    if let Some((ok, text)) = fsck("fsck.exfat", &image) {
        let chain_length = |l: &str| l.contains("more clusters are allocated");
        let summary = match (text.contains(": clean."), text.lines().any(chain_length)) {
            (true, _) => "clean".to_string(),
            (false, true) => {
                "ERROR: more clusters are allocated (a chain linked before its entry set was written)".to_string()
            }
            _ => text.clone(),
        };
        *verdicts.entry(summary.clone()).or_default() += 1;
        // The one inconsistency a cut may leave (see the crate doc): a FAT-chained file whose
        // chain was linked to new clusters before its entry set recorded the new length. fsck
        // calls it an error; its repair truncates the chain (lost clusters, no data lost).
        let only_long_chains = text.lines().filter(|l| l.contains("ERROR")).all(chain_length);
        assert!(ok || only_long_chains, "cut after event {cut}: fsck.exfat -n failed: {text}");
    }
    let mut vol =
        ExfatVolume::mount(MemDisk::from_bytes(512, image)).unwrap_or_else(|e| panic!("cut after {cut}: mount: {e}"));
    if cut > phase_two {
        vol.list("/").unwrap();
        return;
    }
    let Some(ack) = acks.iter().rev().find(|a| a.events <= cut) else { return };
    for (path, data) in &ack.files {
        let f = vol.open(path).unwrap_or_else(|e| panic!("cut after {cut}: {path}: {e}"));
        let mut buf = vec![0u8; data.len()];
        assert_eq!(vol.read(&f, 0, &mut buf).unwrap(), data.len(), "cut after {cut}: {path} is short");
        assert_eq!(&buf, data, "cut after {cut}: {path} differs");
    }
}

#[test]
fn every_power_cut_leaves_a_consistent_volume_with_the_flushed_data() {
    let Some(image) = linux_mkfs_exfat(1 << 20, "512") else { return };
    let (disk, acks, phase_two) = run_workload(image);
    let log = disk.log();
    let flushes: Vec<usize> =
        log.iter().enumerate().filter(|(_, e)| **e == DiskEvent::Flush).map(|(i, _)| i + 1).collect();
    let mut verdicts = BTreeMap::new();
    let mut rng = 0x1234_5678_9abc_def1u64;
    let mut cuts = 0;
    for (k, &at) in flushes.iter().enumerate() {
        // Exactly at the flush: everything before it, nothing after.
        check_image(disk.replay(at, |_| false), at, &acks, phase_two, &mut verdicts);
        cuts += 1;
        // Cut before the next flush with a random subset of the writes since this one.
        let next = flushes.get(k + 1).copied().unwrap_or(log.len());
        if next > at + 1 && k % 2 == 0 {
            let cut = next - 1;
            check_image(
                disk.replay(cut, |_| {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng & 1 == 1
                }),
                cut,
                &acks,
                phase_two,
                &mut verdicts,
            );
            cuts += 1;
        }
    }
    eprintln!("{cuts} power cuts replayed over {} events; fsck.exfat verdicts:", log.len());
    for (text, count) in verdicts {
        eprintln!("  {count} x {text}");
    }
}

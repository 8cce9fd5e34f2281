//! Power cuts on FAT32, as tests/exfat_power_cut.rs does for exFAT: the image at every flush
//! point and with random subsets of the writes since, each mounted, checked with
//! `fsck.vfat -n` (its verdicts counted and printed), and holding every flushed record.

mod common;

use std::collections::BTreeMap;

use common::*;
use keel_block::{DiskEvent, MemDisk};
use keel_datastore::Volume;

#[test]
fn fat32_power_cuts_keep_flushed_records_and_lose_at_most_clusters() {
    let Some(image) = make_image("mkfs.vfat", &["-F", "32", "-s", "1"], 1 << 20) else { return };
    let mut disk = MemDisk::from_bytes(512, image);
    disk.start_log();
    let mut acks: Vec<(usize, BTreeMap<String, Vec<u8>>)> = Vec::new();
    {
        let mut vol = Volume::mount(&mut disk).unwrap();
        let mut files = BTreeMap::new();
        vol.mkdir("/logs").unwrap();
        let mut log = vol.create("/logs/records").unwrap();
        let mut other = vol.create("/logs/other").unwrap();
        let (mut dl, mut dother) = (Vec::new(), Vec::new());
        for n in 0..16u64 {
            let record = pattern(n, 300 + (n as usize * 37) % 700);
            vol.write(&mut log, dl.len() as u64, &record).unwrap();
            dl.extend_from_slice(&record);
            let more = pattern(n + 1000, 400);
            vol.write(&mut other, dother.len() as u64, &more).unwrap();
            dother.extend_from_slice(&more);
            if n % 5 == 4 {
                let path = format!("/a long file name number {n}.txt");
                let mut f = vol.create(&path).unwrap();
                vol.write(&mut f, 0, &pattern(n, 900)).unwrap();
                files.insert(path, pattern(n, 900));
            }
            vol.flush().unwrap();
            files.insert("/logs/records".to_string(), dl.clone());
            files.insert("/logs/other".to_string(), dother.clone());
            let Volume::Fat32(v) = &vol else { panic!("not FAT32") };
            acks.push((v.device().log().len(), files.clone()));
        }
        vol.rename("/logs/other", "/moved").unwrap();
        vol.truncate(&mut log, 10).unwrap();
        vol.remove("/moved").unwrap();
        vol.flush().unwrap();
    }
    let phase_two = acks.last().unwrap().0;
    let log = disk.log();
    let flushes: Vec<usize> =
        log.iter().enumerate().filter(|(_, e)| **e == DiskEvent::Flush).map(|(i, _)| i + 1).collect();
    let mut verdicts: BTreeMap<String, usize> = BTreeMap::new();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut cuts = 0;
    for (k, &at) in flushes.iter().enumerate() {
        let next = flushes.get(k + 1).copied().unwrap_or(log.len());
        let mut images = vec![(at, disk.replay(at, |_| false))];
        if next > at + 1 && k % 2 == 0 {
            images.push((
                next - 1,
                disk.replay(next - 1, |_| {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng & 1 == 1
                }),
            ));
        }
        for (cut, image) in images {
            cuts += 1;
            if let Some((ok, text)) = fsck("fsck.vfat", &image) {
                // What fsck may find: clusters nothing points to, a stale free count in FSInfo
                // (written at flush), and a file whose chain was linked to new clusters before
                // its size was written (fsck truncates the chain: lost clusters, no data lost),
                // and the two FAT copies differing (written one after the other; fsck uses the
                // first, which is written first).
                // Anything else fails the test.
                let benign = |l: &str| {
                    let l = l.trim();
                    l.is_empty()
                        || l.starts_with('/')
                        || l.starts_with("fsck.fat")
                        || l.contains("files,")
                        || l.contains("Free cluster summary")
                        || l.contains("unused cluster")
                        || l.contains("Leaving filesystem unchanged")
                        || l.contains("according to fat_length")
                        || l.contains("less than the required minimum")
                        || l.contains("This may lead to problems")
                        || l.contains("FATs differ but appear to be intact")
                        || l.contains("Using first FAT")
                        || l.contains("cluster chain length is >")
                        || l.starts_with("Truncating file to")
                        || l.starts_with("Auto-correcting")
                };
                let kinds = [
                    ("unused cluster", "lost clusters"),
                    ("Free cluster summary", "stale FSInfo free count"),
                    ("cluster chain length is >", "chain longer than the file"),
                    ("FATs differ", "FAT copies differ"),
                ];
                let found: Vec<&str> = kinds.iter().filter(|(k, _)| text.contains(k)).map(|(_, name)| *name).collect();
                let summary = if ok || found.is_empty() { "clean".to_string() } else { found.join(" + ") };
                *verdicts.entry(summary).or_default() += 1;
                assert!(ok || text.lines().all(benign), "cut after event {cut}: fsck.vfat -n:\n{text}");
            }
            let mut vol =
                Volume::mount(MemDisk::from_bytes(512, image)).unwrap_or_else(|e| panic!("cut after {cut}: {e}"));
            if cut > phase_two {
                vol.list("/").unwrap();
                continue;
            }
            let Some((_, files)) = acks.iter().rev().find(|(events, _)| *events <= cut) else { continue };
            for (path, data) in files {
                let f = vol.open(path).unwrap_or_else(|e| panic!("cut after {cut}: {path}: {e}"));
                let mut buf = vec![0u8; data.len()];
                assert_eq!(vol.read(&f, 0, &mut buf).unwrap(), data.len(), "cut after {cut}: {path}");
                assert_eq!(&buf, data, "cut after {cut}: {path} differs");
            }
        }
    }
    eprintln!("{cuts} FAT32 power cuts replayed over {} events; fsck.vfat verdicts:", log.len());
    for (text, count) in verdicts {
        eprintln!("  {count} x {text}");
    }
}

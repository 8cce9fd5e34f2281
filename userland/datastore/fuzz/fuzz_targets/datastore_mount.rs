//! Fuzz the datastore file systems with a hostile disk: the input is the start of a disk image
//! (the rest, up to 256 KiB, is zeros, so small seeds stand for whole mkfs.exfat and mkfs.vfat
//! volumes). The image is mounted as whatever it claims to be, walked (every directory listed,
//! a few levels deep, every file read at its start and end), then written: a file created,
//! written past its end, truncated, renamed into a directory made for it, removed, and flushed.
//! Errors are expected; a panic, a hang or unbounded memory is the bug.
#![no_main]

use keel_block::MemDisk;
use keel_datastore::Volume;
use libfuzzer_sys::fuzz_target;

const DISK_BYTES: usize = 256 * 1024;

fn walk(vol: &mut Volume<MemDisk>, path: &str, depth: u32, budget: &mut u32) {
    let Ok(entries) = vol.list(path) else { return };
    for entry in entries.into_iter().take(32) {
        if *budget == 0 {
            return;
        }
        *budget -= 1;
        let child = format!("{}/{}", path.trim_end_matches('/'), entry.name);
        if entry.metadata.is_dir {
            if depth < 4 {
                walk(vol, &child, depth + 1, budget);
            }
        } else if let Ok(file) = vol.open(&child) {
            let mut buf = [0u8; 1024];
            let _ = vol.read(&file, 0, &mut buf);
            let len = file.metadata().len;
            let _ = vol.read(&file, len.saturating_sub(100), &mut buf);
            let _ = vol.stat(&child);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() > DISK_BYTES {
        return;
    }
    let mut image = data.to_vec();
    image.resize(DISK_BYTES, 0);
    let Ok(mut vol) = Volume::mount(MemDisk::from_bytes(512, image)) else { return };
    let _ = vol.label();
    let _ = vol.space();
    let mut budget = 200;
    walk(&mut vol, "/", 0, &mut budget);
    if let Ok(mut file) = vol.create("/fuzz file with a long name.bin") {
        let _ = vol.write(&mut file, 0, &[0xA5; 3000]);
        let _ = vol.write(&mut file, 9000, b"past the end");
        let mut buf = [0u8; 512];
        let _ = vol.read(&file, 8800, &mut buf);
        let _ = vol.truncate(&mut file, 700);
    }
    let _ = vol.mkdir("/fuzz dir");
    let _ = vol.rename("/fuzz file with a long name.bin", "/fuzz dir/moved");
    let _ = vol.remove("/fuzz dir/moved");
    let _ = vol.remove("/fuzz dir");
    let _ = vol.flush();
    let mut budget = 50;
    walk(&mut vol, "/", 0, &mut budget);
});

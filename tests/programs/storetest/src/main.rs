//! `storetest`: exercises the storage service as a client would (`spawn -s storetest`; its
//! handles 1 to 3 are its storage channel). It writes a 1 MiB file in a pattern and reads it
//! back, renames it, truncates it, writes 64 KiB at 5 GiB into a sparse file, creates and removes
//! a file, and reports each check on the kernel log, ending with `storetest: all N checks
//! passed` or the failures. The system test then checks the image with fsck.exfat and compares
//! `/t/b.bin` with the pattern it expects (tests/tests/storage.rs).
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec;
use alloc::vec::Vec;

use keel_rt::io::debug;
use keel_rt::storage::StorageClient;

keel_rt::entry!(run);

struct Checks {
    passed: u32,
    failed: u32,
}

impl Checks {
    fn check(&mut self, what: &str, ok: bool) {
        if ok {
            self.passed += 1;
        } else {
            self.failed += 1;
            debug(format_args!("storetest: FAILED: {what}"));
        }
    }
}

/// The byte at `offset` of the pattern file (the system test computes the same).
fn pattern(offset: u64) -> u8 {
    (offset % 251) as u8
}

const MIB: u64 = 1 << 20;
const BIG_OFFSET: u64 = 5 << 30;

fn run() -> i32 {
    let mut s = match StorageClient::from_handles(1, 2, 3) {
        Ok(s) => s,
        Err(e) => {
            debug(format_args!("storetest: no storage channel: {e}"));
            return 1;
        }
    };
    let mut c = Checks { passed: 0, failed: 0 };
    let _ = s.mkdir("/t");

    // A 1 MiB file in a pattern, written in pieces, flushed, read back.
    let data: Vec<u8> = (0..MIB).map(pattern).collect();
    match s.open("/t/a.bin", true, true) {
        Ok(f) => {
            c.check("write 1 MiB", s.write(f, 0, &data).is_ok());
            c.check("flush", s.flush(f).is_ok());
            let mut back = vec![0u8; MIB as usize];
            let mut done = 0;
            while done < back.len() {
                match s.read(f, done as u64, &mut back[done..]) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => done += n,
                }
            }
            c.check("read back 1 MiB", done == back.len() && back == data);
            c.check("close", s.close(f).is_ok());
        }
        Err(e) => c.check(&alloc::format!("create /t/a.bin: {e}"), false),
    }
    debug(format_args!("storetest: 1 MiB written and read back"));

    // Rename, then truncate (shrink).
    c.check("rename a.bin to b.bin", s.rename("/t/a.bin", "/t/b.bin").is_ok());
    c.check("a.bin is gone", s.file_size("/t/a.bin") == Ok(None));
    match s.open("/t/b.bin", false, true) {
        Ok(f) => {
            c.check("truncate to 300000", s.truncate(f, 300_000).is_ok());
            c.check("flush after truncate", s.flush(f).is_ok());
            let _ = s.close(f);
        }
        Err(e) => c.check(&alloc::format!("open /t/b.bin: {e}"), false),
    }
    c.check("b.bin is 300000 bytes", s.file_size("/t/b.bin") == Ok(Some(300_000)));

    // 64 KiB at 5 GiB: the file grows sparse (the gap reads as zeros, nothing written there).
    let tail: Vec<u8> = (0..64 * 1024u64).map(|i| pattern(i + 7)).collect();
    match s.open("/t/big.bin", true, true) {
        Ok(f) => {
            c.check("write 64 KiB at 5 GiB", s.write(f, BIG_OFFSET, &tail).is_ok());
            c.check("flush the big file", s.flush(f).is_ok());
            let mut back = vec![0u8; tail.len()];
            c.check("read back at 5 GiB", s.read(f, BIG_OFFSET, &mut back) == Ok(tail.len()) && back == tail);
            let mut gap = vec![0xffu8; 4096];
            c.check("the gap reads as zeros", s.read(f, 1 << 30, &mut gap) == Ok(4096) && gap.iter().all(|&b| b == 0));
            let _ = s.close(f);
        }
        Err(e) => c.check(&alloc::format!("create /t/big.bin: {e}"), false),
    }
    c.check("big.bin is 5 GiB + 64 KiB", s.file_size("/t/big.bin") == Ok(Some(BIG_OFFSET + tail.len() as u64)));
    debug(format_args!("storetest: sparse file past 4 GiB written"));

    // Create and remove.
    if let Ok(f) = s.open("/t/gone.bin", true, true) {
        let _ = s.write(f, 0, b"short-lived");
        let _ = s.close(f);
    }
    c.check("remove gone.bin", s.remove("/t/gone.bin").is_ok());
    c.check("gone.bin is gone", s.file_size("/t/gone.bin") == Ok(None));
    c.check("a missing file is an error", s.open("/t/none", false, false).is_err());
    // Make the removal durable too (a flush covers the whole volume).
    if let Ok(f) = s.open("/t/b.bin", false, false) {
        c.check("final flush", s.flush(f).is_ok());
        let _ = s.close(f);
    }

    if c.failed == 0 {
        debug(format_args!("storetest: all {} checks passed", c.passed));
        0
    } else {
        debug(format_args!("storetest: {} of {} checks failed", c.failed, c.passed + c.failed));
        1
    }
}

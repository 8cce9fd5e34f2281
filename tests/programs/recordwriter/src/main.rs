//! `recordwriter`: appends numbered 32-byte records to `/records.log` on the datastore, flushing
//! after each and saying `recordwriter: record N flushed` on the kernel log once the flush
//! returned (`spawn -s recordwriter`). The power-cut test kills the machine while it writes,
//! then checks that every record reported flushed is in the file (tests/tests/storage.rs).
//! It runs until it has written `RECORDS` records or the machine stops.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use keel_rt::io::debug;
use keel_rt::storage::StorageClient;

keel_rt::entry!(run);

const RECORDS: u64 = 100_000;
const RECORD_LEN: usize = 32;

/// Record `n`: `record NNNNNNNNNN` padded with dots to 31 bytes, then a newline.
fn record(n: u64) -> [u8; RECORD_LEN] {
    let mut out = [b'.'; RECORD_LEN];
    out[RECORD_LEN - 1] = b'\n';
    out[..7].copy_from_slice(b"record ");
    let mut digits = n;
    for i in (7..17).rev() {
        out[i] = b'0' + (digits % 10) as u8;
        digits /= 10;
    }
    out
}

fn run() -> i32 {
    let mut s = match StorageClient::from_handles(1, 2, 3) {
        Ok(s) => s,
        Err(e) => {
            debug(format_args!("recordwriter: no storage channel: {e}"));
            return 1;
        }
    };
    let file = match s.open("/records.log", true, true) {
        Ok(f) => f,
        Err(e) => {
            debug(format_args!("recordwriter: {e}"));
            return 1;
        }
    };
    for n in 0..RECORDS {
        let written = s.write(file, n * RECORD_LEN as u64, &record(n)).and_then(|()| s.flush(file));
        if let Err(e) = written {
            debug(format_args!("recordwriter: record {n}: {e}"));
            return 1;
        }
        debug(format_args!("recordwriter: record {n} flushed"));
    }
    0
}

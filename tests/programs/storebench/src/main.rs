//! `storebench`: what reading a datastore file costs, in instructions (`cargo xtask bench` runs
//! it with `spawn -s storebench` under QEMU's `-icount shift=0 -smp 1`, where the TSC advances
//! by one per instruction of the whole machine: kernel, storage service, driver and this
//! program). It reads `/bench.bin` whole, sequentially in the channel's largest requests, then
//! `RANDOM_READS` 4 KiB reads at pseudo-random 4 KiB-aligned offsets, and prints `storebench:
//! sequential X.XXX instructions/byte` and `storebench: random 4k N instructions/request`.
//!
//! The figures leave out the time the CPU was idle (the kernel's idle counter): while Keel waits
//! for QEMU to finish a request, `-icount` moves the clock ahead by however long QEMU's I/O
//! thread took on the host, which is the device emulation, not Keel, and differs from run to run.
//! Each line also gives the elapsed figure, idle included.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use keel_rt::cpu::{idle_tsc, rdtsc};
use keel_rt::io::debug;
use keel_rt::storage::StorageClient;

keel_rt::entry!(run);

const FILE: &str = "/bench.bin";
const RANDOM_READS: u64 = 1000;
const PAGE: u64 = 4096;

fn run() -> i32 {
    match bench() {
        Ok(()) => 0,
        Err(e) => {
            debug(format_args!("storebench: {e}"));
            1
        }
    }
}

fn bench() -> Result<(), alloc::string::String> {
    let mut s = StorageClient::from_handles(1, 2, 3)?;
    let file = s.open(FILE, false, false)?;
    let mut buf = alloc::vec![0u8; keel_rt::storage::MAX_READ];
    let (start, idle) = (rdtsc(), idle_tsc());
    let mut offset = 0;
    while offset < file.size {
        match s.read(file, offset, &mut buf)? {
            0 => break,
            n => offset += n as u64,
        }
    }
    let elapsed = rdtsc() - start;
    let busy = elapsed.saturating_sub(idle_tsc() - idle);
    let per_byte = |ticks: u64| {
        let milli = ticks.saturating_mul(1000) / offset.max(1);
        (milli / 1000, milli % 1000)
    };
    let ((b, bm), (e, em)) = (per_byte(busy), per_byte(elapsed));
    debug(format_args!(
        "storebench: sequential {b}.{bm:03} instructions/byte over {offset} bytes ({e}.{em:03} elapsed, idle included)"
    ));

    let pages = (file.size / PAGE).max(1);
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let (start, idle) = (rdtsc(), idle_tsc());
    for _ in 0..RANDOM_READS {
        // xorshift64: a fixed sequence, so every run reads the same offsets.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.read(file, (x % pages) * PAGE, &mut buf[..PAGE as usize])?;
    }
    let elapsed = rdtsc() - start;
    let busy = elapsed.saturating_sub(idle_tsc() - idle) / RANDOM_READS;
    let elapsed = elapsed / RANDOM_READS;
    debug(format_args!(
        "storebench: random 4k {busy} instructions/request over {RANDOM_READS} requests ({elapsed} elapsed, idle included)"
    ));
    s.close(file)
}

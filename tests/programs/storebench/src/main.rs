//! `storebench`: what reading a datastore file costs, in instructions (`cargo xtask bench` runs
//! it with `spawn -s storebench` under QEMU's `-icount shift=0 -smp 1`, where the TSC advances
//! by one per instruction of the whole machine: kernel, storage service, driver and this
//! program; QEMU's device emulation is not counted). It reads `/bench.bin` whole, sequentially in
//! the channel's largest requests, then `RANDOM_READS` 4 KiB reads at pseudo-random 4 KiB-aligned
//! offsets, and prints `storebench: sequential X.XXX instructions/byte` and `storebench: random
//! 4k N instructions/request`.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

extern crate alloc;

use keel_rt::cpu::rdtsc;
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
    let start = rdtsc();
    let mut offset = 0;
    while offset < file.size {
        match s.read(file, offset, &mut buf)? {
            0 => break,
            n => offset += n as u64,
        }
    }
    let sequential = rdtsc() - start;
    let milli_per_byte = sequential.saturating_mul(1000) / offset.max(1);
    debug(format_args!(
        "storebench: sequential {}.{:03} instructions/byte over {offset} bytes",
        milli_per_byte / 1000,
        milli_per_byte % 1000
    ));

    let pages = (file.size / PAGE).max(1);
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let start = rdtsc();
    for _ in 0..RANDOM_READS {
        // xorshift64: a fixed sequence, so every run reads the same offsets.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.read(file, (x % pages) * PAGE, &mut buf[..PAGE as usize])?;
    }
    let random = (rdtsc() - start) / RANDOM_READS;
    debug(format_args!("storebench: random 4k {random} instructions/request over {RANDOM_READS} requests"));
    s.close(file)
}

//! `spinner`: a guest that runs until it is stopped, for the tests that need a VM that keeps
//! running while something else happens (another guest's exit storm, a killed monitor).
//!
//! It writes a pattern that depends on the address over its RAM from 2 MiB to the end (one
//! 64-bit word every `STRIDE` bytes), then loops forever: each round reads the whole pattern back
//! and, about every 2^31 TSC cycles, prints `spinner: round N, pattern intact (W words)`. The round
//! number only grows, so a test can tell that the guest made progress between two looks at its
//! console. If the pattern ever changes (another VM, or the hypervisor, wrote this VM's memory)
//! it prints `FAIL spinner: ...` and stops the VM with exit status 1. It never prints `PASS`.
#![no_std]
#![no_main]

use keel_guest_rt::{cpu, exit, println, EXIT_FAIL};

keel_guest_rt::entry!(run);

const MIB: u64 = 1 << 20;
/// Where the pattern starts: the guest itself lives below (page tables, stack, image at 1 MiB).
const START: u64 = 2 * MIB;
/// Bytes between two pattern words (16 MiB of RAM: about 28,000 words).
const STRIDE: u64 = 512;
/// The identity map covers 4 GiB; the pattern stays below 3 GiB.
const LIMIT: u64 = 3 << 30;
/// TSC cycles between two progress lines.
const REPORT_TSC: u64 = 1 << 31;

/// A bijection of the address, so that every word differs (as in `memtest`).
fn pattern(addr: u64) -> u64 {
    (addr ^ 0x5350_494E_5350_494E).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

fn run(ram_size: u64) -> ! {
    let end = ram_size.min(LIMIT) & !7;
    println!("spinner: RAM {} MiB; writing a pattern over {START:#x}..{end:#x}, stride {STRIDE}", ram_size / MIB);
    let mut words = 0u64;
    let mut addr = START;
    while addr + 8 <= end {
        // SAFETY: `addr` is 8-byte aligned, inside RAM above everything the guest itself uses,
        // and identity-mapped (docs/guests.md).
        unsafe { core::ptr::write_volatile(addr as *mut u64, pattern(addr)) };
        words += 1;
        addr += STRIDE;
    }
    println!("spinner: pattern written ({words} words); running until stopped");
    let mut round = 0u64;
    let mut last = cpu::rdtsc();
    loop {
        let mut addr = START;
        while addr + 8 <= end {
            // SAFETY: as above; only reads.
            let got = unsafe { core::ptr::read_volatile(addr as *const u64) };
            if got != pattern(addr) {
                println!(
                    "FAIL spinner: the word at {addr:#x} changed: wrote {:#018x}, read {got:#018x}",
                    pattern(addr)
                );
                exit(EXIT_FAIL);
            }
            addr += STRIDE;
        }
        round += 1;
        let now = cpu::rdtsc();
        if now.wrapping_sub(last) >= REPORT_TSC {
            last = now;
            println!("spinner: round {round}, pattern intact ({words} words)");
        }
    }
}

//! `memtest`: checks the guest's RAM and what lies past its end.
//!
//! 1. Writes a 64-bit pattern that depends on the address over all RAM from 2 MiB to the end of
//!    RAM (RDI at entry), then reads it all back. The guest itself lives below 2 MiB: page tables
//!    at 0x1000-0x7000, stack below 0x80000, the image at 1 MiB (checked to end below 2 MiB).
//!    Each word's pattern is unique, so two addresses backed by the same host memory are caught.
//! 2. Reads 64 bits at guest-physical addresses past the end of RAM (the end itself, 4 KiB and
//!    1 MiB past it, 3 GiB, 0xFED00000 where a PC has its HPET): nothing claims them, so each
//!    read must give all ones.
//!    Then writes there (dropped; the guest must go on) and reads again: still all ones.
//!
//! Verdict: `PASS memtest`, or `FAIL memtest: <first failed check>`.
#![no_std]
#![no_main]

use keel_guest_rt::check::Checks;

keel_guest_rt::entry!(run);

const MIB: u64 = 1 << 20;
/// Where the tested RAM starts: everything the guest uses is below.
const TEST_START: u64 = 2 * MIB;
/// Bytes between two tested words. 8 tests every 64-bit word, which is what the system tests
/// want with the 16 MiB they give this guest (about 1.8 M words per pass). With much more RAM
/// under a slow emulator (Bochs), 4096 (one word per page) still catches missing or aliased pages.
const STRIDE: u64 = 8;
/// The monitor identity-maps 0-4 GiB; RAM past this is not tested (and the 3 GiB and MMIO probes
/// below it would no longer be "past the end of RAM").
const TEST_LIMIT: u64 = 3 << 30;
/// The page tables map the first 4 GiB only: a probe must lie below this.
const MAPPED_LIMIT: u64 = 4 << 30;
/// What a read from an address nothing claims returns.
const ALL_ONES: u64 = u64::MAX;
/// Mismatches printed in detail before only counting the rest.
const MAX_REPORTED: u64 = 8;

/// The pattern for the word at `addr`: a bijection of the address (XOR with a constant, then
/// multiplication by an odd constant), so every word differs from every other and bits above
/// and below the address bits toggle.
fn pattern(addr: u64) -> u64 {
    (addr ^ 0x5555_AAAA_3333_CCCC).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

fn read64(addr: u64) -> u64 {
    let value: u64;
    // SAFETY: `addr` is 8-byte aligned and inside the identity map (0-4 GiB, callers check); a
    // load there is either RAM or an MMIO exit that the monitor answers. `mov` is one 64-bit
    // access, which is what the MMIO probes need.
    unsafe {
        core::arch::asm!("mov {v}, qword ptr [{a}]", a = in(reg) addr, v = lateout(reg) value, options(nostack, preserves_flags, readonly))
    };
    value
}

fn write64(addr: u64, value: u64) {
    // SAFETY: `addr` is 8-byte aligned, inside the identity map, and either tested RAM above 2 MiB
    // (which nothing else uses) or an address past the end of RAM (an MMIO exit).
    unsafe {
        core::arch::asm!("mov qword ptr [{a}], {v}", a = in(reg) addr, v = in(reg) value, options(nostack, preserves_flags))
    };
}

fn run(ram_size: u64) -> ! {
    let mut c = Checks::new("memtest");
    c.note(format_args!("RAM size {ram_size:#x} bytes ({} MiB)", ram_size / MIB));
    let image_end = keel_guest_rt::image_end();
    c.check(image_end <= TEST_START, format_args!("the guest image ends at {image_end:#x}, below the tested RAM"));
    c.check(ram_size >= 2 * MIB, format_args!("RAM size {ram_size:#x} is at least 2 MiB"));
    if !c.all_passed() {
        c.finish();
    }

    let ram_end = ram_size;
    let test_end = ram_end.min(TEST_LIMIT) & !7;
    if ram_end > TEST_LIMIT {
        c.note(format_args!("testing RAM up to {TEST_LIMIT:#x} only (the identity map and the probes)"));
    }
    if test_end > TEST_START {
        let words = (test_end - TEST_START).div_ceil(STRIDE);
        c.note(format_args!(
            "writing {words} words, stride {STRIDE} bytes, {:#x}..{test_end:#x} ({} MiB)",
            TEST_START,
            (test_end - TEST_START) / MIB
        ));
        let mut addr = TEST_START;
        while addr < test_end {
            write64(addr, pattern(addr));
            addr += STRIDE;
        }
        let mut bad = 0u64;
        let mut addr = TEST_START;
        while addr < test_end {
            let got = read64(addr);
            if got != pattern(addr) {
                if bad < MAX_REPORTED {
                    c.note(format_args!("mismatch at {addr:#x}: wrote {:#018x}, read {got:#018x}", pattern(addr)));
                }
                bad += 1;
            }
            addr += STRIDE;
        }
        c.check(
            bad == 0,
            format_args!(
                "pattern verified over {} MiB ({:#x}..{test_end:#x}): {bad} of {words} words wrong",
                (test_end - TEST_START) / MIB,
                TEST_START
            ),
        );
    } else {
        c.note(format_args!("no RAM above 2 MiB to test"));
    }

    // Past the end of RAM. RAM end is rounded up to 8 bytes so that the probe is aligned.
    let end = (ram_end + 7) & !7;
    let probes = [
        ("the end of RAM", end),
        ("the end of RAM + 4 KiB", end + 4096),
        ("the end of RAM + 1 MiB", end + MIB),
        ("3 GiB", 3 << 30),
        ("0xfed00000", 0xFED0_0000),
    ];
    for (name, addr) in probes {
        if addr < ram_end {
            c.note(format_args!("probe {name} ({addr:#x}): inside RAM, skipped"));
            continue;
        }
        if addr + 8 > MAPPED_LIMIT {
            c.note(format_args!("probe {name} ({addr:#x}): beyond the identity map, skipped"));
            continue;
        }
        let before = read64(addr);
        c.check(before == ALL_ONES, format_args!("read at {name} ({addr:#x}) gives all ones (got {before:#018x})"));
        write64(addr, 0x0123_4567_89AB_CDEF);
        let after = read64(addr);
        c.check(
            after == ALL_ONES,
            format_args!("write at {name} ({addr:#x}) is dropped: a read after it gives all ones (got {after:#018x})"),
        );
    }

    c.finish()
}

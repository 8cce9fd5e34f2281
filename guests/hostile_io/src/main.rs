//! `hostile_io`: string port I/O (`rep outsb`, `rep insb`, `rep outsw`) with large counts and
//! buffers that cross page boundaries and the end of RAM, aimed at a port nothing claims.
//!
//! Keel's monitor emulates string port I/O (keel-x86emu's string_io, a slice of at most 4096
//! elements per exit): the guest checks that every byte `rep insb` reads from an unclaimed port
//! is 0xFF, that RCX counts down to 0 and that RSI/RDI advance by the count, then ends with
//! `PASS hostile_io` (or `FAIL hostile_io: ...`). Meanwhile the host and the other VMs go on.
#![no_std]
#![no_main]

use keel_guest_rt::check::Checks;

keel_guest_rt::entry!(run);

/// A port that no device of docs/guests.md claims (the ISA Plug and Play write-data port, which
/// nothing emulates).
const PORT: u16 = 0xA79;
/// The buffer the strings come from and go to: 64 KiB at 4 MiB (guest RAM that nothing else
/// uses; the image, stack and page tables are below 2 MiB).
const BUF: u64 = 4 << 20;
const BUF_LEN: u64 = 64 << 10;

/// `rep outsb` of `count` bytes from `src`; returns (RCX, RSI) afterwards.
fn rep_outsb(src: u64, count: u64) -> (u64, u64) {
    let (rcx, rsi): (u64, u64);
    // SAFETY: reads guest memory from `src` (RAM, or past its end, which reads as all ones) and
    // writes it to an unclaimed port; DF is clear (Rust's ABI).
    unsafe {
        core::arch::asm!("rep outsb", in("dx") PORT, inout("rcx") count => rcx, inout("rsi") src => rsi, options(nostack, readonly))
    };
    (rcx, rsi)
}

/// `rep insb` of `count` bytes into `dst`; returns (RCX, RDI) afterwards.
fn rep_insb(dst: u64, count: u64) -> (u64, u64) {
    let (rcx, rdi): (u64, u64);
    // SAFETY: writes `count` bytes at `dst`, inside the buffer this guest reserves (checked by
    // the callers); DF is clear.
    unsafe {
        core::arch::asm!("rep insb", in("dx") PORT, inout("rcx") count => rcx, inout("rdi") dst => rdi, options(nostack))
    };
    (rcx, rdi)
}

/// `rep outsw` of `count` words from `src`; returns (RCX, RSI) afterwards.
fn rep_outsw(src: u64, count: u64) -> (u64, u64) {
    let (rcx, rsi): (u64, u64);
    // SAFETY: as for rep_outsb.
    unsafe {
        core::arch::asm!("rep outsw", in("dx") PORT, inout("rcx") count => rcx, inout("rsi") src => rsi, options(nostack, readonly))
    };
    (rcx, rsi)
}

fn run(ram_size: u64) -> ! {
    let mut c = Checks::new("hostile_io");
    c.note(format_args!("string port I/O to unclaimed port {PORT:#x}"));
    c.check(ram_size >= BUF + BUF_LEN, format_args!("RAM ({ram_size:#x} bytes) holds the 64 KiB buffer at {BUF:#x}"));
    if !c.all_passed() {
        c.finish();
    }

    // 1. rep outsb: 60 KiB starting 100 bytes before a page boundary.
    let (src, count) = (BUF + 4096 - 100, BUF_LEN - 4096);
    c.note(format_args!("rep outsb: {count} bytes from {src:#x}"));
    let (rcx, rsi) = rep_outsb(src, count);
    c.check(
        rcx == 0 && rsi == src + count,
        format_args!("rep outsb across pages: rcx {rcx:#x} (want 0), rsi {rsi:#x} (want {:#x})", src + count),
    );

    // 2. rep insb: 8 KiB into a buffer that crosses a page boundary; every byte must be 0xff.
    let dst = BUF + 4096 - 10;
    // SAFETY: the 8 KiB at `dst` lie inside the guest's 64 KiB buffer.
    unsafe { core::ptr::write_bytes(dst as *mut u8, 0, 8192) };
    let (rcx, rdi) = rep_insb(dst, 8192);
    let mut not_ones = 0;
    for i in 0..8192 {
        // SAFETY: inside the buffer, as above.
        if unsafe { core::ptr::read_volatile((dst + i) as *const u8) } != 0xFF {
            not_ones += 1;
        }
    }
    c.check(
        rcx == 0 && rdi == dst + 8192 && not_ones == 0,
        format_args!("rep insb across pages from an unclaimed port: rcx {rcx:#x}, {not_ones} of 8192 bytes not 0xff"),
    );

    // 3. rep outsw: 64 KiB worth of words whose source runs past the end of RAM.
    let src = ram_size - 0x8000;
    let (rcx, rsi) = rep_outsw(src, 0x8000);
    c.check(
        rcx == 0 && rsi == src + 0x1_0000,
        format_args!("rep outsw from {src:#x} past the end of RAM: rcx {rcx:#x}, rsi {rsi:#x}"),
    );
    c.finish()
}

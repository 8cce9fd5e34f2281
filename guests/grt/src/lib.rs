//! The runtime every 64-bit Keel test guest links (docs/guests.md is the contract it relies on).
//!
//! - `_start`: the monitor enters at `e_entry` in long mode with RDI = the RAM size and RSP =
//!   0x80000; `_start` only calls the guest's `guest_main(ram_size)`, defined with [`entry!`].
//! - [`print!`]/[`println!`]: COM1 output ([`serial`]).
//! - [`exit`]: writes the status to the debug-exit port 0xF4, which stops the VM.
//! - A panic handler that prints `PANIC: <message>` and exits with [`EXIT_FAIL`].
//! - [`io`] (port I/O), [`idt`] (interrupt gates, stubs and Rust handlers), [`pic`] (8259 pair),
//!   [`pit`] (8254), [`cpu`] (CPUID, TSC, interrupt flag, `lidt`) and [`check`] (check lines and
//!   the one verdict line each guest ends with).
//!
//! Guests build for `x86_64-unknown-none` with `-C relocation-model=static` and link with
//! `guests/guest.ld` (at 1 MiB, physical = virtual). The target is soft-float: no SSE state is
//! used, so interrupt stubs need not save it and the guest need not enable it.
#![no_std]

pub mod check;
pub mod cpu;
pub mod idt;
pub mod io;
pub mod pic;
pub mod pit;
pub mod serial;

/// The exit status of a guest whose checks all passed.
pub const EXIT_PASS: u8 = 0;
/// The exit status of a guest that failed a check, panicked or took an unexpected exception.
pub const EXIT_FAIL: u8 = 1;
/// The debug-exit port: writing a byte stops the VM with that byte as its exit status.
pub const DEBUG_EXIT_PORT: u16 = 0xF4;

core::arch::global_asm!(
    // In its own section so that the linker script can put it first, at 1 MiB.
    ".pushsection .text.start, \"ax\", @progbits",
    ".global _start",
    "_start:",
    // RDI (the RAM size) is passed through as the first argument. The contract's RSP (0x80000)
    // is 16-byte aligned, so after the call RSP + 8 is aligned, as the SysV ABI wants.
    "call guest_main",
    // guest_main never returns; if it did, stop the VM with a failure status.
    "mov al, {fail}",
    "out {port}, al",
    "2:",
    "cli",
    "hlt",
    "jmp 2b",
    ".popsection",
    fail = const EXIT_FAIL,
    port = const DEBUG_EXIT_PORT,
);

/// Defines the guest's entry point: `entry!(run)` where `fn run(ram_size: u64) -> !`.
///
/// `_start` calls the generated `guest_main` with the RAM size the monitor put in RDI.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        /// Called by `_start` with RDI (the guest's RAM size in bytes) passed through.
        #[no_mangle]
        pub extern "C" fn guest_main(ram_size: u64) -> ! {
            let main: fn(u64) -> ! = $main;
            main(ram_size)
        }
    };
}

/// Stops the VM with exit status `code` through the debug-exit port, then halts for good in
/// case nothing listens on the port.
pub fn exit(code: u8) -> ! {
    // SAFETY: port 0xF4 is the debug-exit device (docs/guests.md); writing it has no effect on
    // memory. If the write returns (no such device), interrupts are disabled and the CPU halts.
    unsafe { io::outb(DEBUG_EXIT_PORT, code) };
    loop {
        // SAFETY: cli; hlt only stops this CPU; it touches no memory.
        unsafe { core::arch::asm!("cli", "hlt", options(nomem, nostack)) };
    }
}

/// The address just past the guest's image (text, data and bss), from the linker script.
pub fn image_end() -> u64 {
    extern "C" {
        static __image_end: u8;
    }
    // Only the symbol's address is taken (no unsafe needed); it is never read.
    core::ptr::addr_of!(__image_end) as u64
}

/// The address where the guest's image starts (1 MiB), from the linker script.
pub fn image_start() -> u64 {
    extern "C" {
        static __image_start: u8;
    }
    // Only the symbol's address is taken (no unsafe needed); it is never read.
    core::ptr::addr_of!(__image_start) as u64
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    println!("PANIC: {info}");
    exit(EXIT_FAIL)
}

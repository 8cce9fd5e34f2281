//! The runtime every Keel user program links: the `_start` entry, typed system-call wrappers
//! (`sys`), a heap on memory mapped from the kernel, console printing and a panic handler that
//! prints and exits.
//!
//! A program defines `#[no_mangle] fn keel_main() -> i32`; its return value is the exit code.
//! Programs build for x86_64-unknown-none with `-C relocation-model=static` and `user.ld` (xtask
//! does this). Does not: threads-safe heap beyond a spinlock, TLS, or floating point (the target
//! is soft-float, so the kernel need not save FPU state for user threads).
#![no_std]

pub mod io;
pub mod sys;

use linked_list_allocator::LockedHeap;

/// The heap: 8 MiB mapped at start-up (the kernel chooses where).
const HEAP_SIZE: u64 = 8 << 20;

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

core::arch::global_asm!(
    ".global _start",
    "_start:",
    "xor ebp, ebp",
    "and rsp, -16",
    "call {start}",
    "ud2",
    start = sym rt_start,
);

extern "Rust" {
    fn keel_main() -> i32;
}

extern "C" fn rt_start() -> ! {
    match sys::mem_map(0, HEAP_SIZE, keel_abi::prot::READ | keel_abi::prot::WRITE) {
        // SAFETY: the kernel just mapped this range for us, zeroed, readable and writable, and
        // nothing else uses it.
        Ok(addr) => unsafe { HEAP.lock().init(addr as *mut u8, HEAP_SIZE as usize) },
        Err(e) => {
            io::debug(format_args!("rt: cannot map the heap: {e}"));
            sys::exit(120);
        }
    }
    // SAFETY: every program defines keel_main (see the crate doc); it is an ordinary Rust fn.
    let code = unsafe { keel_main() };
    sys::exit(code as u32)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    io::debug(format_args!("panic: {info}"));
    sys::exit(101)
}

//! The runtime every Keel user program links: the `_start` entry, typed system-call wrappers
//! (`sys`), a heap on memory mapped from the kernel (as it grows), console printing and a panic
//! handler that prints and exits.
//!
//! A program defines `#[no_mangle] fn keel_main() -> i32` (or names its main function with
//! [`entry!`], so that it can `forbid(unsafe_code)`); its return value is the exit code. `cpu`
//! has the unprivileged instructions (RDTSC, RDRAND) and `shared` the control area's mapping, so
//! that a program needs no unsafe code of its own for them.
//! Programs build for x86_64-unknown-none with `-C relocation-model=static` and `user.ld` (xtask
//! does this). Does not: threads-safe heap beyond a spinlock, TLS, or floating point (the target
//! is soft-float, so the kernel need not save FPU state for user threads).
#![no_std]

extern crate alloc;

pub mod cpu;
pub mod image_file;
pub mod io;
pub mod shared;
pub mod storage;
pub mod sys;

/// Defines the program's entry, `keel_main`, calling `$main` (a `fn() -> i32`): the one
/// `#[no_mangle]` item, here rather than in a program that forbids unsafe code.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        #[no_mangle]
        fn keel_main() -> i32 {
            $main()
        }
    };
}

use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicU64, Ordering};

use linked_list_allocator::LockedHeap;

/// The heap's range of address space (no other mapping goes there): `HEAP_STEP` is mapped at
/// start-up, and more right after it whenever an allocation does not fit, up to `HEAP_MAX`.
/// Keel maps memory eagerly (zeroed frames), so a program pays only for the heap it uses: a
/// VM's monitor needs tens of KiB, not a fixed 8 MiB.
const HEAP_BASE: u64 = 0x0000_0800_0000_0000;
const HEAP_STEP: u64 = 64 << 10;
const HEAP_MAX: u64 = 1 << 30;

/// A linked-list heap that maps more memory at its end when it runs out.
struct GrowingHeap {
    heap: LockedHeap,
    /// Bytes mapped from HEAP_BASE (changed only with the heap's lock held).
    mapped: AtomicU64,
}

#[global_allocator]
static HEAP: GrowingHeap = GrowingHeap { heap: LockedHeap::empty(), mapped: AtomicU64::new(0) };

// SAFETY: allocation and deallocation go to linked_list_allocator's heap under its lock; growth
// (under the same lock) hands it only memory just mapped right after its end, for good.
unsafe impl GlobalAlloc for GrowingHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let mut heap = self.heap.lock();
        loop {
            if let Ok(p) = heap.allocate_first_fit(layout) {
                return p.as_ptr();
            }
            let mapped = self.mapped.load(Ordering::Relaxed);
            let want = (layout.size() as u64 + layout.align() as u64 + 64).div_ceil(4096) * 4096;
            let grow = want.max(HEAP_STEP);
            if mapped + grow > HEAP_MAX
                || sys::mem_map(HEAP_BASE + mapped, grow, keel_abi::prot::READ | keel_abi::prot::WRITE).is_err()
            {
                return core::ptr::null_mut();
            }
            self.mapped.store(mapped + grow, Ordering::Relaxed);
            // SAFETY: `grow` bytes right after the heap's end were just mapped for it alone.
            unsafe { heap.extend(grow as usize) };
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(p) = core::ptr::NonNull::new(ptr) {
            // SAFETY: the caller passes a block this allocator returned, with its layout.
            unsafe { self.heap.lock().deallocate(p, layout) };
        }
    }
}

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
    match sys::mem_map(HEAP_BASE, HEAP_STEP, keel_abi::prot::READ | keel_abi::prot::WRITE) {
        Ok(addr) => {
            HEAP.mapped.store(HEAP_STEP, Ordering::Relaxed);
            // SAFETY: the kernel just mapped this range for us, zeroed, readable and writable,
            // and nothing else uses it.
            unsafe { HEAP.heap.lock().init(addr as *mut u8, HEAP_STEP as usize) }
        }
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

//! `crashtest`: a user program that misbehaves on purpose. It logs a line, then reads through a
//! pointer to unmapped memory. The kernel must kill it and report the page fault, while vmd and
//! the rest of the system go on (tests/tests/userland.rs).
#![no_std]
#![no_main]

extern crate keel_rt;

#[no_mangle]
fn keel_main() -> i32 {
    keel_rt::io::debug(format_args!("crashtest: about to dereference 0xdead0000"));
    let bad = core::hint::black_box(0xdead_0000usize) as *const u64;
    // SAFETY: not safe at all, on purpose: this address is unmapped, and the test checks that the
    // kernel kills this process for it.
    let value = unsafe { core::ptr::read_volatile(bad) };
    keel_rt::io::debug(format_args!("crashtest: read {value:#x}: the kernel did not stop me"));
    1
}

//! `hello`: the smallest Keel test guest. It prints a greeting and its verdict on COM1 and stops
//! the VM with exit status 0 through the debug-exit port.
//!
//! Verdict: `PASS hello` (it has nothing that can fail, short of not running at all).
#![no_std]
#![no_main]

use keel_guest_rt::{exit, println, EXIT_PASS};

keel_guest_rt::entry!(run);

fn run(_ram_size: u64) -> ! {
    println!("Hello from the hello guest");
    println!("PASS hello");
    exit(EXIT_PASS)
}

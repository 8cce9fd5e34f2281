//! `fault`: triple-faults on purpose, so that the system tests can check that the VM is stopped
//! with a triple fault (shutdown) as the reason, and that the host and other VMs go on.
//!
//! It loads an IDT with base 0 and limit 0 and executes `ud2`. The #UD cannot be delivered (its
//! gate is beyond the limit), so the CPU raises #GP, which cannot be delivered either: a double
//! fault, whose gate is also beyond the limit: a triple fault, which puts the CPU in shutdown.
//! See: SDM Vol 3A 6.15 (interrupt 8, double fault: contributory exceptions, shutdown).
//!
//! It never prints `PASS`. If execution somehow continues past `ud2`, it prints
//! `FAIL fault: ...` and exits with status 1.
#![no_std]
#![no_main]

use keel_guest_rt::{cpu, exit, println, EXIT_FAIL};

keel_guest_rt::entry!(run);

fn run(_ram_size: u64) -> ! {
    println!("fault: triple-faulting now");
    // SAFETY: deliberately leaves no usable IDT: the next exception shuts the CPU down, which is
    // what this guest is for. Interrupts are disabled (start state), so only exceptions matter.
    unsafe { cpu::lidt(0, 0) };
    // SAFETY: raises #UD with the empty IDT above: the triple fault this guest exists for.
    unsafe { core::arch::asm!("ud2", options(nomem, nostack)) };
    println!("FAIL fault: execution continued after ud2 with an empty IDT");
    exit(EXIT_FAIL)
}

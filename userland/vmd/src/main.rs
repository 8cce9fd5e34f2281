//! vmd: Keel's first process. It owns the serial port (the console capability), runs the control
//! shell with vmctl's verbs, reads vm.conf from the boot modules, multiplexes VM consoles onto the
//! serial port, and shows the kernel log at the prompt while no console is attached.
//!
//! One thread, one wait point: a notification whose bits say console input arrived, the kernel
//! logged something, or a child process exited. Until guests run (next issue) each VM's console
//! is a loopback stream, so attaching and `~.` work end to end.
#![no_std]
#![no_main]
// Its unsafe needs (RDTSC, the control area's mapping, the entry symbol) are keel-rt's.
#![forbid(unsafe_code)]

extern crate alloc;

mod commands;
mod config;
mod create;
mod disks;
mod info;
mod running;
mod storage;
mod term;
mod vms;

use keel_abi::HANDLE_CONSOLE;
use keel_rt::sys;

/// Notification bits.
pub const BIT_CONSOLE: u8 = 0;
pub const BIT_KLOG: u8 = 1;
pub const BIT_CHILD: u8 = 2;
pub const BIT_VM: u8 = 3;

keel_rt::entry!(run);

fn run() -> i32 {
    let notify = match sys::notify_create() {
        Ok(n) => n,
        Err(e) => {
            keel_rt::io::debug(format_args!("vmd: cannot create a notification: {e}"));
            return 1;
        }
    };
    let setup = sys::console_bind(HANDLE_CONSOLE, notify, BIT_CONSOLE)
        .and_then(|_| sys::klog_bind(HANDLE_CONSOLE, notify, BIT_KLOG))
        .and_then(|_| sys::console_claim(HANDLE_CONSOLE));
    if let Err(e) = setup {
        keel_rt::io::debug(format_args!("vmd: cannot take the console: {e}"));
        return 1;
    }
    let mut vmd = commands::Vmd::new(notify);
    vmd.start();
    let mut input = [0u8; 256];
    loop {
        let bits = sys::notify_wait(notify, None).unwrap_or(0);
        if bits & (1 << BIT_KLOG) != 0 {
            vmd.show_new_kernel_log();
        }
        if bits & (1 << BIT_VM) != 0 {
            vmd.vm_news();
        }
        if bits & (1 << BIT_CHILD) != 0 {
            vmd.reap_children();
        }
        // Read input whatever the bits say: bytes may have arrived before the bind.
        loop {
            let n = sys::console_read(HANDLE_CONSOLE, &mut input).unwrap_or(0);
            if n == 0 {
                break;
            }
            for &byte in &input[..n] {
                vmd.input(byte);
            }
        }
        vmd.term.flush();
    }
}

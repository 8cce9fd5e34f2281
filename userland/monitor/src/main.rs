//! The monitor: one ring-3 process per VM, started by vmd. It loads the guest image into the
//! VM's RAM (docs/guests.md), runs the vCPU in a `VcpuRun` loop, and answers the exits the kernel
//! sends it (port I/O, MMIO, HLT, shutdown) with the device models of `keel-devices`. The guest's
//! UART is its console, passed to vmd through the control area's rings.
//!
//! Handles (granted by vmd at spawn, see `vmd::vms`): 1 modules (READ), 2 vmd's notification
//! (SIGNAL), 3 the control area (MAP), 4 this VM's notification from vmd (WAIT).
//!
//! Two threads: the vCPU thread runs the guest and owns all device state; the event thread waits
//! for vmd (console input, requests) and for the next timer deadline, and pokes the vCPU out of
//! the guest so the vCPU thread handles them. A guest can crash this process; it cannot reach vmd
//! or another VM (the control area is all atomics, checked on vmd's side).
#![no_std]
#![no_main]

extern crate alloc;

mod board;
mod control;
mod disks;
mod events;
mod platform;
mod ram;
mod string_io;
mod vcpu;

use keel_rt::io::debug;

/// Handles granted by vmd.
pub const H_MODULES: u32 = 1;
pub const H_VMD: u32 = 2;
pub const H_CONTROL: u32 = 3;
pub const H_FROM_VMD: u32 = 4;
/// When the VM's files are on the datastore: its storage channel (MAP), the storage service's
/// request notification (SIGNAL) and the monitor's reply notification (WAIT).
pub const H_STORAGE_CHANNEL: u32 = 5;
pub const H_STORAGE_REQUESTS: u32 = 6;
pub const H_STORAGE_REPLIES: u32 = 7;
/// vmd's notification bit for "some VM has news".
pub const VMD_BIT_VM: u64 = 1 << 3;

#[no_mangle]
fn keel_main() -> i32 {
    let ctl = match control::map() {
        Ok(c) => c,
        Err(e) => {
            debug(format_args!("monitor: no control area: {e}"));
            return 2;
        }
    };
    match vcpu::boot_and_run(ctl) {
        Ok(code) => code,
        Err(reason) => {
            ctl.stopped(255, &reason);
            let _ = keel_rt::sys::notify_signal(H_VMD, VMD_BIT_VM);
            debug(format_args!("monitor: {reason}"));
            3
        }
    }
}

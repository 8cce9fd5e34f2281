//! The event thread: waits for vmd (console input, stop/pause requests) and for the next timer
//! deadline, then wakes the vCPU thread: a notification if it is waiting in HLT, a poke if it is
//! running the guest.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use keel_rt::sys;

use crate::H_FROM_VMD;

/// Shared between the two threads.
pub static VCPU: AtomicU32 = AtomicU32::new(0);
pub static WAKE: AtomicU32 = AtomicU32::new(0);
/// Absolute time (ns) of the next device timer event, or u64::MAX.
pub static NEXT_TIMER_NS: AtomicU64 = AtomicU64::new(u64::MAX);

const STACK: u64 = 64 * 1024;
const MAX_WAIT_NS: u64 = 10_000_000;

pub fn start() -> Result<(), keel_abi::Error> {
    let stack = sys::mem_map(0, STACK, keel_abi::prot::READ | keel_abi::prot::WRITE)?;
    sys::thread_create(event_thread, stack + STACK - 8, 0).map(|_| ())
}

extern "C" fn event_thread(_arg: u64) -> ! {
    loop {
        // At most 10 ms, so a timer the vCPU thread armed since this wait began is not missed.
        let deadline = NEXT_TIMER_NS.load(Ordering::Relaxed);
        let timeout = deadline.saturating_sub(sys::clock_ns()).clamp(100_000, MAX_WAIT_NS);
        let bits = sys::notify_wait(H_FROM_VMD, Some(timeout)).unwrap_or(0);
        if bits != 0 || sys::clock_ns() >= NEXT_TIMER_NS.load(Ordering::Relaxed) {
            let _ = sys::notify_signal(WAKE.load(Ordering::Relaxed), 1);
            let _ = sys::vcpu_poke(VCPU.load(Ordering::Relaxed));
        }
    }
}

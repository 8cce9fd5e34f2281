//! Monotonic time from the TSC, calibrated against the PIT at boot (together with the APIC timer).
//!
//! Does not: handle a TSC that is not invariant (Keel assumes the constant-rate TSC every CPU with
//! VMX/SVM and EPT/NPT has); cross-CPU TSC skew is not corrected.

use core::sync::atomic::{AtomicU64, Ordering};

static TSC_HZ: AtomicU64 = AtomicU64::new(0);

pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC only reads the time-stamp counter.
    unsafe { core::arch::x86_64::_rdtsc() }
}

pub fn set_tsc_hz(hz: u64) {
    TSC_HZ.store(hz.max(1), Ordering::Relaxed);
}

/// Nanoseconds since the TSC was reset (boot).
pub fn now_ns() -> u64 {
    let hz = TSC_HZ.load(Ordering::Relaxed).max(1);
    (u128::from(rdtsc()) * 1_000_000_000 / u128::from(hz)) as u64
}

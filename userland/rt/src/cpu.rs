//! The unprivileged CPU instructions a program may use, as safe functions: the time-stamp
//! counter and the hardware random number generator.

use core::sync::atomic::{AtomicU8, Ordering};

/// The time-stamp counter (ring 3 may read it: Keel leaves CR4.TSD clear).
#[inline]
pub fn rdtsc() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: RDTSC only reads the counter into EDX:EAX; it touches no memory.
    unsafe { core::arch::asm!("rdtsc", out("eax") lo, out("edx") hi, options(nomem, nostack)) };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// The TSC ticks every CPU has spent idle (halted) since boot (the kernel's `StatsRecord`), or
/// 0 if the kernel does not say. Under QEMU's `-icount` an idle CPU's clock jumps ahead, so
/// `rdtsc` deltas minus idle deltas count only the instructions executed.
pub fn idle_tsc() -> u64 {
    use keel_abi::info::{Record, StatsRecord};
    let mut buf = [0u8; StatsRecord::SIZE];
    match crate::sys::kernel_info(keel_abi::InfoKind::Stats, &mut buf) {
        Ok(_) => StatsRecord::read(&buf).map_or(0, |s| s.idle_tsc),
        Err(_) => 0,
    }
}

/// Whether the CPU has RDRAND (CPUID.1:ECX bit 30), asked once: 0 unknown, 1 no, 2 yes.
static RDRAND: AtomicU8 = AtomicU8::new(0);

/// Whether the CPU has RDRAND (CPUID.1:ECX bit 30; asked once, then remembered).
pub fn has_rdrand() -> bool {
    match RDRAND.load(Ordering::Relaxed) {
        0 => {
            let has = core::arch::x86_64::__cpuid(1).ecx & (1 << 30) != 0;
            RDRAND.store(if has { 2 } else { 1 }, Ordering::Relaxed);
            has
        }
        known => known == 2,
    }
}

/// A random number from RDRAND, or None when the CPU has no RDRAND or it had none ready (carry
/// clear: try again).
pub fn rdrand() -> Option<u64> {
    if !has_rdrand() {
        return None;
    }
    let (value, ok): (u64, u8);
    // SAFETY: the CPU has RDRAND (checked above); it only writes the register and the flags.
    unsafe {
        core::arch::asm!("rdrand {v}", "setc {ok}", v = out(reg) value, ok = out(reg_byte) ok, options(nomem, nostack))
    };
    (ok != 0).then_some(value)
}

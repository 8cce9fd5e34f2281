//! Monotonic time from the TSC, calibrated against the PIT at boot (together with the APIC timer).
//!
//! Does not: handle a TSC that is not invariant (Keel assumes the constant-rate TSC every CPU with
//! VMX/SVM and EPT/NPT has); cross-CPU TSC skew is not corrected.

use core::sync::atomic::{AtomicU64, Ordering};

static TSC_HZ: AtomicU64 = AtomicU64::new(0);
/// Nanoseconds per TSC tick as a 32.32 fixed-point factor: `now_ns` is then one multiply and a
/// shift, not a 128-bit division (a library call of a hundred-odd instructions, and `now_ns`
/// runs on every VM exit that reaches the monitor).
static NS_PER_TICK_FP32: AtomicU64 = AtomicU64::new(0);

pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC only reads the time-stamp counter.
    unsafe { core::arch::x86_64::_rdtsc() }
}

pub fn set_tsc_hz(hz: u64) {
    let hz = hz.max(1);
    TSC_HZ.store(hz, Ordering::Relaxed);
    NS_PER_TICK_FP32
        .store(((1_000_000_000u128 << 32) / u128::from(hz)).min(u128::from(u64::MAX)) as u64, Ordering::Relaxed);
}

/// Nanoseconds since the TSC was reset (boot).
pub fn now_ns() -> u64 {
    tsc_to_ns(rdtsc())
}

/// The clock as `KernelInfo` offers it to ring 3 (which then reads it without a system call).
pub fn clock_record() -> keel_abi::info::ClockRecord {
    keel_abi::info::ClockRecord { ns_per_tick_fp32: NS_PER_TICK_FP32.load(Ordering::Relaxed) }
}

/// TSC ticks to nanoseconds. The factor's rounding (under 1 in 2^32 of a nanosecond per tick at
/// any TSC above 1 GHz) drifts by less than a millisecond a day.
pub fn tsc_to_ns(tsc: u64) -> u64 {
    clock_record().ns_at(tsc)
}

pub fn tsc_hz() -> u64 {
    TSC_HZ.load(Ordering::Relaxed)
}

/// Unix time (seconds) read from the host's CMOS RTC at boot, and the monotonic time then.
static BOOT_EPOCH: AtomicU64 = AtomicU64::new(0);
static BOOT_EPOCH_AT_NS: AtomicU64 = AtomicU64::new(0);

fn cmos(reg: u8) -> u8 {
    // SAFETY: the PC's CMOS index/data ports; reading the RTC registers has no side effects
    // (bit 7 of the index keeps NMIs masked as the firmware left them: we set it).
    unsafe { crate::arch::x86_64::instructions::outb(0x70, 0x80 | reg) };
    // SAFETY: as above.
    unsafe { crate::arch::x86_64::instructions::inb(0x71) }
}

/// Days since 1970-01-01 for a civil date. See: H. Hinnant, "chrono-Compatible Low-Level Date
/// Algorithms" (days_from_civil).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Read the RTC once (waiting out an update in progress). See: MC146818 datasheet.
pub fn read_boot_epoch() {
    let mut spins = 0;
    while cmos(0x0a) & 0x80 != 0 && spins < 1_000_000 {
        spins += 1;
        core::hint::spin_loop();
    }
    let b = cmos(0x0b);
    let bcd = |v: u8| if b & 0x04 == 0 { (v & 0x0f) + (v >> 4) * 10 } else { v };
    let sec = i64::from(bcd(cmos(0x00)));
    let min = i64::from(bcd(cmos(0x02)));
    let hour_raw = cmos(0x04);
    let mut hour = i64::from(bcd(hour_raw & 0x7f));
    if b & 0x02 == 0 && hour_raw & 0x80 != 0 {
        hour = (hour % 12) + 12; // 12-hour mode, PM
    }
    let day = i64::from(bcd(cmos(0x07)));
    let month = i64::from(bcd(cmos(0x08)));
    let year = 2000 + i64::from(bcd(cmos(0x09)));
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        log::warn!("time: the RTC holds no valid date; guests start at 1970");
        return;
    }
    let epoch = days_from_civil(year, month, day) * 86_400 + hour * 3600 + min * 60 + sec;
    BOOT_EPOCH.store(epoch.max(0) as u64, Ordering::Relaxed);
    BOOT_EPOCH_AT_NS.store(now_ns(), Ordering::Relaxed);
    log::info!("time: {year:04}-{month:02}-{day:02} {hour:02}:{min:02}:{sec:02} UTC from the RTC");
}

/// Wall-clock time (ns since the Unix epoch) when `now_ns()` was 0.
pub fn epoch_at_zero_ns() -> u64 {
    (BOOT_EPOCH.load(Ordering::Relaxed) * 1_000_000_000).saturating_sub(BOOT_EPOCH_AT_NS.load(Ordering::Relaxed))
}

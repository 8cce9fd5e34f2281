//! The local APIC in xAPIC (MMIO) mode: enable, EOI, the periodic timer, and the IPIs that start
//! application processors. Also the table of CPUs by APIC ID, with per-CPU timer tick counts.
//!
//! Does not: use x2APIC, or route device interrupts (no I/O APIC programming yet; the MADT's
//! I/O APICs are only reported). See: SDM Vol 3A chapter 12 (APIC), 12.4 (register map),
//! 12.5.4 (timer), 12.6.1 (ICR).

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use super::instructions::{rdmsr, MSR_APIC_BASE};
use super::interrupts::{SPURIOUS_VECTOR, TIMER_VECTOR};
use super::pit;

const REG_ID: u32 = 0x20;
const REG_EOI: u32 = 0xb0;
const REG_SVR: u32 = 0xf0;
const REG_ICR_LOW: u32 = 0x300;
const REG_ICR_HIGH: u32 = 0x310;
const REG_LVT_TIMER: u32 = 0x320;
const REG_TIMER_INITIAL: u32 = 0x380;
const REG_TIMER_CURRENT: u32 = 0x390;
const REG_TIMER_DIVIDE: u32 = 0x3e0;

const SVR_ENABLE: u32 = 1 << 8;
const LVT_PERIODIC: u32 = 1 << 17;
const LVT_MASKED: u32 = 1 << 16;
const DIVIDE_BY_16: u32 = 0x3;
const ICR_DELIVERY_PENDING: u32 = 1 << 12;

/// Timer frequency: 100 interrupts per second on every CPU.
pub const TIMER_HZ: u64 = 100;

pub const MAX_CPUS: usize = 64;

static BASE: AtomicU64 = AtomicU64::new(0);
static TIMER_INITIAL_COUNT: AtomicU32 = AtomicU32::new(0);

/// CPUs by index (0 = the BSP): APIC ID, online flag, timer ticks.
static APIC_IDS: [AtomicU32; MAX_CPUS] = [const { AtomicU32::new(u32::MAX) }; MAX_CPUS];
static ONLINE: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];
static TICKS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
static CPU_COUNT: AtomicUsize = AtomicUsize::new(0);

fn read(reg: u32) -> u32 {
    let base = BASE.load(Ordering::Relaxed);
    // SAFETY: BASE is the direct-map address of this CPU's APIC page (mapped uncached, set in
    // init_bsp before any read), and `reg` is one of the register offsets above (< 4 KiB, aligned).
    unsafe { core::ptr::read_volatile((base + u64::from(reg)) as *const u32) }
}

fn write(reg: u32, value: u32) {
    let base = BASE.load(Ordering::Relaxed);
    // SAFETY: as in `read`; the writes below follow the SDM's programming rules for each register.
    unsafe { core::ptr::write_volatile((base + u64::from(reg)) as *mut u32, value) }
}

/// Find the APIC (IA32_APIC_BASE), remember where it is mapped. Same address on every CPU.
pub fn init_bsp() -> u64 {
    // SAFETY: IA32_APIC_BASE exists on every CPU with an APIC (all x86-64 CPUs).
    let phys = unsafe { rdmsr(MSR_APIC_BASE) } & 0x000f_ffff_ffff_f000;
    BASE.store(crate::mm::phys_to_virt(phys), Ordering::Relaxed);
    phys
}

/// Software-enable this CPU's APIC with the spurious vector.
pub fn enable_this_cpu() {
    write(REG_SVR, SVR_ENABLE | u32::from(SPURIOUS_VECTOR));
}

pub fn id() -> u32 {
    read(REG_ID) >> 24
}

pub fn eoi() {
    write(REG_EOI, 0);
}

/// Add a CPU to the table; returns its index.
pub fn register_cpu(apic_id: u32) -> Option<usize> {
    let index = CPU_COUNT.load(Ordering::SeqCst);
    if index >= MAX_CPUS {
        return None;
    }
    APIC_IDS[index].store(apic_id, Ordering::SeqCst);
    CPU_COUNT.store(index + 1, Ordering::SeqCst);
    Some(index)
}

pub fn cpu_count() -> usize {
    CPU_COUNT.load(Ordering::SeqCst)
}

pub fn set_online(index: usize) {
    ONLINE[index].store(true, Ordering::SeqCst);
}

pub fn is_online(index: usize) -> bool {
    ONLINE[index].load(Ordering::SeqCst)
}

pub fn apic_id_of(index: usize) -> u32 {
    APIC_IDS[index].load(Ordering::SeqCst)
}

pub fn ticks_of(index: usize) -> u64 {
    TICKS[index].load(Ordering::Relaxed)
}

/// This CPU's index in the table (0 before the APIC is set up, e.g. for early exceptions).
pub fn this_cpu_index_or_zero() -> usize {
    if BASE.load(Ordering::Relaxed) == 0 {
        return 0;
    }
    let id = id();
    (0..cpu_count()).find(|&i| apic_id_of(i) == id).unwrap_or(0)
}

/// One look at the three clocks: TSC before and after, the APIC timer's and the PIT's counts
/// read in between.
#[derive(Clone, Copy)]
struct ClockSample {
    tsc: u64,
    width: u64,
    apic: u32,
    pit: u16,
}

fn clock_sample() -> ClockSample {
    let before = crate::time::rdtsc();
    let apic = read(REG_TIMER_CURRENT);
    let pit = pit::read_counter();
    let after = crate::time::rdtsc();
    ClockSample { tsc: before / 2 + after / 2, width: after - before, apic, pit }
}

/// The narrowest of a few samples: a sample stretched by an SMI, or by the emulator's thread
/// being descheduled, is wide and loses.
fn best_clock_sample() -> ClockSample {
    let mut best = clock_sample();
    for _ in 0..4 {
        let s = clock_sample();
        if s.width < best.width {
            best = s;
        }
    }
    best
}

/// Measure the APIC timer and the TSC against the PIT and remember the count for `TIMER_HZ`.
/// Returns the timer's input frequency in Hz (after the divide-by-16).
///
/// All three run freely over a 20 ms window (PIT channel 2 as a counter, not a programmed
/// wait), and each end of the window is the narrowest of a few bracketed samples, so neither
/// the cost of programming the PIT through port I/O nor a delay while sampling skews the result.
/// (A single programmed 10 ms PIT wait read the TSC 1% fast under QEMU, so Keel's clock and every
/// guest's ran 1% slow; two waits and their difference were thrown off by a busy host.)
/// See: SDM Vol 3A 12.5.4 (APIC timer), Linux arch/x86/kernel/tsc.c (the same idea).
pub fn calibrate_timer() -> u64 {
    /// 20 ms of PIT ticks.
    const WINDOW_TICKS: u16 = (pit::PIT_HZ / 50) as u16;
    write(REG_TIMER_DIVIDE, DIVIDE_BY_16);
    write(REG_LVT_TIMER, LVT_MASKED);
    write(REG_TIMER_INITIAL, u32::MAX);
    pit::start_counter();
    let start = best_clock_sample();
    while start.pit.wrapping_sub(pit::read_counter()) < WINDOW_TICKS {
        core::hint::spin_loop();
    }
    let end = best_clock_sample();
    let ticks = u64::from(start.pit.wrapping_sub(end.pit)).max(1);
    let per_second = |delta: u64| delta * pit::PIT_HZ / ticks;
    crate::time::set_tsc_hz(per_second(end.tsc - start.tsc).max(1));
    write(REG_TIMER_INITIAL, 0);
    let hz = per_second(u64::from(start.apic.saturating_sub(end.apic))).max(1);
    TIMER_INITIAL_COUNT.store((hz / TIMER_HZ).clamp(1, u64::from(u32::MAX)) as u32, Ordering::Relaxed);
    hz
}

/// Start this CPU's periodic timer at `TIMER_HZ` (after `calibrate_timer` ran on the BSP).
pub fn start_timer_this_cpu() {
    write(REG_TIMER_DIVIDE, DIVIDE_BY_16);
    write(REG_LVT_TIMER, u32::from(TIMER_VECTOR) | LVT_PERIODIC);
    write(REG_TIMER_INITIAL, TIMER_INITIAL_COUNT.load(Ordering::Relaxed));
}

/// Count the tick and acknowledge it; returns this CPU's index.
pub fn on_timer_interrupt() -> usize {
    let cpu = this_cpu_index_or_zero();
    TICKS[cpu].fetch_add(1, Ordering::Relaxed);
    eoi();
    cpu
}

fn send_ipi(apic_id: u32, command: u32) {
    write(REG_ICR_HIGH, apic_id << 24);
    write(REG_ICR_LOW, command);
    while read(REG_ICR_LOW) & ICR_DELIVERY_PENDING != 0 {
        core::hint::spin_loop();
    }
}

/// INIT, level assert. See: SDM Vol 3A 12.6.1 (delivery mode 101b).
pub fn send_init(apic_id: u32) {
    send_ipi(apic_id, 0x0000_4500);
}

/// Start-up IPI with the trampoline's page number as vector (delivery mode 110b).
pub fn send_startup(apic_id: u32, page_number: u8) {
    send_ipi(apic_id, 0x0000_4600 | u32::from(page_number));
}

//! The machine reports of `KernelInfo` (version, CPUs, memory, processes, stats) as keel-abi's
//! fixed records, and reboot.
//!
//! Does not: build text. vmd formats the records (userland/vmd/src/info.rs).

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use keel_abi::info::{cpu_flags, fixed_text, CpuRecord, MemoryRecord, Record, StatsRecord, VersionRecord};
use keel_abi::InfoKind;

use crate::arch::x86_64::{apic, instructions, pit};
use crate::{mm, virtcheck};

/// The TSC at the kernel's first instruction (boot/asm/entry.S).
static BOOT_TSC: AtomicU64 = AtomicU64::new(0);

pub fn set_boot_tsc(tsc: u64) {
    BOOT_TSC.store(tsc, Ordering::Relaxed);
}

/// TSC ticks the CPUs spent halted in their idle loops (for benchmarks: `StatsRecord`).
static IDLE_TSC: AtomicU64 = AtomicU64::new(0);

/// The TSC ticks spent idle so far, on all CPUs.
pub fn idle_tsc() -> u64 {
    IDLE_TSC.load(Ordering::Relaxed)
}

/// Halt until the next interrupt, counting the time halted as idle.
pub fn idle_halt() {
    let before = crate::time::rdtsc();
    instructions::enable_interrupts_and_halt();
    IDLE_TSC.fetch_add(crate::time::rdtsc().wrapping_sub(before), Ordering::Relaxed);
}

/// Append `record`'s bytes to `out`.
pub fn push<R: Record>(out: &mut Vec<u8>, record: &R) {
    let at = out.len();
    out.resize(at + R::SIZE, 0);
    record.write(&mut out[at..]);
}

fn version_part(s: &str) -> u32 {
    s.parse().unwrap_or(0)
}

/// The records of one report.
pub fn report(kind: InfoKind) -> Vec<u8> {
    let mut out = Vec::new();
    match kind {
        InfoKind::Version => push(
            &mut out,
            &VersionRecord {
                major: version_part(env!("CARGO_PKG_VERSION_MAJOR")),
                minor: version_part(env!("CARGO_PKG_VERSION_MINOR")),
                patch: version_part(env!("CARGO_PKG_VERSION_PATCH")),
                git_rev: fixed_text(env!("KEEL_GIT_REV")),
            },
        ),
        InfoKind::Cpus => {
            for index in 0..apic::cpu_count() {
                let online = if apic::is_online(index) { cpu_flags::ONLINE } else { 0 };
                let boot = if index == 0 { cpu_flags::BOOT } else { 0 };
                let record = CpuRecord {
                    index: index as u32,
                    apic_id: apic::apic_id_of(index),
                    flags: online | boot,
                    virt: virtcheck::verdict_of(index).map_or([0, 0], |v| v.code()),
                    ticks: apic::ticks_of(index),
                };
                push(&mut out, &record);
            }
        }
        InfoKind::Memory => {
            let s = mm::stats();
            let record = MemoryRecord {
                usable_bytes: s.usable_bytes,
                free_bytes: s.free_bytes,
                heap_size: s.heap.size as u64,
                heap_used: s.heap.used as u64,
            };
            push(&mut out, &record);
        }
        InfoKind::Processes => crate::task::process::report(&mut out),
        InfoKind::Clock => push(&mut out, &crate::time::clock_record()),
        InfoKind::Stats => {
            push(&mut out, &StatsRecord { boot_tsc: BOOT_TSC.load(Ordering::Relaxed), idle_tsc: idle_tsc() })
        }
    }
    out
}

pub fn reboot() -> ! {
    crate::println!("rebooting");
    // SAFETY: these are the PC's standard reset paths and we mean to reset: the keyboard
    // controller's pulse-reset command (0xfe to port 0x64), then the chipset reset control
    // register (port 0xcf9: full reset). See: Intel PCH datasheet (RST_CNT).
    unsafe { instructions::outb(0x64, 0xfe) };
    pit::sleep_us(100_000);
    // SAFETY: as above: the reset control register, select a full reset,
    unsafe { instructions::outb(0xcf9, 0x02) };
    // SAFETY: as above: and do it.
    unsafe { instructions::outb(0xcf9, 0x06) };
    pit::sleep_us(100_000);
    crate::println!("reboot failed: reset the machine by hand");
    instructions::halt_forever()
}

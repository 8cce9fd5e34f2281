//! The machine reports (`KernelInfo`: version, CPUs, memory, processes) and reboot, shared by the
//! syscall and the kernel's fallback prompt.

use alloc::string::String;
use core::fmt::Write;
use core::sync::atomic::{AtomicU64, Ordering};

use keel_abi::InfoKind;

use crate::arch::x86_64::{apic, instructions, pit};
use crate::{mm, virtcheck};

/// The TSC at the kernel's first instruction (boot/asm/entry.S).
static BOOT_TSC: AtomicU64 = AtomicU64::new(0);

pub fn set_boot_tsc(tsc: u64) {
    BOOT_TSC.store(tsc, Ordering::Relaxed);
}

pub fn report(kind: InfoKind) -> String {
    let mut out = String::new();
    match kind {
        InfoKind::Version => {
            let _ = writeln!(out, "{}", crate::version_line());
        }
        InfoKind::Cpus => {
            let count = apic::cpu_count();
            for index in 0..count {
                let state = if apic::is_online(index) { "online" } else { "offline" };
                let role = if index == 0 { ", boot CPU" } else { "" };
                let verdict =
                    virtcheck::verdict_of(index).map_or_else(|| "not checked".into(), |v| alloc::format!("{v}"));
                let _ = writeln!(
                    out,
                    "cpu {index}: APIC id {}, {state}{role}, timer ticks {}; {verdict}",
                    apic::apic_id_of(index),
                    apic::ticks_of(index)
                );
            }
            let _ = writeln!(out, "{count} CPUs");
        }
        InfoKind::Memory => {
            let s = mm::stats();
            let _ =
                writeln!(out, "physical memory: {} MiB usable, {} MiB free", s.usable_bytes >> 20, s.free_bytes >> 20);
            let _ = writeln!(out, "kernel heap: {} KiB used of {} KiB", s.heap.used / 1024, s.heap.size / 1024);
        }
        InfoKind::Processes => crate::task::process::report(&mut out),
        InfoKind::Stats => {
            // Exact figures for benchmarks (under QEMU's -icount the TSC counts instructions).
            let s = mm::stats();
            let _ = writeln!(out, "boot: kernel entry at tsc {}", BOOT_TSC.load(Ordering::Relaxed));
            let _ = writeln!(out, "memory: {} bytes free, kernel heap {} bytes used", s.free_bytes, s.heap.used);
        }
    }
    out
}

pub fn reboot() -> ! {
    crate::println!("rebooting");
    // SAFETY: these are the PC's standard reset paths and we mean to reset: the keyboard
    // controller's pulse-reset command (0xfe to port 0x64), then the chipset reset control
    // register (port 0xcf9: full reset). See: Intel PCH datasheet (RST_CNT).
    unsafe {
        instructions::outb(0x64, 0xfe);
        pit::sleep_us(100_000);
        instructions::outb(0xcf9, 0x02);
        instructions::outb(0xcf9, 0x06);
    }
    pit::sleep_us(100_000);
    crate::println!("reboot failed: reset the machine by hand");
    instructions::halt_forever()
}

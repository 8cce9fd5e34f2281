//! The machine reports of `version`, `cpus`, `mem` and `stats`: reads the kernel's fixed
//! `KernelInfo` records (keel-abi `info`) and formats them as text.
//!
//! Does not: report processes (the kernel's `Processes` records have no verb yet), or anything
//! vmd knows itself (`stats` adds the first prompt's TSC and the VMs' RAM in commands.rs).

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Write;

use keel_abi::info::{cpu_flags, field_text, records, CpuRecord, MemoryRecord, Record, StatsRecord, VersionRecord};
use keel_abi::{Error, InfoKind};
use keel_rt::sys;
use keel_virtcaps::Verdict;

/// The whole report of `kind`: asks again with a larger buffer if the first was short.
fn read(kind: InfoKind) -> Result<Vec<u8>, Error> {
    let mut buf = vec![0u8; 4096];
    loop {
        let (n, total) = sys::kernel_info(kind, &mut buf)?;
        if total <= buf.len() {
            buf.truncate(n);
            return Ok(buf);
        }
        buf.resize(total, 0);
    }
}

/// The first record of `kind`.
fn one<R: Record>(kind: InfoKind) -> Result<R, Error> {
    records::<R>(&read(kind)?).next().ok_or(Error::InvalidArgument)
}

fn format(kind: InfoKind, out: &mut String) -> Result<(), Error> {
    match kind {
        InfoKind::Version => {
            let v: VersionRecord = one(kind)?;
            let _ = writeln!(out, "Keel {}.{}.{} ({})", v.major, v.minor, v.patch, field_text(&v.git_rev));
        }
        InfoKind::Cpus => {
            let bytes = read(kind)?;
            for cpu in records::<CpuRecord>(&bytes) {
                let state = if cpu.flags & cpu_flags::ONLINE != 0 { "online" } else { "offline" };
                let role = if cpu.flags & cpu_flags::BOOT != 0 { ", boot CPU" } else { "" };
                let _ = write!(
                    out,
                    "cpu {}: APIC id {}, {state}{role}, timer ticks {}; ",
                    cpu.index, cpu.apic_id, cpu.ticks
                );
                let _ = match Verdict::from_code(cpu.virt) {
                    Some(verdict) => writeln!(out, "{verdict}"),
                    None if cpu.virt == [0, 0] => writeln!(out, "not checked"),
                    None => writeln!(out, "unknown virtualization code {:?}", cpu.virt),
                };
            }
            let _ = writeln!(out, "{} CPUs", bytes.len() / CpuRecord::SIZE);
        }
        InfoKind::Memory => {
            let m: MemoryRecord = one(kind)?;
            let _ =
                writeln!(out, "physical memory: {} MiB usable, {} MiB free", m.usable_bytes >> 20, m.free_bytes >> 20);
            let _ = writeln!(out, "kernel heap: {} KiB used of {} KiB", m.heap_used / 1024, m.heap_size / 1024);
        }
        InfoKind::Stats => {
            // Exact figures for benchmarks (under QEMU's -icount the TSC counts instructions).
            let s: StatsRecord = one(kind)?;
            let m: MemoryRecord = one(InfoKind::Memory)?;
            let _ = writeln!(out, "boot: kernel entry at tsc {}", s.boot_tsc);
            let _ = writeln!(out, "idle: {} tsc ticks halted", s.idle_tsc);
            let _ = writeln!(out, "memory: {} bytes free, kernel heap {} bytes used", m.free_bytes, m.heap_used);
        }
        InfoKind::Processes | InfoKind::Clock => return Err(Error::NotSupported),
    }
    Ok(())
}

/// The text of one report, or the line saying why there is none.
pub fn report(kind: InfoKind) -> String {
    let mut out = String::new();
    if let Err(e) = format(kind, &mut out) {
        out.clear();
        let _ = writeln!(out, "vmd: kernel info: {e}");
    }
    out
}

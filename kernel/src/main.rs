//! Keel's kernel: entered from the multiboot2 boot stub (boot/asm/entry.S) in long mode, in the
//! upper half. Brings up memory, descriptor tables, the APICs and every CPU, checks what hardware
//! virtualization each core offers, and starts `vmd`, the ring-3 supervisor and shell (an image
//! without vmd says so and halts: ring 0 has no shell of its own).
//!
//! Kernel command line (from grub.cfg): `log=off|error|warn|info|debug|trace` sets the log level;
//! `qemu-exit` makes a fatal error exit QEMU with a failure status (isa-debug-exit at port 0xf4)
//! instead of halting; `fault-test=ud|pf` raises that exception once booted, to check that the
//! exception path reports it.
#![no_std]
#![no_main]

extern crate alloc;

mod acpi;
mod arch;
mod hw;
mod info;
mod klog;
mod logger;
mod mm;
mod objects;
mod serial;
mod task;
mod time;
mod virt;
mod virtcheck;

use core::sync::atomic::{AtomicBool, Ordering};

use arch::x86_64::{apic, gdt, idt, instructions, interrupts, ioapic, pic, smp};
use keel_bootinfo::{cmdline, BootInfo, BOOTLOADER_MAGIC};

core::arch::global_asm!(include_str!("../../boot/asm/entry.S"), options(att_syntax));

static QEMU_EXIT_ON_FATAL: AtomicBool = AtomicBool::new(false);

pub fn version_line() -> &'static str {
    concat!("Keel ", env!("CARGO_PKG_VERSION"), " (", env!("KEEL_GIT_REV"), ")")
}

#[no_mangle]
extern "C" fn kernel_main(magic: u32, mbi_phys: u32, boot_tsc: u64) -> ! {
    info::set_boot_tsc(boot_tsc);
    serial::init();
    idt::load();
    println!("\n{} starting", version_line());
    if magic != BOOTLOADER_MAGIC {
        fatal(format_args!("not started by a multiboot2 boot loader (magic {magic:#x})"));
    }
    // SAFETY: GRUB passed the MBI address in EBX; the frame allocator reserves it in mm::init.
    let mbi = unsafe { mm::boot_info_bytes(mbi_phys) };
    let info = match BootInfo::parse(mbi) {
        Ok(info) => info,
        Err(e) => fatal(format_args!("{e}")),
    };
    let cmdline = info.command_line();
    QEMU_EXIT_ON_FATAL.store(cmdline::has_flag(cmdline, "qemu-exit"), Ordering::Relaxed);
    logger::init(cmdline);
    log::info!("boot: {} with command line '{}'", info.bootloader_name(), cmdline);

    if let Err(e) = mm::init(&info, u64::from(mbi_phys)) {
        fatal(format_args!("memory: {e}"));
    }
    let tss = gdt::init_this_cpu();
    task::percpu::init_this_cpu(0, tss);
    task::syscall::init_this_cpu();
    for module in info.modules() {
        let name = module.cmdline.split_ascii_whitespace().next().unwrap_or("");
        log::info!("module '{name}': {} bytes at {:#x}", module.end.saturating_sub(module.start), module.start);
        objects::MODULES.lock().push(objects::BootModule {
            name: alloc::string::String::from(name),
            start: module.start,
            end: module.end,
        });
    }

    pic::remap_and_mask();
    let rsdp = info.rsdp().map(|r| u64::from(mbi_phys) + r.offset as u64);
    let platform = match acpi::discover(rsdp) {
        Ok(p) => Some(p),
        Err(e) => {
            log::warn!("acpi: {e}; starting only the boot CPU");
            None
        }
    };
    let apic_phys = apic::init_bsp();
    if let Some(p) = &platform {
        hw::init(p, apic_phys);
    }
    apic::register_cpu(apic::id());
    apic::enable_this_cpu();
    let timer_hz = apic::calibrate_timer();
    time::read_boot_epoch();
    apic::start_timer_this_cpu();
    if let Some(p) = &platform {
        for io in &p.io_apics {
            log::info!("acpi: I/O APIC {} at {:#x}, GSI base {}", io.id, io.address, io.gsi_base);
        }
        log::info!(
            "acpi: {} CPUs in the MADT, local APIC at {apic_phys:#x}, timer {} MHz",
            p.apic_ids.len(),
            timer_hz / 1_000_000
        );
    }
    let boot_verdict = virtcheck::check_and_record(0);
    log::info!("cpu 0: online (APIC id {}, boot CPU)", apic::id());
    apic::set_online(0);
    if let Some(p) = &platform {
        smp::start_application_processors(&p.apic_ids);
    }
    let online = (0..apic::cpu_count()).filter(|&i| apic::is_online(i)).count();
    let verdicts = virtcheck::all_verdicts(apic::cpu_count());
    log::info!("cpus: {online} online");
    log::info!("virt: {}", keel_virtcaps::Summary { verdicts: &verdicts });
    virt::init(boot_verdict);
    if cmdline::has_flag(cmdline, "cpuid-dump") {
        virt::dump_cpuid();
    }

    match cmdline::value(cmdline, "fault-test") {
        Some("ud") => {
            // SAFETY: deliberately raises #UD to test the exception report; it does not return.
            unsafe { core::arch::asm!("ud2") }
        }
        Some("pf") => {
            // SAFETY: deliberately reads an unmapped lower-half address to test the #PF report.
            unsafe { core::ptr::read_volatile(0x0000_dead_0000 as *const u64) };
        }
        Some(other) => log::warn!("fault-test={other}: unknown (use ud or pf)"),
        None => {}
    }
    if let Some(p) = &platform {
        route_serial_interrupt(p);
    }
    start_vmd()
}

/// COM1 input arrives as ISA IRQ 4 (or the GSI an override names) on the boot CPU.
fn route_serial_interrupt(p: &acpi::Platform) {
    let (gsi, flags) = p.irq_overrides.iter().find(|o| o.irq == 4).map_or((4, 0), |o| (o.gsi, o.flags));
    hw::reserve_gsi(gsi);
    if let Some(io) = p.io_apics.iter().find(|io| gsi >= io.gsi_base && gsi < io.gsi_base + 24) {
        ioapic::route(u64::from(io.address), io.gsi_base, gsi, interrupts::SERIAL_VECTOR, apic::id(), flags);
    } else {
        log::warn!("serial: no I/O APIC for GSI {gsi}; console input is polled");
    }
}

/// Start `vmd` from the boot modules with the console, the modules and the machine; then the boot
/// CPU becomes the scheduler's idle loop. Without vmd there is nothing to talk to: say why, halt.
fn start_vmd() -> ! {
    use keel_abi::Rights;
    use task::caps::{Capability, Object};
    if objects::module_bytes(b"vmd").is_none() {
        fatal(format_args!(
            "no 'vmd' boot module: vmd is Keel's shell and supervisor, and the kernel has no other; \
             build an image that carries it (cargo xtask image)"
        ));
    }
    let caps = alloc::vec![
        Capability { object: Object::Console, rights: Rights::READ.union(Rights::WRITE) },
        Capability { object: Object::Modules, rights: Rights::READ.union(Rights::SPAWN).union(Rights::GRANT) },
        Capability { object: Object::System, rights: Rights::REBOOT },
        Capability { object: Object::Hardware, rights: Rights::DEVICE.union(Rights::GRANT) },
    ];
    if let Err(e) = task::process::spawn("vmd", caps, None) {
        fatal(format_args!("cannot start vmd: {e}; the kernel has no shell of its own"));
    }
    task::scheduler::run_idle()
}

fn fatal(args: core::fmt::Arguments) -> ! {
    use core::fmt::Write;
    let mut out = serial::panic_writer();
    let _ = write!(out, "\r\n!!! keel: fatal: {args}\r\n");
    stop_after_fatal_error(&mut out)
}

/// The end of every fatal path: say so, then exit QEMU (test builds) or halt this CPU.
pub fn stop_after_fatal_error(out: &mut serial::PanicWriter) -> ! {
    use core::fmt::Write;
    let _ = write!(out, "system halted\r\n");
    if QEMU_EXIT_ON_FATAL.load(Ordering::Relaxed) {
        // SAFETY: `qemu-exit` on the command line says QEMU's isa-debug-exit device is at 0xf4;
        // writing 1 makes QEMU exit with status 3 (failure).
        unsafe { instructions::outb(0xf4, 1) };
    }
    instructions::halt_forever()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    use core::fmt::Write;
    let mut out = serial::panic_writer();
    let _ = write!(out, "\r\n!!! kernel panic on cpu {}: {info}\r\n", apic::this_cpu_index_or_zero());
    stop_after_fatal_error(&mut out)
}

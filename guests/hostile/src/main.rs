//! `hostile`: attacks the hypervisor from inside the VM and reports every finding on COM1.
//!
//! In order (each module's doc says what it expects and why):
//! 1. [`insns`]: every virtualization instruction (SVM, VMX, SMX, MONITOR/MWAIT) gives #UD;
//!    INVD is harmless; CR4.VMXE is #GP; XSETBV with invalid values is #GP.
//! 2. [`msrs`]: EFER tricks (SVME, LME while paging, reserved bits, LMA), VM_HSAVE_PA, VM_CR,
//!    IA32_FEATURE_CONTROL, the VMX capability MSRs, APIC base relocation, non-canonical
//!    SYSCALL/SYSENTER/segment-base MSRs, PAT, the paravirtual clock MSRs pointed outside RAM,
//!    machine-level MSRs (microcode, SMM, memory map, x2APIC, ...), random MSRs.
//! 3. [`cpuidcheck`]: the CPUID leaves against each other, the XSAVE layout rules and
//!    instructions, and the MSRs the features imply (MTRRs included); then [`cpuidfuzz`]:
//!    pseudo-random CPUID leaves and subleaves.
//! 4. [`mmio`]: the test register and unclaimed MMIO at every size and offset, straddling
//!    registers, page ends and the end of RAM, and read-modify-write and `rep stos` forms.
//! 5. [`memory`]: guest-physical memory past RAM through its own page tables (the start state
//!    maps only 4 GiB): every 2 MiB up to 64 GiB (or the physical address width), every 4 KiB
//!    in the first 16 MiB past RAM, chosen addresses up to the top of the address space, a page
//!    table outside RAM, an address beyond the physical address width.
//! 6. [`storm`]: 1,000,000 `out` exits to an unclaimed port (the system test checks that
//!    another guest and the shell stay responsive meanwhile), then `in` from it.
//! 7. [`apic`]: garbage in every local APIC, I/O APIC and PIC register, timers at full speed,
//!    self-IPI storms and illegal vectors with interrupts disabled; then a look at what arrives
//!    with them enabled (only what was asked for).
//!
//! With less than 16 MiB of RAM (`QUICK_BELOW`) it runs a quick variant for slow emulators
//! (Bochs): fewer random CPUID leaves and MSRs, memory every 2 MiB up to 4 GiB and then every
//! 256 MiB to 64 GiB, every 4 KiB in the first 1 MiB past RAM, and a storm of 100,000 exits.
//!
//! String port I/O is in the `hostile_io` guest; a triple fault through a bad IDT is the `fault`
//! guest.
//!
//! Verdict: `PASS hostile`, or `FAIL hostile: <first failed check>`.
#![no_std]
#![no_main]

mod access;
mod apic;
mod cpuidcheck;
mod cpuidfuzz;
mod group;
mod insns;
mod memory;
mod mmio;
mod msrs;
mod rng;
mod storm;
mod trap;
mod window;

use keel_guest_rt::check::Checks;

keel_guest_rt::entry!(run);

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
/// RAM below this selects the quick variant.
const QUICK_BELOW: u64 = 16 * MIB;
/// How far the 2 MiB sweep goes (capped by the physical address width).
const SWEEP_END: u64 = 64 * GIB;

struct Plan {
    cpuid: u32,
    msrs: u32,
    /// End of the dense 2 MiB sweep past RAM; beyond it, every `sparse_step` to SWEEP_END.
    dense_end: u64,
    sparse_step: u64,
    /// Bytes past RAM swept every 4 KiB.
    fine: u64,
    storm: u64,
    storm_chunks: u64,
}

fn run(ram_size: u64) -> ! {
    let mut c = Checks::new("hostile");
    let quick = ram_size < QUICK_BELOW;
    let ram_end = ram_size & !0xFFF;
    let phys_top = 1u64 << memory::phys_bits().min(52);
    let sweep_end = SWEEP_END.min(phys_top);
    let plan = if quick {
        Plan {
            cpuid: 2000,
            msrs: 500,
            dense_end: 4 * GIB,
            sparse_step: 256 * MIB,
            fine: MIB,
            storm: 100_000,
            storm_chunks: 5,
        }
    } else {
        Plan {
            cpuid: 20_000,
            msrs: 3000,
            dense_end: sweep_end,
            sparse_step: GIB,
            fine: 16 * MIB,
            storm: 1_000_000,
            storm_chunks: 5,
        }
    };
    c.note(format_args!(
        "RAM {} MiB ({}), guest physical address width {} bits",
        ram_size / MIB,
        if quick { "quick variant" } else { "full variant" },
        memory::phys_bits()
    ));
    trap::install();
    window::init();
    let mut rng = rng::Rng::new(0x686F_7374_696C_6521);

    c.note(format_args!("1. virtualization instructions, CR4.VMXE, XSETBV"));
    insns::virtualization_instructions(&mut c);
    insns::cr4_vmxe(&mut c);
    insns::xsetbv_values(&mut c);

    c.note(format_args!("2. MSRs"));
    msrs::efer(&mut c);
    msrs::virtualization_msrs(&mut c);
    msrs::apic_base(&mut c);
    msrs::canonical(&mut c);
    msrs::paravirtual_clock(&mut c, ram_size);
    msrs::dangerous(&mut c);
    msrs::random(&mut c, &mut rng, plan.msrs);

    c.note(format_args!("3. CPUID"));
    cpuidcheck::xsave(&mut c);
    cpuidcheck::implied_msrs(&mut c);
    cpuidcheck::sizes_and_topology(&mut c);
    cpuidfuzz::fuzz(&mut c, &mut rng, plan.cpuid);

    c.note(format_args!("4. MMIO"));
    mmio::test_register(&mut c);
    mmio::unclaimed(&mut c);
    mmio::straddle_ram_end(&mut c, ram_size);
    mmio::forms(&mut c);

    c.note(format_args!("5. memory past RAM (ends at {ram_end:#x})"));
    let start = ram_end.div_ceil(2 * MIB) * (2 * MIB);
    let dense_end = plan.dense_end.min(sweep_end);
    let t = memory::sweep(&c, start, dense_end, 2 * MIB, if quick { 0 } else { 16 * GIB });
    memory::report(&mut c, format_args!("every 2 MiB from {start:#x} to {dense_end:#x}"), &t);
    if dense_end < sweep_end {
        let t = memory::sweep(&c, dense_end, sweep_end, plan.sparse_step, 0);
        memory::report(
            &mut c,
            format_args!("every {} MiB from {dense_end:#x} to {sweep_end:#x}", plan.sparse_step / MIB),
            &t,
        );
    }
    let t = memory::sweep(&c, ram_end, ram_end + plan.fine, 4096, 0);
    memory::report(&mut c, format_args!("every 4 KiB from {ram_end:#x} to {:#x}", ram_end + plan.fine), &t);
    let mut points = [0u64; 8];
    let mut n = 0;
    for gpa in [0xB000_0000, 0xF000_0000, 0xFFFF_F000, (1 << 40) - 4096, 1 << 40, phys_top - 4096, phys_top - 8] {
        if gpa >= ram_end && gpa < phys_top {
            points[n] = gpa;
            n += 1;
        }
    }
    let t = memory::points(&c, &points[..n]);
    memory::report(&mut c, format_args!("{n} chosen addresses up to the top of the physical address space"), &t);
    memory::table_outside_ram(&mut c, ram_end + 8 * MIB);
    memory::beyond_phys_bits(&mut c);

    c.note(format_args!("6. exit storm"));
    storm::run(&mut c, plan.storm, plan.storm_chunks);

    c.note(format_args!("7. interrupt controllers"));
    apic::garbage(&mut c, &mut rng, if quick { 512 } else { 4096 });
    apic::clean_up(&mut c);
    apic::controlled_timer(&mut c, 1 << 34);

    c.finish()
}

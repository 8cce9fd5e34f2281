//! The Intel VMX backend: VMXON on the boot CPU, one VMCS per vCPU with EPT and "unrestricted
//! guest" (so real mode and flat protected mode without paging run natively), the VMLAUNCH /
//! VMRESUME loop (enter.S) and the exits VMX reports. It mirrors the SVM backend (svm/).
//! See: SDM Vol 3C chapters 24-29 and Appendix A.
//!
//! Exits: host interrupts and NMIs (pin-based controls), HLT, all port I/O (unconditional I/O
//! exiting), all MSRs (no MSR bitmaps), CPUID, XSETBV, INVD, GETSEC and the VMX instructions (these
//! always exit), MONITOR/MWAIT, CR8 accesses (there is no TPR shadow: the guest must never reach
//! the host's TPR), and guest writes to the CR0/CR4 bits VMX pins (CR0.NE, CR4.VMXE: the guest
//! sees its own values through the read shadows). Guest-physical accesses outside RAM come back
//! as EPT violations. A host interrupt stays pending across the exit ("acknowledge interrupt on
//! exit" off) and is taken in the `sti; nop; cli` window after it, as with SVM.
//!
//! MSRs: EFER, PAT, SYSENTER, FS/GS base are switched by the VMCS. STAR, LSTAR, CSTAR, SFMASK and
//! KERNEL_GS_BASE are not: the guest's copies are loaded when `run_until_monitor` starts and the
//! host's put back when it returns or reschedules. Nothing in the kernel uses them in between
//! (interrupts taken in ring 0 do not SWAPGS; only SYSCALL and the return to ring 3 do).
//!
//! TLB: each vCPU has its own VPID (when the CPU offers VPIDs). INVEPT (single-context where
//! supported) before the first entry and whenever the VM's mappings changed (`Vm::generation`)
//! or the kernel changed the guest's paging registers itself.
//!
//! Scope: the boot CPU only (like the SVM backend): one current VMCS, switched with VMPTRLD
//! when another vCPU ran in between.

mod insn;

use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use spin::Once;

use keel_abi::vcpu::{seg, ExitKind, Segment, VcpuState, INJECT_EXCEPTION, INJECT_INTERRUPT, INJECT_NMI};
use keel_hv::msr::GuestMsr;
use keel_hv::vmx::{
    self as hv, entry_ctl, exit_ctl, field, interruptibility, intr, msr, pin, proc, proc2, reason, CrAccess, CrShadow,
};
use keel_hv::VmExit;

use super::{fpu, Vcpu, Vm};
use crate::arch::x86_64::gdt;
use crate::arch::x86_64::instructions::{rdmsr, rdmsr_safe, read_cr3, wrmsr};
use crate::mm;

core::arch::global_asm!(include_str!("enter.S"));

extern "C" {
    fn vmx_enter(regs: *mut GuestRegs, launched: u64) -> u64;
    fn vmx_exit_host_rip();
}

const MSR_FS_BASE: u32 = 0xc000_0100;
const MSR_GS_BASE: u32 = 0xc000_0101;
const MSR_KERNEL_GS_BASE: u32 = 0xc000_0102;
const MSR_PAT: u32 = 0x277;
/// STAR, LSTAR, CSTAR, SFMASK, KERNEL_GS_BASE: the MSRs VMX does not switch.
const SYSCALL_MSRS: [u32; 5] = [0xc000_0081, 0xc000_0082, 0xc000_0083, 0xc000_0084, MSR_KERNEL_GS_BASE];
const KERNEL_GS_SLOT: usize = 4;

const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;
const CR0_TS: u64 = 1 << 3;
const CR0_NW: u64 = 1 << 29;
const CR0_CD: u64 = 1 << 30;
const CR4_PAE: u64 = 1 << 5;
const RFLAGS_IF: u64 = 1 << 9;
const DEFAULT_PAT: u64 = 0x0007_0406_0007_0406;

/// What enable_this_cpu settled: the control values, CR fixed bits and INVEPT kind.
struct Caps {
    revision: u32,
    /// IA32_VMX_BASIC bit 48: VMX structures must lie below 4 GiB.
    below_4g: bool,
    pin: u32,
    proc: u32,
    proc2: u32,
    exit: u32,
    entry: u32,
    cr0: CrShadow,
    cr4: CrShadow,
    invept: u64,
}

/// The host state that does not change while Keel runs. See: SDM Vol 3C 25.5.
struct HostState {
    cr0: u64,
    cr4: u64,
    tr_selector: u16,
    tr_base: u64,
    gdtr_base: u64,
    idtr_base: u64,
    sysenter: [u64; 3],
    efer: u64,
    pat: u64,
}

/// The boot CPU's VMX state: its VMXON region stays reserved while VMX is on (for good).
struct VmxCpu {
    _vmxon_region: mm::Frame,
    caps: Caps,
    host: HostState,
}

static CPU: Once<VmxCpu> = Once::new();
/// The physical address of this CPU's current VMCS (0: none).
static CURRENT_VMCS: AtomicU64 = AtomicU64::new(0);
static NEXT_VPID: AtomicU32 = AtomicU32::new(0);
static WRITE_FAILURE_LOGGED: AtomicBool = AtomicBool::new(false);

/// Read a field of the current VMCS.
fn read(f: u32) -> u64 {
    debug_assert!(CPU.get().is_some());
    // SAFETY: this module only runs VMX code once enable_this_cpu succeeded (VMXON on the boot
    // CPU, the only CPU that runs vCPUs); without a current VMCS VMREAD fails harmlessly.
    unsafe { insn::vmread(f) }
}

/// Write a field of the current VMCS (a failure is logged once: it means a field this CPU lacks).
fn write(f: u32, value: u64) {
    // SAFETY: as in `read`; the host-state fields only ever get the values of HostState and
    // write_host_per_run, which describe the running kernel.
    if unsafe { insn::vmwrite(f, value) }.is_err() && !WRITE_FAILURE_LOGGED.swap(true, Ordering::Relaxed) {
        // SAFETY: as above.
        let error = unsafe { insn::vmread(field::VM_INSTRUCTION_ERROR) };
        log::warn!("vmx: VMWRITE of field {f:#x} failed ({})", hv::instruction_error_name(error));
    }
}

fn read_cr0() -> u64 {
    let v: u64;
    // SAFETY: reading CR0 has no side effects.
    unsafe { core::arch::asm!("mov {}, cr0", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

fn read_cr4() -> u64 {
    let v: u64;
    // SAFETY: reading CR4 has no side effects.
    unsafe { core::arch::asm!("mov {}, cr4", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// A control value against its capability MSR (the TRUE one where IA32_VMX_BASIC bit 55 says
/// so). See: SDM Vol 3C A.2.
fn controls(what: &'static str, want: u32, optional: u32, cap: u64) -> Result<u32, &'static str> {
    hv::adjust_controls(want, optional, cap).map_err(|missing| {
        log::warn!("vmx: {what} controls lack {missing:#x}");
        "the CPU lacks a VMX control Keel needs"
    })
}

fn capabilities(basic: u64) -> Result<Caps, &'static str> {
    let read_msr = |m: u32| rdmsr_safe(m).ok_or("a VMX capability MSR cannot be read");
    let true_ctls = basic & msr::BASIC_TRUE_CONTROLS != 0;
    let pick = |plain: u32, true_msr: u32| if true_ctls { true_msr } else { plain };
    let pin = controls(
        "pin-based",
        pin::EXTERNAL_INTERRUPT_EXITING | pin::NMI_EXITING,
        0,
        read_msr(pick(msr::PINBASED_CTLS, msr::TRUE_PINBASED_CTLS))?,
    )?;
    let proc_cap = read_msr(pick(msr::PROCBASED_CTLS, msr::TRUE_PROCBASED_CTLS))?;
    let proc = controls(
        "processor-based",
        proc::HLT_EXITING
            | proc::UNCONDITIONAL_IO_EXITING
            | proc::CR8_LOAD_EXITING
            | proc::CR8_STORE_EXITING
            | proc::SECONDARY_CONTROLS,
        proc::MWAIT_EXITING | proc::MONITOR_EXITING,
        proc_cap,
    )?;
    if (proc_cap >> 32) as u32 & proc::INTERRUPT_WINDOW_EXITING == 0 {
        return Err("the CPU has no interrupt-window exiting");
    }
    if proc & (proc::USE_MSR_BITMAPS | proc::USE_IO_BITMAPS | proc::USE_TPR_SHADOW | proc::INTERRUPT_WINDOW_EXITING)
        != 0
    {
        return Err("the CPU forces a VMX control Keel cannot use");
    }
    let proc2 = controls(
        "secondary",
        proc2::ENABLE_EPT | proc2::UNRESTRICTED_GUEST,
        proc2::ENABLE_VPID | proc2::ENABLE_RDTSCP | proc2::ENABLE_INVPCID,
        read_msr(msr::PROCBASED_CTLS2)?,
    )?;
    let exit = controls(
        "VM-exit",
        exit_ctl::HOST_ADDRESS_SPACE_SIZE
            | exit_ctl::SAVE_EFER
            | exit_ctl::LOAD_EFER
            | exit_ctl::SAVE_PAT
            | exit_ctl::LOAD_PAT,
        exit_ctl::SAVE_DEBUG_CONTROLS,
        read_msr(pick(msr::EXIT_CTLS, msr::TRUE_EXIT_CTLS))?,
    )?;
    if exit & exit_ctl::ACKNOWLEDGE_INTERRUPT != 0 {
        return Err("the CPU forces 'acknowledge interrupt on exit'");
    }
    let entry_cap = read_msr(pick(msr::ENTRY_CTLS, msr::TRUE_ENTRY_CTLS))?;
    // Debug controls: the guest's DR7 and IA32_DEBUGCTL survive exits (a VM exit always sets the
    // host's DR7 to 0x400 and clears IA32_DEBUGCTL). See: SDM Vol 3C 28.3.1, 28.5.1.
    let entry =
        controls("VM-entry", entry_ctl::LOAD_EFER | entry_ctl::LOAD_PAT, entry_ctl::LOAD_DEBUG_CONTROLS, entry_cap)?;
    if (entry_cap >> 32) as u32 & entry_ctl::IA32E_MODE_GUEST == 0 {
        return Err("the CPU cannot enter IA-32e mode guests");
    }
    let ept = read_msr(msr::EPT_VPID_CAP)?;
    let invept = if ept & msr::EPT_INVEPT_SINGLE != 0 {
        insn::INVEPT_SINGLE_CONTEXT
    } else if ept & msr::EPT_INVEPT_ALL != 0 {
        insn::INVEPT_ALL_CONTEXT
    } else {
        return Err("the CPU has no usable INVEPT type");
    };
    Ok(Caps {
        revision: msr::basic_revision(basic),
        below_4g: basic & msr::BASIC_ADDRESSES_32BIT != 0,
        pin,
        proc,
        proc2,
        exit,
        entry: entry & !entry_ctl::IA32E_MODE_GUEST,
        cr0: CrShadow::cr0_unrestricted(read_msr(msr::CR0_FIXED0)?, read_msr(msr::CR0_FIXED1)?),
        cr4: CrShadow::cr4(read_msr(msr::CR4_FIXED0)?, read_msr(msr::CR4_FIXED1)?),
        invept,
    })
}

/// (GDTR base, IDTR base) of this CPU.
fn descriptor_table_bases() -> (u64, u64) {
    let mut gdtr = [0u8; 10];
    let mut idtr = [0u8; 10];
    // SAFETY: SGDT/SIDT store 10 bytes (limit, base) into the buffers and change nothing else.
    unsafe {
        core::arch::asm!("sgdt [{}]", in(reg) gdtr.as_mut_ptr(), options(nostack, preserves_flags));
        core::arch::asm!("sidt [{}]", in(reg) idtr.as_mut_ptr(), options(nostack, preserves_flags));
    }
    let base = |t: &[u8; 10]| u64::from_le_bytes(t[2..10].try_into().expect("8 bytes"));
    (base(&gdtr), base(&idtr))
}

/// The host state, read from this CPU. See: SDM Vol 3C 25.5, 27.2.3 (checks on host state).
fn capture_host_state() -> Result<HostState, &'static str> {
    let (gdtr_base, idtr_base) = descriptor_table_bases();
    let tr: u16;
    // SAFETY: STR only reads the task register's selector.
    unsafe { core::arch::asm!("str {:x}", out(reg) tr, options(nomem, nostack, preserves_flags)) };
    if tr == 0 || tr & 7 != 0 {
        return Err("no TSS is loaded (VMX host state needs TR)");
    }
    // The 16-byte TSS descriptor: base 15:0 and 23:16 and 31:24 in the low quadword, 63:32 in the
    // high one. See: SDM Vol 3A 8.2.3 (TSS descriptor in 64-bit mode).
    // SAFETY: the GDT was built by gdt::init_this_cpu and lives forever; TR indexes a TSS
    // descriptor in it (loaded by LTR, which checked it).
    let (lo, hi) = unsafe {
        let entry = (gdtr_base + u64::from(tr)) as *const u64;
        (core::ptr::read_volatile(entry), core::ptr::read_volatile(entry.add(1)))
    };
    let tr_base = ((lo >> 16) & 0xff_ffff) | (((lo >> 56) & 0xff) << 24) | ((hi & 0xffff_ffff) << 32);
    // SAFETY: the SYSENTER MSRs, EFER and PAT exist on every x86-64 CPU; reads have no effects.
    let (sysenter, efer, pat) = unsafe {
        ([rdmsr(0x174), rdmsr(0x175), rdmsr(0x176)], rdmsr(crate::arch::x86_64::instructions::MSR_EFER), rdmsr(MSR_PAT))
    };
    Ok(HostState {
        cr0: read_cr0(),
        cr4: read_cr4(),
        tr_selector: tr,
        tr_base,
        gdtr_base,
        idtr_base,
        sysenter,
        efer,
        pat,
    })
}

/// Turn on VMX on this CPU (the boot CPU): IA32_FEATURE_CONTROL, the CR0/CR4 fixed bits, CR4.VMXE,
/// VMXON. See: SDM Vol 3C 24.7 (enabling and entering VMX operation), 24.8 (fixed bits), A.1.
pub fn enable_this_cpu() -> Result<(), &'static str> {
    if CPU.get().is_some() {
        return Ok(());
    }
    let basic = rdmsr_safe(msr::BASIC).ok_or("IA32_VMX_BASIC cannot be read")?;
    if msr::basic_region_size(basic) > 4096 || msr::basic_region_size(basic) == 0 {
        return Err("the VMCS region size is not supported");
    }
    let fc = rdmsr_safe(msr::FEATURE_CONTROL).ok_or("IA32_FEATURE_CONTROL cannot be read")?;
    if fc & msr::FEATURE_CONTROL_LOCK == 0 {
        // SAFETY: the MSR is unlocked, so the write is allowed; it only enables VMXON outside SMX
        // and locks the register until reset, as firmware normally does.
        unsafe { wrmsr(msr::FEATURE_CONTROL, fc | msr::FEATURE_CONTROL_LOCK | msr::FEATURE_CONTROL_VMX_OUTSIDE_SMX) };
    } else if fc & msr::FEATURE_CONTROL_VMX_OUTSIDE_SMX == 0 {
        return Err("VMX is disabled by the firmware (IA32_FEATURE_CONTROL locked)");
    }
    let caps = capabilities(basic)?;
    let host = capture_host_state()?;
    // The fixed bits: CR0 PE/PG/NE and CR4.VMXE in practice (the kernel runs with PE and PG). A
    // bit VMX forbids is an error rather than silently dropped.
    let cr0 = read_cr0() | caps.cr0.must_be_one;
    let cr4 = read_cr4() | caps.cr4.must_be_one | hv::CR4_VMXE;
    if cr0 & !caps.cr0.may_be_one != 0 || cr4 & !caps.cr4.may_be_one != 0 {
        return Err("the kernel's CR0/CR4 have bits VMX operation forbids");
    }
    let region = alloc_vmx_page(&caps).ok_or("no memory for the VMXON region")?;
    // SAFETY: CR0/CR4 only gain bits the VMX fixed-bit MSRs require (NE, VMXE: no effect on the
    // kernel, which uses no x87 exceptions); IA32_FEATURE_CONTROL allows VMXON (checked above);
    // the region is a fresh page with the revision, kept for as long as VMX is on (forever).
    let result = unsafe {
        core::arch::asm!("mov cr0, {}", in(reg) cr0, options(nostack));
        core::arch::asm!("mov cr4, {}", in(reg) cr4, options(nostack));
        insn::vmxon(region.phys())
    };
    if result.is_err() {
        return Err("VMXON failed");
    }
    let host = HostState { cr0: read_cr0(), cr4: read_cr4(), ..host };
    log::info!(
        "vmx: VMXON on the boot CPU (VMCS revision {:#x}, {}TRUE controls, VPID {}, unrestricted guest)",
        caps.revision,
        if basic & msr::BASIC_TRUE_CONTROLS != 0 { "" } else { "no " },
        if caps.proc2 & proc2::ENABLE_VPID != 0 { "on" } else { "off" },
    );
    CPU.call_once(|| VmxCpu { _vmxon_region: region, caps, host });
    Ok(())
}

/// A zeroed page for a VMX structure with the VMCS revision identifier in its first 4 bytes.
/// See: SDM Vol 3C 25.2 (VMCS format), 24.11.5 (VMXON region).
fn alloc_vmx_page(caps: &Caps) -> Option<mm::Frame> {
    let frame = if caps.below_4g { mm::Frame::zeroed_below(1 << 32)? } else { mm::Frame::zeroed()? };
    // SAFETY: the frame was just allocated (zeroed) for this structure alone and is mapped by
    // the direct map.
    unsafe { core::ptr::write(frame.virt() as *mut u32, caps.revision) };
    Some(frame)
}

/// The guest's registers VMX does not keep in the VMCS (enter.S's layout).
#[repr(C)]
#[derive(Clone, Copy)]
struct GuestRegs {
    gprs: [u64; 16],
    cr2: u64,
}

/// An event to inject at the next VM entry: interruption information, error code, instruction
/// length. See: SDM Vol 3C 25.8.3.
#[derive(Clone, Copy)]
struct Event {
    info: u32,
    error_code: u32,
    length: u32,
}

pub struct VmxVcpu {
    vmcs: mm::Frame,
    launched: bool,
    regs: GuestRegs,
    fpu: Arc<fpu::FpuArea>,
    xcr0: u64,
    msrs: super::MsrShadow,
    /// The guest's STAR, LSTAR, CSTAR, SFMASK, KERNEL_GS_BASE (SYSCALL_MSRS order).
    syscall_msrs: [u64; 5],
    /// The host's syscall MSRs while the guest's are loaded (run_until_monitor).
    host_syscall_msrs: [u64; 5],
    /// The last exit's reason field, for the log and the monitor.
    exit_reason: u32,
    /// The guest's CR8 (TPR): kept, not acted on (the monitor's PIC decides interrupts).
    cr8: u64,
    eptp: u64,
    /// Mapping generation of the VM at the last INVEPT.
    generation: u32,
    /// The kernel changed guest paging registers itself: INVEPT before the next entry.
    flush: bool,
    /// Reload the PDPTE fields from guest memory before the next entry (PAE paging).
    reload_pdptes: bool,
    /// The primary processor-based controls now in the VMCS (interrupt-window exiting toggles).
    proc: u32,
    /// The VM-entry controls now in the VMCS (IA-32e mode guest follows EFER.LMA).
    entry: u32,
    event: Option<Event>,
}

/// What this backend lets a guest execute that CPUID may then show: RDTSCP/RDPID and INVPCID
/// need their secondary controls (#UD otherwise). See: SDM Vol 3C 25.6.2.
pub fn guest_caps() -> keel_hv::guest_cpu::features::BackendCaps {
    let c = caps();
    keel_hv::guest_cpu::features::BackendCaps {
        rdtscp: c.proc2 & proc2::ENABLE_RDTSCP != 0,
        invpcid: c.proc2 & proc2::ENABLE_INVPCID != 0,
    }
}

fn caps() -> &'static Caps {
    &CPU.get().expect("a VmxVcpu exists only with VMX on").caps
}

impl VmxVcpu {
    pub fn new(vm: &Vm) -> Result<Self, keel_abi::Error> {
        let cpu = CPU.get().ok_or(keel_abi::Error::NotSupported)?;
        // Owned frames: an error below frees what was already allocated.
        let vmcs_frame = alloc_vmx_page(&cpu.caps).ok_or(keel_abi::Error::NoMemory)?;
        let fpu = fpu::FpuArea::new().ok_or(keel_abi::Error::NoMemory)?;
        // EPTP: write-back paging structures, 4-level walk (3 = levels - 1 in bits 5:3), no
        // accessed/dirty flags. See: SDM Vol 3C 25.6.11.
        let eptp = vm.nested_root() | 6 | (3 << 3);
        let mut vcpu = VmxVcpu {
            vmcs: vmcs_frame,
            launched: false,
            regs: GuestRegs { gprs: [0; 16], cr2: 0 },
            fpu,
            xcr0: 1,
            msrs: super::MsrShadow::new(),
            syscall_msrs: [0; 5],
            host_syscall_msrs: [0; 5],
            exit_reason: 0,
            cr8: 0,
            eptp,
            generation: u32::MAX,
            flush: true,
            reload_pdptes: false,
            proc: cpu.caps.proc,
            entry: cpu.caps.entry,
            event: None,
        };
        // SAFETY: VMX is on (CPU is set); the frame is a fresh VMCS region owned by this vCPU.
        if unsafe { insn::vmclear(vcpu.vmcs.phys()) }.is_err() || !vcpu.make_current() {
            // Drop frees the page.
            return Err(keel_abi::Error::NotSupported);
        }
        vcpu.init_vmcs(cpu);
        Ok(vcpu)
    }

    /// Make this vCPU's VMCS the current one (another vCPU may have run since).
    fn make_current(&self) -> bool {
        if CURRENT_VMCS.load(Ordering::Relaxed) == self.vmcs.phys() {
            return true;
        }
        // SAFETY: VMX is on (a VmxVcpu exists); the VMCS region belongs to this vCPU and stays
        // allocated until Drop, which VMCLEARs it first.
        match unsafe { insn::vmptrld(self.vmcs.phys()) } {
            Ok(()) => {
                CURRENT_VMCS.store(self.vmcs.phys(), Ordering::Relaxed);
                true
            }
            Err(e) => {
                log::warn!("vmx: VMPTRLD failed ({e:?})");
                false
            }
        }
    }

    /// Controls, host state and the x86 reset state (until the monitor writes one).
    fn init_vmcs(&mut self, cpu: &VmxCpu) {
        let (c, h) = (&cpu.caps, &cpu.host);
        let vpid = if c.proc2 & proc2::ENABLE_VPID != 0 {
            // Nonzero (VPID 0 is the host's). See: SDM Vol 3C 29.1.
            1 + u64::from(NEXT_VPID.fetch_add(1, Ordering::Relaxed) % 0xffff)
        } else {
            0
        };
        write(field::VPID, vpid);
        write(field::PIN_BASED_CONTROLS, u64::from(c.pin));
        write(field::PROCESSOR_BASED_CONTROLS, u64::from(self.proc));
        write(field::SECONDARY_CONTROLS, u64::from(c.proc2));
        write(field::EXIT_CONTROLS, u64::from(c.exit));
        write(field::ENTRY_CONTROLS, u64::from(self.entry));
        write(field::EXCEPTION_BITMAP, 0);
        write(field::CR3_TARGET_COUNT, 0);
        write(field::EXIT_MSR_STORE_COUNT, 0);
        write(field::EXIT_MSR_LOAD_COUNT, 0);
        write(field::ENTRY_MSR_LOAD_COUNT, 0);
        write(field::ENTRY_INTERRUPTION_INFO, 0);
        write(field::EPT_POINTER, self.eptp);
        write(field::CR0_GUEST_HOST_MASK, c.cr0.mask());
        write(field::CR4_GUEST_HOST_MASK, c.cr4.mask());

        // Host state. See: SDM Vol 3C 25.5, 28.5 (what a VM exit loads).
        write(field::HOST_CS_SELECTOR, u64::from(gdt::KERNEL_CODE));
        for f in [field::HOST_SS_SELECTOR, field::HOST_DS_SELECTOR, field::HOST_ES_SELECTOR] {
            write(f, u64::from(gdt::KERNEL_DATA));
        }
        write(field::HOST_FS_SELECTOR, 0);
        write(field::HOST_GS_SELECTOR, 0);
        write(field::HOST_TR_SELECTOR, u64::from(h.tr_selector));
        write(field::HOST_CR0, h.cr0);
        write(field::HOST_CR4, h.cr4);
        write(field::HOST_TR_BASE, h.tr_base);
        write(field::HOST_GDTR_BASE, h.gdtr_base);
        write(field::HOST_IDTR_BASE, h.idtr_base);
        write(field::HOST_SYSENTER_CS, h.sysenter[0]);
        write(field::HOST_SYSENTER_ESP, h.sysenter[1]);
        write(field::HOST_SYSENTER_EIP, h.sysenter[2]);
        write(field::HOST_IA32_EFER, h.efer);
        write(field::HOST_IA32_PAT, h.pat);
        write(field::HOST_RIP, vmx_exit_host_rip as *const () as u64);
        self.write_host_per_run();

        // Guest: the x86 reset state. See: SDM Vol 3A 10.1.1 (Table 10-1), Vol 3C 25.4.
        self.set_cr0(0x6000_0010);
        self.set_cr4(0);
        write(field::GUEST_CR3, 0);
        write(field::GUEST_IA32_EFER, 0);
        write(field::GUEST_IA32_PAT, DEFAULT_PAT);
        write(field::GUEST_IA32_DEBUGCTL, 0);
        write(field::GUEST_DR7, 0x400);
        write(field::GUEST_RFLAGS, 2);
        write(field::GUEST_RIP, 0xfff0);
        write(field::GUEST_RSP, 0);
        let data = Segment { selector: 0, attrib: 0x93, limit: 0xffff, base: 0 };
        for s in [seg::ES, seg::SS, seg::DS, seg::FS, seg::GS] {
            set_segment(s, &data);
        }
        set_segment(seg::CS, &Segment { selector: 0xf000, attrib: 0x9b, limit: 0xffff, base: 0xffff_0000 });
        set_segment(seg::LDTR, &Segment { selector: 0, attrib: 0x82, limit: 0xffff, base: 0 });
        set_segment(seg::TR, &Segment { selector: 0, attrib: 0x8b, limit: 0xffff, base: 0 });
        write(field::GUEST_GDTR_BASE, 0);
        write(field::GUEST_GDTR_LIMIT, 0xffff);
        write(field::GUEST_IDTR_BASE, 0);
        write(field::GUEST_IDTR_LIMIT, 0xffff);
        write(field::GUEST_SYSENTER_CS, 0);
        write(field::GUEST_SYSENTER_ESP, 0);
        write(field::GUEST_SYSENTER_EIP, 0);
        write(field::VMCS_LINK_POINTER, u64::MAX);
        write(field::GUEST_ACTIVITY_STATE, 0);
        write(field::GUEST_INTERRUPTIBILITY, 0);
        write(field::GUEST_PENDING_DEBUG, 0);
        for i in 0..4 {
            write(field::GUEST_PDPTE0 + 2 * i, 0);
        }
    }

    /// The host state that belongs to the calling thread: its address space and FS/GS bases.
    fn write_host_per_run(&self) {
        write(field::HOST_CR3, read_cr3());
        // SAFETY: FS_BASE and GS_BASE exist on every x86-64 CPU; reading them has no effects.
        let (fs, gs) = unsafe { (rdmsr(MSR_FS_BASE), rdmsr(MSR_GS_BASE)) };
        write(field::HOST_FS_BASE, fs);
        write(field::HOST_GS_BASE, gs);
    }

    /// CR0 as the guest sets it: the real register keeps what VMX needs, the shadow shows the rest.
    fn set_cr0(&mut self, value: u64) {
        let c = caps();
        write(field::CR0_READ_SHADOW, value);
        write(field::GUEST_CR0, c.cr0.real(value));
    }

    fn set_cr4(&mut self, value: u64) {
        let c = caps();
        write(field::CR4_READ_SHADOW, value);
        write(field::GUEST_CR4, c.cr4.real(value));
    }

    fn cr0(&self) -> u64 {
        caps().cr0.visible(read(field::GUEST_CR0), read(field::CR0_READ_SHADOW))
    }

    fn cr4(&self) -> u64 {
        caps().cr4.visible(read(field::GUEST_CR4), read(field::CR4_READ_SHADOW))
    }

    fn gpr(&self, index: u8) -> u64 {
        match usize::from(index) {
            4 => read(field::GUEST_RSP),
            i => self.regs.gprs[i & 15],
        }
    }

    fn set_gpr(&mut self, index: u8, value: u64) {
        match usize::from(index) {
            4 => write(field::GUEST_RSP, value),
            i => self.regs.gprs[i & 15] = value,
        }
    }

    /// Load what the monitor changed (its `dirty` bits) into the VMCS.
    pub fn apply(&mut self, st: &VcpuState) {
        use keel_abi::vcpu::dirty;
        if !self.make_current() {
            return;
        }
        let d = st.dirty;
        if d & dirty::GPRS != 0 {
            self.regs.gprs = st.gprs;
            write(field::GUEST_RSP, st.gprs[4]);
        }
        if d & dirty::RIP != 0 {
            write(field::GUEST_RIP, st.rip);
            // The instruction under a STI/MOV SS shadow is done (the monitor emulated it).
            self.clear_interrupt_shadow();
        }
        if d & dirty::RFLAGS != 0 {
            // Reserved bits: bit 1 set, bits 3, 5, 15, 22-63 clear (VM is settled below, once
            // CR0 and EFER are in). See: SDM Vol 1 3.4.3.
            let rflags = (st.rflags & 0x003f_7fd5) | 2;
            write(field::GUEST_RFLAGS, rflags);
            if rflags & RFLAGS_IF == 0 {
                // Blocking by STI needs IF = 1. See: SDM Vol 3C 27.3.1.5.
                let i = read(field::GUEST_INTERRUPTIBILITY) as u32;
                write(field::GUEST_INTERRUPTIBILITY, u64::from(i & !interruptibility::BLOCKING_BY_STI));
            }
        }
        if d & dirty::EFER != 0 {
            // SCE, LME, LMA, NXE: the rest is reserved (VM entry checks it).
            write(field::GUEST_IA32_EFER, st.efer & ((1 << 0) | EFER_LME | EFER_LMA | (1 << 11)));
            self.reload_pdptes = true;
        }
        if d & dirty::CRS != 0 {
            self.set_cr0(st.cr0);
            self.set_cr4(st.cr4);
            self.regs.cr2 = st.cr2;
            write(field::GUEST_CR3, st.cr3);
            self.flush = true;
            self.reload_pdptes = true;
        }
        if d & dirty::SEGS != 0 {
            for (i, s) in st.segs.iter().enumerate() {
                set_segment(i, s);
            }
        }
        if d & dirty::TABLES != 0 {
            write(field::GUEST_GDTR_BASE, st.gdtr.base);
            write(field::GUEST_GDTR_LIMIT, u64::from(st.gdtr.limit));
            write(field::GUEST_IDTR_BASE, st.idtr.base);
            write(field::GUEST_IDTR_LIMIT, u64::from(st.idtr.limit));
        }
        if d & (dirty::RFLAGS | dirty::CRS | dirty::EFER) != 0 {
            // RFLAGS.VM must be 0 in real mode and IA-32e mode (no CPU can be in either with
            // it set). The real CR0 holds the guest's PE (unrestricted guest). See: SDM Vol 3C
            // 27.3.1.4.
            let protected = read(field::GUEST_CR0) & hv::CR0_PE != 0;
            let ia32e = read(field::GUEST_IA32_EFER) & EFER_LMA != 0;
            let rflags = read(field::GUEST_RFLAGS);
            let fixed = hv::entry_rflags(rflags, protected, ia32e);
            if fixed != rflags {
                write(field::GUEST_RFLAGS, fixed);
            }
        }
    }

    /// Copy the guest state into the monitor's page.
    /// Write the registers (GPRs, RIP, RFLAGS, interruptible) straight into the shared state
    /// page (see the SVM backend's `store_registers`).
    ///
    /// # Safety
    /// `page` is this vCPU's state page: mapped, aligned, VcpuState-sized, not referenced.
    pub unsafe fn store_registers(&mut self, page: *mut VcpuState) {
        use core::ptr::write_volatile;
        if !self.make_current() {
            return;
        }
        let mut gprs = self.regs.gprs;
        gprs[4] = read(field::GUEST_RSP);
        let interruptible = u32::from(self.interruptible_now());
        // SAFETY: per the contract, each field is written through a raw pointer (the monitor may
        // read or write the page concurrently; plain integers, no reference is formed).
        unsafe {
            write_volatile(&raw mut (*page).gprs, gprs);
            write_volatile(&raw mut (*page).rip, read(field::GUEST_RIP));
            write_volatile(&raw mut (*page).rflags, read(field::GUEST_RFLAGS));
            write_volatile(&raw mut (*page).interruptible, interruptible);
        }
    }

    pub fn export(&mut self, st: &mut VcpuState, system: bool) {
        if !self.make_current() {
            return;
        }
        st.gprs = self.regs.gprs;
        st.gprs[4] = read(field::GUEST_RSP);
        st.rip = read(field::GUEST_RIP);
        st.rflags = read(field::GUEST_RFLAGS);
        st.interruptible = u32::from(self.interruptible_now());
        if !system {
            return;
        }
        st.cr0 = self.cr0();
        st.cr2 = self.regs.cr2;
        st.cr3 = read(field::GUEST_CR3);
        st.cr4 = self.cr4();
        st.efer = read(field::GUEST_IA32_EFER);
        for (i, s) in st.segs.iter_mut().enumerate() {
            *s = Segment {
                selector: read(field::guest_selector(i)) as u16,
                attrib: hv::attributes(read(field::guest_access_rights(i)) as u32),
                limit: read(field::guest_limit(i)) as u32,
                base: read(field::guest_base(i)),
            };
        }
        st.gdtr = keel_abi::vcpu::Table {
            base: read(field::GUEST_GDTR_BASE),
            limit: read(field::GUEST_GDTR_LIMIT) as u16,
            _pad: [0; 3],
        };
        st.idtr = keel_abi::vcpu::Table {
            base: read(field::GUEST_IDTR_BASE),
            limit: read(field::GUEST_IDTR_LIMIT) as u16,
            _pad: [0; 3],
        };
    }

    /// RFLAGS.IF set and no STI/MOV SS shadow.
    fn interruptible_now(&self) -> bool {
        let shadow = interruptibility::BLOCKING_BY_STI | interruptibility::BLOCKING_BY_MOV_SS;
        read(field::GUEST_RFLAGS) & RFLAGS_IF != 0 && read(field::GUEST_INTERRUPTIBILITY) as u32 & shadow == 0
    }

    fn interruptible(&self) -> bool {
        self.event.is_none() && self.interruptible_now()
    }

    fn clear_interrupt_shadow(&mut self) {
        let shadow = interruptibility::BLOCKING_BY_STI | interruptibility::BLOCKING_BY_MOV_SS;
        let i = read(field::GUEST_INTERRUPTIBILITY) as u32;
        if i & shadow != 0 {
            write(field::GUEST_INTERRUPTIBILITY, u64::from(i & !shadow));
        }
    }

    /// A hardware exception at the next entry. Real mode (CR0.PE = 0) pushes no error code.
    /// See: SDM Vol 3C 27.2.1.3 (checks on the VM-entry event-injection fields).
    fn inject_exception(&mut self, vector: u8, error_code: Option<u32>) {
        let mut info = u32::from(vector) | intr::TYPE_HARDWARE_EXCEPTION | intr::VALID;
        let protected = read(field::GUEST_CR0) & hv::CR0_PE != 0;
        let error_code = error_code.filter(|_| protected && matches!(vector, 8 | 10..=14 | 17));
        if error_code.is_some() {
            info |= intr::DELIVER_ERROR_CODE;
        }
        self.event = Some(Event { info, error_code: error_code.unwrap_or(0), length: 0 });
    }

    /// Deliver the monitor's pending event if the guest can take it now; otherwise ask for an
    /// exit when it can (interrupt-window exiting). See: SDM Vol 3C 25.6.2, 27.6 (event
    /// injection), 27.7.5 (interrupt-window exiting).
    fn prepare_injection(&mut self, vcpu: &Vcpu) {
        let req = vcpu.inject_request();
        let mut window = false;
        if req.pending != 0 {
            if self.event.is_none() && (req.kind != INJECT_INTERRUPT || self.interruptible()) {
                match req.kind {
                    INJECT_EXCEPTION => {
                        self.inject_exception(req.vector & 31, (req.has_error_code != 0).then_some(req.error_code))
                    }
                    INJECT_NMI => {
                        self.event = Some(Event { info: 2 | intr::TYPE_NMI | intr::VALID, error_code: 0, length: 0 })
                    }
                    _ => {
                        let info = u32::from(req.vector) | intr::TYPE_EXTERNAL | intr::VALID;
                        self.event = Some(Event { info, error_code: 0, length: 0 });
                    }
                }
                vcpu.clear_inject();
            } else {
                window = true;
            }
        }
        let wanted = if window { caps().proc | proc::INTERRUPT_WINDOW_EXITING } else { caps().proc };
        if wanted != self.proc {
            self.proc = wanted;
            write(field::PROCESSOR_BASED_CONTROLS, u64::from(wanted));
        }
    }

    /// The PDPTE fields for PAE paging outside long mode: with EPT, VM entry loads the guest's
    /// PDPTEs from the VMCS, so they must follow CR3 when the kernel or the monitor sets it.
    /// See: SDM Vol 3C 27.3.2.4, Vol 3A 5.4.1.
    fn load_pdptes(&mut self, vm: &Vm) {
        let (cr0, cr4, efer) = (read(field::GUEST_CR0), read(field::GUEST_CR4), read(field::GUEST_IA32_EFER));
        if cr0 & hv::CR0_PG != 0 && cr4 & CR4_PAE != 0 && efer & EFER_LMA == 0 {
            let base = read(field::GUEST_CR3) & 0xffff_ffe0;
            for i in 0..4u32 {
                let entry = vm.read_guest_u64(base + 8 * u64::from(i)).unwrap_or(0);
                write(field::GUEST_PDPTE0 + 2 * i, entry);
            }
        }
    }

    /// One VMLAUNCH/VMRESUME with interrupts off, then let pending host interrupts in. Ok: the
    /// exit reason; Err: the instruction failed (the VM-instruction error, or u64::MAX).
    fn enter(&mut self, vm: &Vm) -> Result<u32, u64> {
        if self.reload_pdptes {
            self.reload_pdptes = false;
            self.load_pdptes(vm);
        }
        let generation = vm.generation.load(Ordering::SeqCst);
        if generation != self.generation || self.flush {
            self.generation = generation;
            self.flush = false;
            // SAFETY: VMX is on; the INVEPT type is one the CPU reports (capabilities()); the EPTP
            // is this VM's. See: SDM Vol 3C 29.4.3.
            if unsafe { insn::invept(caps().invept, self.eptp) }.is_err() {
                log::warn!("vmx: INVEPT failed");
            }
        }
        // IA-32e mode guest follows EFER.LMA (saved at every exit). See: SDM Vol 3C 27.3.1.1.
        let lma = read(field::GUEST_IA32_EFER) & EFER_LMA != 0;
        let entry = if lma { caps().entry | entry_ctl::IA32E_MODE_GUEST } else { caps().entry };
        if entry != self.entry {
            self.entry = entry;
            write(field::ENTRY_CONTROLS, u64::from(entry));
        }
        // The valid bit of this field is cleared by every VM exit. See: SDM Vol 3C 25.8.3.
        match self.event.take() {
            Some(e) => {
                write(field::ENTRY_EXCEPTION_ERROR_CODE, u64::from(e.error_code));
                write(field::ENTRY_INSTRUCTION_LENGTH, u64::from(e.length));
                write(field::ENTRY_INTERRUPTION_INFO, u64::from(e.info));
            }
            None => write(field::ENTRY_INTERRUPTION_INFO, 0),
        }
        self.fpu.activate(self.xcr0);
        self.msrs.activate_tsc_aux();
        // SAFETY: this vCPU's VMCS is current (make_current at the loop's top) with valid host
        // state (init_vmcs, write_host_per_run; HOST_RSP is set by vmx_enter itself); vmx_enter
        // saves and restores every register the ABI needs and VM exit reloads the host's control
        // and segment registers, EFER and PAT; the unswitched syscall MSRs hold the guest's
        // values until run_until_monitor puts the host's back. Interrupts are off (IF = 0) until
        // the `sti; nop; cli` window, which lets a pending host interrupt be handled.
        let status = unsafe {
            core::arch::asm!("cli", options(nomem, nostack));
            let status = vmx_enter(&mut self.regs, u64::from(self.launched));
            core::arch::asm!("sti", "nop", "cli", options(nomem, nostack));
            status
        };
        match status {
            0 => {}
            1 => return Err(u64::MAX),
            _ => return Err(read(field::VM_INSTRUCTION_ERROR)),
        }
        let exit_reason = read(field::EXIT_REASON) as u32;
        if exit_reason & (1 << 31) == 0 {
            self.launched = true;
        }
        // Re-deliver an event the exit interrupted. See: SDM Vol 3C 28.2.4, 27.6.1.
        if let Some((info, needs_length)) = intr::reinjection(read(field::IDT_VECTORING_INFO) as u32) {
            let error_code =
                if info & intr::DELIVER_ERROR_CODE != 0 { read(field::IDT_VECTORING_ERROR_CODE) as u32 } else { 0 };
            let length = if needs_length { read(field::EXIT_INSTRUCTION_LENGTH) as u32 } else { 0 };
            self.event = Some(Event { info, error_code, length });
        }
        Ok(exit_reason)
    }

    /// Step over the instruction that exited (its length is in the VMCS).
    fn skip(&mut self) {
        let len = read(field::EXIT_INSTRUCTION_LENGTH);
        write(field::GUEST_RIP, read(field::GUEST_RIP).wrapping_add(len));
        self.clear_interrupt_shadow();
    }

    /// Guest MOV to CR0 (or CLTS/LMSW) that touched a bit VMX pins. `Err`: #GP.
    /// See: SDM Vol 2A MOV to control registers (#GP conditions), Vol 3A 10.8.5 (IA-32e mode).
    fn write_cr0(&mut self, value: u64) -> Result<(), ()> {
        if value >> 32 != 0
            || (value & hv::CR0_PG != 0 && value & hv::CR0_PE == 0)
            || (value & CR0_NW != 0 && value & CR0_CD == 0)
        {
            return Err(());
        }
        let old = self.cr0();
        let mut efer = read(field::GUEST_IA32_EFER);
        if value & hv::CR0_PG != 0 && old & hv::CR0_PG == 0 && efer & EFER_LME != 0 {
            if self.cr4() & CR4_PAE == 0 {
                return Err(());
            }
            efer |= EFER_LMA;
        }
        if value & hv::CR0_PG == 0 {
            efer &= !EFER_LMA;
        }
        write(field::GUEST_IA32_EFER, efer);
        self.set_cr0(value);
        self.flush = true;
        self.reload_pdptes = true;
        Ok(())
    }

    fn write_cr4(&mut self, value: u64) -> Result<(), ()> {
        let allowed = caps().cr4.may_be_one & !hv::CR4_VMXE;
        let long = read(field::GUEST_IA32_EFER) & EFER_LMA != 0;
        if value & !allowed != 0 || (long && value & CR4_PAE == 0) {
            return Err(());
        }
        self.set_cr4(value);
        self.flush = true;
        self.reload_pdptes = true;
        Ok(())
    }

    /// A control-register access that exited. `Err`: #GP. See: SDM Vol 3C 26.1.3 (which CR
    /// accesses exit), 28.2.1 (Table 28-3).
    fn cr_access(&mut self, qualification: u64) -> Result<(), ()> {
        match hv::decode_cr_access(qualification) {
            CrAccess::MovTo { cr: 0, gpr } => self.write_cr0(self.gpr(gpr))?,
            CrAccess::MovTo { cr: 4, gpr } => self.write_cr4(self.gpr(gpr))?,
            CrAccess::MovTo { cr: 3, gpr } => {
                // Bit 63 (PCID "no flush") is not part of CR3; flushing anyway is correct.
                write(field::GUEST_CR3, self.gpr(gpr) & !(1 << 63));
                self.flush = true;
                self.reload_pdptes = true;
            }
            CrAccess::MovTo { cr: 8, gpr } => {
                let value = self.gpr(gpr);
                if value > 15 {
                    return Err(());
                }
                self.cr8 = value;
            }
            CrAccess::MovFrom { cr: 3, gpr } => self.set_gpr(gpr, read(field::GUEST_CR3)),
            CrAccess::MovFrom { cr: 8, gpr } => self.set_gpr(gpr, self.cr8),
            CrAccess::Clts => self.write_cr0(self.cr0() & !CR0_TS)?,
            CrAccess::Lmsw { source } => {
                // LMSW sets PE, MP, EM, TS; it can set PE but not clear it.
                let old = self.cr0();
                self.write_cr0((old & !0xf) | u64::from(source & 0xf) | (old & hv::CR0_PE))?;
            }
            _ => return Err(()),
        }
        self.skip();
        Ok(())
    }

    /// Load the guest's syscall MSRs; returns the host's. See the module doc.
    ///
    /// # Safety
    /// The host values must be put back (`restore_host_syscall_msrs`) before this thread returns
    /// to ring 3 or switches threads.
    unsafe fn load_guest_syscall_msrs(&self) -> [u64; 5] {
        let mut host = [0; 5];
        for (i, &m) in SYSCALL_MSRS.iter().enumerate() {
            // SAFETY: architectural MSRs; the guest values passed keel_hv::msr::check_write
            // (canonical addresses, SFMASK 32 bits) or are the initial zeros; the caller restores
            // the host's before anything depends on them.
            unsafe {
                host[i] = rdmsr(m);
                wrmsr(m, self.syscall_msrs[i]);
            }
        }
        host
    }

    /// Put the host's syscall MSRs back, keeping the guest's KERNEL_GS_BASE (SWAPGS changes it).
    ///
    /// # Safety
    /// `host` must be what `load_guest_syscall_msrs` returned on this thread.
    unsafe fn restore_host_syscall_msrs(&mut self, host: &[u64; 5]) {
        // SAFETY: reading KERNEL_GS_BASE has no effect; writing back the values read from this
        // CPU before restores the host exactly.
        unsafe {
            self.syscall_msrs[KERNEL_GS_SLOT] = rdmsr(MSR_KERNEL_GS_BASE);
            for (i, &m) in SYSCALL_MSRS.iter().enumerate() {
                wrmsr(m, host[i]);
            }
        }
    }

    /// The run loop (exit.rs, shared with SVM), between loading the guest's syscall MSRs and
    /// putting the host's back: kernel exits handled, the first that needs the monitor returned.
    pub fn run_until_monitor(&mut self, vcpu: &Vcpu, st: &mut VcpuState) -> ExitKind {
        if !self.make_current() {
            st.exit.detail = u64::MAX;
            return ExitKind::InvalidState;
        }
        self.write_host_per_run();
        // SAFETY: restored below on every path out of this function (and around reschedule).
        self.host_syscall_msrs = unsafe { self.load_guest_syscall_msrs() };
        let kind = super::exit::run_until_monitor(self, vcpu, st);
        let host = self.host_syscall_msrs;
        // SAFETY: `host` is what load_guest_syscall_msrs returned (possibly re-read after a
        // reschedule) on this thread.
        unsafe { self.restore_host_syscall_msrs(&host) };
        kind
    }
}

impl super::exit::Backend for VmxVcpu {
    type Msrs<'a> = VmcsMsrs<'a>;

    fn gpr(&self, index: usize) -> u64 {
        VmxVcpu::gpr(self, index as u8)
    }

    fn set_gpr(&mut self, index: usize, value: u64) {
        VmxVcpu::set_gpr(self, index as u8, value)
    }

    fn rflags(&self) -> u64 {
        read(field::GUEST_RFLAGS)
    }

    fn cr0(&self) -> u64 {
        VmxVcpu::cr0(self)
    }

    fn cr4(&self) -> u64 {
        VmxVcpu::cr4(self)
    }

    fn efer(&self) -> u64 {
        read(field::GUEST_IA32_EFER)
    }

    /// The CPU reports the length (VM-exit instruction length): `len` is not needed.
    fn skip(&mut self, _len: u64) {
        VmxVcpu::skip(self)
    }

    fn skip_io(&mut self, _next_rip: Option<u64>) {
        VmxVcpu::skip(self)
    }

    fn inject_exception(&mut self, vector: u8, error_code: Option<u32>) {
        VmxVcpu::inject_exception(self, vector, error_code)
    }

    fn code_view(&self) -> super::CodeView {
        super::CodeView {
            cr0: VmxVcpu::cr0(self),
            cr3: read(field::GUEST_CR3),
            cr4: VmxVcpu::cr4(self),
            efer: read(field::GUEST_IA32_EFER),
            cs_base: read(field::guest_base(seg::CS)),
            cs_attrib: hv::attributes(read(field::guest_access_rights(seg::CS)) as u32),
            rip: read(field::GUEST_RIP),
        }
    }

    fn xcr0_mut(&mut self) -> &mut u64 {
        &mut self.xcr0
    }

    fn msrs(&mut self) -> (VmcsMsrs<'_>, &mut super::MsrShadow) {
        (VmcsMsrs { syscall: &mut self.syscall_msrs }, &mut self.msrs)
    }

    fn export(&mut self, st: &mut VcpuState, system: bool) {
        VmxVcpu::export(self, st, system)
    }

    fn prepare_injection(&mut self, vcpu: &Vcpu) {
        VmxVcpu::prepare_injection(self, vcpu)
    }

    fn enter(&mut self, vcpu: &Vcpu, st: &mut VcpuState) -> Result<VmExit, ExitKind> {
        let exit_reason = match VmxVcpu::enter(self, &vcpu.vm) {
            Ok(r) => r,
            Err(error) => {
                log::warn!(
                    "vmx: vm {}: VM entry failed: {} ({error:#x})",
                    vcpu.vm.id,
                    hv::instruction_error_name(error)
                );
                st.exit.detail = error;
                return Err(ExitKind::InvalidState);
            }
        };
        self.exit_reason = exit_reason;
        let qualification = read(field::EXIT_QUALIFICATION);
        let gpa = if exit_reason & 0xffff == reason::EPT_VIOLATION { read(field::GUEST_PHYSICAL_ADDRESS) } else { 0 };
        Ok(hv::decode(exit_reason, qualification, gpa))
    }

    /// The host's syscall MSRs go back before another thread runs and the guest's come back
    /// after; another vCPU may have made its VMCS current meanwhile.
    fn reschedule(&mut self, st: &mut VcpuState) -> Result<(), ExitKind> {
        let host = self.host_syscall_msrs;
        // SAFETY: `host` is what load_guest_syscall_msrs returned on this thread.
        unsafe { self.restore_host_syscall_msrs(&host) };
        crate::task::scheduler::reschedule();
        // SAFETY: as in run_until_monitor.
        self.host_syscall_msrs = unsafe { self.load_guest_syscall_msrs() };
        if !self.make_current() {
            st.exit.detail = u64::MAX;
            return Err(ExitKind::InvalidState);
        }
        Ok(())
    }

    fn vendor_exit(&mut self, vcpu: &Vcpu, exit: VmExit, st: &mut VcpuState) -> Option<ExitKind> {
        match exit {
            VmExit::ControlRegister { qualification } => {
                if self.cr_access(qualification).is_err() {
                    VmxVcpu::inject_exception(self, 13, Some(0));
                }
                None
            }
            // A host NMI (NMI exiting). Keel has no NMI sources of its own: nothing to do.
            VmExit::ExceptionOrNmi
                if read(field::EXIT_INTERRUPTION_INFO) as u32 & intr::TYPE_MASK == intr::TYPE_NMI =>
            {
                None
            }
            VmExit::InvalidState => {
                log::warn!(
                    "vmx: vm {}: the CPU refused the guest state (exit reason {:#x}, qualification {:#x})",
                    vcpu.vm.id,
                    self.exit_reason,
                    read(field::EXIT_QUALIFICATION)
                );
                log_guest_state(vcpu.vm.id);
                st.exit.detail = u64::from(self.exit_reason);
                Some(ExitKind::InvalidState)
            }
            _ => {
                st.exit.detail = u64::from(self.exit_reason & 0xffff);
                Some(ExitKind::Unhandled)
            }
        }
    }
}

/// The guest-state fields VM entry checks most, for the log after an entry failure (the CPU
/// does not say which check failed). See: SDM Vol 3C 27.3.1, 27.8.
fn log_guest_state(vm: u32) {
    log::warn!(
        "vmx: vm {vm}: CR0 {:#x} (shadow {:#x}) CR4 {:#x} EFER {:#x} RFLAGS {:#x} RIP {:#x} entry controls {:#x} \
         activity {} interruptibility {:#x}",
        read(field::GUEST_CR0),
        read(field::CR0_READ_SHADOW),
        read(field::GUEST_CR4),
        read(field::GUEST_IA32_EFER),
        read(field::GUEST_RFLAGS),
        read(field::GUEST_RIP),
        read(field::ENTRY_CONTROLS),
        read(field::GUEST_ACTIVITY_STATE),
        read(field::GUEST_INTERRUPTIBILITY),
    );
    for (i, name) in ["ES", "CS", "SS", "DS", "FS", "GS", "LDTR", "TR"].iter().enumerate() {
        log::warn!(
            "vmx: vm {vm}: {name} selector {:#x} base {:#x} limit {:#x} access rights {:#x}",
            read(field::guest_selector(i)),
            read(field::guest_base(i)),
            read(field::guest_limit(i)),
            read(field::guest_access_rights(i)),
        );
    }
}

/// Write one guest segment register (selector, base, limit, access rights). TR goes through
/// `keel_hv::vmx::task_register`: VM entry needs a busy TSS there even in real mode, where the
/// vendor-neutral state (like SVM) may have none. See: SDM Vol 3C 27.3.1.2.
fn set_segment(i: usize, s: &Segment) {
    let v = if i == seg::TR {
        hv::task_register(s.selector, s.base, s.limit, s.attrib & 0xfff)
    } else {
        hv::VmcsSegment {
            selector: s.selector,
            base: s.base,
            limit: s.limit,
            access_rights: hv::access_rights(s.attrib & 0xfff),
        }
    };
    write(field::guest_selector(i), u64::from(v.selector));
    write(field::guest_base(i), v.base);
    write(field::guest_limit(i), u64::from(v.limit));
    write(field::guest_access_rights(i), u64::from(v.access_rights));
}

impl Drop for VmxVcpu {
    fn drop(&mut self) {
        // SAFETY: VMX is on (a VmxVcpu exists only then); the region is this vCPU's VMCS. VMCLEAR
        // makes it not current, so the CPU no longer touches the page, which the frame's own
        // Drop frees after this.
        let _ = unsafe { insn::vmclear(self.vmcs.phys()) };
        let _ = CURRENT_VMCS.compare_exchange(self.vmcs.phys(), 0, Ordering::Relaxed, Ordering::Relaxed);
    }
}

/// The guest MSRs behind `GuestMsr`: VMCS fields, or the per-vCPU syscall MSRs (loaded in the
/// CPU while the guest's run loop goes on, so they are written through).
pub struct VmcsMsrs<'a> {
    syscall: &'a mut [u64; 5],
}

impl VmcsMsrs<'_> {
    fn syscall_slot(which: GuestMsr) -> Option<usize> {
        match which {
            GuestMsr::Star => Some(0),
            GuestMsr::Lstar => Some(1),
            GuestMsr::Cstar => Some(2),
            GuestMsr::Sfmask => Some(3),
            GuestMsr::KernelGsBase => Some(KERNEL_GS_SLOT),
            _ => None,
        }
    }
}

impl super::GuestMsrs for VmcsMsrs<'_> {
    fn get(&self, which: GuestMsr) -> u64 {
        if let Some(slot) = Self::syscall_slot(which) {
            // The live value: the guest's SWAPGS changes KERNEL_GS_BASE without an exit.
            // SAFETY: the guest's syscall MSRs are loaded during the run loop; reads are harmless.
            return unsafe { rdmsr(SYSCALL_MSRS[slot]) };
        }
        match which {
            GuestMsr::Efer => read(field::GUEST_IA32_EFER),
            GuestMsr::Pat => read(field::GUEST_IA32_PAT),
            GuestMsr::FsBase => read(field::guest_base(seg::FS)),
            GuestMsr::GsBase => read(field::guest_base(seg::GS)),
            GuestMsr::SysenterCs => read(field::GUEST_SYSENTER_CS),
            GuestMsr::SysenterEsp => read(field::GUEST_SYSENTER_ESP),
            _ => read(field::GUEST_SYSENTER_EIP),
        }
    }

    fn set(&mut self, which: GuestMsr, value: u64) {
        if let Some(slot) = Self::syscall_slot(which) {
            self.syscall[slot] = value;
            // SAFETY: the value passed keel_hv::msr::check_write (canonical, SFMASK 32 bits); the
            // guest's syscall MSRs are loaded now and the host's go back before ring 3 runs.
            unsafe { wrmsr(SYSCALL_MSRS[slot], value) };
            return;
        }
        match which {
            // LMA is the CPU's to set (CR0.PG with LME), not WRMSR's. See: SDM Vol 3A 10.8.5.
            GuestMsr::Efer => {
                let old = read(field::GUEST_IA32_EFER);
                write(field::GUEST_IA32_EFER, (value & !EFER_LMA) | (old & EFER_LMA));
            }
            GuestMsr::Pat => write(field::GUEST_IA32_PAT, value),
            GuestMsr::FsBase => write(field::guest_base(seg::FS), value),
            GuestMsr::GsBase => write(field::guest_base(seg::GS), value),
            GuestMsr::SysenterCs => write(field::GUEST_SYSENTER_CS, value),
            GuestMsr::SysenterEsp => write(field::GUEST_SYSENTER_ESP, value),
            _ => write(field::GUEST_SYSENTER_EIP, value),
        }
    }
}

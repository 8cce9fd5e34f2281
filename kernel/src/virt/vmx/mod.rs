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

mod cr;
mod enable;

mod entry_failure;
mod exits;
mod inject;
mod insn;
mod msrs;
mod run;
mod state;
mod vcpu;

use enable::alloc_vmx_page;
pub use enable::enable_this_cpu;
use entry_failure::log_guest_state;
use msrs::VmcsMsrs;
use state::set_segment;
use vcpu::{caps, Event, GuestRegs};
pub use vcpu::{guest_caps, VmxVcpu};

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

use keel_hv::x86::msr::{
    CSTAR, FS_BASE as MSR_FS_BASE, GS_BASE as MSR_GS_BASE, KERNEL_GS_BASE as MSR_KERNEL_GS_BASE, LSTAR, PAT as MSR_PAT,
    SFMASK, STAR,
};
/// STAR, LSTAR, CSTAR, SFMASK, KERNEL_GS_BASE: the MSRs VMX does not switch.
pub(super) const SYSCALL_MSRS: [u32; 5] = [STAR, LSTAR, CSTAR, SFMASK, MSR_KERNEL_GS_BASE];
pub(super) const KERNEL_GS_SLOT: usize = 4;

use keel_hv::x86::cr0::{CD as CR0_CD, NW as CR0_NW, TS as CR0_TS};
use keel_hv::x86::cr4::PAE as CR4_PAE;
use keel_hv::x86::efer::{LMA as EFER_LMA, LME as EFER_LME};
use keel_hv::x86::rflags::IF as RFLAGS_IF;
pub(super) const DEFAULT_PAT: u64 = 0x0007_0406_0007_0406;

/// What enable_this_cpu settled: the control values, CR fixed bits and INVEPT kind.
pub(super) struct Caps {
    pub(super) revision: u32,
    /// IA32_VMX_BASIC bit 48: VMX structures must lie below 4 GiB.
    pub(super) below_4g: bool,
    pub(super) pin: u32,
    pub(super) proc: u32,
    pub(super) proc2: u32,
    pub(super) exit: u32,
    pub(super) entry: u32,
    pub(super) cr0: CrShadow,
    pub(super) cr4: CrShadow,
    pub(super) invept: u64,
}

/// The host state that does not change while Keel runs. See: SDM Vol 3C 25.5.
pub(super) struct HostState {
    pub(super) cr0: u64,
    pub(super) cr4: u64,
    pub(super) tr_selector: u16,
    pub(super) tr_base: u64,
    pub(super) gdtr_base: u64,
    pub(super) idtr_base: u64,
    pub(super) sysenter: [u64; 3],
    pub(super) efer: u64,
    pub(super) pat: u64,
}

/// The boot CPU's VMX state: its VMXON region stays reserved while VMX is on (for good).
pub(super) struct VmxCpu {
    pub(super) _vmxon_region: mm::Frame,
    pub(super) caps: Caps,
    pub(super) host: HostState,
}

pub(super) static CPU: Once<VmxCpu> = Once::new();
/// The physical address of this CPU's current VMCS (0: none).
pub(super) static CURRENT_VMCS: AtomicU64 = AtomicU64::new(0);
pub(super) static NEXT_VPID: AtomicU32 = AtomicU32::new(0);
pub(super) static WRITE_FAILURE_LOGGED: AtomicBool = AtomicBool::new(false);

/// Read a field of the current VMCS.
pub(super) fn read(f: u32) -> u64 {
    debug_assert!(CPU.get().is_some());
    // SAFETY: this module only runs VMX code once enable_this_cpu succeeded (VMXON on the boot
    // CPU, the only CPU that runs vCPUs); without a current VMCS VMREAD fails harmlessly.
    unsafe { insn::vmread(f) }
}

/// Write a field of the current VMCS (a failure is logged once: it means a field this CPU lacks).
pub(super) fn write(f: u32, value: u64) {
    // SAFETY: as in `read`; the host-state fields only ever get the values of HostState and
    // write_host_per_run, which describe the running kernel.
    if unsafe { insn::vmwrite(f, value) }.is_err() && !WRITE_FAILURE_LOGGED.swap(true, Ordering::Relaxed) {
        // SAFETY: as above.
        let error = unsafe { insn::vmread(field::VM_INSTRUCTION_ERROR) };
        log::warn!("vmx: VMWRITE of field {f:#x} failed ({})", hv::instruction_error_name(error));
    }
}

pub(super) fn read_cr0() -> u64 {
    let v: u64;
    // SAFETY: reading CR0 has no side effects.
    unsafe { core::arch::asm!("mov {}, cr0", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

pub(super) fn read_cr4() -> u64 {
    let v: u64;
    // SAFETY: reading CR4 has no side effects.
    unsafe { core::arch::asm!("mov {}, cr4", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

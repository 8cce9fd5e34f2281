//! The AMD SVM backend: EFER.SVME and the host save area, one VMCB per vCPU with nested paging,
//! the VMRUN loop (enter.S) and the exits SVM reports. See: APM Vol 2 chapter 15.
//!
//! Intercepted: physical interrupts (INTR/NMI/SMI/INIT), CPUID, HLT, all port I/O (IOPM all
//! ones) and all MSRs (MSRPM all ones), shutdown, XSETBV, INVD, and every SVM instruction (the
//! guest gets #UD). Nested page faults come from NPT. V_INTR_MASKING keeps host interrupts
//! host-owned whatever the guest's IF.

use core::sync::atomic::{AtomicU64, Ordering};
use spin::Once;

use keel_abi::vcpu::{seg, ExitKind, VcpuState, INJECT_EXCEPTION, INJECT_INTERRUPT, INJECT_NMI};
use keel_hv::msr::GuestMsr;
use keel_hv::svm::{eventinj, misc1, misc2, vintr, Vmcb, VmcbSegment};
use keel_hv::VmExit;

use super::{fpu, Vcpu, Vm, RAX, RSP};
use crate::arch::x86_64::instructions::{rdmsr, rdmsr_safe, wrmsr, MSR_EFER};
use crate::mm;

mod enable;
mod exits;
mod inject;
mod msrs;
mod run;
mod state;
mod vcpu;

pub use enable::enable_this_cpu;
use msrs::VmcbMsrs;
pub use vcpu::SvmVcpu;

core::arch::global_asm!(include_str!("enter.S"), options(att_syntax));

extern "C" {
    fn svm_enter(guest_vmcb: u64, host_vmcb: u64, gprs: *mut [u64; 16]);
}

use keel_hv::x86::efer::{LMA as EFER_LMA, SVME as EFER_SVME};
use keel_hv::x86::msr::{VM_CR as MSR_VM_CR, VM_HSAVE_PA as MSR_VM_HSAVE_PA};

/// The boot CPU's host VMCB (for VMSAVE/VMLOAD of host state) and the all-ones permission maps.
pub(super) static HOST_VMCB: AtomicU64 = AtomicU64::new(0);
pub(super) static PERMISSION_MAPS: Once<(u64, u64)> = Once::new();
/// The VMCB that ran last on this CPU (a different one must flush the TLB: ASIDs are shared).
pub(super) static LAST_VMCB: AtomicU64 = AtomicU64::new(0);

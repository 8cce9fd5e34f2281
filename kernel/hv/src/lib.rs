//! What the kernel's virtualization code decides without touching hardware: the VMCB layout and
//! the SVM exit decoder (`svm`), the VMX exit decoder (`vmx`), the guest CPU model (`guest_cpu`:
//! every CPUID leaf, derived from the host's and Keel's policy), the XSAVE layout (`xsave`), the
//! MSR policy (`msr`) and MTRR emulation (`mtrr`), and the pvclock scale (`pvclock`). The kernel's `virt` module is the
//! thin glue that runs VMRUN/VMLAUNCH.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod guest_cpu;
pub mod msr;
pub mod mtrr;
pub mod pvclock;
pub mod svm;
pub mod vmx;
pub mod xsave;

use keel_addr::Gpa;

/// A decoded VM exit, the same for both vendors. The kernel answers some itself (CPUID, MSR,
/// interrupts, ...) and turns the others into the vCPU page's `ExitKind` for the monitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmExit {
    /// A host interrupt arrived while the guest ran.
    ExternalInterrupt,
    /// The guest can take an interrupt now (interrupt-window exiting).
    InterruptWindow,
    Cpuid,
    Hlt,
    /// Port I/O. `next_rip` where the vendor tells it (SVM: EXITINFO2).
    Io {
        port: u16,
        size: u8,
        write: bool,
        string: bool,
        rep: bool,
        next_rip: Option<u64>,
    },
    MsrRead,
    MsrWrite,
    Xsetbv,
    /// A guest-physical access the nested page tables do not allow.
    NestedPageFault {
        gpa: Gpa,
        write: bool,
        fetch: bool,
    },
    /// Triple fault.
    Shutdown,
    /// A virtualization instruction (VMRUN, VMCALL, VMXON, ...): the guest gets #UD.
    VirtualizationInstruction,
    /// MONITOR, MWAIT (and SVM's conditional MWAIT): hidden by CPUID, so the guest gets #UD.
    MonitorMwait,
    /// INVD: skipped (the guest's caches are the host's).
    Invd,
    /// VMX: a control-register access the CR0/CR4 guest/host masks or CR3/CR8 exiting caught,
    /// with the exit qualification. (SVM does not intercept them.)
    ControlRegister {
        qualification: u64,
    },
    /// VMX: an exception or NMI exit. Keel intercepts no guest exception, so this is a host NMI
    /// (NMI exiting) unless the interruption information says otherwise.
    ExceptionOrNmi,
    /// The hardware refused the guest state at entry.
    InvalidState,
    /// Anything else, with the vendor's code (for the log).
    Other(u64),
}

pub mod walk;
pub mod x86;

//! Virtual machines and vCPUs: choosing the backend (SVM or VMX) at boot, the guest CPU model
//! every guest sees, and the pieces, each in its file: the VM object and guest memory (`vm`),
//! the vCPU object and its shared state page (`vcpu`), the run loop and the exits the kernel
//! answers itself for both vendors (`exit`), MSRs (`msr`), instruction fetch for the monitor
//! (`code`), guest FPU state (`fpu`), and the vendor backends (`svm`, `vmx`).
//!
//! Guest RAM is shared memory that the monitor maps into the VM (`VmMap`); the nested page
//! tables map exactly those frames, so a guest can reach nothing else (an access elsewhere is an
//! MMIO exit to the monitor). Scope: vCPUs run on the boot CPU (with the other user threads).

mod code;
mod exit;
pub mod fpu;
mod msr;
pub mod svm;
mod vcpu;
mod vm;
pub mod vmx;

pub use code::{record_instruction, CodeView};
pub use msr::{msr_read, msr_write, GuestMsrs, MsrShadow};
pub use vcpu::Vcpu;
pub use vm::Vm;

use core::sync::atomic::Ordering;
use spin::Once;

use keel_abi::vcpu::reg;
use keel_hv::guest_cpu::{features::BackendCaps, GuestCpu, GuestView};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Backend {
    Svm { asids: u32 },
    Vmx,
}

static BACKEND: Once<Option<Backend>> = Once::new();

/// Enable hardware virtualization on the boot CPU if it has a usable kind.
pub fn init(verdict: keel_virtcaps::Verdict) {
    fpu::init_this_cpu();
    let backend = match verdict {
        keel_virtcaps::Verdict::SvmNpt { asids } => match svm::enable_this_cpu() {
            Ok(()) => Some(Backend::Svm { asids }),
            Err(e) => {
                log::warn!("virt: cannot enable SVM: {e}");
                None
            }
        },
        keel_virtcaps::Verdict::VmxEpt { .. } => match vmx::enable_this_cpu() {
            Ok(()) => Some(Backend::Vmx),
            Err(e) => {
                log::warn!("virt: cannot enable VMX: {e}");
                None
            }
        },
        keel_virtcaps::Verdict::Missing(_) => None,
    };
    BACKEND.call_once(|| backend);
    let caps = match backend {
        Some(Backend::Svm { .. }) => BackendCaps::SVM,
        Some(Backend::Vmx) => vmx::guest_caps(),
        None => return,
    };
    let model = GUEST_CPU.call_once(|| GuestCpu::derive(host_cpuid, caps));
    let shown = model.has(keel_hv::guest_cpu::features::RDTSCP) || model.has(keel_hv::guest_cpu::features::RDPID);
    msr::TSC_AUX_SHOWN.store(shown, Ordering::Relaxed);
}

/// The CPU every guest sees, derived once from the boot CPU's CPUID (keel-hv `guest_cpu`).
static GUEST_CPU: Once<GuestCpu> = Once::new();

/// The guest CPU model. Only called on a vCPU's exits, which exist only once `init` chose a
/// backend (and derived the model).
pub fn guest_cpu() -> &'static GuestCpu {
    GUEST_CPU.get().expect("virt::init derives the guest CPU before any vCPU exists")
}

fn host_cpuid(leaf: u32, subleaf: u32) -> [u32; 4] {
    let r = crate::arch::x86_64::instructions::cpuid(leaf, subleaf);
    [r.eax, r.ebx, r.ecx, r.edx]
}

/// With `cpuid-dump` on the command line: the host's raw CPUID (the format of the test data in
/// kernel/hv/testdata/cpuid, captured by the `capture_host_cpuid` system test), then the guest
/// model's leaves for a vCPU with every offered XSAVE component enabled.
pub fn dump_cpuid() {
    use keel_hv::guest_cpu::raw::{for_each_host_leaf, Line};
    for_each_host_leaf(host_cpuid, |l, s, r| crate::println!("cpuid-raw: {}", Line(l, s, r)));
    crate::println!("cpuid-raw: end");
    if let Some(model) = GUEST_CPU.get() {
        let view = GuestView { apic_id: 0, osxsave: true, xcr0: model.xsave().supported };
        model.for_each_leaf(view, |l, s, r| crate::println!("cpuid-guest: {}", Line(l, s, r)));
    }
}

pub fn backend() -> Option<Backend> {
    BACKEND.get().copied().flatten()
}

/// The guest's CPUID: the model's answer for a vCPU with this CR4 and XCR0 (one vCPU per VM for
/// now: APIC ID 0).
pub fn cpuid(leaf: u32, subleaf: u32, cr4: u64, xcr0: u64) -> [u32; 4] {
    let view = GuestView { apic_id: 0, osxsave: cr4 & (1 << 18) != 0, xcr0 };
    guest_cpu().query(leaf, subleaf, view)
}

/// Used by backends: the register index helpers.
pub const RAX: usize = reg::RAX;
pub const RBX: usize = reg::RBX;
pub const RCX: usize = reg::RCX;
pub const RDX: usize = reg::RDX;
pub const RSP: usize = reg::RSP;

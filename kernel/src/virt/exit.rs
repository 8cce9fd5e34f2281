//! The run loop and the exits the kernel answers itself, written once for both vendors over the
//! small [`Backend`] trait each of `svm` and `vmx` implements: the checks before each entry (a
//! poke, the monitor's deadline, a pending reschedule, a killed thread), CPUID, RDMSR/WRMSR (with
//! the EFER.LME rule), XSETBV, HLT with an interrupt already queued, INVD, #UD for the
//! virtualization and MONITOR/MWAIT instructions, and the hand-off of port I/O and nested page
//! faults to the monitor.
//!
//! What stays in a backend: entering the guest (VMRUN, VMLAUNCH/VMRESUME), event injection,
//! loading and exporting its state, and the exits only one vendor has (VMX's control-register
//! accesses and host NMIs), which it gets through [`Backend::vendor_exit`].

use keel_abi::vcpu::{ExitKind, VcpuState};
use keel_hv::VmExit;

use super::{CodeView, GuestMsrs, MsrShadow, Vcpu, RAX, RBX, RCX, RDX};

/// #GP and #UD: the exceptions these exits raise.
const GP: u8 = 13;
const UD: u8 = 6;
/// EFER.LME and CR0.PG: changing LME while paging is on is #GP. See: SDM Vol 3A 10.8.5, APM Vol 2
/// 14.6.
use keel_hv::x86::{cr0::PG as CR0_PG, efer::LME as EFER_LME, rflags::IF as RFLAGS_IF};
/// Instruction lengths, for a backend that must step over an instruction without the CPU's help
/// (SVM without next-RIP saving). See: SDM Vol 2 (CPUID 0F A2, RDMSR 0F 32, WRMSR 0F 30, XSETBV
/// 0F 01 D1, INVD 0F 08, HLT F4).
const LEN_CPUID: u64 = 2;
const LEN_MSR: u64 = 2;
const LEN_XSETBV: u64 = 3;
const LEN_INVD: u64 = 2;
const LEN_HLT: u64 = 1;

/// What the vendor-neutral code needs from a backend's vCPU.
pub trait Backend {
    /// The vendor's guest-MSR state (VMCB or VMCS fields), borrowed beside the shadow MSRs.
    type Msrs<'a>: GuestMsrs
    where
        Self: 'a;

    /// General-purpose register `index` (keel_abi::vcpu::reg order; RAX and RSP included).
    fn gpr(&self, index: usize) -> u64;
    fn set_gpr(&mut self, index: usize, value: u64);
    fn rflags(&self) -> u64;
    /// CR0 as the guest sees it.
    fn cr0(&self) -> u64;
    /// CR4 as the guest sees it.
    fn cr4(&self) -> u64;
    /// EFER as the guest sees it.
    fn efer(&self) -> u64;
    /// Step over the instruction that exited (`len` bytes where the CPU does not say).
    fn skip(&mut self, len: u64);
    /// Step over a port I/O instruction (`next_rip` where the vendor reported it).
    fn skip_io(&mut self, next_rip: Option<u64>);
    /// A hardware exception at the next entry.
    fn inject_exception(&mut self, vector: u8, error_code: Option<u32>);
    /// What instruction decoding needs: the code segment, paging mode and RIP.
    fn code_view(&self) -> CodeView;
    /// The guest's XCR0 as Keel tracks it.
    fn xcr0_mut(&mut self) -> &mut u64;
    /// The vendor's MSR state and the shadow MSRs, borrowed together.
    fn msrs(&mut self) -> (Self::Msrs<'_>, &mut MsrShadow);
    /// Copy the registers (and, with `system`, the system state) into the monitor's page.
    fn export(&mut self, st: &mut VcpuState, system: bool);

    /// Queue the monitor's pending event, or ask for an exit when the guest can take it.
    fn prepare_injection(&mut self, vcpu: &Vcpu);
    /// Run the guest once. Err: the entry failed; the exit for the monitor (with its detail).
    fn enter(&mut self, vcpu: &Vcpu, st: &mut VcpuState) -> Result<VmExit, ExitKind>;
    /// Give up the CPU to another thread and come back (a backend with per-run host state puts
    /// it back around the switch). Err: the vCPU cannot run again here.
    fn reschedule(&mut self, st: &mut VcpuState) -> Result<(), ExitKind>;
    /// An exit the common code does not handle: a vendor's own, an invalid state, or one nothing
    /// handles. None: handled, go on running.
    fn vendor_exit(&mut self, vcpu: &Vcpu, exit: VmExit, st: &mut VcpuState) -> Option<ExitKind>;
}

/// Run the guest until an exit needs the monitor (or a poke, a deadline or a kill ends the run).
/// Never inlined into its callers: the loop's code (and its cost per kernel exit) then does not
/// change with the code around the system call that enters it (docs/performance.md).
#[inline(never)]
pub fn run_until_monitor<B: Backend>(b: &mut B, vcpu: &Vcpu, st: &mut VcpuState) -> ExitKind {
    // The monitor's deadline is honoured only after the guest ran at least once: a deadline
    // already past when VcpuRun starts would otherwise keep the guest from ever running.
    run_loop(b, vcpu, st)
}

fn run_loop<B: Backend>(b: &mut B, vcpu: &Vcpu, st: &mut VcpuState) -> ExitKind {
    let mut entered = false;
    loop {
        if vcpu.take_poke() || (entered && vcpu.deadline_passed()) {
            return ExitKind::Poked;
        }
        if crate::task::scheduler::need_resched() {
            if let Err(kind) = b.reschedule(st) {
                return kind;
            }
            continue;
        }
        // Killed (stop -f, or the monitor crashed in another thread): return so that the system
        // call unwinds and the thread ends there.
        if crate::task::scheduler::current_dying() {
            return ExitKind::Poked;
        }
        b.prepare_injection(vcpu);
        if !entered {
            vcpu.mark_entry();
        }
        entered = true;
        let exit = match b.enter(vcpu, st) {
            Ok(exit) => exit,
            Err(kind) => return kind,
        };
        // Read before the exit is handled: the decoding of an MMIO exit is part of its cost.
        let exit_tsc = crate::time::rdtsc();
        if let Some(kind) = handle(b, vcpu, exit, st) {
            vcpu.mark_exit(exit_tsc);
            return kind;
        }
        vcpu.count_kernel_exit();
    }
}

/// EDX:EAX as one value (RDMSR/WRMSR, XSETBV).
fn edx_eax<B: Backend>(b: &B) -> u64 {
    (b.gpr(RAX) & 0xffff_ffff) | (b.gpr(RDX) << 32)
}

/// Handle one exit; Some: the exit the monitor gets.
fn handle<B: Backend>(b: &mut B, vcpu: &Vcpu, exit: VmExit, st: &mut VcpuState) -> Option<ExitKind> {
    match exit {
        VmExit::ExternalInterrupt | VmExit::InterruptWindow => {}
        VmExit::Cpuid => {
            let [eax, ebx, ecx, edx] = super::cpuid(b.gpr(RAX) as u32, b.gpr(RCX) as u32, b.cr4(), *b.xcr0_mut());
            b.set_gpr(RAX, u64::from(eax));
            b.set_gpr(RBX, u64::from(ebx));
            b.set_gpr(RCX, u64::from(ecx));
            b.set_gpr(RDX, u64::from(edx));
            b.skip(LEN_CPUID);
        }
        VmExit::MsrRead => {
            let index = b.gpr(RCX) as u32;
            let value = {
                let (state, shadow) = b.msrs();
                super::msr_read(index, &state, shadow)
            };
            match value {
                Some(value) => {
                    b.set_gpr(RAX, value & 0xffff_ffff);
                    b.set_gpr(RDX, value >> 32);
                    b.skip(LEN_MSR);
                }
                None => b.inject_exception(GP, Some(0)),
            }
        }
        VmExit::MsrWrite => {
            let index = b.gpr(RCX) as u32;
            let value = edx_eax(b);
            let lme_change = index == keel_hv::msr::EFER && b.cr0() & CR0_PG != 0 && (value ^ b.efer()) & EFER_LME != 0;
            let result = if lme_change {
                Err(())
            } else {
                let (mut state, shadow) = b.msrs();
                super::msr_write(&vcpu.vm, index, value, &mut state, shadow)
            };
            match result {
                Ok(()) => b.skip(LEN_MSR),
                Err(()) => b.inject_exception(GP, Some(0)),
            }
        }
        VmExit::Xsetbv => {
            let value = edx_eax(b);
            if b.gpr(RCX) as u32 == 0 && super::guest_cpu().xsave().xcr0_valid(value) {
                *b.xcr0_mut() = value;
                b.skip(LEN_XSETBV);
            } else {
                b.inject_exception(GP, Some(0));
            }
        }
        // CPUID hides them (and SVM, VMX, SMX): the guest gets what such a CPU gives.
        VmExit::VirtualizationInstruction | VmExit::MonitorMwait => b.inject_exception(UD, None),
        // The guest's caches are the host's: nothing to invalidate on its behalf.
        VmExit::Invd => b.skip(LEN_INVD),
        VmExit::Hlt => {
            // An interrupt the monitor already queued wakes the guest at once.
            let req = vcpu.inject_request();
            b.skip(LEN_HLT);
            if !(req.pending != 0 && b.rflags() & RFLAGS_IF != 0) {
                return Some(ExitKind::Hlt);
            }
        }
        VmExit::Io { port, size, write, string, rep, next_rip } => {
            st.exit.port = port;
            st.exit.size = size;
            st.exit.write = u8::from(write);
            if string || rep {
                st.exit.count = if rep { b.gpr(RCX) } else { 1 };
                // The monitor decodes the prefixes (segment, address size) itself.
                b.export(st, true);
                super::record_instruction(&vcpu.vm, &CodeView::of_state(st), st);
                return Some(ExitKind::IoString);
            }
            let mask = if size >= 4 { 0xffff_ffff } else { (1u64 << (8 * size)) - 1 };
            st.exit.data = b.gpr(RAX) & mask;
            b.skip_io(next_rip);
            return Some(ExitKind::Io);
        }
        VmExit::NestedPageFault { gpa, write, .. } => {
            st.exit.gpa = gpa;
            st.exit.write = u8::from(write);
            super::record_instruction(&vcpu.vm, &b.code_view(), st);
            return Some(ExitKind::Mmio);
        }
        VmExit::Shutdown => return Some(ExitKind::Shutdown),
        other => return b.vendor_exit(vcpu, other, st),
    }
    None
}

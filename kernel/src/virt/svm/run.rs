//! One VMRUN (GIF held around it, the TLB flushed when the mappings changed, the guest's FPU
//! state, XCR0 and TSC_AUX in place, events re-delivered after the exit), and the run loop
//! around the shared one in exit.rs. See: APM Vol 2 15.5, 15.7.2, 15.16, 15.17.
use super::*;

impl SvmVcpu {
    /// One VMRUN with interrupts held off (GIF), then let pending host interrupts in.
    pub(super) fn enter(&mut self, vm: &Vm) {
        let generation = vm.generation.load(Ordering::SeqCst);
        let this = self.vmcb_frame.phys();
        let other_ran = LAST_VMCB.swap(this, Ordering::Relaxed) != this;
        if other_ran {
            // Another vCPU (or none yet) ran since: its TSC_AUX may be in the CPU.
            self.msrs.activate_tsc_aux();
        }
        let flush = other_ran || generation != self.generation;
        self.generation = generation;
        self.vmcb().control.tlb_control = if flush { 1 } else { 0 };
        self.fpu.activate(self.xcr0);
        let host = HOST_VMCB.load(Ordering::Relaxed);
        // SAFETY: CLGI/STGI bracket the world switch (APM 15.17); the VMCB, host VMCB and
        // permission maps are valid pages this CPU owns; svm_enter saves and restores every host
        // register the ABI needs and the host hidden state (VMSAVE/VMLOAD).
        // RFLAGS.IF must be 1 at VMRUN: with V_INTR_MASKING the host's IF at VMRUN (HIF) is what
        // lets a physical interrupt reach the INTR intercept while the guest runs; with IF = 0 a
        // guest that makes no exits would run forever (APM Vol 2 15.21.1). GIF = 0 holds every
        // interrupt from the STI until VMRUN, and again from #VMEXIT (which restores IF = 1 from
        // the host save area) until STGI, where a pending host interrupt is taken; then CLI.
        unsafe { core::arch::asm!("clgi", "sti", options(nomem, nostack)) };
        // SAFETY: as above.
        unsafe { svm_enter(this, host, &mut self.gprs) };
        // SAFETY: as above.
        unsafe { core::arch::asm!("stgi", "nop", "cli", options(nomem, nostack)) };
        self.xcr0 = fpu::sync_guest_xcr0(self.xcr0);
        // Re-deliver an event the exit interrupted. See: APM Vol 2 15.7.2 (EXITINTINFO).
        let v = self.vmcb();
        let pending = v.control.exit_int_info;
        v.control.event_inject = if pending & eventinj::VALID != 0 { pending } else { 0 };
    }

    /// The run loop (exit.rs, shared with VMX): kernel exits handled, the first that needs the
    /// monitor returned.
    pub fn run_until_monitor(&mut self, vcpu: &Vcpu, st: &mut VcpuState) -> ExitKind {
        crate::virt::exit::run_until_monitor(self, vcpu, st)
    }
}

//! One VM entry (VMLAUNCH/VMRESUME with the PDPTEs, INVEPT and entry controls brought up to
//! date, events re-delivered after the exit), stepping over an instruction, and the run loop
//! around the shared one in exit.rs. See: SDM Vol 3C 27, 28.2.4.
use super::*;

impl VmxVcpu {
    /// The PDPTE fields for PAE paging outside long mode: with EPT, VM entry loads the guest's
    /// PDPTEs from the VMCS, so they must follow CR3 when the kernel or the monitor sets it.
    /// See: SDM Vol 3C 27.3.2.4, Vol 3A 5.4.1.
    pub(super) fn load_pdptes(&mut self, vm: &Vm) {
        let (cr0, cr4, efer) = (read(field::GUEST_CR0), read(field::GUEST_CR4), read(field::GUEST_IA32_EFER));
        if cr0 & hv::CR0_PG != 0 && cr4 & CR4_PAE != 0 && efer & EFER_LMA == 0 {
            let base = read(field::GUEST_CR3) & 0xffff_ffe0;
            for i in 0..4u32 {
                let entry = vm.read_guest_u64(keel_addr::Gpa(base + 8 * u64::from(i))).unwrap_or(0);
                write(field::GUEST_PDPTE0 + 2 * i, entry);
            }
        }
    }

    /// One VMLAUNCH/VMRESUME with interrupts off, then let pending host interrupts in. Ok: the
    /// exit reason; Err: the instruction failed (the VM-instruction error, or u64::MAX).
    pub(super) fn enter(&mut self, vm: &Vm) -> Result<u32, u64> {
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
        // SAFETY: this vCPU's VMCS is current (make_current at the loop's top) with valid host
        // state (init_vmcs, write_host_per_run; HOST_RSP is set by vmx_enter itself); vmx_enter
        // saves and restores every register the ABI needs and VM exit reloads the host's control
        // and segment registers, EFER and PAT; the unswitched syscall MSRs hold the guest's
        // values until run_until_monitor puts the host's back. Interrupts are off (IF = 0) until
        // the `sti; nop; cli` window, which lets a pending host interrupt be handled.
        unsafe { core::arch::asm!("cli", options(nomem, nostack)) };
        // SAFETY: as above.
        let status = unsafe { vmx_enter(&mut self.regs, u64::from(self.launched)) };
        // SAFETY: as above.
        unsafe { core::arch::asm!("sti", "nop", "cli", options(nomem, nostack)) };
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
    pub(super) fn skip(&mut self) {
        let len = read(field::EXIT_INSTRUCTION_LENGTH);
        write(field::GUEST_RIP, read(field::GUEST_RIP).wrapping_add(len));
        self.clear_interrupt_shadow();
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
        let kind = crate::virt::exit::run_until_monitor(self, vcpu, st);
        let host = self.host_syscall_msrs;
        // SAFETY: `host` is what load_guest_syscall_msrs returned (possibly re-read after a
        // reschedule) on this thread.
        unsafe { self.restore_host_syscall_msrs(&host) };
        kind
    }
}

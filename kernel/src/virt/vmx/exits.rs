//! The VMX half of the shared run loop (exit.rs): register access, instruction skip, the
//! code view, and the exits only VMX has (control-register accesses, host NMIs, entry failures).
use super::*;

impl crate::virt::exit::Backend for VmxVcpu {
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

    fn code_view(&self) -> crate::virt::CodeView {
        crate::virt::CodeView {
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

    fn msrs(&mut self) -> (VmcsMsrs<'_>, &mut crate::virt::MsrShadow) {
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

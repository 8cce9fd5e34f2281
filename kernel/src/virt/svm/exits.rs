//! The SVM half of the shared run loop (exit.rs): register access, instruction skip (no
//! next-RIP saving under QEMU), the code view, and what SVM reports that the shared code does
//! not handle.
use super::*;

impl crate::virt::exit::Backend for SvmVcpu {
    type Msrs<'a> = VmcbMsrs<'a>;

    fn gpr(&self, index: usize) -> u64 {
        match index & 15 {
            RAX => self.vmcb_ref().save.rax,
            RSP => self.vmcb_ref().save.rsp,
            i => self.gprs[i],
        }
    }

    fn set_gpr(&mut self, index: usize, value: u64) {
        match index & 15 {
            RAX => self.vmcb().save.rax = value,
            RSP => self.vmcb().save.rsp = value,
            i => self.gprs[i] = value,
        }
    }

    fn rflags(&self) -> u64 {
        self.vmcb_ref().save.rflags
    }

    fn cr0(&self) -> u64 {
        self.vmcb_ref().save.cr0
    }

    fn cr4(&self) -> u64 {
        self.vmcb_ref().save.cr4
    }

    fn efer(&self) -> u64 {
        self.vmcb_ref().save.efer & !EFER_SVME
    }

    /// Without next-RIP saving (QEMU's TCG has none; shared/TESTBED.md) the length is the
    /// instruction's architectural one.
    fn skip(&mut self, len: u64) {
        let v = self.vmcb();
        v.save.rip = v.save.rip.wrapping_add(len);
        v.control.interrupt_shadow &= !1;
    }

    /// IOIO exits always report the next RIP (EXITINFO2). See: APM Vol 2 15.10.2.
    fn skip_io(&mut self, next_rip: Option<u64>) {
        if let Some(next) = next_rip {
            self.vmcb().save.rip = next;
        }
    }

    fn inject_exception(&mut self, vector: u8, error_code: Option<u32>) {
        SvmVcpu::inject_exception(self, vector, error_code)
    }

    fn code_view(&self) -> crate::virt::CodeView {
        let save = &self.vmcb_ref().save;
        crate::virt::CodeView {
            cr0: save.cr0,
            cr3: save.cr3,
            cr4: save.cr4,
            efer: save.efer,
            cs_base: save.cs.base,
            cs_attrib: save.cs.attrib,
            rip: save.rip,
        }
    }

    fn xcr0_mut(&mut self) -> &mut u64 {
        &mut self.xcr0
    }

    fn msrs(&mut self) -> (VmcbMsrs<'_>, &mut crate::virt::MsrShadow) {
        // SAFETY: as in `vmcb`; the VMCB page and the `msrs` field are disjoint, so the two
        // borrows do not alias.
        let vmcb = unsafe { &mut *(self.vmcb_frame.virt() as *mut Vmcb) };
        (VmcbMsrs(vmcb), &mut self.msrs)
    }

    fn export(&mut self, st: &mut VcpuState, system: bool) {
        SvmVcpu::export(self, st, system)
    }

    fn prepare_injection(&mut self, vcpu: &Vcpu) {
        SvmVcpu::prepare_injection(self, vcpu)
    }

    fn enter(&mut self, vcpu: &Vcpu, _st: &mut VcpuState) -> Result<VmExit, ExitKind> {
        SvmVcpu::enter(self, &vcpu.vm);
        let c = &self.vmcb_ref().control;
        Ok(keel_hv::svm::decode(c.exit_code, c.exit_info1, c.exit_info2))
    }

    fn reschedule(&mut self, _st: &mut VcpuState) -> Result<(), ExitKind> {
        crate::task::scheduler::reschedule();
        Ok(())
    }

    fn vendor_exit(&mut self, _vcpu: &Vcpu, exit: VmExit, st: &mut VcpuState) -> Option<ExitKind> {
        match exit {
            VmExit::InvalidState => {
                st.exit.detail = self.vmcb_ref().control.exit_code;
                Some(ExitKind::InvalidState)
            }
            VmExit::Other(code) => {
                st.exit.detail = code;
                Some(ExitKind::Unhandled)
            }
            // SVM reports no other kind (ControlRegister and ExceptionOrNmi are VMX's).
            _ => {
                st.exit.detail = self.vmcb_ref().control.exit_code;
                Some(ExitKind::Unhandled)
            }
        }
    }
}

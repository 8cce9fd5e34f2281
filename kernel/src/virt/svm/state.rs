//! The guest state between the VMCB and the monitor's page: `apply` what the monitor changed
//! and `export` what it needs. See: APM Vol 2 Appendix B (the VMCB state save area).
use super::*;

impl SvmVcpu {
    /// Load what the monitor changed (its `dirty` bits) into the VMCB.
    pub fn apply(&mut self, st: &VcpuState) {
        use keel_abi::vcpu::dirty;
        let d = st.dirty;
        if d & dirty::GPRS != 0 {
            self.gprs = st.gprs;
            let (rax, rsp) = (st.gprs[RAX], st.gprs[4]);
            let s = &mut self.vmcb().save;
            s.rax = rax;
            s.rsp = rsp;
        }
        let v = self.vmcb();
        if d & dirty::RIP != 0 {
            v.save.rip = st.rip;
        }
        if d & dirty::RFLAGS != 0 {
            // Reserved bits: bit 1 set, bits 3, 5, 15, 22-63 clear. See: SDM Vol 1 3.4.3.
            v.save.rflags = (st.rflags & 0x003f_7fd5) | 2;
        }
        if d & dirty::CRS != 0 {
            v.save.cr0 = st.cr0;
            v.save.cr2 = st.cr2;
            v.save.cr3 = st.cr3;
            v.save.cr4 = st.cr4;
        }
        if d & dirty::EFER != 0 {
            // Only SCE, LME, LMA, NXE are the guest's; SVME must stay set (APM 15.5.1).
            v.save.efer = (st.efer & ((1 << 0) | (1 << 8) | (1 << 10) | (1 << 11))) | EFER_SVME;
        }
        if d & dirty::SEGS != 0 {
            let conv = |s: &keel_abi::vcpu::Segment| VmcbSegment {
                selector: s.selector,
                attrib: s.attrib & 0xfff,
                limit: s.limit,
                base: s.base,
            };
            v.save.es = conv(&st.segs[seg::ES]);
            v.save.cs = conv(&st.segs[seg::CS]);
            v.save.ss = conv(&st.segs[seg::SS]);
            v.save.ds = conv(&st.segs[seg::DS]);
            v.save.fs = conv(&st.segs[seg::FS]);
            v.save.gs = conv(&st.segs[seg::GS]);
            v.save.ldtr = conv(&st.segs[seg::LDTR]);
            v.save.tr = conv(&st.segs[seg::TR]);
            v.save.cpl = ((st.segs[seg::SS].attrib >> 5) & 3) as u8;
        }
        if d & dirty::TABLES != 0 {
            v.save.gdtr = VmcbSegment { selector: 0, attrib: 0, limit: u32::from(st.gdtr.limit), base: st.gdtr.base };
            v.save.idtr = VmcbSegment { selector: 0, attrib: 0, limit: u32::from(st.idtr.limit), base: st.idtr.base };
        }
    }

    /// Write the registers (GPRs, RIP, RFLAGS, interruptible) straight into the shared state
    /// page, without the kernel's copy of the state in between: the exits that refresh only the
    /// registers (port I/O, MMIO, HLT) are the frequent ones.
    pub fn store_registers(&mut self, page: keel_vcpupage::VcpuPage) {
        let mut gprs = self.gprs;
        let v = self.vmcb();
        gprs[RAX] = v.save.rax;
        gprs[4] = v.save.rsp;
        let interruptible = u32::from(v.save.rflags & (1 << 9) != 0 && v.control.interrupt_shadow & 1 == 0);
        page.set_gprs(gprs);
        page.set_rip(v.save.rip);
        page.set_rflags(v.save.rflags);
        page.set_interruptible(interruptible);
    }

    /// Copy the guest state into `st`: the registers, and with `system` the control registers,
    /// EFER, segments and descriptor tables too.
    pub fn export(&mut self, st: &mut VcpuState, system: bool) {
        let mut gprs = self.gprs;
        let v = self.vmcb();
        gprs[RAX] = v.save.rax;
        gprs[4] = v.save.rsp;
        st.gprs = gprs;
        st.rip = v.save.rip;
        st.rflags = v.save.rflags;
        st.interruptible = u32::from(v.save.rflags & (1 << 9) != 0 && v.control.interrupt_shadow & 1 == 0);
        if !system {
            return;
        }
        st.cr0 = v.save.cr0;
        st.cr2 = v.save.cr2;
        st.cr3 = v.save.cr3;
        st.cr4 = v.save.cr4;
        st.efer = v.save.efer & !EFER_SVME;
        let conv = |s: &VmcbSegment| keel_abi::vcpu::Segment {
            selector: s.selector,
            attrib: s.attrib,
            limit: s.limit,
            base: s.base,
        };
        st.segs[seg::ES] = conv(&v.save.es);
        st.segs[seg::CS] = conv(&v.save.cs);
        st.segs[seg::SS] = conv(&v.save.ss);
        st.segs[seg::DS] = conv(&v.save.ds);
        st.segs[seg::FS] = conv(&v.save.fs);
        st.segs[seg::GS] = conv(&v.save.gs);
        st.segs[seg::LDTR] = conv(&v.save.ldtr);
        st.segs[seg::TR] = conv(&v.save.tr);
        st.gdtr = keel_abi::vcpu::Table { base: v.save.gdtr.base, limit: v.save.gdtr.limit as u16, _pad: [0; 3] };
        st.idtr = keel_abi::vcpu::Table { base: v.save.idtr.base, limit: v.save.idtr.limit as u16, _pad: [0; 3] };
    }
}

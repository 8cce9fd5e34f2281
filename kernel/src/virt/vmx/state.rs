//! The guest state between the VMCS and the monitor's page: control registers through their
//! read shadows, general-purpose registers, and `apply`/`export` of what the monitor changed
//! or needs. See: SDM Vol 3C 25.4 (guest-state area), 25.6.6 (CR masks and shadows).
use super::*;

impl VmxVcpu {
    /// CR0 as the guest sets it: the real register keeps what VMX needs, the shadow shows the rest.
    pub(super) fn set_cr0(&mut self, value: u64) {
        let c = caps();
        write(field::CR0_READ_SHADOW, value);
        write(field::GUEST_CR0, c.cr0.real(value));
    }

    pub(super) fn set_cr4(&mut self, value: u64) {
        let c = caps();
        write(field::CR4_READ_SHADOW, value);
        write(field::GUEST_CR4, c.cr4.real(value));
    }

    pub(super) fn cr0(&self) -> u64 {
        caps().cr0.visible(read(field::GUEST_CR0), read(field::CR0_READ_SHADOW))
    }

    pub(super) fn cr4(&self) -> u64 {
        caps().cr4.visible(read(field::GUEST_CR4), read(field::CR4_READ_SHADOW))
    }

    pub(super) fn gpr(&self, index: u8) -> u64 {
        match usize::from(index) {
            4 => read(field::GUEST_RSP),
            i => self.regs.gprs[i & 15],
        }
    }

    pub(super) fn set_gpr(&mut self, index: u8, value: u64) {
        match usize::from(index) {
            4 => write(field::GUEST_RSP, value),
            i => self.regs.gprs[i & 15] = value,
        }
    }

    /// Load what the monitor changed (its `dirty` bits) into the VMCS.
    pub fn apply(&mut self, st: &VcpuState) {
        use keel_abi::vcpu::dirty;
        if !self.make_current() {
            return;
        }
        let d = st.dirty;
        if d & dirty::GPRS != 0 {
            self.regs.gprs = st.gprs;
            write(field::GUEST_RSP, st.gprs[4]);
        }
        if d & dirty::RIP != 0 {
            write(field::GUEST_RIP, st.rip);
            // The instruction under a STI/MOV SS shadow is done (the monitor emulated it).
            self.clear_interrupt_shadow();
        }
        if d & dirty::RFLAGS != 0 {
            // Reserved bits: bit 1 set, bits 3, 5, 15, 22-63 clear (VM is settled below, once
            // CR0 and EFER are in). See: SDM Vol 1 3.4.3.
            let rflags = (st.rflags & 0x003f_7fd5) | 2;
            write(field::GUEST_RFLAGS, rflags);
            if rflags & RFLAGS_IF == 0 {
                // Blocking by STI needs IF = 1. See: SDM Vol 3C 27.3.1.5.
                let i = read(field::GUEST_INTERRUPTIBILITY) as u32;
                write(field::GUEST_INTERRUPTIBILITY, u64::from(i & !interruptibility::BLOCKING_BY_STI));
            }
        }
        if d & dirty::EFER != 0 {
            // SCE, LME, LMA, NXE: the rest is reserved (VM entry checks it).
            write(field::GUEST_IA32_EFER, st.efer & ((1 << 0) | EFER_LME | EFER_LMA | (1 << 11)));
            self.reload_pdptes = true;
        }
        if d & dirty::CRS != 0 {
            self.set_cr0(st.cr0);
            self.set_cr4(st.cr4);
            self.regs.cr2 = st.cr2;
            write(field::GUEST_CR3, st.cr3);
            self.flush = true;
            self.reload_pdptes = true;
        }
        if d & dirty::SEGS != 0 {
            for (i, s) in st.segs.iter().enumerate() {
                set_segment(i, s);
            }
        }
        if d & dirty::TABLES != 0 {
            write(field::GUEST_GDTR_BASE, st.gdtr.base);
            write(field::GUEST_GDTR_LIMIT, u64::from(st.gdtr.limit));
            write(field::GUEST_IDTR_BASE, st.idtr.base);
            write(field::GUEST_IDTR_LIMIT, u64::from(st.idtr.limit));
        }
        if d & (dirty::RFLAGS | dirty::CRS | dirty::EFER) != 0 {
            // RFLAGS.VM must be 0 in real mode and IA-32e mode (no CPU can be in either with
            // it set). The real CR0 holds the guest's PE (unrestricted guest). See: SDM Vol 3C
            // 27.3.1.4.
            let protected = read(field::GUEST_CR0) & hv::CR0_PE != 0;
            let ia32e = read(field::GUEST_IA32_EFER) & EFER_LMA != 0;
            let rflags = read(field::GUEST_RFLAGS);
            let fixed = hv::entry_rflags(rflags, protected, ia32e);
            if fixed != rflags {
                write(field::GUEST_RFLAGS, fixed);
            }
        }
    }

    /// Copy the guest state into the monitor's page.
    /// Write the registers (GPRs, RIP, RFLAGS, interruptible) straight into the shared state
    /// page (see the SVM backend's `store_registers`).
    pub fn store_registers(&mut self, page: keel_vcpupage::VcpuPage) {
        if !self.make_current() {
            return;
        }
        let mut gprs = self.regs.gprs;
        gprs[4] = read(field::GUEST_RSP);
        let interruptible = u32::from(self.interruptible_now());
        page.set_gprs(gprs);
        page.set_rip(read(field::GUEST_RIP));
        page.set_rflags(read(field::GUEST_RFLAGS));
        page.set_interruptible(interruptible);
    }

    pub fn export(&mut self, st: &mut VcpuState, system: bool) {
        if !self.make_current() {
            return;
        }
        st.gprs = self.regs.gprs;
        st.gprs[4] = read(field::GUEST_RSP);
        st.rip = read(field::GUEST_RIP);
        st.rflags = read(field::GUEST_RFLAGS);
        st.interruptible = u32::from(self.interruptible_now());
        if !system {
            return;
        }
        st.cr0 = self.cr0();
        st.cr2 = self.regs.cr2;
        st.cr3 = read(field::GUEST_CR3);
        st.cr4 = self.cr4();
        st.efer = read(field::GUEST_IA32_EFER);
        for (i, s) in st.segs.iter_mut().enumerate() {
            *s = Segment {
                selector: read(field::guest_selector(i)) as u16,
                attrib: hv::attributes(read(field::guest_access_rights(i)) as u32),
                limit: read(field::guest_limit(i)) as u32,
                base: read(field::guest_base(i)),
            };
        }
        st.gdtr = keel_abi::vcpu::Table {
            base: read(field::GUEST_GDTR_BASE),
            limit: read(field::GUEST_GDTR_LIMIT) as u16,
            _pad: [0; 3],
        };
        st.idtr = keel_abi::vcpu::Table {
            base: read(field::GUEST_IDTR_BASE),
            limit: read(field::GUEST_IDTR_LIMIT) as u16,
            _pad: [0; 3],
        };
    }
}

/// Write one guest segment register (selector, base, limit, access rights). TR goes through
/// `keel_hv::vmx::task_register`: VM entry needs a busy TSS there even in real mode, where the
/// vendor-neutral state (like SVM) may have none. See: SDM Vol 3C 27.3.1.2.
pub(super) fn set_segment(i: usize, s: &Segment) {
    let v = if i == seg::TR {
        hv::task_register(s.selector, s.base, s.limit, s.attrib & 0xfff)
    } else {
        hv::VmcsSegment {
            selector: s.selector,
            base: s.base,
            limit: s.limit,
            access_rights: hv::access_rights(s.attrib & 0xfff),
        }
    };
    write(field::guest_selector(i), u64::from(v.selector));
    write(field::guest_base(i), v.base);
    write(field::guest_limit(i), u64::from(v.limit));
    write(field::guest_access_rights(i), u64::from(v.access_rights));
}

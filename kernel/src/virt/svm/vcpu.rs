//! The SVM vCPU: its VMCB (intercepts, nested paging, ASID, the reset state) and the guest
//! registers SVM does not keep in it. See: APM Vol 2 15.5, 15.25, Appendix B.
use super::*;

pub struct SvmVcpu {
    pub(super) vmcb_frame: mm::Frame,
    pub(super) gprs: [u64; 16],
    pub(super) fpu: alloc::sync::Arc<fpu::FpuArea>,
    pub(super) xcr0: u64,
    pub(super) msrs: crate::virt::MsrShadow,
    /// Mapping generation of the VM at the last entry (a change flushes the TLB).
    pub(super) generation: u32,
}

impl SvmVcpu {
    pub fn new(vm: &Vm) -> Result<Self, keel_abi::Error> {
        // Owned frames: an error below frees what was already allocated.
        let frame = mm::Frame::zeroed().ok_or(keel_abi::Error::NoMemory)?;
        let fpu = fpu::FpuArea::new().ok_or(keel_abi::Error::NoMemory)?;
        let (iopm, msrpm) = *PERMISSION_MAPS.get().ok_or(keel_abi::Error::NotSupported)?;
        let mut vcpu = SvmVcpu {
            vmcb_frame: frame,
            gprs: [0; 16],
            fpu,
            xcr0: 1,
            msrs: crate::virt::MsrShadow::new(),
            generation: u32::MAX,
        };
        let v = vcpu.vmcb();
        *v = Vmcb::zeroed();
        let c = &mut v.control;
        c.intercept_misc1 = misc1::INTR
            | misc1::NMI
            | misc1::SMI
            | misc1::INIT
            | misc1::CPUID
            | misc1::INVD
            | misc1::HLT
            | misc1::INVLPGA
            | misc1::IOIO_PROT
            | misc1::MSR_PROT
            | misc1::SHUTDOWN;
        c.intercept_misc2 = misc2::VMRUN
            | misc2::VMMCALL
            | misc2::VMLOAD
            | misc2::VMSAVE
            | misc2::STGI
            | misc2::CLGI
            | misc2::SKINIT
            | misc2::MONITOR
            | misc2::MWAIT
            | misc2::MWAIT_CONDITIONAL
            | misc2::XSETBV
            | misc2::RDPRU;
        c.iopm_base_pa = iopm;
        c.msrpm_base_pa = msrpm;
        c.guest_asid = vm.asid;
        c.v_intr = vintr::V_INTR_MASKING;
        c.np_control = 1;
        c.n_cr3 = vm.nested_root();
        let s = &mut v.save;
        // The x86 reset state until the monitor writes one. See: APM Vol 2 14.1.3.
        s.cr0 = 0x6000_0010;
        s.efer = EFER_SVME;
        s.rflags = 2;
        s.dr6 = 0xffff_0ff0;
        s.dr7 = 0x400;
        s.g_pat = 0x0007_0406_0007_0406;
        s.cs = VmcbSegment { selector: 0xf000, attrib: 0x9b, limit: 0xffff, base: 0xffff_0000 };
        s.rip = 0xfff0;
        for seg in [&mut s.ds, &mut s.es, &mut s.ss, &mut s.fs, &mut s.gs] {
            *seg = VmcbSegment { selector: 0, attrib: 0x93, limit: 0xffff, base: 0 };
        }
        s.gdtr.limit = 0xffff;
        s.idtr.limit = 0xffff;
        s.ldtr = VmcbSegment { selector: 0, attrib: 0x82, limit: 0xffff, base: 0 };
        s.tr = VmcbSegment { selector: 0, attrib: 0x8b, limit: 0xffff, base: 0 };
        Ok(vcpu)
    }

    pub(super) fn vmcb(&mut self) -> &mut Vmcb {
        // SAFETY: the frame was allocated for this VMCB alone (page-aligned, mapped by the direct
        // map) and is only reached through `self`; the CPU writes it only inside VMRUN, which
        // runs with this borrow's owner blocked in svm_enter.
        unsafe { &mut *(self.vmcb_frame.virt() as *mut Vmcb) }
    }

    pub(super) fn vmcb_ref(&self) -> &Vmcb {
        // SAFETY: as in `vmcb`, shared.
        unsafe { &*(self.vmcb_frame.virt() as *const Vmcb) }
    }
}

impl Drop for SvmVcpu {
    fn drop(&mut self) {
        // The frame itself is freed by its own Drop.
        let _ = LAST_VMCB.compare_exchange(self.vmcb_frame.phys(), 0, Ordering::Relaxed, Ordering::Relaxed);
    }
}

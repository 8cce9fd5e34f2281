//! The VMCB fields behind the guest-state MSRs (EFER without SVME, PAT, SYSCALL and
//! SYSENTER MSRs, segment bases). See: APM Vol 2 Appendix B.
use super::*;

/// The VMCB fields behind the guest MSRs.
pub struct VmcbMsrs<'a>(pub(super) &'a mut Vmcb);

impl crate::virt::GuestMsrs for VmcbMsrs<'_> {
    fn get(&self, which: GuestMsr) -> u64 {
        let s = &self.0.save;
        match which {
            GuestMsr::Efer => s.efer & !EFER_SVME,
            GuestMsr::Pat => s.g_pat,
            GuestMsr::Star => s.star,
            GuestMsr::Lstar => s.lstar,
            GuestMsr::Cstar => s.cstar,
            GuestMsr::Sfmask => s.sfmask,
            GuestMsr::KernelGsBase => s.kernel_gs_base,
            GuestMsr::FsBase => s.fs.base,
            GuestMsr::GsBase => s.gs.base,
            GuestMsr::SysenterCs => s.sysenter_cs,
            GuestMsr::SysenterEsp => s.sysenter_esp,
            GuestMsr::SysenterEip => s.sysenter_eip,
        }
    }

    fn set(&mut self, which: GuestMsr, value: u64) {
        let s = &mut self.0.save;
        match which {
            // LMA is the processor's (read-only): a write keeps it. See: APM Vol 2 3.1.7.
            GuestMsr::Efer => s.efer = (value & !EFER_LMA) | (s.efer & EFER_LMA) | EFER_SVME,
            GuestMsr::Pat => s.g_pat = value,
            GuestMsr::Star => s.star = value,
            GuestMsr::Lstar => s.lstar = value,
            GuestMsr::Cstar => s.cstar = value,
            GuestMsr::Sfmask => s.sfmask = value,
            GuestMsr::KernelGsBase => s.kernel_gs_base = value,
            GuestMsr::FsBase => s.fs.base = value,
            GuestMsr::GsBase => s.gs.base = value,
            GuestMsr::SysenterCs => s.sysenter_cs = value,
            GuestMsr::SysenterEsp => s.sysenter_esp = value,
            GuestMsr::SysenterEip => s.sysenter_eip = value,
        }
    }
}

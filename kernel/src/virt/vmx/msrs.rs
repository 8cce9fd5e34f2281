//! The guest MSRs the VMCS does not switch: STAR, LSTAR, CSTAR, SFMASK and KERNEL_GS_BASE,
//! loaded for the run loop and put back after, and the VMCS fields behind the other
//! guest-state MSRs. See: SDM Vol 3C 25.4.1, 28.3.
use super::*;

impl VmxVcpu {
    /// Load the guest's syscall MSRs; returns the host's. See the module doc.
    ///
    /// # Safety
    /// The host values must be put back (`restore_host_syscall_msrs`) before this thread returns
    /// to ring 3 or switches threads.
    pub(super) unsafe fn load_guest_syscall_msrs(&self) -> [u64; 5] {
        let mut host = [0; 5];
        for (i, &m) in SYSCALL_MSRS.iter().enumerate() {
            // SAFETY: architectural MSRs; the guest values passed keel_hv::msr::check_write
            // (canonical addresses, SFMASK 32 bits) or are the initial zeros; the caller restores
            // the host's before anything depends on them.
            host[i] = unsafe { rdmsr(m) };
            // SAFETY: as above.
            unsafe { wrmsr(m, self.syscall_msrs[i]) };
        }
        host
    }

    /// Put the host's syscall MSRs back, keeping the guest's KERNEL_GS_BASE (SWAPGS changes it).
    ///
    /// # Safety
    /// `host` must be what `load_guest_syscall_msrs` returned on this thread.
    pub(super) unsafe fn restore_host_syscall_msrs(&mut self, host: &[u64; 5]) {
        // SAFETY: reading KERNEL_GS_BASE has no effect; writing back the values read from this
        // CPU before restores the host exactly.
        self.syscall_msrs[KERNEL_GS_SLOT] = unsafe { rdmsr(MSR_KERNEL_GS_BASE) };
        for (i, &m) in SYSCALL_MSRS.iter().enumerate() {
            // SAFETY: as above.
            unsafe { wrmsr(m, host[i]) };
        }
    }
}

/// The guest MSRs behind `GuestMsr`: VMCS fields, or the per-vCPU syscall MSRs (loaded in the
/// CPU while the guest's run loop goes on, so they are written through).
pub struct VmcsMsrs<'a> {
    pub(super) syscall: &'a mut [u64; 5],
}

impl VmcsMsrs<'_> {
    fn syscall_slot(which: GuestMsr) -> Option<usize> {
        match which {
            GuestMsr::Star => Some(0),
            GuestMsr::Lstar => Some(1),
            GuestMsr::Cstar => Some(2),
            GuestMsr::Sfmask => Some(3),
            GuestMsr::KernelGsBase => Some(KERNEL_GS_SLOT),
            _ => None,
        }
    }
}

impl crate::virt::GuestMsrs for VmcsMsrs<'_> {
    fn get(&self, which: GuestMsr) -> u64 {
        if let Some(slot) = Self::syscall_slot(which) {
            // The live value: the guest's SWAPGS changes KERNEL_GS_BASE without an exit.
            // SAFETY: the guest's syscall MSRs are loaded during the run loop; reads are harmless.
            return unsafe { rdmsr(SYSCALL_MSRS[slot]) };
        }
        match which {
            GuestMsr::Efer => read(field::GUEST_IA32_EFER),
            GuestMsr::Pat => read(field::GUEST_IA32_PAT),
            GuestMsr::FsBase => read(field::guest_base(seg::FS)),
            GuestMsr::GsBase => read(field::guest_base(seg::GS)),
            GuestMsr::SysenterCs => read(field::GUEST_SYSENTER_CS),
            GuestMsr::SysenterEsp => read(field::GUEST_SYSENTER_ESP),
            _ => read(field::GUEST_SYSENTER_EIP),
        }
    }

    fn set(&mut self, which: GuestMsr, value: u64) {
        if let Some(slot) = Self::syscall_slot(which) {
            self.syscall[slot] = value;
            // SAFETY: the value passed keel_hv::msr::check_write (canonical, SFMASK 32 bits); the
            // guest's syscall MSRs are loaded now and the host's go back before ring 3 runs.
            unsafe { wrmsr(SYSCALL_MSRS[slot], value) };
            return;
        }
        match which {
            // LMA is the CPU's to set (CR0.PG with LME), not WRMSR's. See: SDM Vol 3A 10.8.5.
            GuestMsr::Efer => {
                let old = read(field::GUEST_IA32_EFER);
                write(field::GUEST_IA32_EFER, (value & !EFER_LMA) | (old & EFER_LMA));
            }
            GuestMsr::Pat => write(field::GUEST_IA32_PAT, value),
            GuestMsr::FsBase => write(field::guest_base(seg::FS), value),
            GuestMsr::GsBase => write(field::guest_base(seg::GS), value),
            GuestMsr::SysenterCs => write(field::GUEST_SYSENTER_CS, value),
            GuestMsr::SysenterEsp => write(field::GUEST_SYSENTER_ESP, value),
            _ => write(field::GUEST_SYSENTER_EIP, value),
        }
    }
}

//! The guest MSR policy: an allow-list. Each MSR the guest may touch is classified; anything
//! else gets #GP, so a guest never reaches a host MSR that would break isolation (VM_CR,
//! VM_HSAVE_PA, IA32_FEATURE_CONTROL, ...). See: SDM Vol 4 (MSR list), APM Vol 2 Appendix A.

/// How the kernel handles one MSR for a guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsrKind {
    /// Kept in the VMCB/VMCS guest area (EFER, PAT, SYSCALL/SYSENTER MSRs, FS/GS bases).
    GuestState(GuestMsr),
    /// The time-stamp counter (reads give the TSC; writes are ignored).
    Tsc,
    /// Reads give a fixed value; writes of that same value are accepted, others #GP.
    Fixed(u64),
    /// Stored per vCPU, no effect on the host (MISC_ENABLE, TSC_AUX, ...).
    Shadow(u32),
    /// The memory type range registers, with the hardware's write checks (`mtrr`).
    Mtrr,
    /// TSC_AUX: per vCPU, and loaded into the CPU while the guest runs (RDTSCP and RDPID read it
    /// natively). Bits 63:32 are reserved (#GP).
    TscAux,
    /// #GP on read and write.
    Refused,
    /// KVM's paravirtual clock (MSR_KVM_SYSTEM_TIME_NEW): the guest gives the address of its
    /// pvclock structure, which the hypervisor fills in.
    KvmSystemTime,
    /// MSR_KVM_WALL_CLOCK_NEW: the guest gives an address for the wall clock at boot.
    KvmWallClock,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestMsr {
    Efer,
    Pat,
    Star,
    Lstar,
    Cstar,
    Sfmask,
    KernelGsBase,
    FsBase,
    GsBase,
    SysenterCs,
    SysenterEsp,
    SysenterEip,
}

use crate::x86::msr as index;
pub use crate::x86::msr::{APIC_BASE, EFER, HWCR, INT_PENDING_MSG, SYSCFG, TSC_AUX};
/// The APIC base a guest sees: 0xfee00000, enabled, bootstrap processor. Relocation refused.
pub const APIC_BASE_VALUE: u64 = 0xfee0_0000 | (1 << 11) | (1 << 8);

/// Shadowed MSRs: (index, reset value). At most `SHADOW_SLOTS` of them.
pub const SHADOWED: &[(u32, u64)] = &[
    (0x1a0, 1),       // IA32_MISC_ENABLE: fast strings
    (0xc000_0103, 0), // TSC_AUX
    (0x8b, 0),        // IA32_BIOS_SIGN_ID (microcode revision)
    (0x6e0, 0),       // IA32_TSC_DEADLINE (no TSC-deadline timer offered; harmless)
];
pub const SHADOW_SLOTS: usize = 8;
const _: () = assert!(SHADOWED.len() <= SHADOW_SLOTS);

pub fn classify(msr: u32) -> MsrKind {
    use GuestMsr::*;
    match msr {
        EFER => MsrKind::GuestState(Efer),
        index::PAT => MsrKind::GuestState(Pat),
        index::STAR => MsrKind::GuestState(Star),
        index::LSTAR => MsrKind::GuestState(Lstar),
        index::CSTAR => MsrKind::GuestState(Cstar),
        index::SFMASK => MsrKind::GuestState(Sfmask),
        index::KERNEL_GS_BASE => MsrKind::GuestState(KernelGsBase),
        index::FS_BASE => MsrKind::GuestState(FsBase),
        index::GS_BASE => MsrKind::GuestState(GsBase),
        index::SYSENTER_CS => MsrKind::GuestState(SysenterCs),
        index::SYSENTER_ESP => MsrKind::GuestState(SysenterEsp),
        index::SYSENTER_EIP => MsrKind::GuestState(SysenterEip),
        index::TSC => MsrKind::Tsc,
        APIC_BASE => MsrKind::Fixed(APIC_BASE_VALUE),
        0x17 => MsrKind::Fixed(0),                   // IA32_PLATFORM_ID
        index::FEATURE_CONTROL => MsrKind::Fixed(1), // IA32_FEATURE_CONTROL: locked, VMX off
        index::VM_CR => MsrKind::Fixed(1 << 4),      // VM_CR: SVM disabled (SVMDIS), as seen by the guest
        // AMD's SYSCFG: no TOM2, no fixed-range DRAM modification bits (Linux's MTRR code reads
        // it unguarded on every AMD CPU of family 0xF and later). See: APM Vol 2 7.9.
        SYSCFG => MsrKind::Fixed(0),
        // AMD's HWCR: TscFreqSel (bit 24), the TSC counts at the P0 frequency (Linux reads it
        // unguarded on families after 0x10 that show an invariant TSC). See: APM Vol 2 A.7.
        HWCR => MsrKind::Fixed(1 << 24),
        // AMD's interrupt pending message register: C1E not active (Linux reads it unguarded on
        // the family 0xF/0x10 parts with erratum 400, QEMU's -cpu max among them).
        INT_PENDING_MSG => MsrKind::Fixed(0),
        index::KVM_SYSTEM_TIME => MsrKind::KvmSystemTime,
        index::KVM_WALL_CLOCK => MsrKind::KvmWallClock,
        TSC_AUX => MsrKind::TscAux,
        m if crate::mtrr::is_mtrr(m) => MsrKind::Mtrr,
        _ => match SHADOWED.iter().position(|&(m, _)| m == msr) {
            Some(i) => MsrKind::Shadow(i as u32),
            None => MsrKind::Refused,
        },
    }
}

/// Check a guest write to TSC_AUX: only bits 31:0 exist. See: SDM Vol 4 (IA32_TSC_AUX).
#[allow(clippy::result_unit_err)] // the only error is "#GP"
pub fn check_tsc_aux(value: u64) -> Result<u64, ()> {
    if value >> 32 == 0 {
        Ok(value)
    } else {
        Err(())
    }
}

/// Is `value` canonical (bits 63:47 all equal)? Base and address MSRs must be.
pub fn is_canonical(value: u64) -> bool {
    let top = value >> 47;
    top == 0 || top == 0x1_ffff
}

/// Check a guest write to a GuestState MSR; `Err(())` means inject #GP.
#[allow(clippy::result_unit_err)] // the only error is "#GP": there is nothing more to say
pub fn check_write(which: GuestMsr, value: u64) -> Result<u64, ()> {
    use GuestMsr::*;
    match which {
        // EFER: SCE, LME, LMA, NXE, and (AMD) FFXSR/LMSLE ignored; SVME is Keel's.
        Efer => {
            use crate::x86::efer;
            let allowed = efer::SCE | efer::LME | efer::LMA | efer::NXE;
            if value & !allowed != 0 {
                return Err(());
            }
            Ok(value)
        }
        // PAT: each byte a valid memory type (0, 1, 4, 5, 6, 7).
        Pat => {
            if value.to_le_bytes().iter().all(|t| matches!(t, 0 | 1 | 4 | 5 | 6 | 7)) {
                Ok(value)
            } else {
                Err(())
            }
        }
        Lstar | Cstar | KernelGsBase | FsBase | GsBase | SysenterEsp | SysenterEip => {
            if is_canonical(value) {
                Ok(value)
            } else {
                Err(())
            }
        }
        Star | Sfmask | SysenterCs => {
            Ok(if which == Sfmask || which == SysenterCs { value & 0xffff_ffff } else { value })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isolation_msrs_are_refused_or_fixed() {
        assert_eq!(classify(0xc001_0117), MsrKind::Refused); // VM_HSAVE_PA
        assert_eq!(classify(0xc001_0114), MsrKind::Fixed(1 << 4)); // VM_CR reads as disabled
        assert_eq!(classify(0x3a), MsrKind::Fixed(1)); // FEATURE_CONTROL: locked, no VMX
        assert_eq!(classify(0x480), MsrKind::Refused); // VMX capability MSRs
        assert_eq!(classify(0xdead_beef), MsrKind::Refused);
        assert_eq!(classify(APIC_BASE), MsrKind::Fixed(APIC_BASE_VALUE));
    }

    #[test]
    fn guest_state_msrs() {
        assert_eq!(classify(EFER), MsrKind::GuestState(GuestMsr::Efer));
        assert_eq!(classify(0xc000_0082), MsrKind::GuestState(GuestMsr::Lstar));
        assert_eq!(classify(0x2ff), MsrKind::Mtrr);
        assert_eq!(classify(0xfe), MsrKind::Mtrr);
        assert_eq!(classify(0x20f), MsrKind::Mtrr, "the eighth variable range's mask");
        assert_eq!(classify(0x210), MsrKind::Refused, "no ninth variable range");
        assert_eq!(classify(0x10), MsrKind::Tsc);
        assert_eq!(classify(TSC_AUX), MsrKind::TscAux);
        assert_eq!(check_tsc_aux(0xffff_ffff), Ok(0xffff_ffff));
        assert_eq!(check_tsc_aux(1 << 32), Err(()), "reserved bits would fault in the host");
    }

    #[test]
    fn write_checks() {
        assert_eq!(check_write(GuestMsr::Efer, 0xd01), Ok(0xd01));
        assert_eq!(check_write(GuestMsr::Efer, 1 << 12), Err(()), "SVME is not the guest's");
        assert_eq!(check_write(GuestMsr::Lstar, 0x0000_8000_0000_0000), Err(()), "non-canonical");
        assert_eq!(check_write(GuestMsr::Lstar, 0xffff_8000_0000_0000), Ok(0xffff_8000_0000_0000));
        assert_eq!(check_write(GuestMsr::Pat, 0x0007_0406_0007_0406), Ok(0x0007_0406_0007_0406));
        assert_eq!(check_write(GuestMsr::Pat, 0x0000_0000_0000_0002), Err(()));
        assert!(is_canonical(0) && is_canonical(u64::MAX) && !is_canonical(1 << 47));
    }
}

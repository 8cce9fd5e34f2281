//! Intel VMX: basic exit reasons and the decoding of exit qualifications into `VmExit`.
//! See: SDM Vol 3C Appendix C (basic exit reasons), 28.2.1 (exit qualifications).

use crate::VmExit;

pub mod reason {
    pub const EXCEPTION_NMI: u32 = 0;
    pub const EXTERNAL_INTERRUPT: u32 = 1;
    pub const TRIPLE_FAULT: u32 = 2;
    pub const INIT: u32 = 3;
    pub const SIPI: u32 = 4;
    pub const INTERRUPT_WINDOW: u32 = 7;
    pub const NMI_WINDOW: u32 = 8;
    pub const CPUID: u32 = 10;
    pub const GETSEC: u32 = 11;
    pub const HLT: u32 = 12;
    pub const INVD: u32 = 13;
    pub const VMCALL: u32 = 18;
    pub const VMCLEAR: u32 = 19;
    pub const VMLAUNCH: u32 = 20;
    pub const VMPTRLD: u32 = 21;
    pub const VMPTRST: u32 = 22;
    pub const VMREAD: u32 = 23;
    pub const VMRESUME: u32 = 24;
    pub const VMWRITE: u32 = 25;
    pub const VMXOFF: u32 = 26;
    pub const VMXON: u32 = 27;
    pub const CR_ACCESS: u32 = 28;
    pub const IO_INSTRUCTION: u32 = 30;
    pub const RDMSR: u32 = 31;
    pub const WRMSR: u32 = 32;
    pub const INVALID_GUEST_STATE: u32 = 33;
    pub const MSR_LOADING: u32 = 34;
    pub const EPT_VIOLATION: u32 = 48;
    pub const EPT_MISCONFIG: u32 = 49;
    pub const INVEPT: u32 = 50;
    pub const INVVPID: u32 = 53;
    pub const XSETBV: u32 = 55;
    pub const VMFUNC: u32 = 59;
}

/// Decode a VM exit from the basic exit reason (low 16 bits of the exit-reason field), the exit
/// qualification and the guest-physical address field.
pub fn decode(exit_reason: u32, qualification: u64, guest_physical: u64) -> VmExit {
    // Bit 31 of the exit-reason field: VM-entry failure.
    if exit_reason & (1 << 31) != 0 {
        return VmExit::InvalidState;
    }
    match exit_reason & 0xffff {
        reason::EXTERNAL_INTERRUPT | reason::INIT | reason::SIPI => VmExit::ExternalInterrupt,
        reason::INTERRUPT_WINDOW => VmExit::InterruptWindow,
        reason::TRIPLE_FAULT => VmExit::Shutdown,
        reason::CPUID => VmExit::Cpuid,
        reason::HLT => VmExit::Hlt,
        reason::IO_INSTRUCTION => {
            // See: SDM Vol 3C Table 28-5.
            VmExit::Io {
                port: (qualification >> 16) as u16,
                size: ((qualification & 7) + 1) as u8,
                write: qualification & (1 << 3) == 0,
                string: qualification & (1 << 4) != 0,
                rep: qualification & (1 << 5) != 0,
                next_rip: None,
            }
        }
        reason::RDMSR => VmExit::MsrRead,
        reason::WRMSR => VmExit::MsrWrite,
        reason::XSETBV => VmExit::Xsetbv,
        reason::EPT_VIOLATION => VmExit::NestedPageFault {
            // See: SDM Vol 3C Table 28-7.
            gpa: guest_physical,
            write: qualification & (1 << 1) != 0,
            fetch: qualification & (1 << 2) != 0,
        },
        reason::GETSEC
        | reason::VMCALL
        | reason::VMCLEAR
        | reason::VMLAUNCH
        | reason::VMPTRLD
        | reason::VMPTRST
        | reason::VMREAD
        | reason::VMRESUME
        | reason::VMWRITE
        | reason::VMXOFF
        | reason::VMXON
        | reason::INVEPT
        | reason::INVVPID
        | reason::VMFUNC => VmExit::VirtualizationInstruction,
        reason::INVALID_GUEST_STATE | reason::MSR_LOADING => VmExit::InvalidState,
        other => VmExit::Other(u64::from(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_and_ept() {
        // OUT DX, AL to 0x3f8: size 1 (0), OUT (bit 3 = 0), DX (bit 6), port in 16-31.
        assert_eq!(
            decode(reason::IO_INSTRUCTION, (0x3f8 << 16) | (1 << 6), 0),
            VmExit::Io { port: 0x3f8, size: 1, write: true, string: false, rep: false, next_rip: None }
        );
        // REP INSD.
        assert!(matches!(
            decode(reason::IO_INSTRUCTION, (0x1f0 << 16) | (1 << 5) | (1 << 4) | (1 << 3) | 3, 0),
            VmExit::Io { size: 4, write: false, string: true, rep: true, .. }
        ));
        assert_eq!(
            decode(reason::EPT_VIOLATION, 0b010, 0xfeb0_0008),
            VmExit::NestedPageFault { gpa: 0xfeb0_0008, write: true, fetch: false }
        );
    }

    #[test]
    fn others() {
        assert_eq!(decode(reason::TRIPLE_FAULT, 0, 0), VmExit::Shutdown);
        assert_eq!(decode(reason::VMXON, 0, 0), VmExit::VirtualizationInstruction);
        assert_eq!(decode(reason::VMCALL, 0, 0), VmExit::VirtualizationInstruction);
        assert_eq!(decode(reason::INVALID_GUEST_STATE | (1 << 31), 0, 0), VmExit::InvalidState);
        assert_eq!(decode(reason::CPUID, 0, 0), VmExit::Cpuid);
        assert_eq!(decode(reason::XSETBV, 0, 0), VmExit::Xsetbv);
        assert_eq!(decode(1000, 0, 0), VmExit::Other(1000));
    }
}

//! AMD SVM: the VMCB layout (APM Vol 2 Appendix B), intercept bits, and the exit decoder.
//! The VMCB is a plain `repr(C)` structure here; the kernel allocates it page-aligned.

use crate::VmExit;
use keel_addr::Gpa;

/// A segment in the VMCB save area. See: APM Vol 2 Table B-2.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub struct VmcbSegment {
    pub selector: u16,
    pub attrib: u16,
    pub limit: u32,
    pub base: u64,
}

/// The control area (offsets 0x000-0x3ff). See: APM Vol 2 Table B-1.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct VmcbControl {
    pub intercept_cr_read: u16,
    pub intercept_cr_write: u16,
    pub intercept_dr_read: u16,
    pub intercept_dr_write: u16,
    pub intercept_exceptions: u32,
    pub intercept_misc1: u32,
    pub intercept_misc2: u32,
    pub intercept_misc3: u32,
    _reserved1: [u8; 0x3c - 0x18],
    pub pause_filter_threshold: u16,
    pub pause_filter_count: u16,
    pub iopm_base_pa: u64,
    pub msrpm_base_pa: u64,
    pub tsc_offset: u64,
    pub guest_asid: u32,
    pub tlb_control: u8,
    _reserved2: [u8; 3],
    pub v_intr: u64,
    pub interrupt_shadow: u64,
    pub exit_code: u64,
    pub exit_info1: u64,
    pub exit_info2: u64,
    pub exit_int_info: u64,
    pub np_control: u64,
    pub avic_apic_bar: u64,
    pub ghcb_pa: u64,
    pub event_inject: u64,
    pub n_cr3: u64,
    pub lbr_virtualization: u64,
    pub vmcb_clean: u32,
    _reserved3: u32,
    pub next_rip: u64,
    pub insn_len: u8,
    pub insn_bytes: [u8; 15],
    _reserved4: [u8; 0x400 - 0xe0],
}

/// The state save area (offsets 0x400-0xfff). See: APM Vol 2 Table B-2.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct VmcbSave {
    pub es: VmcbSegment,
    pub cs: VmcbSegment,
    pub ss: VmcbSegment,
    pub ds: VmcbSegment,
    pub fs: VmcbSegment,
    pub gs: VmcbSegment,
    pub gdtr: VmcbSegment,
    pub ldtr: VmcbSegment,
    pub idtr: VmcbSegment,
    pub tr: VmcbSegment,
    _reserved1: [u8; 0x4cb - 0x4a0],
    pub cpl: u8,
    _reserved2: u32,
    pub efer: u64,
    _reserved3: [u8; 0x548 - 0x4d8],
    pub cr4: u64,
    pub cr3: u64,
    pub cr0: u64,
    pub dr7: u64,
    pub dr6: u64,
    pub rflags: u64,
    pub rip: u64,
    _reserved4: [u8; 0x5d8 - 0x580],
    pub rsp: u64,
    pub s_cet: u64,
    pub ssp: u64,
    pub isst_addr: u64,
    pub rax: u64,
    pub star: u64,
    pub lstar: u64,
    pub cstar: u64,
    pub sfmask: u64,
    pub kernel_gs_base: u64,
    pub sysenter_cs: u64,
    pub sysenter_esp: u64,
    pub sysenter_eip: u64,
    pub cr2: u64,
    _reserved5: [u8; 0x668 - 0x648],
    pub g_pat: u64,
    pub dbgctl: u64,
    _reserved6: [u8; 0x1000 - 0x678],
}

#[derive(Debug, Clone, Copy)]
#[repr(C, align(4096))]
pub struct Vmcb {
    pub control: VmcbControl,
    pub save: VmcbSave,
}

const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<Vmcb>() == 4096);
    assert!(offset_of!(VmcbControl, iopm_base_pa) == 0x40);
    assert!(offset_of!(VmcbControl, guest_asid) == 0x58);
    assert!(offset_of!(VmcbControl, v_intr) == 0x60);
    assert!(offset_of!(VmcbControl, exit_code) == 0x70);
    assert!(offset_of!(VmcbControl, np_control) == 0x90);
    assert!(offset_of!(VmcbControl, event_inject) == 0xa8);
    assert!(offset_of!(VmcbControl, n_cr3) == 0xb0);
    assert!(offset_of!(VmcbControl, next_rip) == 0xc8);
    assert!(offset_of!(VmcbControl, insn_bytes) == 0xd1);
    assert!(offset_of!(Vmcb, save) == 0x400);
    assert!(offset_of!(VmcbSave, cpl) == 0xcb);
    assert!(offset_of!(VmcbSave, efer) == 0xd0);
    assert!(offset_of!(VmcbSave, cr4) == 0x148);
    assert!(offset_of!(VmcbSave, rip) == 0x178);
    assert!(offset_of!(VmcbSave, rsp) == 0x1d8);
    assert!(offset_of!(VmcbSave, rax) == 0x1f8);
    assert!(offset_of!(VmcbSave, cr2) == 0x240);
    assert!(offset_of!(VmcbSave, g_pat) == 0x268);
};

impl Vmcb {
    pub fn zeroed() -> Self {
        let seg = VmcbSegment::default();
        Vmcb {
            control: VmcbControl {
                intercept_cr_read: 0,
                intercept_cr_write: 0,
                intercept_dr_read: 0,
                intercept_dr_write: 0,
                intercept_exceptions: 0,
                intercept_misc1: 0,
                intercept_misc2: 0,
                intercept_misc3: 0,
                _reserved1: [0; 0x3c - 0x18],
                pause_filter_threshold: 0,
                pause_filter_count: 0,
                iopm_base_pa: 0,
                msrpm_base_pa: 0,
                tsc_offset: 0,
                guest_asid: 0,
                tlb_control: 0,
                _reserved2: [0; 3],
                v_intr: 0,
                interrupt_shadow: 0,
                exit_code: 0,
                exit_info1: 0,
                exit_info2: 0,
                exit_int_info: 0,
                np_control: 0,
                avic_apic_bar: 0,
                ghcb_pa: 0,
                event_inject: 0,
                n_cr3: 0,
                lbr_virtualization: 0,
                vmcb_clean: 0,
                _reserved3: 0,
                next_rip: 0,
                insn_len: 0,
                insn_bytes: [0; 15],
                _reserved4: [0; 0x400 - 0xe0],
            },
            save: VmcbSave {
                es: seg,
                cs: seg,
                ss: seg,
                ds: seg,
                fs: seg,
                gs: seg,
                gdtr: seg,
                ldtr: seg,
                idtr: seg,
                tr: seg,
                _reserved1: [0; 0x4cb - 0x4a0],
                cpl: 0,
                _reserved2: 0,
                efer: 0,
                _reserved3: [0; 0x548 - 0x4d8],
                cr4: 0,
                cr3: 0,
                cr0: 0,
                dr7: 0,
                dr6: 0,
                rflags: 0,
                rip: 0,
                _reserved4: [0; 0x5d8 - 0x580],
                rsp: 0,
                s_cet: 0,
                ssp: 0,
                isst_addr: 0,
                rax: 0,
                star: 0,
                lstar: 0,
                cstar: 0,
                sfmask: 0,
                kernel_gs_base: 0,
                sysenter_cs: 0,
                sysenter_esp: 0,
                sysenter_eip: 0,
                cr2: 0,
                _reserved5: [0; 0x668 - 0x648],
                g_pat: 0,
                dbgctl: 0,
                _reserved6: [0; 0x1000 - 0x678],
            },
        }
    }
}

/// intercept_misc1 bits. See: APM Vol 2 Table B-1 (offset 0x0c).
pub mod misc1 {
    pub const INTR: u32 = 1 << 0;
    pub const NMI: u32 = 1 << 1;
    pub const SMI: u32 = 1 << 2;
    pub const INIT: u32 = 1 << 3;
    pub const VINTR: u32 = 1 << 4;
    pub const CPUID: u32 = 1 << 18;
    pub const INVD: u32 = 1 << 22;
    pub const HLT: u32 = 1 << 24;
    pub const INVLPGA: u32 = 1 << 26;
    pub const IOIO_PROT: u32 = 1 << 27;
    pub const MSR_PROT: u32 = 1 << 28;
    pub const SHUTDOWN: u32 = 1 << 31;
}

/// intercept_misc2 bits (offset 0x10).
pub mod misc2 {
    pub const VMRUN: u32 = 1 << 0;
    pub const VMMCALL: u32 = 1 << 1;
    pub const VMLOAD: u32 = 1 << 2;
    pub const VMSAVE: u32 = 1 << 3;
    pub const STGI: u32 = 1 << 4;
    pub const CLGI: u32 = 1 << 5;
    pub const SKINIT: u32 = 1 << 6;
    pub const ICEBP: u32 = 1 << 8;
    pub const MONITOR: u32 = 1 << 10;
    pub const MWAIT: u32 = 1 << 11;
    pub const MWAIT_CONDITIONAL: u32 = 1 << 12;
    pub const XSETBV: u32 = 1 << 13;
    pub const RDPRU: u32 = 1 << 14;
}

/// V_INTR fields (offset 0x60).
pub mod vintr {
    pub const V_IRQ: u64 = 1 << 8;
    pub const V_INTR_PRIO_SHIFT: u64 = 16;
    pub const V_IGN_TPR: u64 = 1 << 20;
    pub const V_INTR_MASKING: u64 = 1 << 24;
}

/// EVENTINJ (offset 0xa8). See: APM Vol 2 15.20.
pub mod eventinj {
    pub const VALID: u64 = 1 << 31;
    pub const ERROR_VALID: u64 = 1 << 11;
    pub const TYPE_INTR: u64 = 0 << 8;
    pub const TYPE_NMI: u64 = 2 << 8;
    pub const TYPE_EXCEPTION: u64 = 3 << 8;
}

/// Exit codes. See: APM Vol 2 Appendix C.
pub mod code {
    pub const EXCP_BASE: u64 = 0x40;
    pub const INTR: u64 = 0x60;
    pub const NMI: u64 = 0x61;
    pub const SMI: u64 = 0x62;
    pub const INIT: u64 = 0x63;
    pub const VINTR: u64 = 0x64;
    pub const CPUID: u64 = 0x72;
    pub const HLT: u64 = 0x78;
    pub const INVD_EXIT: u64 = 0x76;
    pub const INVLPGA: u64 = 0x7a;
    pub const IOIO: u64 = 0x7b;
    pub const MSR: u64 = 0x7c;
    pub const SHUTDOWN: u64 = 0x7f;
    pub const VMRUN: u64 = 0x80;
    pub const VMMCALL: u64 = 0x81;
    pub const VMLOAD: u64 = 0x82;
    pub const VMSAVE: u64 = 0x83;
    pub const STGI: u64 = 0x84;
    pub const CLGI: u64 = 0x85;
    pub const SKINIT: u64 = 0x86;
    pub const MONITOR: u64 = 0x8a;
    pub const MWAIT: u64 = 0x8b;
    pub const MWAIT_CONDITIONAL: u64 = 0x8c;
    pub const XSETBV: u64 = 0x8d;
    pub const RDPRU: u64 = 0x8e;
    pub const NPF: u64 = 0x400;
    pub const INVALID: u64 = u64::MAX;
    /// VMEXIT_INVALID as QEMU's TCG stores it (its exit codes are 32-bit: -1 zero-extended),
    /// e.g. when a guest set a reserved CR4 bit that TCG let through and VMRUN refused.
    pub const INVALID_32: u64 = 0xffff_ffff;
}

/// Decode an exit from EXITCODE, EXITINFO1 and EXITINFO2.
pub fn decode(exit_code: u64, info1: u64, info2: u64) -> VmExit {
    match exit_code {
        code::INTR | code::NMI | code::SMI | code::INIT => VmExit::ExternalInterrupt,
        code::VINTR => VmExit::InterruptWindow,
        code::CPUID => VmExit::Cpuid,
        code::HLT => VmExit::Hlt,
        code::IOIO => {
            // See: APM Vol 2 15.10.2, Figure 15-2 (EXITINFO1 for IOIO).
            let size = if info1 & (1 << 4) != 0 {
                1
            } else if info1 & (1 << 5) != 0 {
                2
            } else {
                4
            };
            VmExit::Io {
                port: (info1 >> 16) as u16,
                size,
                write: info1 & 1 == 0,
                string: info1 & (1 << 2) != 0,
                rep: info1 & (1 << 3) != 0,
                next_rip: Some(info2),
            }
        }
        code::MSR => {
            if info1 & 1 == 1 {
                VmExit::MsrWrite
            } else {
                VmExit::MsrRead
            }
        }
        code::XSETBV => VmExit::Xsetbv,
        code::NPF => {
            VmExit::NestedPageFault { gpa: Gpa(info2), write: info1 & (1 << 1) != 0, fetch: info1 & (1 << 4) != 0 }
        }
        code::SHUTDOWN => VmExit::Shutdown,
        code::VMRUN
        | code::VMMCALL
        | code::VMLOAD
        | code::VMSAVE
        | code::STGI
        | code::CLGI
        | code::SKINIT
        | code::INVLPGA
        | code::RDPRU => VmExit::VirtualizationInstruction,
        code::INVALID | code::INVALID_32 => VmExit::InvalidState,
        code::MONITOR | code::MWAIT | code::MWAIT_CONDITIONAL => VmExit::MonitorMwait,
        code::INVD_EXIT => VmExit::Invd,
        other => VmExit::Other(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_exits() {
        // OUT 0x3f8, AL: type OUT (0), size 8 (bit 4), port in 16-31.
        let e = decode(code::IOIO, (0x3f8 << 16) | (1 << 4), 0x1234);
        assert_eq!(
            e,
            VmExit::Io { port: 0x3f8, size: 1, write: true, string: false, rep: false, next_rip: Some(0x1234) }
        );
        // REP INSW from 0x1f0.
        let e = decode(code::IOIO, (0x1f0 << 16) | (1 << 5) | (1 << 3) | (1 << 2) | 1, 0);
        assert_eq!(e, VmExit::Io { port: 0x1f0, size: 2, write: false, string: true, rep: true, next_rip: Some(0) });
        let e = decode(code::IOIO, (0xcfc << 16) | (1 << 6) | 1, 0);
        assert!(matches!(e, VmExit::Io { size: 4, write: false, .. }));
    }

    #[test]
    fn other_exits() {
        assert_eq!(
            decode(code::NPF, 0b10, 0xfeb0_0000),
            VmExit::NestedPageFault { gpa: Gpa(0xfeb0_0000), write: true, fetch: false }
        );
        assert_eq!(
            decode(code::NPF, 0b1_0000, 0x1000),
            VmExit::NestedPageFault { gpa: Gpa(0x1000), write: false, fetch: true }
        );
        assert_eq!(decode(code::MSR, 1, 0), VmExit::MsrWrite);
        assert_eq!(decode(code::MSR, 0, 0), VmExit::MsrRead);
        assert_eq!(decode(code::INTR, 0, 0), VmExit::ExternalInterrupt);
        assert_eq!(decode(code::VINTR, 0, 0), VmExit::InterruptWindow);
        assert_eq!(decode(code::SHUTDOWN, 0, 0), VmExit::Shutdown);
        assert_eq!(decode(code::INVALID, 0, 0), VmExit::InvalidState);
        assert_eq!(decode(code::INVALID_32, 0, 0), VmExit::InvalidState);
        for c in [
            code::VMRUN,
            code::VMMCALL,
            code::VMLOAD,
            code::VMSAVE,
            code::STGI,
            code::CLGI,
            code::SKINIT,
            code::INVLPGA,
        ] {
            assert_eq!(decode(c, 0, 0), VmExit::VirtualizationInstruction);
        }
        assert_eq!(decode(code::MWAIT, 0, 0), VmExit::MonitorMwait);
        assert_eq!(decode(code::MONITOR, 0, 0), VmExit::MonitorMwait);
        assert_eq!(decode(code::INVD_EXIT, 0, 0), VmExit::Invd);
        assert_eq!(decode(0x4e, 0, 0), VmExit::Other(0x4e));
    }
}

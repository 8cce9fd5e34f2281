//! Intel VMX without hardware: VMCS field encodings, control bits, capability-MSR arithmetic,
//! segment access-rights conversion, CR0/CR4 shadowing, and the decoding of exits into `VmExit`.
//! See: SDM Vol 3C Appendix A (capability MSRs), Appendix B (field encodings), Appendix C (basic
//! exit reasons), 25.4 (guest-state area), 25.6-25.8 (controls), 28.2.1 (exit qualifications).

use crate::VmExit;
use keel_addr::Gpa;

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
    pub const MWAIT: u32 = 36;
    pub const MONITOR: u32 = 39;
    pub const EPT_VIOLATION: u32 = 48;
    pub const EPT_MISCONFIG: u32 = 49;
    pub const INVEPT: u32 = 50;
    pub const INVVPID: u32 = 53;
    pub const XSETBV: u32 = 55;
    pub const VMFUNC: u32 = 59;
}

/// VMCS field encodings. See: SDM Vol 3C Appendix B.
pub mod field {
    // 16-bit control and host-state fields (B.1.1, B.1.3).
    pub const VPID: u32 = 0x0000;
    pub const HOST_ES_SELECTOR: u32 = 0x0c00;
    pub const HOST_CS_SELECTOR: u32 = 0x0c02;
    pub const HOST_SS_SELECTOR: u32 = 0x0c04;
    pub const HOST_DS_SELECTOR: u32 = 0x0c06;
    pub const HOST_FS_SELECTOR: u32 = 0x0c08;
    pub const HOST_GS_SELECTOR: u32 = 0x0c0a;
    pub const HOST_TR_SELECTOR: u32 = 0x0c0c;
    // 64-bit fields (B.2).
    pub const EPT_POINTER: u32 = 0x201a;
    pub const GUEST_PHYSICAL_ADDRESS: u32 = 0x2400;
    pub const VMCS_LINK_POINTER: u32 = 0x2800;
    pub const GUEST_IA32_DEBUGCTL: u32 = 0x2802;
    pub const GUEST_IA32_PAT: u32 = 0x2804;
    pub const GUEST_IA32_EFER: u32 = 0x2806;
    pub const GUEST_PDPTE0: u32 = 0x280a;
    pub const HOST_IA32_PAT: u32 = 0x2c00;
    pub const HOST_IA32_EFER: u32 = 0x2c02;
    // 32-bit fields (B.3).
    pub const PIN_BASED_CONTROLS: u32 = 0x4000;
    pub const PROCESSOR_BASED_CONTROLS: u32 = 0x4002;
    pub const EXCEPTION_BITMAP: u32 = 0x4004;
    pub const CR3_TARGET_COUNT: u32 = 0x400a;
    pub const EXIT_CONTROLS: u32 = 0x400c;
    pub const EXIT_MSR_STORE_COUNT: u32 = 0x400e;
    pub const EXIT_MSR_LOAD_COUNT: u32 = 0x4010;
    pub const ENTRY_CONTROLS: u32 = 0x4012;
    pub const ENTRY_MSR_LOAD_COUNT: u32 = 0x4014;
    pub const ENTRY_INTERRUPTION_INFO: u32 = 0x4016;
    pub const ENTRY_EXCEPTION_ERROR_CODE: u32 = 0x4018;
    pub const ENTRY_INSTRUCTION_LENGTH: u32 = 0x401a;
    pub const SECONDARY_CONTROLS: u32 = 0x401e;
    pub const VM_INSTRUCTION_ERROR: u32 = 0x4400;
    pub const EXIT_REASON: u32 = 0x4402;
    pub const EXIT_INTERRUPTION_INFO: u32 = 0x4404;
    pub const IDT_VECTORING_INFO: u32 = 0x4408;
    pub const IDT_VECTORING_ERROR_CODE: u32 = 0x440a;
    pub const EXIT_INSTRUCTION_LENGTH: u32 = 0x440c;
    pub const GUEST_GDTR_LIMIT: u32 = 0x4810;
    pub const GUEST_IDTR_LIMIT: u32 = 0x4812;
    pub const GUEST_INTERRUPTIBILITY: u32 = 0x4824;
    pub const GUEST_ACTIVITY_STATE: u32 = 0x4826;
    pub const GUEST_SYSENTER_CS: u32 = 0x482a;
    pub const HOST_SYSENTER_CS: u32 = 0x4c00;
    // Natural-width fields (B.4).
    pub const CR0_GUEST_HOST_MASK: u32 = 0x6000;
    pub const CR4_GUEST_HOST_MASK: u32 = 0x6002;
    pub const CR0_READ_SHADOW: u32 = 0x6004;
    pub const CR4_READ_SHADOW: u32 = 0x6006;
    pub const EXIT_QUALIFICATION: u32 = 0x6400;
    pub const GUEST_CR0: u32 = 0x6800;
    pub const GUEST_CR3: u32 = 0x6802;
    pub const GUEST_CR4: u32 = 0x6804;
    pub const GUEST_GDTR_BASE: u32 = 0x6816;
    pub const GUEST_IDTR_BASE: u32 = 0x6818;
    pub const GUEST_DR7: u32 = 0x681a;
    pub const GUEST_RSP: u32 = 0x681c;
    pub const GUEST_RIP: u32 = 0x681e;
    pub const GUEST_RFLAGS: u32 = 0x6820;
    pub const GUEST_PENDING_DEBUG: u32 = 0x6822;
    pub const GUEST_SYSENTER_ESP: u32 = 0x6824;
    pub const GUEST_SYSENTER_EIP: u32 = 0x6826;
    pub const HOST_CR0: u32 = 0x6c00;
    pub const HOST_CR3: u32 = 0x6c02;
    pub const HOST_CR4: u32 = 0x6c04;
    pub const HOST_FS_BASE: u32 = 0x6c06;
    pub const HOST_GS_BASE: u32 = 0x6c08;
    pub const HOST_TR_BASE: u32 = 0x6c0a;
    pub const HOST_GDTR_BASE: u32 = 0x6c0c;
    pub const HOST_IDTR_BASE: u32 = 0x6c0e;
    pub const HOST_SYSENTER_ESP: u32 = 0x6c10;
    pub const HOST_SYSENTER_EIP: u32 = 0x6c12;
    pub const HOST_RSP: u32 = 0x6c14;
    pub const HOST_RIP: u32 = 0x6c16;

    /// The guest segment fields, in the order ES, CS, SS, DS, FS, GS, LDTR, TR (the same order as
    /// `keel_abi::vcpu::seg`): selector, limit, access rights, base. See: SDM Vol 3C 25.4.1.
    pub const fn guest_selector(seg: usize) -> u32 {
        0x0800 + 2 * seg as u32
    }
    pub const fn guest_limit(seg: usize) -> u32 {
        0x4800 + 2 * seg as u32
    }
    pub const fn guest_access_rights(seg: usize) -> u32 {
        0x4814 + 2 * seg as u32
    }
    pub const fn guest_base(seg: usize) -> u32 {
        0x6806 + 2 * seg as u32
    }
}

/// Capability MSRs. See: SDM Vol 3C Appendix A.
pub mod msr {
    pub const FEATURE_CONTROL: u32 = 0x3a;
    pub const BASIC: u32 = 0x480;
    pub const PINBASED_CTLS: u32 = 0x481;
    pub const PROCBASED_CTLS: u32 = 0x482;
    pub const EXIT_CTLS: u32 = 0x483;
    pub const ENTRY_CTLS: u32 = 0x484;
    pub const CR0_FIXED0: u32 = 0x486;
    pub const CR0_FIXED1: u32 = 0x487;
    pub const CR4_FIXED0: u32 = 0x488;
    pub const CR4_FIXED1: u32 = 0x489;
    pub const PROCBASED_CTLS2: u32 = 0x48b;
    pub const EPT_VPID_CAP: u32 = 0x48c;
    pub const TRUE_PINBASED_CTLS: u32 = 0x48d;
    pub const TRUE_PROCBASED_CTLS: u32 = 0x48e;
    pub const TRUE_EXIT_CTLS: u32 = 0x48f;
    pub const TRUE_ENTRY_CTLS: u32 = 0x490;

    /// IA32_FEATURE_CONTROL: lock, VMX outside SMX. See: SDM Vol 3C 24.7.
    pub const FEATURE_CONTROL_LOCK: u64 = 1 << 0;
    pub const FEATURE_CONTROL_VMX_OUTSIDE_SMX: u64 = 1 << 2;

    /// IA32_VMX_BASIC: the VMCS revision (bits 30:0), region size (44:32), 32-bit physical
    /// addresses only (48), TRUE control MSRs (55). See: SDM Vol 3C A.1.
    pub const fn basic_revision(basic: u64) -> u32 {
        (basic & 0x7fff_ffff) as u32
    }
    pub const fn basic_region_size(basic: u64) -> u64 {
        (basic >> 32) & 0x1fff
    }
    pub const BASIC_ADDRESSES_32BIT: u64 = 1 << 48;
    pub const BASIC_TRUE_CONTROLS: u64 = 1 << 55;

    /// IA32_VMX_EPT_VPID_CAP. See: SDM Vol 3C A.10.
    pub const EPT_INVEPT_SINGLE: u64 = 1 << 25;
    pub const EPT_INVEPT_ALL: u64 = 1 << 26;
}

/// Pin-based VM-execution controls. See: SDM Vol 3C 25.6.1.
pub mod pin {
    pub const EXTERNAL_INTERRUPT_EXITING: u32 = 1 << 0;
    pub const NMI_EXITING: u32 = 1 << 3;
}

/// Primary processor-based VM-execution controls. See: SDM Vol 3C 25.6.2, Table 25-6.
pub mod proc {
    pub const INTERRUPT_WINDOW_EXITING: u32 = 1 << 2;
    pub const HLT_EXITING: u32 = 1 << 7;
    pub const MWAIT_EXITING: u32 = 1 << 10;
    pub const CR3_LOAD_EXITING: u32 = 1 << 15;
    pub const CR3_STORE_EXITING: u32 = 1 << 16;
    pub const CR8_LOAD_EXITING: u32 = 1 << 19;
    pub const CR8_STORE_EXITING: u32 = 1 << 20;
    pub const USE_TPR_SHADOW: u32 = 1 << 21;
    pub const UNCONDITIONAL_IO_EXITING: u32 = 1 << 24;
    pub const USE_IO_BITMAPS: u32 = 1 << 25;
    pub const USE_MSR_BITMAPS: u32 = 1 << 28;
    pub const MONITOR_EXITING: u32 = 1 << 29;
    pub const SECONDARY_CONTROLS: u32 = 1 << 31;
}

/// Secondary processor-based VM-execution controls. See: SDM Vol 3C 25.6.2, Table 25-7.
pub mod proc2 {
    pub const ENABLE_EPT: u32 = 1 << 1;
    pub const ENABLE_RDTSCP: u32 = 1 << 3;
    pub const ENABLE_VPID: u32 = 1 << 5;
    pub const UNRESTRICTED_GUEST: u32 = 1 << 7;
    pub const ENABLE_INVPCID: u32 = 1 << 12;
    pub const ENABLE_XSAVES: u32 = 1 << 20;
}

/// VM-exit controls. See: SDM Vol 3C 25.7.1, Table 25-13.
pub mod exit_ctl {
    pub const SAVE_DEBUG_CONTROLS: u32 = 1 << 2;
    pub const HOST_ADDRESS_SPACE_SIZE: u32 = 1 << 9;
    pub const ACKNOWLEDGE_INTERRUPT: u32 = 1 << 15;
    pub const SAVE_PAT: u32 = 1 << 18;
    pub const LOAD_PAT: u32 = 1 << 19;
    pub const SAVE_EFER: u32 = 1 << 20;
    pub const LOAD_EFER: u32 = 1 << 21;
}

/// VM-entry controls. See: SDM Vol 3C 25.8.1, Table 25-15.
pub mod entry_ctl {
    pub const LOAD_DEBUG_CONTROLS: u32 = 1 << 2;
    pub const IA32E_MODE_GUEST: u32 = 1 << 9;
    pub const LOAD_PAT: u32 = 1 << 14;
    pub const LOAD_EFER: u32 = 1 << 15;
}

/// The VM-entry interruption-information field and the IDT-vectoring information field (same
/// layout for bits 31, 11, 10:8, 7:0). See: SDM Vol 3C 25.8.3 (Table 25-17), 25.9.3.
pub mod intr {
    pub const VALID: u32 = 1 << 31;
    pub const DELIVER_ERROR_CODE: u32 = 1 << 11;
    pub const TYPE_EXTERNAL: u32 = 0 << 8;
    pub const TYPE_NMI: u32 = 2 << 8;
    pub const TYPE_HARDWARE_EXCEPTION: u32 = 3 << 8;
    pub const TYPE_MASK: u32 = 7 << 8;

    /// The interruption-information value that re-injects the event an exit interrupted (from
    /// the IDT-vectoring information field): bit 12 is undefined there and 30:12 must be zero at
    /// entry, and whether the type needs the VM-entry instruction length (software interrupts and
    /// exceptions: types 4, 5, 6). See: SDM Vol 3C 28.2.4, 27.6.1.
    pub fn reinjection(idt_vectoring: u32) -> Option<(u32, bool)> {
        if idt_vectoring & VALID == 0 {
            return None;
        }
        let info = idt_vectoring & (VALID | DELIVER_ERROR_CODE | TYPE_MASK | 0xff);
        let ty = (info & TYPE_MASK) >> 8;
        Some((info, matches!(ty, 4..=6)))
    }
}

/// Guest interruptibility state. See: SDM Vol 3C 25.4.2, Table 25-3.
pub mod interruptibility {
    pub const BLOCKING_BY_STI: u32 = 1 << 0;
    pub const BLOCKING_BY_MOV_SS: u32 = 1 << 1;
    pub const BLOCKING_BY_NMI: u32 = 1 << 3;
}

/// A VMX control value for `want` (bits that must be 1) and `optional` (bits set when the CPU
/// allows them), against its capability MSR: bits 31:0 are the allowed 0-settings (a 1 there
/// forces the control to 1), bits 63:32 the allowed 1-settings (a 0 there forces it to 0).
/// `Err` holds the wanted bits the CPU cannot set. See: SDM Vol 3C A.3-A.5 (and A.2 for why the
/// TRUE MSRs are used when IA32_VMX_BASIC bit 55 is set).
pub fn adjust_controls(want: u32, optional: u32, cap: u64) -> Result<u32, u32> {
    let must_be_one = cap as u32;
    let may_be_one = (cap >> 32) as u32;
    let missing = want & !may_be_one;
    if missing != 0 {
        return Err(missing);
    }
    Ok((want | (optional & may_be_one) | must_be_one) & may_be_one)
}

/// VMX access rights (bit 16: unusable) from the vCPU page's 12-bit attributes (SVM packing: type
/// 0-3, S 4, DPL 5-6, P 7, AVL 8, L 9, D/B 10, G 11). A segment that is not present is unusable.
/// See: SDM Vol 3C 25.4.1 (Table 25-2).
pub const AR_UNUSABLE: u32 = 1 << 16;

pub fn access_rights(attrib: u16) -> u32 {
    let attrib = u32::from(attrib);
    let ar = (attrib & 0xff) | (((attrib >> 8) & 0xf) << 12);
    if attrib & 0x80 == 0 {
        ar | AR_UNUSABLE
    } else {
        ar
    }
}

/// The vCPU page's attributes from VMX access rights. An unusable segment reads as not present
/// (its DPL is kept: SS.DPL is the CPL even when SS is unusable).
pub fn attributes(ar: u32) -> u16 {
    let attrib = (ar & 0xff) | (((ar >> 12) & 0xf) << 8);
    let attrib = if ar & AR_UNUSABLE != 0 { attrib & !0x80 } else { attrib };
    attrib as u16
}

/// A segment register as the VMCS holds it: selector, base, limit, access rights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmcsSegment {
    pub selector: u16,
    pub base: u64,
    pub limit: u32,
    pub access_rights: u32,
}

/// Segment type of a 32-bit busy TSS (also the 64-bit busy TSS in IA-32e mode), and the bit that
/// makes an available TSS type (1, 9) busy (3, 11). See: SDM Vol 3A 3.5 (Table 3-2).
pub const TSS_TYPE_BUSY32: u32 = 11;
const TSS_BUSY_BIT: u32 = 2;

/// TR as VM entry accepts it, from the vCPU page's TR (SVM-style 12-bit attributes).
///
/// VM entry requires TR to be usable and a busy TSS (type 3 or 11; 11 in IA-32e mode) in every
/// mode, real mode included, while SVM ignores TR until a task switch or an I/O permission check.
/// So a vendor-neutral state may describe no TR at all (attributes with P = 0), as a monitor's
/// reset state does: that becomes the TR a CPU holds from reset until the first LTR (selector 0,
/// base 0, limit 0xFFFF, present), typed as the busy 32-bit TSS VM entry needs. An available TSS
/// type (as SVM may report it) becomes busy, as LTR would have made it. Anything else is passed
/// on unchanged: if it is still invalid the entry fails and only that guest stops.
/// See: SDM Vol 3C 27.3.1.2 (checks on guest segment registers: TR), Vol 3A 10.1.1
/// (Table 10-1: TR after reset), Vol 2A LTR (marks the TSS busy).
pub fn task_register(selector: u16, base: u64, limit: u32, attrib: u16) -> VmcsSegment {
    if attrib & 0x80 == 0 {
        return VmcsSegment { selector: 0, base: 0, limit: 0xffff, access_rights: 0x80 | TSS_TYPE_BUSY32 };
    }
    let mut access_rights = access_rights(attrib);
    let ty = access_rights & 0xf;
    if access_rights & 0x10 == 0 && (ty == 1 || ty == 9) {
        access_rights |= TSS_BUSY_BIT;
    }
    VmcsSegment { selector, base, limit, access_rights }
}

/// RFLAGS as VM entry accepts it: bit 1 set, the reserved bits (3, 5, 15, 22-63) clear, and VM
/// (bit 17) clear when the guest is in real mode (CR0.PE = 0) or IA-32e mode, where a CPU can
/// never have it set. See: SDM Vol 3C 27.3.1.4 (checks on guest RFLAGS), Vol 1 3.4.3.
pub fn entry_rflags(rflags: u64, protected: bool, ia32e: bool) -> u64 {
    const VM: u64 = 1 << 17;
    let rflags = (rflags & 0x003f_7fd5) | 2;
    if !protected || ia32e {
        rflags & !VM
    } else {
        rflags
    }
}

/// How a guest CR0 or CR4 maps onto the real register while VMX runs the guest: bits the CPU
/// needs fixed in VMX operation are kept so in the real register, and the guest/host mask makes
/// the guest read (and change) them through the read shadow instead. See: SDM Vol 3C 25.6.6,
/// 26.3 (MOV from CR0/CR4 in VMX non-root operation), A.7, A.8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrShadow {
    /// Bits the real register must have set.
    pub must_be_one: u64,
    /// Bits the real register may have set.
    pub may_be_one: u64,
}

pub use crate::x86::cr0::{NE as CR0_NE, PE as CR0_PE, PG as CR0_PG};
pub use crate::x86::cr4::VMXE as CR4_VMXE;

impl CrShadow {
    /// CR0 for an "unrestricted guest": PE and PG are the guest's. See: SDM Vol 3C 27.3.1.1.
    pub fn cr0_unrestricted(fixed0: u64, fixed1: u64) -> Self {
        CrShadow { must_be_one: fixed0 & !(CR0_PE | CR0_PG), may_be_one: fixed1 }
    }

    pub fn cr4(fixed0: u64, fixed1: u64) -> Self {
        CrShadow { must_be_one: fixed0, may_be_one: fixed1 }
    }

    /// The guest/host mask: the bits the host owns (a guest write that changes one exits).
    pub fn mask(&self) -> u64 {
        self.must_be_one | !self.may_be_one
    }

    /// The real register for a guest value.
    pub fn real(&self, guest: u64) -> u64 {
        (guest | self.must_be_one) & self.may_be_one
    }

    /// The value the guest sees: its own bits from the real register, the host's from the shadow.
    pub fn visible(&self, real: u64, shadow: u64) -> u64 {
        (real & !self.mask()) | (shadow & self.mask())
    }
}

/// A control-register access (exit reason 28). See: SDM Vol 3C 28.2.1, Table 28-3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrAccess {
    MovTo { cr: u8, gpr: u8 },
    MovFrom { cr: u8, gpr: u8 },
    Clts,
    Lmsw { source: u16 },
}

pub fn decode_cr_access(qualification: u64) -> CrAccess {
    let cr = (qualification & 0xf) as u8;
    let gpr = ((qualification >> 8) & 0xf) as u8;
    match (qualification >> 4) & 3 {
        0 => CrAccess::MovTo { cr, gpr },
        1 => CrAccess::MovFrom { cr, gpr },
        2 => CrAccess::Clts,
        _ => CrAccess::Lmsw { source: (qualification >> 16) as u16 },
    }
}

/// The VM-instruction error numbers worth naming in a log line. See: SDM Vol 3C 31.4.
pub fn instruction_error_name(error: u64) -> &'static str {
    match error {
        2 => "VMCALL in VMX root operation",
        3 => "VMCLEAR with invalid physical address",
        4 => "VMCLEAR with VMXON pointer",
        5 => "VMLAUNCH with non-clear VMCS",
        6 => "VMRESUME with non-launched VMCS",
        7 => "VM entry with invalid control field(s)",
        8 => "VM entry with invalid host-state field(s)",
        9 => "VMPTRLD with invalid physical address",
        11 => "VMPTRLD with incorrect VMCS revision identifier",
        12 => "VMREAD/VMWRITE from/to unsupported VMCS component",
        13 => "VMWRITE to read-only VMCS component",
        26 => "VM entry with events blocked by MOV SS",
        28 => "invalid operand to INVEPT/INVVPID",
        _ => "other VM-instruction error",
    }
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
            gpa: Gpa(guest_physical),
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
        reason::MWAIT | reason::MONITOR => VmExit::MonitorMwait,
        reason::INVD => VmExit::Invd,
        reason::CR_ACCESS => VmExit::ControlRegister { qualification },
        reason::EXCEPTION_NMI => VmExit::ExceptionOrNmi,
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
            VmExit::NestedPageFault { gpa: Gpa(0xfeb0_0008), write: true, fetch: false }
        );
    }

    #[test]
    fn control_adjustment() {
        // Allowed-0 (forced on) 0x16, allowed-1 0xff_fffe: bit 0 can never be set.
        let cap = (0x00ff_fffeu64 << 32) | 0x16;
        assert_eq!(adjust_controls(0x8, 0, cap), Ok(0x1e));
        assert_eq!(adjust_controls(0x8, 0x100_0000 | 0x20, cap), Ok(0x3e), "optional bits only where allowed");
        assert_eq!(adjust_controls(0x9, 0, cap), Err(0x1));
        // Secondary controls: EPT and unrestricted guest allowed, VPID not.
        let cap2 = u64::from(proc2::ENABLE_EPT | proc2::UNRESTRICTED_GUEST) << 32;
        assert_eq!(
            adjust_controls(proc2::ENABLE_EPT | proc2::UNRESTRICTED_GUEST, proc2::ENABLE_VPID, cap2),
            Ok(proc2::ENABLE_EPT | proc2::UNRESTRICTED_GUEST)
        );
    }

    #[test]
    fn access_rights_round_trip() {
        // 64-bit code: type 0xb, S, P, L, G.
        assert_eq!(access_rights(0xa9b), 0xa09b);
        assert_eq!(attributes(0xa09b), 0xa9b);
        // Flat data: D/B and G.
        assert_eq!(access_rights(0xc93), 0xc093);
        assert_eq!(attributes(0xc093), 0xc93);
        // Real-mode data and a busy TSS stay usable.
        assert_eq!(access_rights(0x93), 0x93);
        assert_eq!(access_rights(0x8b), 0x8b);
        // Null / not present: unusable, DPL kept both ways.
        assert_eq!(access_rights(0), AR_UNUSABLE);
        assert_eq!(access_rights(0x60), AR_UNUSABLE | 0x60);
        assert_eq!(attributes(AR_UNUSABLE | 0x60 | 0x93), 0x73);
        assert_eq!(attributes(AR_UNUSABLE), 0);
    }

    #[test]
    fn task_register_for_entry() {
        // The reset state a monitor leaves empty (attributes 0): the reset TR, as a busy TSS.
        let reset = VmcsSegment { selector: 0, base: 0, limit: 0xffff, access_rights: 0x8b };
        assert_eq!(task_register(0, 0, 0, 0), reset);
        assert_eq!(task_register(0x28, 0x1234, 0x67, 0x09), reset, "not present: no TR");
        // A busy TSS is kept as it is (16-bit, 32-bit and 64-bit alike).
        let tss = VmcsSegment { selector: 0x28, base: 0xffff_8000_0010_0000, limit: 0x67, access_rights: 0x8b };
        assert_eq!(task_register(0x28, tss.base, 0x67, 0x8b), tss);
        assert_eq!(task_register(0x28, 0, 0x2b, 0x83).access_rights, 0x83);
        // An available TSS (as SVM may report it) becomes busy.
        assert_eq!(task_register(0x28, 0, 0x67, 0x89).access_rights, 0x8b);
        assert_eq!(task_register(0x28, 0, 0x2b, 0x81).access_rights, 0x83);
        // Other types are left for VM entry to refuse (only that guest stops).
        assert_eq!(task_register(0x28, 0, 0x67, 0x82).access_rights, 0x82);
        assert_eq!(task_register(0x28, 0, 0x67, 0x99).access_rights, 0x99, "a code segment is not a TSS");
        // G and the other high attributes move to bits 12-15 as for any segment.
        assert_eq!(task_register(0x28, 0, 0xffff_ffff, 0x88b).access_rights, 0x808b);
    }

    #[test]
    fn rflags_for_entry() {
        assert_eq!(entry_rflags(0, false, false), 2, "bit 1 always set");
        assert_eq!(entry_rflags(u64::MAX, true, false), 0x003f_7fd7, "reserved bits clear");
        let vm_if = (1 << 17) | (1 << 9) | 2;
        assert_eq!(entry_rflags(vm_if, false, false), (1 << 9) | 2, "no VM in real mode");
        assert_eq!(entry_rflags(vm_if, true, true), (1 << 9) | 2, "no VM in IA-32e mode");
        assert_eq!(entry_rflags(vm_if, true, false), vm_if, "virtual-8086 mode in protected mode");
    }

    #[test]
    fn cr_shadows() {
        // Typical fixed bits: CR0 PE|NE|PG must be one; CR4 VMXE must be one.
        let cr0 = CrShadow::cr0_unrestricted(0x8000_0021, 0xffff_ffff);
        assert_eq!(cr0.must_be_one, CR0_NE);
        assert_eq!(cr0.real(0x6000_0010), 0x6000_0030, "real mode keeps NE set underneath");
        assert_eq!(cr0.visible(0x6000_0030, 0x6000_0010), 0x6000_0010, "the guest sees its own NE");
        assert_eq!(cr0.mask(), CR0_NE | 0xffff_ffff_0000_0000);
        let cr4 = CrShadow::cr4(CR4_VMXE, 0x3727ff);
        assert_eq!(cr4.real(0x20), 0x2020);
        assert_eq!(cr4.visible(0x2020 | 0x40000, 0x20), 0x40020, "VMXE hidden, guest bits shown");
        assert_ne!(cr4.mask() & (1 << 22), 0, "a bit the CPU cannot set is the host's");
    }

    #[test]
    fn cr_access_and_reinjection() {
        // MOV CR0, RBX: CR 0, type 0, GPR 3.
        assert_eq!(decode_cr_access(0x300), CrAccess::MovTo { cr: 0, gpr: 3 });
        assert_eq!(decode_cr_access(0x0413), CrAccess::MovFrom { cr: 3, gpr: 4 });
        assert_eq!(decode_cr_access(0x20), CrAccess::Clts);
        assert_eq!(decode_cr_access((0x1u64 << 16) | 0x30), CrAccess::Lmsw { source: 1 });
        assert_eq!(intr::reinjection(0x20), None);
        // #PF being delivered, with the undefined bit 12 set: re-inject without it.
        assert_eq!(intr::reinjection(0x8000_1b0e), Some((0x8000_0b0e, false)));
        // INT3 (software exception, type 6) needs the instruction length.
        assert_eq!(intr::reinjection(0x8000_0603), Some((0x8000_0603, true)));
    }

    #[test]
    fn others() {
        assert_eq!(decode(reason::TRIPLE_FAULT, 0, 0), VmExit::Shutdown);
        assert_eq!(decode(reason::VMXON, 0, 0), VmExit::VirtualizationInstruction);
        assert_eq!(decode(reason::VMCALL, 0, 0), VmExit::VirtualizationInstruction);
        assert_eq!(decode(reason::INVALID_GUEST_STATE | (1 << 31), 0, 0), VmExit::InvalidState);
        assert_eq!(decode(reason::CPUID, 0, 0), VmExit::Cpuid);
        assert_eq!(decode(reason::XSETBV, 0, 0), VmExit::Xsetbv);
        assert_eq!(decode(reason::MWAIT, 0, 0), VmExit::MonitorMwait);
        assert_eq!(decode(reason::INVD, 0, 0), VmExit::Invd);
        assert_eq!(decode(reason::CR_ACCESS, 0x104, 0), VmExit::ControlRegister { qualification: 0x104 });
        assert_eq!(decode(reason::EXCEPTION_NMI, 0, 0), VmExit::ExceptionOrNmi);
        assert_eq!(decode(1000, 0, 0), VmExit::Other(1000));
    }
}

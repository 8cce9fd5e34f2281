//! The architectural numbers the kernel and its pure crates share, each defined once: MSR
//! indices, and the bits of EFER, CR0, CR4 and RFLAGS that Keel's code looks at. What the guest
//! may do with an MSR is `msr.rs`'s policy, not this file's. (The test guests keep their own
//! copies on purpose: they check Keel independently.)
//!
//! See: SDM Vol 4 Table 2-2 (MSRs), Vol 3A 2.5 (control registers), 2.2.1 (EFER), Vol 1 3.4.3
//! (RFLAGS); APM Vol 2 Appendix A (AMD's MSRs).

/// MSR indices.
pub mod msr {
    pub const TSC: u32 = 0x10;
    pub const APIC_BASE: u32 = 0x1b;
    pub const FEATURE_CONTROL: u32 = 0x3a;
    pub const SYSENTER_CS: u32 = 0x174;
    pub const SYSENTER_ESP: u32 = 0x175;
    pub const SYSENTER_EIP: u32 = 0x176;
    pub const PAT: u32 = 0x277;
    pub const EFER: u32 = 0xc000_0080;
    pub const STAR: u32 = 0xc000_0081;
    pub const LSTAR: u32 = 0xc000_0082;
    pub const CSTAR: u32 = 0xc000_0083;
    pub const SFMASK: u32 = 0xc000_0084;
    pub const FS_BASE: u32 = 0xc000_0100;
    pub const GS_BASE: u32 = 0xc000_0101;
    pub const KERNEL_GS_BASE: u32 = 0xc000_0102;
    pub const TSC_AUX: u32 = 0xc000_0103;
    /// AMD: SYSCFG, HWCR, the interrupt pending message register, VM_CR, VM_HSAVE_PA.
    pub const SYSCFG: u32 = 0xc001_0010;
    pub const HWCR: u32 = 0xc001_0015;
    pub const INT_PENDING_MSG: u32 = 0xc001_0055;
    pub const VM_CR: u32 = 0xc001_0114;
    pub const VM_HSAVE_PA: u32 = 0xc001_0117;
    /// KVM's paravirtual clock MSRs (the "new" numbers). See: Linux Documentation/virt/kvm/x86/msr.rst.
    pub const KVM_WALL_CLOCK: u32 = 0x4b56_4d00;
    pub const KVM_SYSTEM_TIME: u32 = 0x4b56_4d01;
}

/// EFER bits.
pub mod efer {
    pub const SCE: u64 = 1 << 0;
    pub const LME: u64 = 1 << 8;
    pub const LMA: u64 = 1 << 10;
    pub const NXE: u64 = 1 << 11;
    pub const SVME: u64 = 1 << 12;
}

/// CR0 bits.
pub mod cr0 {
    pub const PE: u64 = 1 << 0;
    pub const TS: u64 = 1 << 3;
    pub const NE: u64 = 1 << 5;
    pub const NW: u64 = 1 << 29;
    pub const CD: u64 = 1 << 30;
    pub const PG: u64 = 1 << 31;
}

/// CR4 bits.
pub mod cr4 {
    pub const PAE: u64 = 1 << 5;
    pub const VMXE: u64 = 1 << 13;
    pub const OSXSAVE: u64 = 1 << 18;
}

/// RFLAGS bits.
pub mod rflags {
    pub const IF: u64 = 1 << 9;
}

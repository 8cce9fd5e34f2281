//! Keel's CPUID feature policy as data: for each feature register, the bits a guest may see
//! (an allow-list: a bit a new CPU adds stays hidden until someone decides it is safe), the
//! bits that need an XSAVE state component or a backend control, and the MSRs each shown
//! feature implies (the host tests check that every one of them is emulated).
//!
//! A bit is allowed only if the platform gives the guest everything the bit promises: the
//! instructions execute (natively, or because the backend enables them), and every MSR the
//! feature defines answers. Performance monitoring, machine checks, debug stores, thermal and
//! power management, speculation-control MSRs, protection keys, CET, SGX, TSX control, topology
//! extensions, x2APIC and the TSC-deadline timer are hidden: Keel does not emulate their MSRs
//! or devices. See: SDM Vol 2A CPUID (Tables 3-8, 3-10, 3-11), APM Vol 3 Appendix E.

use crate::x86::msr;
use crate::{mtrr, xsave};

/// Which register of a leaf a bit is in.
pub const EAX: usize = 0;
pub const EBX: usize = 1;
pub const ECX: usize = 2;
pub const EDX: usize = 3;

/// One CPUID feature bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bit {
    pub leaf: u32,
    pub subleaf: u32,
    pub reg: usize,
    pub bit: u32,
}

const fn bit(leaf: u32, subleaf: u32, reg: usize, bit: u32) -> Bit {
    Bit { leaf, subleaf, reg, bit }
}

const fn bits(list: &[u32]) -> u32 {
    let mut m = 0;
    let mut i = 0;
    while i < list.len() {
        m |= 1 << list[i];
        i += 1;
    }
    m
}

// Bits the model sets, forces or computes itself.
pub const OSXSAVE: Bit = bit(1, 0, ECX, 27);
pub const XSAVE: Bit = bit(1, 0, ECX, 26);
pub const HYPERVISOR: Bit = bit(1, 0, ECX, 31);
pub const APIC: Bit = bit(1, 0, EDX, 9);
pub const MTRR: Bit = bit(1, 0, EDX, 12);
pub const LM: Bit = bit(0x8000_0001, 0, EDX, 29);
pub const RDTSCP: Bit = bit(0x8000_0001, 0, EDX, 27);
pub const RDPID: Bit = bit(7, 0, ECX, 22);
pub const INVPCID: Bit = bit(7, 0, EBX, 10);
/// Leaf 6 EAX bit 2: the APIC timer keeps running in every C-state (the emulated one always
/// does, and a guest has no deep C-states).
pub const ARAT: Bit = bit(6, 0, EAX, 2);
/// Leaf 0x80000007 EDX bit 8: the TSC runs at a constant rate (the guest's is the host's).
pub const INVARIANT_TSC: Bit = bit(0x8000_0007, 0, EDX, 8);

/// The bits a guest may see, per feature register: (leaf, subleaf, register, allowed mask).
/// Everything not listed here is zero in every feature register.
pub const ALLOWED: &[(u32, u32, usize, u32)] = &[
    // SSE3, PCLMULQDQ, SSSE3, FMA, CMPXCHG16B, PCID, SSE4.1, SSE4.2, MOVBE, POPCNT, AES, XSAVE,
    // AVX, F16C, RDRAND. (OSXSAVE mirrors CR4; the hypervisor bit is set.)
    (1, 0, ECX, bits(&[0, 1, 9, 12, 13, 17, 19, 20, 22, 23, 25, 26, 28, 29, 30])),
    // FPU, VME, DE, PSE, TSC, MSR, PAE, CX8, APIC, SEP, MTRR, PGE, CMOV, PAT, PSE36, CLFSH, MMX,
    // FXSR, SSE, SSE2, SS. Not MCE/MCA (no machine-check MSRs), PSN, DS, ACPI, HTT, TM, PBE.
    (1, 0, EDX, bits(&[0, 1, 2, 3, 4, 5, 6, 8, 9, 11, 12, 13, 15, 16, 17, 19, 23, 24, 25, 26, 27])),
    // FSGSBASE, BMI1, HLE, AVX2, FDP_EXCPTN_ONLY, SMEP, BMI2, ERMS, INVPCID, RTM, FPU CS/DS
    // deprecated, AVX512F, AVX512DQ, RDSEED, ADX, SMAP, AVX512_IFMA, CLFLUSHOPT, CLWB, AVX512PF,
    // AVX512ER, AVX512CD, SHA, AVX512BW, AVX512VL. Not TSC_ADJUST, SGX, RDT, MPX, PT.
    (7, 0, EBX, bits(&[0, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 16, 17, 18, 19, 20, 21, 23, 24, 26, 27, 28, 29, 30, 31])),
    // PREFETCHWT1, AVX512_VBMI, UMIP, AVX512_VBMI2, GFNI, VAES, VPCLMULQDQ, AVX512_VNNI,
    // AVX512_BITALG, AVX512_VPOPCNTDQ, RDPID, CLDEMOTE, MOVDIRI, MOVDIR64B. Not PKU/OSPKE,
    // WAITPKG, CET, TME, LA57 (5-level paging is not tested), KL, ENQCMD, SGX_LC, PKS.
    (7, 0, ECX, bits(&[0, 1, 2, 6, 8, 9, 10, 11, 12, 14, 22, 25, 27, 28])),
    // AVX512_4VNNIW, AVX512_4FMAPS, FSRM, AVX512_VP2INTERSECT, MD_CLEAR, SERIALIZE, TSXLDTRK,
    // AVX512_FP16. Not the speculation-control, core-capability or AMX bits.
    (7, 0, EDX, bits(&[2, 3, 4, 8, 10, 14, 16, 23])),
    // AVX_VNNI, AVX512_BF16, fast zero-length MOVSB, fast short STOSB and CMPSB.
    (7, 1, EAX, bits(&[4, 5, 10, 11, 12])),
    // XSAVEOPT, XSAVEC, XGETBV with ECX = 1. Not XSAVES (IA32_XSS is not offered) nor XFD.
    (0xd, 1, EAX, bits(&[0, 1, 2])),
    // LAHF_LM, ABM, SSE4A, MisAlignSse, 3DNowPrefetch, XOP, FMA4, TBM. Not CMP_LEGACY (topology),
    // SVM, ExtApicSpace, AltMovCr8 (CR8 and the emulated APIC's TPR would disagree), OSVW, IBS,
    // SKINIT, WDT, LWP, TCE, NodeId, TOPOEXT, the performance counter extensions, MONITORX.
    (0x8000_0001, 0, ECX, bits(&[0, 5, 6, 7, 8, 11, 16, 21])),
    // AMD's copies of leaf 1's bits, SYSCALL, NX, MMXEXT, 1 GiB pages, RDTSCP, LM, 3DNow!.
    // Not FFXSR (EFER.FFXSR is not the guest's).
    (
        0x8000_0001,
        0,
        EDX,
        bits(&[0, 1, 2, 3, 4, 5, 6, 8, 9, 11, 12, 13, 15, 16, 17, 20, 22, 23, 24, 26, 27, 29, 30, 31]),
    ),
    // Invariant TSC only.
    (0x8000_0007, 0, EDX, bits(&[8])),
    // CLZERO, RstrFpErrPtrs, WBNOINVD. Not the speculation controls, INVLPGB, RDPRU, PPIN.
    (0x8000_0008, 0, EBX, bits(&[0, 2, 9])),
];

/// Feature bits that are only true with an XSAVE state component offered (XCR0 bits).
pub const NEEDS_STATE: &[(Bit, u64)] = &[
    (bit(1, 0, ECX, 28), xsave::AVX),           // AVX
    (bit(1, 0, ECX, 12), xsave::AVX),           // FMA
    (bit(1, 0, ECX, 29), xsave::AVX),           // F16C
    (bit(7, 0, EBX, 5), xsave::AVX),            // AVX2
    (bit(7, 0, ECX, 9), xsave::AVX),            // VAES
    (bit(7, 0, ECX, 10), xsave::AVX),           // VPCLMULQDQ
    (bit(7, 1, EAX, 4), xsave::AVX),            // AVX_VNNI
    (bit(0x8000_0001, 0, ECX, 11), xsave::AVX), // XOP
    (bit(0x8000_0001, 0, ECX, 16), xsave::AVX), // FMA4
    (bit(7, 0, EBX, 16), xsave::AVX512),        // AVX512F
    (bit(7, 0, EBX, 17), xsave::AVX512),        // AVX512DQ
    (bit(7, 0, EBX, 21), xsave::AVX512),        // AVX512_IFMA
    (bit(7, 0, EBX, 26), xsave::AVX512),        // AVX512PF
    (bit(7, 0, EBX, 27), xsave::AVX512),        // AVX512ER
    (bit(7, 0, EBX, 28), xsave::AVX512),        // AVX512CD
    (bit(7, 0, EBX, 30), xsave::AVX512),        // AVX512BW
    (bit(7, 0, EBX, 31), xsave::AVX512),        // AVX512VL
    (bit(7, 0, ECX, 1), xsave::AVX512),         // AVX512_VBMI
    (bit(7, 0, ECX, 6), xsave::AVX512),         // AVX512_VBMI2
    (bit(7, 0, ECX, 11), xsave::AVX512),        // AVX512_VNNI
    (bit(7, 0, ECX, 12), xsave::AVX512),        // AVX512_BITALG
    (bit(7, 0, ECX, 14), xsave::AVX512),        // AVX512_VPOPCNTDQ
    (bit(7, 0, EDX, 2), xsave::AVX512),         // AVX512_4VNNIW
    (bit(7, 0, EDX, 3), xsave::AVX512),         // AVX512_4FMAPS
    (bit(7, 0, EDX, 8), xsave::AVX512),         // AVX512_VP2INTERSECT
    (bit(7, 0, EDX, 23), xsave::AVX512),        // AVX512_FP16
    (bit(7, 1, EAX, 5), xsave::AVX512),         // AVX512_BF16
];

/// The MSRs a shown feature bit promises (the host tests check each is emulated, and the
/// hostile guest reads them). See: SDM Vol 4 Table 2-2, APM Vol 2 Appendix A.
pub const IMPLIED_MSRS: &[(Bit, &[u32])] = &[
    (bit(1, 0, EDX, 4), &[msr::TSC]),
    (APIC, &[msr::APIC_BASE]),
    (bit(1, 0, EDX, 11), &[msr::SYSENTER_CS, msr::SYSENTER_ESP, msr::SYSENTER_EIP]), // SEP
    (MTRR, &[mtrr::MTRRCAP, mtrr::DEF_TYPE]), // the ranges MTRRcap counts: see mtrr.rs
    (bit(1, 0, EDX, 16), &[msr::PAT]),
    (bit(0x8000_0001, 0, EDX, 11), &[msr::STAR, msr::LSTAR, msr::CSTAR, msr::SFMASK]), // SYSCALL
    (LM, &[msr::EFER, msr::FS_BASE, msr::GS_BASE, msr::KERNEL_GS_BASE]),
    (RDTSCP, &[msr::TSC_AUX]),
    (RDPID, &[msr::TSC_AUX]),
];

/// MSRs a kernel reads on an AMD processor (vendor "AuthenticAMD") without a feature bit to ask:
/// SYSCFG with the MTRRs, HWCR when the TSC is invariant, and the interrupt pending message
/// register on the family 0xF/0x10 parts with erratum 400 (QEMU's -cpu max has such a
/// signature). See: APM Vol 2 7.9, Linux arch/x86/kernel/cpu/{amd.c,mtrr/}, process.c.
pub const AMD_MSRS: &[u32] = &[msr::SYSCFG, msr::HWCR, msr::INT_PENDING_MSG];

/// Feature bits a backend can only honour with a control it may not have: RDTSCP and RDPID
/// need VMX's "enable RDTSCP", INVPCID its "enable INVPCID" (both #UD otherwise).
/// See: SDM Vol 3C 25.6.2 (secondary processor-based controls).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackendCaps {
    pub rdtscp: bool,
    pub invpcid: bool,
}

impl BackendCaps {
    /// SVM runs both natively (Keel does not intercept them).
    pub const SVM: BackendCaps = BackendCaps { rdtscp: true, invpcid: true };
}

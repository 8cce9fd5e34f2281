//! What hardware virtualization a CPU offers, decided from raw CPUID and MSR values.
//!
//! The kernel reads the registers on each core (thin glue) and hands them here; this crate says
//! whether Keel can run guests on that core and, if not, what is missing and what the user can do
//! about it, in one line a person understands.
//!
//! Keel needs VMX with EPT (4-level walks, write-back tables, INVEPT) on Intel, or SVM with nested
//! paging on AMD. Does not: enable anything (the vCPU issue does VMXON / EFER.SVME).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

mod code;

use core::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vendor {
    Intel,
    Amd,
    Other,
}

impl Vendor {
    /// From the 12-byte CPUID leaf 0 vendor string.
    pub fn from_id(id: &[u8; 12]) -> Self {
        match id {
            b"GenuineIntel" => Self::Intel,
            b"AuthenticAMD" => Self::Amd,
            _ => Self::Other,
        }
    }
}

/// The raw register values, as read on one core. `None` for an MSR means it could not be read
/// (the read raised #GP), which we treat as "feature absent".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawCaps {
    pub vendor: Vendor,
    /// CPUID.1:ECX bit 5.
    pub vmx: bool,
    /// IA32_FEATURE_CONTROL (MSR 0x3a).
    pub feature_control: Option<u64>,
    /// IA32_VMX_PROCBASED_CTLS (MSR 0x482).
    pub procbased_ctls: Option<u64>,
    /// IA32_VMX_PROCBASED_CTLS2 (MSR 0x48b).
    pub procbased_ctls2: Option<u64>,
    /// IA32_VMX_EPT_VPID_CAP (MSR 0x48c).
    pub ept_vpid_cap: Option<u64>,
    /// CPUID.80000001H:ECX bit 2.
    pub svm: bool,
    /// VM_CR (MSR 0xc0010114).
    pub vm_cr: Option<u64>,
    /// CPUID.8000000AH:EBX (number of ASIDs) and EDX (features), if the leaf exists.
    pub svm_leaf: Option<(u32, u32)>,
}

/// What Keel can do on one core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Intel VMX with EPT; `large_pages` says whether EPT has 2 MiB pages.
    VmxEpt { large_pages: bool, firmware_unlocked: bool },
    /// AMD SVM with nested paging.
    SvmNpt { asids: u32 },
    /// No usable virtualization, and why.
    Missing(Missing),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// Neither VMX nor SVM in CPUID.
    NoExtension(Vendor),
    /// IA32_FEATURE_CONTROL is locked with VMX-outside-SMX off.
    VmxDisabledByFirmware,
    /// VMX without EPT, or EPT without what Keel needs.
    NoEpt(EptGap),
    /// VM_CR.SVMDIS is set.
    SvmDisabledByFirmware,
    /// SVM without nested paging.
    NoNpt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EptGap {
    NoSecondaryControls,
    NoEpt,
    NoFourLevelWalk,
    NoWriteBack,
    NoInvept,
}

// See: SDM Vol 3C 24.6.2 (secondary controls), Vol 3D A.3.2, A.3.3, A.10 (EPT/VPID capabilities).
const FEATURE_CONTROL_LOCK: u64 = 1 << 0;
const FEATURE_CONTROL_VMX_OUTSIDE_SMX: u64 = 1 << 2;
const PROCBASED_ALLOW_SECONDARY: u64 = 1 << (32 + 31);
const PROCBASED2_ALLOW_EPT: u64 = 1 << (32 + 1);
const EPT_WALK_4: u64 = 1 << 6;
const EPT_WB: u64 = 1 << 14;
const EPT_2M: u64 = 1 << 16;
const EPT_INVEPT: u64 = 1 << 20;
// See: APM Vol 2 15.30.1 (VM_CR), CPUID Fn8000_000A.
const VM_CR_SVMDIS: u64 = 1 << 4;
const SVM_FEATURE_NP: u32 = 1 << 0;

pub fn decide(raw: &RawCaps) -> Verdict {
    if raw.vmx {
        return decide_vmx(raw);
    }
    if raw.svm {
        return decide_svm(raw);
    }
    Verdict::Missing(Missing::NoExtension(raw.vendor))
}

fn decide_vmx(raw: &RawCaps) -> Verdict {
    let fc = raw.feature_control.unwrap_or(0);
    let locked = fc & FEATURE_CONTROL_LOCK != 0;
    if locked && fc & FEATURE_CONTROL_VMX_OUTSIDE_SMX == 0 {
        return Verdict::Missing(Missing::VmxDisabledByFirmware);
    }
    let gap = |g| Verdict::Missing(Missing::NoEpt(g));
    if raw.procbased_ctls.unwrap_or(0) & PROCBASED_ALLOW_SECONDARY == 0 {
        return gap(EptGap::NoSecondaryControls);
    }
    if raw.procbased_ctls2.unwrap_or(0) & PROCBASED2_ALLOW_EPT == 0 {
        return gap(EptGap::NoEpt);
    }
    let cap = raw.ept_vpid_cap.unwrap_or(0);
    if cap & EPT_WALK_4 == 0 {
        return gap(EptGap::NoFourLevelWalk);
    }
    if cap & EPT_WB == 0 {
        return gap(EptGap::NoWriteBack);
    }
    if cap & EPT_INVEPT == 0 {
        return gap(EptGap::NoInvept);
    }
    Verdict::VmxEpt { large_pages: cap & EPT_2M != 0, firmware_unlocked: !locked }
}

fn decide_svm(raw: &RawCaps) -> Verdict {
    if raw.vm_cr.unwrap_or(0) & VM_CR_SVMDIS != 0 {
        return Verdict::Missing(Missing::SvmDisabledByFirmware);
    }
    match raw.svm_leaf {
        Some((asids, features)) if features & SVM_FEATURE_NP != 0 => Verdict::SvmNpt { asids },
        _ => Verdict::Missing(Missing::NoNpt),
    }
}

impl Verdict {
    pub fn usable(&self) -> bool {
        !matches!(self, Verdict::Missing(_))
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::VmxEpt { large_pages, .. } => {
                write!(
                    f,
                    "Intel VMX with EPT (4-level, write-back, INVEPT{})",
                    if *large_pages { ", 2 MiB pages" } else { "" }
                )
            }
            Verdict::SvmNpt { asids } => write!(f, "AMD SVM with nested paging (NPT), ASIDs: {asids}"),
            Verdict::Missing(m) => write!(f, "{m}"),
        }
    }
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Missing::NoExtension(vendor) => {
                let what = match vendor {
                    Vendor::Intel => "VMX (Intel VT-x)",
                    Vendor::Amd => "SVM (AMD-V)",
                    Vendor::Other => "VMX or SVM",
                };
                write!(
                    f,
                    "the CPU does not report {what}: enable it in the firmware setup \
                     (under QEMU use -cpu max, or -cpu host with KVM)"
                )
            }
            Missing::VmxDisabledByFirmware => write!(
                f,
                "Intel VMX is disabled by the firmware (IA32_FEATURE_CONTROL locked): enable Intel VT-x in the \
                 firmware setup"
            ),
            Missing::NoEpt(gap) => {
                let what = match gap {
                    EptGap::NoSecondaryControls => "no secondary processor-based controls",
                    EptGap::NoEpt => "no EPT",
                    EptGap::NoFourLevelWalk => "EPT without 4-level walks",
                    EptGap::NoWriteBack => "EPT without write-back paging structures",
                    EptGap::NoInvept => "EPT without INVEPT",
                };
                write!(f, "Intel VMX but {what}: Keel needs EPT (Nehalem or newer)")
            }
            Missing::SvmDisabledByFirmware => {
                write!(f, "AMD SVM is disabled by the firmware (VM_CR.SVMDIS): enable SVM in the firmware setup")
            }
            Missing::NoNpt => {
                write!(f, "AMD SVM without nested paging (NPT): Keel needs NPT (AMD RVI, Barcelona or newer)")
            }
        }
    }
}

/// The one boot-log line for all cores, e.g. `AMD SVM with nested paging (NPT), ASIDs: 16, 2 CPUs`.
pub struct Summary<'a> {
    pub verdicts: &'a [Verdict],
}

impl fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(first) = self.verdicts.first() else {
            return write!(f, "no CPUs checked");
        };
        let n = self.verdicts.len();
        let plural = if n == 1 { "" } else { "s" };
        if self.verdicts.iter().all(|v| v == first) {
            return match first {
                Verdict::Missing(m) => {
                    write!(f, "no usable hardware virtualization ({n} CPU{plural}): {m}; guests cannot run")
                }
                usable => write!(f, "{usable}, {n} CPU{plural}"),
            };
        }
        let usable = self.verdicts.iter().filter(|v| v.usable()).count();
        write!(f, "CPUs differ: {usable} of {n} CPU{plural} usable; cpu 0: {first}")?;
        if let Some((i, other)) = self.verdicts.iter().enumerate().find(|(_, v)| *v != first) {
            write!(f, "; cpu {i}: {other}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(vendor: Vendor) -> RawCaps {
        RawCaps {
            vendor,
            vmx: false,
            feature_control: None,
            procbased_ctls: None,
            procbased_ctls2: None,
            ept_vpid_cap: None,
            svm: false,
            vm_cr: None,
            svm_leaf: None,
        }
    }

    fn intel() -> RawCaps {
        RawCaps {
            vmx: true,
            feature_control: Some(0x5),
            procbased_ctls: Some(PROCBASED_ALLOW_SECONDARY),
            procbased_ctls2: Some(PROCBASED2_ALLOW_EPT),
            ept_vpid_cap: Some(EPT_WALK_4 | EPT_WB | EPT_2M | EPT_INVEPT),
            ..none(Vendor::Intel)
        }
    }

    fn qemu_amd() -> RawCaps {
        // What QEMU 7.2 TCG -cpu max reports (shared/TESTBED.md); VM_CR reads as 0.
        RawCaps { svm: true, vm_cr: Some(0), svm_leaf: Some((16, 0x1001_0001)), ..none(Vendor::Amd) }
    }

    #[test]
    fn vendor_strings() {
        assert_eq!(Vendor::from_id(b"GenuineIntel"), Vendor::Intel);
        assert_eq!(Vendor::from_id(b"AuthenticAMD"), Vendor::Amd);
        assert_eq!(Vendor::from_id(b"KVMKVMKVM\0\0\0"), Vendor::Other);
    }

    #[test]
    fn amd_with_npt() {
        let v = decide(&qemu_amd());
        assert_eq!(v, Verdict::SvmNpt { asids: 16 });
        let line = Summary { verdicts: &[v, v] }.to_string();
        assert_eq!(line, "AMD SVM with nested paging (NPT), ASIDs: 16, 2 CPUs");
    }

    #[test]
    fn amd_disabled_or_without_npt() {
        let disabled = RawCaps { vm_cr: Some(VM_CR_SVMDIS | 1 << 3), ..qemu_amd() };
        assert!(decide(&disabled).to_string().contains("enable SVM in the firmware setup"));
        let no_np = RawCaps { svm_leaf: Some((16, 0)), ..qemu_amd() };
        assert_eq!(decide(&no_np), Verdict::Missing(Missing::NoNpt));
        let no_leaf = RawCaps { svm_leaf: None, ..qemu_amd() };
        assert_eq!(decide(&no_leaf), Verdict::Missing(Missing::NoNpt));
    }

    #[test]
    fn intel_with_ept() {
        let v = decide(&intel());
        assert_eq!(v, Verdict::VmxEpt { large_pages: true, firmware_unlocked: false });
        assert!(Summary { verdicts: &[v] }.to_string().starts_with("Intel VMX with EPT"));
        assert!(Summary { verdicts: &[v] }.to_string().ends_with(", 1 CPU"));
        // Unlocked feature control: Keel may enable VMX itself.
        let unlocked = RawCaps { feature_control: Some(0), ..intel() };
        assert_eq!(decide(&unlocked), Verdict::VmxEpt { large_pages: true, firmware_unlocked: true });
    }

    #[test]
    fn intel_gaps() {
        let locked_off = RawCaps { feature_control: Some(0x1), ..intel() };
        assert!(decide(&locked_off).to_string().contains("enable Intel VT-x in the firmware setup"));
        let cases = [
            (RawCaps { procbased_ctls: Some(0), ..intel() }, EptGap::NoSecondaryControls),
            (RawCaps { procbased_ctls2: None, ..intel() }, EptGap::NoEpt),
            (RawCaps { ept_vpid_cap: Some(EPT_WB | EPT_INVEPT), ..intel() }, EptGap::NoFourLevelWalk),
            (RawCaps { ept_vpid_cap: Some(EPT_WALK_4 | EPT_INVEPT), ..intel() }, EptGap::NoWriteBack),
            (RawCaps { ept_vpid_cap: Some(EPT_WALK_4 | EPT_WB), ..intel() }, EptGap::NoInvept),
        ];
        for (raw, gap) in cases {
            assert_eq!(decide(&raw), Verdict::Missing(Missing::NoEpt(gap)));
        }
    }

    #[test]
    fn nothing_at_all() {
        let v = decide(&none(Vendor::Amd));
        let line = Summary { verdicts: &[v] }.to_string();
        assert!(line.starts_with("no usable hardware virtualization (1 CPU): the CPU does not report SVM"), "{line}");
        assert!(line.ends_with("guests cannot run"), "{line}");
    }

    #[test]
    fn cores_that_differ_are_named() {
        let a = decide(&qemu_amd());
        let b = decide(&RawCaps { vm_cr: Some(VM_CR_SVMDIS), ..qemu_amd() });
        let line = Summary { verdicts: &[a, b] }.to_string();
        assert!(line.starts_with("CPUs differ: 1 of 2 CPUs usable"), "{line}");
        assert!(line.contains("cpu 1: AMD SVM is disabled"), "{line}");
        assert_eq!(Summary { verdicts: &[] }.to_string(), "no CPUs checked");
    }

    #[test]
    fn every_verdict_code_reads_back() {
        let mut all = vec![Verdict::SvmNpt { asids: 0 }, Verdict::SvmNpt { asids: u32::MAX }];
        for large_pages in [false, true] {
            for firmware_unlocked in [false, true] {
                all.push(Verdict::VmxEpt { large_pages, firmware_unlocked });
            }
        }
        for v in [Vendor::Intel, Vendor::Amd, Vendor::Other] {
            all.push(Verdict::Missing(Missing::NoExtension(v)));
        }
        for g in
            [EptGap::NoSecondaryControls, EptGap::NoEpt, EptGap::NoFourLevelWalk, EptGap::NoWriteBack, EptGap::NoInvept]
        {
            all.push(Verdict::Missing(Missing::NoEpt(g)));
        }
        all.extend(
            [Missing::VmxDisabledByFirmware, Missing::SvmDisabledByFirmware, Missing::NoNpt].map(Verdict::Missing),
        );
        let mut codes = std::collections::BTreeSet::new();
        for v in all {
            assert!(codes.insert(v.code()), "{v:?}: code used twice");
            assert_eq!(Verdict::from_code(v.code()), Some(v));
        }
        // "Not checked" and codes never made read as None.
        for code in [[0, 0], [1, 4], [3, 3], [4, 1], [5, 5], [8, 0], [u32::MAX, 0]] {
            assert_eq!(Verdict::from_code(code), None, "{code:?}");
        }
    }
}

//! The verdict as two numbers, for the `KernelInfo` CPU record (keel-abi `CpuRecord::virt`):
//! the kernel sends [`Verdict::code`], userland reads it back with [`Verdict::from_code`] and
//! prints it with `Display`. The table is in docs/abi.md; [0, 0] is kept for "not checked".
//!
//! Does not: decide anything (lib.rs does).

use crate::{EptGap, Missing, Vendor, Verdict};

const VENDORS: [Vendor; 3] = [Vendor::Intel, Vendor::Amd, Vendor::Other];
const GAPS: [EptGap; 5] =
    [EptGap::NoSecondaryControls, EptGap::NoEpt, EptGap::NoFourLevelWalk, EptGap::NoWriteBack, EptGap::NoInvept];

fn index_of<T: PartialEq>(table: &[T], item: &T) -> u32 {
    table.iter().position(|t| t == item).unwrap_or(0) as u32
}

impl Verdict {
    /// [kind, detail]: 1 VMX with EPT (detail bit 0: 2 MiB pages, bit 1: firmware left it
    /// unlocked), 2 SVM with NPT (detail: ASIDs), 3 no extension (detail: vendor 0 Intel, 1 AMD,
    /// 2 other), 4 VMX disabled by firmware, 5 VMX without usable EPT (detail: the gap, in
    /// [`EptGap`] order), 6 SVM disabled by firmware, 7 SVM without NPT.
    pub fn code(&self) -> [u32; 2] {
        match *self {
            Verdict::VmxEpt { large_pages, firmware_unlocked } => {
                [1, u32::from(large_pages) | u32::from(firmware_unlocked) << 1]
            }
            Verdict::SvmNpt { asids } => [2, asids],
            Verdict::Missing(Missing::NoExtension(vendor)) => [3, index_of(&VENDORS, &vendor)],
            Verdict::Missing(Missing::VmxDisabledByFirmware) => [4, 0],
            Verdict::Missing(Missing::NoEpt(gap)) => [5, index_of(&GAPS, &gap)],
            Verdict::Missing(Missing::SvmDisabledByFirmware) => [6, 0],
            Verdict::Missing(Missing::NoNpt) => [7, 0],
        }
    }

    /// The verdict `code` made, or None for [0, 0] (not checked) and codes it never makes.
    pub fn from_code(code: [u32; 2]) -> Option<Verdict> {
        let [kind, detail] = code;
        let none_detail = |v: Verdict| (detail == 0).then_some(v);
        match kind {
            1 if detail < 4 => {
                Some(Verdict::VmxEpt { large_pages: detail & 1 != 0, firmware_unlocked: detail & 2 != 0 })
            }
            2 => Some(Verdict::SvmNpt { asids: detail }),
            3 => VENDORS.get(detail as usize).map(|v| Verdict::Missing(Missing::NoExtension(*v))),
            4 => none_detail(Verdict::Missing(Missing::VmxDisabledByFirmware)),
            5 => GAPS.get(detail as usize).map(|g| Verdict::Missing(Missing::NoEpt(*g))),
            6 => none_detail(Verdict::Missing(Missing::SvmDisabledByFirmware)),
            7 => none_detail(Verdict::Missing(Missing::NoNpt)),
            _ => None,
        }
    }
}

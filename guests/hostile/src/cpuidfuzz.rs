//! CPUID over pseudo-random leaves and subleaves: the answers must be stable, keep
//! virtualization hidden, and be zero outside the leaf ranges the maximum leaves announce.

use keel_guest_rt::check::Checks;
use keel_guest_rt::cpu::{cpuid, Cpuid};

use crate::rng::Rng;

const HYPERVISOR: u32 = 0x4000_0000;
const ZERO: Cpuid = Cpuid { eax: 0, ebx: 0, ecx: 0, edx: 0 };

/// What is wrong with the answer for `leaf`/`subleaf`, if anything.
fn violation(leaf: u32, r: Cpuid, max_basic: u32, max_ext: u32) -> Option<&'static str> {
    let outside = (leaf > max_basic && leaf < HYPERVISOR)
        || (HYPERVISOR + 0x200..0x8000_0000).contains(&leaf)
        || (leaf >= 0x8000_0000 && leaf > max_ext);
    if outside && r != ZERO {
        return Some("a leaf beyond the maximum is not all zeros");
    }
    match leaf {
        1 if r.ecx & (1 << 5) != 0 => Some("leaf 1 shows VMX"),
        1 if r.ecx & (1 << 31) == 0 => Some("leaf 1 lacks the hypervisor bit"),
        HYPERVISOR if [r.ebx, r.ecx, r.edx] != [0x6C65_654B; 3] => Some("leaf 0x40000000 is not KeelKeelKeel"),
        0x8000_0001 if r.ecx & (1 << 2) != 0 => Some("leaf 0x80000001 shows SVM"),
        0x8000_000A if r != ZERO => Some("the SVM feature leaf 0x8000000a is not all zeros"),
        _ => None,
    }
}

pub fn fuzz(c: &mut Checks, rng: &mut Rng, count: u32) {
    let max_basic = cpuid(0, 0).eax;
    let max_ext = cpuid(0x8000_0000, 0).eax;
    c.note(format_args!(
        "CPUID: max basic leaf {max_basic:#x}, max extended leaf {max_ext:#x}; {count} random queries"
    ));
    let mut bad = 0u32;
    for _ in 0..count {
        let leaf = match rng.below(5) {
            0 => rng.below(u64::from(max_basic) + 8) as u32,
            1 => HYPERVISOR + rng.below(0x200) as u32,
            2 => 0x8000_0000 + rng.below(u64::from(max_ext & 0xFF) + 8) as u32,
            _ => rng.next() as u32,
        };
        let subleaf = if rng.below(2) == 0 { rng.below(64) as u32 } else { rng.next() as u32 };
        let first = cpuid(leaf, subleaf);
        let second = cpuid(leaf, subleaf);
        let problem = if first != second {
            Some("two queries gave different answers")
        } else {
            violation(leaf, first, max_basic, max_ext)
        };
        if let Some(what) = problem {
            if bad < 8 {
                c.note(format_args!("CPUID {leaf:#x}/{subleaf:#x}: {what}: {first:x?}"));
            }
            bad += 1;
        }
    }
    c.check(
        bad == 0,
        format_args!(
            "{count} random CPUID queries: stable, virtualization hidden, zeros past the maxima ({bad} wrong)"
        ),
    );
}

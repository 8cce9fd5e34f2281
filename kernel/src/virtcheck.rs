//! Reads, on the calling core, the CPUID leaves and MSRs that say what virtualization it has, and
//! records the verdict (decided by the pure `keel-virtcaps` crate) in a per-CPU table.

use keel_virtcaps::{decide, RawCaps, Vendor, Verdict};
use spin::Mutex;

use crate::arch::x86_64::apic::MAX_CPUS;
use crate::arch::x86_64::instructions::{cpuid, rdmsr_safe};

static VERDICTS: Mutex<[Option<Verdict>; MAX_CPUS]> = Mutex::new([None; MAX_CPUS]);

fn read_raw_caps() -> RawCaps {
    let leaf0 = cpuid(0, 0);
    let mut id = [0u8; 12];
    id[0..4].copy_from_slice(&leaf0.ebx.to_le_bytes());
    id[4..8].copy_from_slice(&leaf0.edx.to_le_bytes());
    id[8..12].copy_from_slice(&leaf0.ecx.to_le_bytes());
    let vendor = Vendor::from_id(&id);
    let vmx = cpuid(1, 0).ecx & (1 << 5) != 0;
    let max_ext = cpuid(0x8000_0000, 0).eax;
    let svm = max_ext >= 0x8000_0001 && cpuid(0x8000_0001, 0).ecx & (1 << 2) != 0;
    let svm_leaf = (svm && max_ext >= 0x8000_000a).then(|| {
        let l = cpuid(0x8000_000a, 0);
        (l.ebx, l.edx)
    });
    // VMX capability MSRs exist only with VMX; SVM's VM_CR only with SVM. rdmsr_safe also
    // survives CPUs (or emulators) that lack them. See: SDM Vol 3D A.1, APM Vol 2 15.30.1.
    let msr = |present: bool, index: u32| if present { rdmsr_safe(index) } else { None };
    RawCaps {
        vendor,
        vmx,
        feature_control: msr(vmx, 0x3a),
        procbased_ctls: msr(vmx, 0x482),
        procbased_ctls2: msr(vmx, 0x48b),
        ept_vpid_cap: msr(vmx, 0x48c),
        svm,
        vm_cr: msr(svm, keel_hv::x86::msr::VM_CR),
        svm_leaf,
    }
}

/// Check this core and remember the verdict under its CPU index.
pub fn check_and_record(cpu_index: usize) -> Verdict {
    let verdict = decide(&read_raw_caps());
    if let Some(slot) = VERDICTS.lock().get_mut(cpu_index) {
        *slot = Some(verdict);
    }
    verdict
}

pub fn verdict_of(cpu_index: usize) -> Option<Verdict> {
    VERDICTS.lock().get(cpu_index).copied().flatten()
}

/// The verdicts of the first `count` CPUs that reported one.
pub fn all_verdicts(count: usize) -> alloc::vec::Vec<Verdict> {
    VERDICTS.lock().iter().take(count).flatten().copied().collect()
}

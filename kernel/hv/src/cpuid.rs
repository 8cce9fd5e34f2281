//! The CPUID a guest sees: the host's, with virtualization hidden, the hypervisor bit set, Keel's
//! vendor leaves, and features the platform does not emulate cleared, keeping leaves consistent
//! with each other (shared/TESTBED.md: hiding 0x80000008 while showing LA57 breaks Linux).
//! See: SDM Vol 2A CPUID, APM Vol 3 Appendix E.

/// Keel's hypervisor leaf range.
pub const HYPERVISOR_BASE: u32 = 0x4000_0000;
/// The XSAVE state components guests may enable (XCR0 bits): x87, SSE, AVX and the three AVX-512
/// components. MPX (3, 4), PKRU (9) and AMX (17, 18) are not offered; together the allowed ones
/// fit in the one-page save area Keel keeps per vCPU. See: SDM Vol 1 13.1.
pub const ALLOWED_XCR0: u64 = 0b1110_0111;

/// Where the KVM-compatible paravirtual clock leaves are.
pub const KVM_BASE: u32 = 0x4000_0100;
/// "KeelKeelKeel" in EBX, ECX, EDX.
pub const VENDOR: [u32; 3] = [u32::from_le_bytes(*b"Keel"), u32::from_le_bytes(*b"Keel"), u32::from_le_bytes(*b"Keel")];

/// Leaf 1 ECX.
const ECX1_MONITOR: u32 = 1 << 3;
const ECX1_VMX: u32 = 1 << 5;
const ECX1_SMX: u32 = 1 << 6;
const ECX1_EIST: u32 = 1 << 7;
const ECX1_TM2: u32 = 1 << 8;
const ECX1_PDCM: u32 = 1 << 15;
const ECX1_X2APIC: u32 = 1 << 21;
const ECX1_TSC_DEADLINE: u32 = 1 << 24;
const ECX1_OSXSAVE: u32 = 1 << 27;
const ECX1_HYPERVISOR: u32 = 1 << 31;
/// Leaf 1 EDX.
const EDX1_MCE: u32 = 1 << 7;
const EDX1_APIC: u32 = 1 << 9;
const EDX1_MCA: u32 = 1 << 14;
const EDX1_ACPI: u32 = 1 << 22;
const EDX1_TM: u32 = 1 << 29;
/// Leaf 7 ECX.
const ECX7_WAITPKG: u32 = 1 << 5;
const ECX7_LA57: u32 = 1 << 16;
/// Leaf 0x80000001 ECX.
const ECX81_SVM: u32 = 1 << 2;
const ECX81_SKINIT: u32 = 1 << 12;

/// What the policy needs from the guest's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestView {
    /// The vCPU's APIC ID (leaf 1 EBX[31:24]).
    pub apic_id: u8,
    /// Whether the guest set CR4.OSXSAVE (leaf 1 ECX[27] mirrors it).
    pub osxsave: bool,
}

/// The guest's CPUID result for `leaf`/`subleaf`, given the host's CPUID.
pub fn guest_cpuid(leaf: u32, subleaf: u32, view: GuestView, host: impl Fn(u32, u32) -> [u32; 4]) -> [u32; 4] {
    let max_basic = host(0, 0)[0];
    let max_ext = host(0x8000_0000, 0)[0];
    if (HYPERVISOR_BASE..HYPERVISOR_BASE + 0x100).contains(&leaf) {
        return if leaf == HYPERVISOR_BASE { [HYPERVISOR_BASE, VENDOR[0], VENDOR[1], VENDOR[2]] } else { [0; 4] };
    }
    // KVM's paravirtual clock interface at the next base (Linux scans 0x40000000-0x4000ff00 in
    // steps of 0x100 for "KVMKVMKVM"): only the clock, so Linux gets a TSC frequency and time it
    // can trust. See: Linux Documentation/virt/kvm/x86/cpuid.rst, msr.rst.
    if leaf == KVM_BASE {
        return [
            KVM_BASE + 1,
            u32::from_le_bytes(*b"KVMK"),
            u32::from_le_bytes(*b"VMKV"),
            u32::from_le_bytes(*b"M\0\0\0"),
        ];
    }
    if leaf == KVM_BASE + 1 {
        // KVM_FEATURE_CLOCKSOURCE2 (bit 3), KVM_FEATURE_CLOCKSOURCE_STABLE_BIT (bit 24).
        return [(1 << 3) | (1 << 24), 0, 0, 0];
    }
    if (KVM_BASE..KVM_BASE + 0x100).contains(&leaf) {
        return [0; 4];
    }
    // Leaves above the reported maximum: Intel returns the highest basic leaf's data; give zeros.
    if (leaf < 0x8000_0000 && leaf > max_basic) || (leaf >= 0x8000_0000 && leaf > max_ext) {
        return [0; 4];
    }
    let [mut a, mut b, mut c, mut d] = host(leaf, subleaf);
    match leaf {
        1 => {
            c &= !(ECX1_MONITOR
                | ECX1_VMX
                | ECX1_SMX
                | ECX1_EIST
                | ECX1_TM2
                | ECX1_PDCM
                | ECX1_X2APIC
                | ECX1_TSC_DEADLINE);
            c &= !ECX1_OSXSAVE;
            if view.osxsave {
                c |= ECX1_OSXSAVE;
            }
            c |= ECX1_HYPERVISOR;
            // The monitor emulates an xAPIC at 0xFEE00000 (no x2APIC, no TSC deadline: hidden
            // above). No machine-check MSRs (Linux panics when MCG_STATUS faults).
            d = (d & !(EDX1_MCE | EDX1_MCA | EDX1_ACPI | EDX1_TM)) | EDX1_APIC;
            // One logical processor, this vCPU's APIC ID; CLFLUSH size kept.
            b = (b & 0x0000_ffff) | (1 << 16) | (u32::from(view.apic_id) << 24);
        }
        // MONITOR/MWAIT, thermal/power, performance monitoring, topology: not offered.
        5 | 6 | 0xa | 0xb | 0x1f => {
            a = 0;
            b = 0;
            c = 0;
            d = 0;
        }
        // XSAVE: only the allowed components (the host-supported ones among them).
        0xd if subleaf == 0 => {
            a &= ALLOWED_XCR0 as u32;
            d = 0;
        }
        // XSAVES/XRSTORS need IA32_XSS, which guests do not get (the MSR policy refuses it).
        0xd if subleaf == 1 => {
            a &= !(1 << 3);
        }
        0xd if subleaf < 64 && ALLOWED_XCR0 & (1 << subleaf) == 0 => {
            a = 0;
            b = 0;
            c = 0;
            d = 0;
        }
        7 if subleaf == 0 => {
            c &= !(ECX7_WAITPKG | ECX7_LA57);
            // State components not offered: MPX (EBX 14), PKU/OSPKE (ECX 3, 4), AMX (EDX 22, 24, 25).
            b &= !(1 << 14);
            c &= !((1 << 3) | (1 << 4));
            d &= !((1 << 22) | (1 << 24) | (1 << 25));
            // Speculation-control MSRs (SPEC_CTRL, PRED_CMD, ARCH_CAPABILITIES, FLUSH_CMD) are not
            // offered: IBRS/IBPB 26, STIBP 27, L1D_FLUSH 28, ARCH_CAPABILITIES 29, SSBD 31.
            d &= !((1 << 26) | (1 << 27) | (1 << 28) | (1 << 29) | (1 << 31));
        }
        0x8000_0001 => {
            // Also PERFCTR_CORE (23): the extended performance counters are not offered, nor
            // ExtApicSpace (3): the emulated local APIC has no AMD extended registers.
            c &= !(ECX81_SVM | ECX81_SKINIT | (1 << 23) | (1 << 3));
        }
        0x8000_0008 => {
            // AMD's speculation controls: IBPB 12, IBRS 14, STIBP 15, SSBD 24, VIRT_SSBD 25.
            b &= !((1 << 12) | (1 << 14) | (1 << 15) | (1 << 24) | (1 << 25));
        }
        // SVM features.
        0x8000_000a => {
            a = 0;
            b = 0;
            c = 0;
            d = 0;
        }
        _ => {}
    }
    [a, b, c, d]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Roughly QEMU's -cpu max under TCG (shared/TESTBED.md).
    fn qemu_max(leaf: u32, subleaf: u32) -> [u32; 4] {
        match (leaf, subleaf) {
            (0, _) => [0xd, u32::from_le_bytes(*b"Auth"), u32::from_le_bytes(*b"cAMD"), u32::from_le_bytes(*b"enti")],
            (1, _) => [0x00a0_0f11, 0x0102_0800, 0xfef8_3223 | ECX1_VMX | ECX1_X2APIC, 0x178b_fbff],
            (7, 0) => [0, 0x0084_07a9, ECX7_LA57 | 1, 0],
            (0x8000_0000, _) => [0x8000_000a, 0, 0, 0],
            (0x8000_0001, _) => [0, 0, ECX81_SVM | 1, 0x2fd3_fbff],
            (0x8000_0008, _) => [0x3030, 0, 0, 0],
            (0x8000_000a, _) => [1, 16, 0, 0x1001_0001],
            _ => [0; 4],
        }
    }

    const VIEW: GuestView = GuestView { apic_id: 0, osxsave: false };

    #[test]
    fn hides_virtualization_and_sets_hypervisor_bit() {
        let [_, b, c, _] = guest_cpuid(1, 0, VIEW, qemu_max);
        assert_eq!(c & ECX1_VMX, 0);
        assert_eq!(c & ECX1_X2APIC, 0);
        assert_ne!(guest_cpuid(1, 0, VIEW, qemu_max)[3] & EDX1_APIC, 0);
        assert_eq!(c & ECX1_TSC_DEADLINE, 0);
        assert_ne!(c & ECX1_HYPERVISOR, 0);
        assert_eq!(b >> 24, 0);
        assert_eq!((b >> 16) & 0xff, 1);
        assert_eq!(guest_cpuid(0x8000_0001, 0, VIEW, qemu_max)[2] & ECX81_SVM, 0);
        assert_eq!(guest_cpuid(0x8000_000a, 0, VIEW, qemu_max), [0; 4]);
        assert_eq!(guest_cpuid(7, 0, VIEW, qemu_max)[2] & ECX7_LA57, 0);
    }

    #[test]
    fn keel_vendor_leaf() {
        let [a, b, c, d] = guest_cpuid(HYPERVISOR_BASE, 0, VIEW, qemu_max);
        assert_eq!(a, HYPERVISOR_BASE);
        let mut s = Vec::new();
        for r in [b, c, d] {
            s.extend_from_slice(&r.to_le_bytes());
        }
        assert_eq!(&s, b"KeelKeelKeel");
        assert_eq!(guest_cpuid(HYPERVISOR_BASE + 1, 0, VIEW, qemu_max), [0; 4]);
        let [a, b, c, d] = guest_cpuid(KVM_BASE, 0, VIEW, qemu_max);
        assert_eq!(a, KVM_BASE + 1);
        let mut s = Vec::new();
        for r in [b, c, d] {
            s.extend_from_slice(&r.to_le_bytes());
        }
        assert_eq!(&s, b"KVMKVMKVM\0\0\0");
        assert_eq!(guest_cpuid(KVM_BASE + 1, 0, VIEW, qemu_max)[0], (1 << 3) | (1 << 24));
    }

    #[test]
    fn consistent_leaves_and_limits() {
        // Address sizes stay (Linux needs them with the extended leaves).
        assert_eq!(guest_cpuid(0x8000_0008, 0, VIEW, qemu_max)[0], 0x3030);
        // Beyond the maximum: zeros, never garbage.
        assert_eq!(guest_cpuid(0x20, 0, VIEW, qemu_max), [0; 4]);
        assert_eq!(guest_cpuid(0x8000_0020, 0, VIEW, qemu_max), [0; 4]);
        assert_eq!(guest_cpuid(5, 0, VIEW, qemu_max), [0; 4]);
        // OSXSAVE mirrors the guest's CR4.
        assert_eq!(guest_cpuid(1, 0, VIEW, qemu_max)[2] & ECX1_OSXSAVE, 0);
        let v = GuestView { apic_id: 3, osxsave: true };
        let [_, b, c, _] = guest_cpuid(1, 0, v, qemu_max);
        assert_ne!(c & ECX1_OSXSAVE, 0);
        assert_eq!(b >> 24, 3);
    }

    #[test]
    fn random_leaves_never_panic() {
        let mut x = 1u32;
        for _ in 0..10000 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let _ = guest_cpuid(x, x.rotate_left(7), VIEW, qemu_max);
        }
    }
}

/// The pvclock scale for a TSC of `tsc_hz`: ns = ((tsc << shift) * mul) >> 32 (shift may be
/// negative: a right shift). See: Linux arch/x86/include/asm/pvclock.h, KVM's kvm_get_time_scale.
pub fn pvclock_scale(tsc_hz: u64) -> (u32, i8) {
    let tsc_hz = tsc_hz.max(1);
    let mut shift: i8 = 0;
    let mut base = tsc_hz;
    // Make 1e9 / base lie in [0.5, 1): then mul = (1e9 << 32) / base fits in 32 bits.
    while base > 2_000_000_000 {
        base >>= 1;
        shift -= 1;
    }
    while base <= 1_000_000_000 {
        base <<= 1;
        shift += 1;
    }
    let mul = ((1_000_000_000u128 << 32) / u128::from(base)) as u32;
    (mul, shift)
}

#[cfg(test)]
mod pvclock_tests {
    use super::*;

    fn ns(tsc: u64, mul: u32, shift: i8) -> u64 {
        let t = if shift >= 0 { tsc << shift } else { tsc >> -shift };
        ((u128::from(t) * u128::from(mul)) >> 32) as u64
    }

    #[test]
    fn scales_convert_one_second() {
        for hz in [1_000_000_000u64, 2_400_000_000, 3_600_000_000, 500_000_000, 62_000_000, 10_000_000_000] {
            let (mul, shift) = pvclock_scale(hz);
            let got = ns(hz, mul, shift);
            assert!((999_999_000..=1_000_000_000).contains(&got), "{hz} Hz: {got} ns");
        }
    }
}

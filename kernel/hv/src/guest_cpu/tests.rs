//! Host tests of the guest CPU model: for every captured host CPU (testdata/cpuid, recorded by
//! tests/tests/cpuid_capture.rs) and backend, the derived CPUID is consistent with itself, with
//! the SDM's XSAVE size rules, and with the MSRs Keel emulates.

use super::features::{ALLOWED, AMD_MSRS, ECX, IMPLIED_MSRS, NEEDS_STATE};
use super::raw::Captured;
use super::*;
use crate::msr::{self, MsrKind};
use crate::{mtrr, xsave};

fn captured() -> Vec<Captured> {
    vec![
        Captured::parse("qemu-max", include_str!("../../testdata/cpuid/qemu-max.txt")),
        Captured::parse("qemu-epyc", include_str!("../../testdata/cpuid/qemu-epyc.txt")),
        Captured::parse("bochs-corei7_skylake_x", include_str!("../../testdata/cpuid/bochs-corei7_skylake_x.txt")),
        Captured::parse(
            "bochs-corei7_haswell_4770",
            include_str!("../../testdata/cpuid/bochs-corei7_haswell_4770.txt"),
        ),
        Captured::parse("bochs-ryzen", include_str!("../../testdata/cpuid/bochs-ryzen.txt")),
    ]
}

/// The backends a model is derived for: SVM, VMX with every optional control, VMX without.
const BACKENDS: [BackendCaps; 3] =
    [BackendCaps::SVM, BackendCaps { rdtscp: true, invpcid: true }, BackendCaps { rdtscp: false, invpcid: false }];

fn derive(c: &Captured, caps: BackendCaps) -> GuestCpu {
    GuestCpu::derive(|l, s| c.cpuid(l, s), caps)
}

fn view(xcr0: u64) -> GuestView {
    GuestView { apic_id: 0, osxsave: true, xcr0 }
}

/// Every model of every capture, with its name.
fn all_models() -> Vec<(String, GuestCpu)> {
    let mut out = Vec::new();
    for c in captured() {
        for (i, caps) in BACKENDS.iter().enumerate() {
            out.push((format!("{} backend {i}", c.name), derive(&c, *caps)));
        }
    }
    out
}

/// The XSAVE sizes by the SDM's rules, recomputed here from the sub-leaves the guest sees:
/// standard format = the end of the last enabled component (at least 576), compacted = 576
/// plus each enabled component's size, aligned to 64 where ECX bit 1 says. See: SDM Vol 1 13.4.3.
fn sdm_sizes(m: &GuestCpu, xcr0: u64) -> (u32, u32) {
    let mut standard = 576u32;
    let mut compacted = 576u32;
    for i in 2..64 {
        if xcr0 & (1 << i) == 0 {
            continue;
        }
        let [size, offset, ecx, _] = m.query(0xd, i, view(xcr0));
        standard = standard.max(offset + size);
        if ecx & 2 != 0 {
            compacted = compacted.next_multiple_of(64);
        }
        compacted += size;
    }
    (standard, compacted)
}

#[test]
fn xsave_sizes_follow_the_sdm_for_every_xcr0() {
    for (name, m) in all_models() {
        let [lo, _, all_size, hi] = m.query(0xd, 0, view(1));
        let supported = u64::from(hi) << 32 | u64::from(lo);
        assert_eq!(supported, m.xsave().supported, "{name}");
        if supported == 0 {
            continue;
        }
        assert_eq!(supported & 3, 3, "{name}: x87 and SSE");
        for i in 2..64u32 {
            let sub = m.query(0xd, i, view(supported));
            if supported & (1 << i) != 0 {
                assert!(sub[0] > 0 && sub[1] >= 576, "{name}: component {i} has a layout: {sub:x?}");
                assert_eq!(sub[2] & 1, 0, "{name}: component {i} is a user (XCR0) component");
            } else {
                assert_eq!(sub, [0; 4], "{name}: component {i} is not offered");
            }
        }
        assert_eq!(all_size, sdm_sizes(&m, supported).0, "{name}: ECX = the size for all offered components");
        for xcr0 in 0..=supported {
            if xcr0 & !supported != 0 || !m.xsave().xcr0_valid(xcr0) {
                continue;
            }
            let (standard, compacted) = sdm_sizes(&m, xcr0);
            assert_eq!(m.query(0xd, 0, view(xcr0))[1], standard, "{name}: 0xD.0 EBX for XCR0 {xcr0:#x}");
            assert_eq!(m.query(0xd, 1, view(xcr0))[1], compacted, "{name}: 0xD.1 EBX for XCR0 {xcr0:#x}");
            assert!(standard <= 4096, "{name}: the area fits Keel's one page");
        }
        // XSAVES needs IA32_XSS, which guests do not get; no supervisor components.
        let [eax1, _, ecx1, edx1] = m.query(0xd, 1, view(supported));
        assert_eq!(eax1 & (1 << 3), 0, "{name}: XSAVES hidden");
        assert_eq!((ecx1, edx1), (0, 0), "{name}: no IA32_XSS components");
    }
}

#[test]
fn the_reported_skylake_xsave_bug_is_gone() {
    // Bochs's corei7_skylake_x reports 0xD.1 EBX = 2688 (the standard size); Linux, using XSAVEC
    // when XSAVES is hidden, computed 2432 and disabled XSAVE (and with it AVX) for the guest.
    let c = captured().into_iter().find(|c| c.name == "bochs-corei7_skylake_x").unwrap();
    let m = derive(&c, BackendCaps { rdtscp: true, invpcid: true });
    assert_eq!(m.xsave().supported, 0xe7);
    assert_eq!(m.query(0xd, 0, view(0xe7))[1], 2688);
    assert_eq!(m.query(0xd, 1, view(0xe7))[1], 2432);
    assert!(m.has(Bit { leaf: 1, subleaf: 0, reg: ECX, bit: 28 }), "AVX is shown");
    assert!(m.has(Bit { leaf: 7, subleaf: 0, reg: EBX, bit: 16 }), "AVX512F is shown");
}

#[test]
fn features_have_their_state_components() {
    for (name, m) in all_models() {
        for &(b, needs) in NEEDS_STATE {
            if m.has(b) {
                assert_eq!(m.xsave().supported & needs, needs, "{name}: {b:?} needs XCR0 {needs:#x}");
            }
        }
        let xsave_shown = m.has(features::XSAVE);
        assert_eq!(xsave_shown, m.xsave().supported != 0, "{name}: XSAVE shown iff components offered");
        if m.xsave().supported & xsave::AVX != 0 {
            assert!(m.has(Bit { leaf: 1, subleaf: 0, reg: ECX, bit: 28 }), "{name}: AVX offered and shown");
        }
    }
}

#[test]
fn every_msr_a_shown_feature_implies_is_emulated() {
    for (name, m) in all_models() {
        let amd = m.query(0, 0, view(1))[1..] == [0x6874_7541, 0x444d_4163, 0x6974_6e65];
        if amd {
            for &index in AMD_MSRS {
                assert_ne!(msr::classify(index), MsrKind::Refused, "{name}: AMD MSR {index:#x}");
            }
        }
        for &(b, msrs) in IMPLIED_MSRS {
            if !m.has(b) {
                continue;
            }
            for &index in msrs {
                assert_ne!(msr::classify(index), MsrKind::Refused, "{name}: {b:?} implies MSR {index:#x}");
            }
        }
        if m.has(features::MTRR) {
            let state = mtrr::Mtrrs::firmware_state();
            let cap = state.read(mtrr::MTRRCAP).unwrap();
            let vcnt = (cap & 0xff) as u32;
            let mut implied: Vec<u32> = (0..2 * vcnt).map(|i| mtrr::PHYS_BASE0 + i).collect();
            if cap & (1 << 8) != 0 {
                implied.extend(mtrr::FIXED);
            }
            implied.push(mtrr::DEF_TYPE);
            for index in implied {
                assert_eq!(msr::classify(index), MsrKind::Mtrr, "{name}: MTRR MSR {index:#x}");
                assert!(state.read(index).is_some(), "{name}: MTRR MSR {index:#x} reads");
            }
            assert_eq!(msr::classify(mtrr::PHYS_BASE0 + 2 * vcnt), MsrKind::Refused, "no range past VCNT");
            assert_eq!(cap & (1 << 11), 0, "no SMRR");
        }
    }
}

#[test]
fn only_allowed_feature_bits_are_shown() {
    for (name, m) in all_models() {
        for &(leaf, sub, reg, allowed) in ALLOWED {
            let mut got = m.query(leaf, sub, view(m.xsave().supported))[reg];
            if (leaf, reg) == (1, ECX) {
                got &= !((1 << features::OSXSAVE.bit) | (1 << features::HYPERVISOR.bit));
            }
            assert_eq!(got & !allowed, 0, "{name}: leaf {leaf:#x}.{sub} reg {reg}: {got:#x}");
        }
        // Named ones, for the reader.
        let hidden = [
            (1, ECX, 5, "VMX"),
            (1, ECX, 3, "MONITOR"),
            (1, ECX, 21, "x2APIC"),
            (1, ECX, 24, "TSC deadline"),
            (1, ECX, 15, "PDCM"),
            (1, EDX, 7, "MCE"),
            (1, EDX, 14, "MCA"),
            (1, EDX, 28, "HTT"),
            (0x8000_0001, ECX, 2, "SVM"),
            (0x8000_0001, ECX, 22, "TOPOEXT"),
            (7, ECX, 16, "LA57"),
            (7, ECX, 3, "PKU"),
            (7, EBX, 1, "TSC_ADJUST"),
        ];
        for (leaf, reg, bit, what) in hidden {
            assert!(!m.has(Bit { leaf, subleaf: 0, reg, bit }), "{name}: {what} hidden");
        }
        assert!(m.has(features::HYPERVISOR) && m.has(features::APIC), "{name}");
    }
}

#[test]
fn backend_controls_decide_rdtscp_and_invpcid() {
    for c in captured() {
        let without = derive(&c, BackendCaps { rdtscp: false, invpcid: false });
        assert!(!without.has(features::RDTSCP) && !without.has(features::RDPID), "{}", c.name);
        assert!(!without.has(features::INVPCID), "{}", c.name);
        let host_rdtscp = c.cpuid(0x8000_0001, 0)[EDX] & (1 << 27) != 0;
        assert_eq!(derive(&c, BackendCaps::SVM).has(features::RDTSCP), host_rdtscp, "{}", c.name);
    }
}

#[test]
fn topology_is_one_logical_processor() {
    for (name, m) in all_models() {
        let v = GuestView { apic_id: 5, osxsave: false, xcr0: 1 };
        let [_, b, c, d] = m.query(1, 0, v);
        assert_eq!(b >> 24, 5, "{name}: the vCPU's APIC ID");
        assert_eq!((b >> 16) & 0xff, 1, "{name}: one logical processor");
        assert_eq!(d & (1 << 28), 0, "{name}: no HTT");
        assert_eq!(c & (1 << 27), 0, "{name}: OSXSAVE mirrors CR4");
        for sub in 0..16 {
            assert_eq!(m.query(4, sub, v)[EAX] >> 14, 0, "{name}: leaf 4.{sub}: one core, one thread");
        }
        assert_eq!(m.query(0xb, 0, v), [0; 4], "{name}: no topology leaf");
        assert_eq!(m.query(0x8000_0008, 0, v)[ECX], 0, "{name}: one core (AMD NC)");
    }
}

#[test]
fn leaf_maxima_and_address_sizes() {
    for c in captured() {
        let m = derive(&c, BackendCaps::SVM);
        let v = view(1);
        let max_basic = m.query(0, 0, v)[EAX];
        assert!(max_basic <= MAX_BASIC, "{}", c.name);
        assert_eq!(m.query(0x8000_0000, 0, v)[EAX], MAX_EXTENDED, "{}", c.name);
        for leaf in (max_basic + 1..0x100).chain(MAX_EXTENDED + 1..0x8000_0100) {
            assert_eq!(m.query(leaf, 0, v), [0; 4], "{}: leaf {leaf:#x} beyond the maximum", c.name);
        }
        let [a, ..] = m.query(0x8000_0008, 0, v);
        assert_eq!((a >> 8) & 0xff, u32::from(LINEAR_BITS), "{}: 48-bit linear (no LA57)", c.name);
        assert_eq!(a & 0xff, c.cpuid(0x8000_0008, 0)[EAX] & 0xff, "{}: the host's physical width", c.name);
        assert_eq!(u32::from(m.phys_bits()), a & 0xff, "{}", c.name);
        assert!(m.has(features::LM), "{}", c.name);
        // The vendor string is the host's.
        assert_eq!(m.query(0, 0, v)[1..], c.cpuid(0, 0)[1..], "{}", c.name);
    }
}

#[test]
fn hypervisor_leaves() {
    let c = &captured()[0];
    let m = derive(c, BackendCaps::SVM);
    let v = view(1);
    let [a, b, cx, d] = m.query(HYPERVISOR_BASE, 0, v);
    assert_eq!(a, HYPERVISOR_BASE);
    let bytes: Vec<u8> = [b, cx, d].iter().flat_map(|r| r.to_le_bytes()).collect();
    assert_eq!(&bytes, b"KeelKeelKeel");
    assert_eq!(m.query(HYPERVISOR_BASE + 1, 0, v), [0; 4]);
    let [a, b, cx, d] = m.query(KVM_BASE, 0, v);
    assert_eq!(a, KVM_BASE + 1);
    let bytes: Vec<u8> = [b, cx, d].iter().flat_map(|r| r.to_le_bytes()).collect();
    assert_eq!(&bytes, b"KVMKVMKVM\0\0\0");
    assert_eq!(m.query(KVM_BASE + 1, 0, v)[0], KVM_FEATURES);
    assert_eq!(m.query(KVM_BASE + 2, 0, v), [0; 4]);
}

#[test]
fn leaf_7_subleaves_and_random_queries() {
    for (name, m) in all_models() {
        let v = view(m.xsave().supported);
        let max7 = m.query(7, 0, v)[EAX];
        assert!(max7 <= 1, "{name}");
        for sub in max7 + 1..8 {
            assert_eq!(m.query(7, sub, v), [0; 4], "{name}: leaf 7.{sub}");
        }
        let mut x = 1u32;
        for _ in 0..20000 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let _ =
                m.query(x, x.rotate_left(7), GuestView { apic_id: x as u8, osxsave: x & 1 != 0, xcr0: u64::from(x) });
        }
    }
}

#[test]
fn the_dump_lists_what_queries_answer() {
    for (name, m) in all_models() {
        let v = view(m.xsave().supported);
        let mut seen = 0;
        m.for_each_leaf(v, |l, s, r| {
            assert_eq!(m.query(l, s, v), r, "{name}");
            seen += 1;
        });
        assert!(seen > 20, "{name}");
    }
}

#[test]
fn host_capture_enumeration_stops_at_empty_entries() {
    let c = captured().into_iter().find(|c| c.name == "bochs-corei7_skylake_x").unwrap();
    let mut got = Vec::new();
    raw::for_each_host_leaf(|l, s| c.cpuid(l, s), |l, s, r| got.push((l, s, r)));
    // Leaf 4 stops at its first empty cache (sub-leaf 4), leaf 0xB at its empty level.
    assert!(got.iter().any(|e| e.0 == 4 && e.1 == 4));
    assert!(!got.iter().any(|e| e.0 == 4 && e.1 == 5));
    assert!(got.iter().any(|e| (e.0, e.1) == (0xd, 7)));
    assert_eq!(got.first().map(|e| (e.0, e.1)), Some((0, 0)));
    assert!(got.iter().any(|e| e.0 == 0x8000_0008));
}

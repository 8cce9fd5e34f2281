//! The one CPU a guest sees: every CPUID leaf, derived once from the host's CPUID and Keel's
//! policy (`features`), so that leaves which depend on each other are computed from the same
//! facts instead of copied from the host: the XSAVE sizes from the offered components and the
//! guest's XCR0 (`xsave`), the MTRR bit from what the MTRR emulation holds (`mtrr`), address
//! sizes from the paging modes offered, topology for one logical processor, and Keel's
//! hypervisor leaves. The kernel answers every CPUID exit from this model; it never executes
//! CPUID for a guest.
//!
//! What it does not do: decide MSR values (`msr`, `mtrr`) or run XSETBV (`xsave` says what is
//! valid). Leaves are zero beyond the maxima the model reports (AMD's behaviour; Intel would
//! repeat the highest basic leaf).
//!
//! See: SDM Vol 2A CPUID, Vol 1 13.2 (leaf 0xD), APM Vol 3 Appendix E.

pub mod features;
pub mod raw;
#[cfg(test)]
mod tests;

use features::{BackendCaps, Bit, EAX, EBX, EDX};

use crate::xsave::XsaveLayout;

/// Keel's hypervisor leaf range.
pub const HYPERVISOR_BASE: u32 = 0x4000_0000;
/// Where the KVM-compatible paravirtual clock leaves are.
pub const KVM_BASE: u32 = 0x4000_0100;
/// "KeelKeelKeel" in EBX, ECX, EDX.
pub const VENDOR: [u32; 3] = [u32::from_le_bytes(*b"Keel"), u32::from_le_bytes(*b"Keel"), u32::from_le_bytes(*b"Keel")];
/// KVM_FEATURE_CLOCKSOURCE2 (bit 3), KVM_FEATURE_CLOCKSOURCE_STABLE_BIT (bit 24).
/// See: Linux Documentation/virt/kvm/x86/cpuid.rst.
pub const KVM_FEATURES: u32 = (1 << 3) | (1 << 24);

/// The highest basic leaf shown: 0xD (XSAVE). Everything above (PT, TSC/crystal frequency,
/// SoC, AMX, ...) describes hardware Keel does not offer.
pub const MAX_BASIC: u32 = 0xd;
/// The highest extended leaf shown: address sizes. Above it are SVM, SEV, topology extensions
/// and newer AMD feature leaves.
pub const MAX_EXTENDED: u32 = 0x8000_0008;
/// Sub-leaves of leaf 4 (deterministic cache parameters) kept.
const CACHE_LEVELS: usize = 8;
/// Linear address width: 48 bits (4-level paging; LA57 is hidden).
pub const LINEAR_BITS: u8 = 48;
/// Physical address width assumed when the host has no leaf 0x80000008. See: SDM Vol 3A 4.1.4.
const DEFAULT_PHYS_BITS: u8 = 36;

/// What a query needs from the vCPU's current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestView {
    /// The vCPU's APIC ID (leaf 1 EBX[31:24]).
    pub apic_id: u8,
    /// CR4.OSXSAVE (leaf 1 ECX[27] mirrors it).
    pub osxsave: bool,
    /// The guest's XCR0 (leaf 0xD sub-leaves 0 and 1 EBX report sizes for it).
    pub xcr0: u64,
}

/// The guest CPU model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestCpu {
    basic: [[u32; 4]; MAX_BASIC as usize + 1],
    extended: [[u32; 4]; (MAX_EXTENDED - 0x8000_0000) as usize + 1],
    /// Leaf 4 sub-leaves (index = sub-leaf).
    cache: [[u32; 4]; CACHE_LEVELS],
    /// Leaf 7 sub-leaves 0 and 1.
    structured: [[u32; 4]; 2],
    /// Leaf 0xD sub-leaf 1 EAX: XSAVEOPT, XSAVEC, XGETBV1.
    xsave_features: u32,
    xsave: XsaveLayout,
    phys_bits: u8,
}

impl GuestCpu {
    /// Derive the model from the host's CPUID (`host(leaf, subleaf)`, the raw instruction) and
    /// what the virtualization backend lets a guest execute.
    pub fn derive(host: impl Fn(u32, u32) -> [u32; 4], caps: BackendCaps) -> GuestCpu {
        let host_max_basic = host(0, 0)[EAX];
        let host_max_ext = host(0x8000_0000, 0)[EAX];
        // The host's answer for a leaf it has, zeros for one beyond its maxima.
        let host = |leaf: u32, sub: u32| {
            let max = if leaf >= 0x8000_0000 { host_max_ext } else { host_max_basic };
            if leaf > max {
                [0; 4]
            } else {
                host(leaf, sub)
            }
        };
        let xsave = XsaveLayout::from_host(&host);
        let phys_bits = match host(0x8000_0008, 0)[EAX] as u8 {
            0 => DEFAULT_PHYS_BITS,
            bits => bits,
        };
        let mut m = GuestCpu {
            basic: [[0; 4]; MAX_BASIC as usize + 1],
            extended: [[0; 4]; (MAX_EXTENDED - 0x8000_0000) as usize + 1],
            cache: [[0; 4]; CACHE_LEVELS],
            structured: [[0; 4]; 2],
            xsave_features: if xsave.supported != 0 { host(0xd, 1)[EAX] } else { 0 },
            xsave,
            phys_bits,
        };

        // Leaf 0: the maximum and the vendor. 0x80000000: the maximum (vendor bytes on AMD).
        let [_, vb, vc, vd] = host(0, 0);
        m.basic[0] = [host_max_basic.min(MAX_BASIC), vb, vc, vd];
        let [_, eb, ec, ed] = host(0x8000_0000, 0);
        m.extended[0] = [MAX_EXTENDED, eb, ec, ed];

        // Leaf 1: signature; brand index and CLFLUSH size kept, one logical processor (the APIC
        // ID is the vCPU's, filled in per query).
        let [a, b, c, d] = host(1, 0);
        m.basic[1] = [a, (b & 0xffff) | (1 << 16), c, d];
        // Leaf 2 (cache and TLB descriptors) as the host's; leaf 3 (serial number) hidden.
        if host_max_basic >= 2 {
            m.basic[2] = host(2, 0);
        }
        // Leaf 4: the caches as the host's, each shared by one thread of a one-core package.
        for (i, slot) in m.cache.iter_mut().enumerate() {
            let [a, b, c, d] = host(4, i as u32);
            if a & 0x1f == 0 {
                break;
            }
            *slot = [a & 0x3fff, b, c, d];
        }
        // Leaf 6: only ARAT.
        if m.basic[0][EAX] >= 6 {
            m.basic[6][ARAT_REG] = 1 << features::ARAT.bit;
        }
        // Leaf 7: sub-leaves 0 and 1.
        let sub7_max = host(7, 0)[EAX].min(1);
        for sub in 0..=sub7_max {
            m.structured[sub as usize] = host(7, sub);
        }
        m.structured[0][EAX] = sub7_max;
        // Extended leaves: features, brand string, L1/L2 caches, power (masked below), sizes.
        for leaf in 0x8000_0001..=0x8000_0007 {
            m.extended[(leaf - 0x8000_0000) as usize] = host(leaf, 0);
        }
        m.extended[7] = [0, 0, 0, m.extended[7][EDX]];
        let ebx8 = host(0x8000_0008, 0)[EBX];
        // Guest physical width = host's (bits 23:16 zero); no cores beyond one (ECX).
        m.extended[8] = [u32::from(phys_bits) | u32::from(LINEAR_BITS) << 8, ebx8, 0, 0];

        // Feature registers: keep only what the policy allows, then what the offered XSAVE
        // components and the backend can honour.
        m.mask_features(caps);
        m
    }

    fn mask_features(&mut self, caps: BackendCaps) {
        // Leaf 7 sub-leaf 1's other registers (PPIN control, newer AVX forms) are not offered.
        self.structured[1] = [self.structured[1][EAX], 0, 0, 0];
        for &(leaf, sub, reg, allowed) in features::ALLOWED {
            if let Some(r) = self.reg_mut(leaf, sub, reg) {
                *r &= allowed;
            }
        }
        for &(b, needs) in features::NEEDS_STATE {
            if self.xsave.supported & needs != needs {
                self.clear(b);
            }
        }
        if self.xsave.supported == 0 {
            self.clear(features::XSAVE);
            self.xsave_features = 0;
        }
        if !caps.rdtscp {
            self.clear(features::RDTSCP);
            self.clear(features::RDPID);
        }
        if !caps.invpcid {
            self.clear(features::INVPCID);
        }
        self.set(features::HYPERVISOR);
        self.set(features::APIC);
        // MTRR stays as the host shows it: when shown, `mtrr` emulates all that MTRRcap says.
    }

    /// The stored register behind a feature bit's leaf (None for a leaf the model computes).
    fn reg_mut(&mut self, leaf: u32, sub: u32, reg: usize) -> Option<&mut u32> {
        match (leaf, sub) {
            (7, s) if s < 2 => Some(&mut self.structured[s as usize][reg]),
            (0xd, 1) if reg == EAX => Some(&mut self.xsave_features),
            (l, 0) if l <= MAX_BASIC && l != 4 && l != 7 && l != 0xd => Some(&mut self.basic[l as usize][reg]),
            (l, 0) if (0x8000_0000..=MAX_EXTENDED).contains(&l) => {
                Some(&mut self.extended[(l - 0x8000_0000) as usize][reg])
            }
            _ => None,
        }
    }

    fn clear(&mut self, b: Bit) {
        if let Some(r) = self.reg_mut(b.leaf, b.subleaf, b.reg) {
            *r &= !(1 << b.bit);
        }
    }

    fn set(&mut self, b: Bit) {
        if let Some(r) = self.reg_mut(b.leaf, b.subleaf, b.reg) {
            *r |= 1 << b.bit;
        }
    }

    /// Whether the guest is shown feature `b` (the dynamic OSXSAVE bit counts as shown).
    pub fn has(&self, b: Bit) -> bool {
        let view = GuestView { apic_id: 0, osxsave: true, xcr0: self.xsave.supported };
        self.query(b.leaf, b.subleaf, view)[b.reg] & (1 << b.bit) != 0
    }

    /// The guest's CPUID result for `leaf`/`subleaf` on a vCPU in state `view`.
    pub fn query(&self, leaf: u32, subleaf: u32, view: GuestView) -> [u32; 4] {
        match leaf {
            1 => {
                let [a, b, c, d] = self.basic[1];
                let osxsave = if view.osxsave { 1 << features::OSXSAVE.bit } else { 0 };
                [a, b | u32::from(view.apic_id) << 24, c | osxsave, d]
            }
            4 => self.cache.get(subleaf as usize).copied().unwrap_or([0; 4]),
            7 if self.basic[0][EAX] >= 7 => self.structured.get(subleaf as usize).copied().unwrap_or([0; 4]),
            0xd if self.basic[0][EAX] >= 0xd => self.xsave_subleaf(subleaf, view.xcr0),
            l if l <= self.basic[0][EAX] && l != 7 && l != 0xd => self.basic[l as usize],
            l if (0x8000_0000..=MAX_EXTENDED).contains(&l) => self.extended[(l - 0x8000_0000) as usize],
            HYPERVISOR_BASE => [HYPERVISOR_BASE, VENDOR[0], VENDOR[1], VENDOR[2]],
            // KVM's paravirtual clock interface at the next base (Linux scans 0x40000000 to
            // 0x4000ff00 in steps of 0x100 for "KVMKVMKVM"): only the clock, so Linux gets a
            // TSC frequency and time it can trust. See: Linux Documentation/virt/kvm/x86/cpuid.rst.
            KVM_BASE => [
                KVM_BASE + 1,
                u32::from_le_bytes(*b"KVMK"),
                u32::from_le_bytes(*b"VMKV"),
                u32::from_le_bytes(*b"M\0\0\0"),
            ],
            l if l == KVM_BASE + 1 => [KVM_FEATURES, 0, 0, 0],
            _ => [0; 4],
        }
    }

    /// Leaf 0xD: sub-leaf 0 the offered components and the standard-format sizes (for the
    /// guest's XCR0 and for all of them), 1 the instructions and the compacted size (no
    /// IA32_XSS components), 2 and up each component's layout. See: SDM Vol 1 13.2.
    fn xsave_subleaf(&self, subleaf: u32, xcr0: u64) -> [u32; 4] {
        let x = &self.xsave;
        if x.supported == 0 {
            return [0; 4];
        }
        let enabled = xcr0 & x.supported;
        match subleaf {
            0 => {
                [x.supported as u32, x.standard_size(enabled), x.standard_size(x.supported), (x.supported >> 32) as u32]
            }
            1 => [self.xsave_features, x.compacted_size(enabled), 0, 0],
            i => {
                let c = x.component(i);
                if c.size == 0 {
                    [0; 4]
                } else {
                    [c.size, c.offset, if c.aligned { 2 } else { 0 }, 0]
                }
            }
        }
    }

    /// The XCR0 values a guest may load, and the layout behind leaf 0xD.
    pub fn xsave(&self) -> &XsaveLayout {
        &self.xsave
    }

    /// MAXPHYADDR as shown in leaf 0x80000008 (the host's).
    pub fn phys_bits(&self) -> u8 {
        self.phys_bits
    }

    /// Every (leaf, sub-leaf) the model answers with something other than zeros, for the tests
    /// and for a dump: `f(leaf, subleaf, regs)` in ascending order, for the state `view`.
    pub fn for_each_leaf(&self, view: GuestView, mut f: impl FnMut(u32, u32, [u32; 4])) {
        let mut emit = |leaf: u32, sub: u32| {
            let r = self.query(leaf, sub, view);
            if r != [0; 4] || sub == 0 {
                f(leaf, sub, r);
            }
        };
        for leaf in 0..=self.basic[0][EAX] {
            match leaf {
                4 => (0..CACHE_LEVELS as u32).for_each(|s| emit(4, s)),
                7 => (0..2).for_each(|s| emit(7, s)),
                0xd => (0..64).for_each(|s| emit(0xd, s)),
                l => emit(l, 0),
            }
        }
        for leaf in 0x8000_0000..=MAX_EXTENDED {
            emit(leaf, 0);
        }
        for leaf in [HYPERVISOR_BASE, KVM_BASE, KVM_BASE + 1] {
            emit(leaf, 0);
        }
    }
}

/// Leaf 6's register holding ARAT.
const ARAT_REG: usize = EAX;

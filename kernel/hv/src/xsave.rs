//! The XSAVE state components a guest may enable and the sizes CPUID leaf 0xD reports for them,
//! computed from the component layout by the SDM's rules rather than copied from the host (the
//! host's leaf 0xD.0 EBX describes the XCR0 loaded when CPUID ran, which is not the guest's).
//! Also the XSETBV rules for a guest's XCR0. It does not save or restore state (the kernel's
//! `virt::fpu` does).
//!
//! See: SDM Vol 1 13.2 (enumeration), 13.4.3 (standard format), 13.4.3 and 13.8 (compacted
//! format), Vol 2C XSETBV.

/// The components guests may enable (XCR0 bits): x87, SSE, AVX and the three AVX-512
/// components. MPX (3, 4), PKRU (9) and AMX (17, 18) are not offered; together the allowed ones
/// fit in the one-page save area Keel keeps per vCPU. See: SDM Vol 1 13.1.
pub const ALLOWED_XCR0: u64 = 0b1110_0111;
/// x87 (bit 0) and SSE (bit 1) live in the 512-byte legacy region.
pub const LEGACY_MASK: u64 = 0b11;
pub const X87: u64 = 1 << 0;
pub const SSE: u64 = 1 << 1;
pub const AVX: u64 = 1 << 2;
/// Opmask, ZMM_Hi256 and Hi16_ZMM: enabled all together or not at all.
pub const AVX512: u64 = 0b1110_0000;
/// The legacy region (512 bytes) and the XSAVE header (64 bytes). See: SDM Vol 1 13.4.
pub const LEGACY_AND_HEADER: u32 = 576;

/// One extended component (bits 2 and up) as CPUID leaf 0xD sub-leaf `i` describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Component {
    /// Size in bytes (EAX).
    pub size: u32,
    /// Offset in the standard format (EBX).
    pub offset: u32,
    /// Aligned to 64 bytes in the compacted format (ECX bit 1).
    pub aligned: bool,
}

/// The components the guest may enable on this host, and their layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XsaveLayout {
    /// Allowed and supported by the host (always has x87 and SSE when XSAVE exists; 0 without).
    pub supported: u64,
    /// Index i holds component i (only 2..8 are ever set: ALLOWED_XCR0's extended bits).
    pub components: [Component; 8],
}

impl XsaveLayout {
    /// No XSAVE at all (the host lacks it): XCR0 stays unwritable.
    pub const NONE: XsaveLayout =
        XsaveLayout { supported: 0, components: [Component { size: 0, offset: 0, aligned: false }; 8] };

    /// From the host's CPUID: XSAVE (leaf 1 ECX bit 26) and leaf 0xD. A component whose layout
    /// the host reports as empty or beyond one page is not offered, and AVX-512 only as a
    /// whole, with AVX. The kernel enables exactly these in its own XCR0, and the guest CPU
    /// model shows exactly these: one rule for both.
    pub fn from_host(host: &impl Fn(u32, u32) -> [u32; 4]) -> XsaveLayout {
        let has_xsave = host(0, 0)[0] >= 0xd && host(1, 0)[2] & (1 << 26) != 0;
        if !has_xsave {
            return XsaveLayout::NONE;
        }
        let [eax, _, _, edx] = host(0xd, 0);
        let mut supported = (u64::from(edx) << 32 | u64::from(eax)) & ALLOWED_XCR0;
        if supported & LEGACY_MASK != LEGACY_MASK {
            return XsaveLayout::NONE;
        }
        let mut components = [Component::default(); 8];
        for (i, slot) in components.iter_mut().enumerate().skip(2) {
            if supported & (1 << i) == 0 {
                continue;
            }
            let [size, offset, ecx, _] = host(0xd, i as u32);
            let fits = size > 0 && offset >= LEGACY_AND_HEADER && offset.saturating_add(size) <= 4096;
            // ECX bit 0 set means an IA32_XSS (supervisor) component: never one of these.
            if !fits || ecx & 1 != 0 {
                supported &= !(1 << i);
                continue;
            }
            *slot = Component { size, offset, aligned: ecx & 2 != 0 };
        }
        if supported & AVX == 0 || supported & AVX512 != AVX512 {
            supported &= !AVX512;
        }
        for (i, slot) in components.iter_mut().enumerate() {
            if supported & (1 << i) == 0 {
                *slot = Component::default();
            }
        }
        XsaveLayout { supported, components }
    }

    /// The component `i` as the guest sees it (zero when not offered).
    pub fn component(&self, i: u32) -> Component {
        match self.components.get(i as usize) {
            Some(c) if i >= 2 && self.supported & (1 << i) != 0 => *c,
            _ => Component::default(),
        }
    }

    /// Bytes of a standard-format area holding the components in `mask`: the end of the last
    /// one, and never less than the legacy region and header. See: SDM Vol 1 13.4.3.
    pub fn standard_size(&self, mask: u64) -> u32 {
        (2..8)
            .filter(|&i| mask & self.supported & (1 << i) != 0)
            .map(|i| self.component(i).offset + self.component(i).size)
            .fold(LEGACY_AND_HEADER, u32::max)
    }

    /// Bytes of a compacted-format area holding the components in `mask`: they follow the header
    /// in order, each aligned to 64 bytes where its sub-leaf says so. See: SDM Vol 1 13.4.3.
    pub fn compacted_size(&self, mask: u64) -> u32 {
        let mut end = LEGACY_AND_HEADER;
        for i in 2..8 {
            if mask & self.supported & (1 << i) == 0 {
                continue;
            }
            let c = self.component(i);
            if c.aligned {
                end = end.next_multiple_of(64);
            }
            end += c.size;
        }
        end
    }

    /// Whether a guest's XSETBV may load `value` into XCR0: x87 always set, AVX only with SSE,
    /// AVX-512 all together and with AVX, nothing the guest is not offered.
    /// See: SDM Vol 2C XSETBV (#GP conditions), Vol 1 13.3.
    pub fn xcr0_valid(&self, value: u64) -> bool {
        let x87 = value & X87 != 0;
        let avx_without_sse = value & AVX != 0 && value & SSE == 0;
        let avx512 = value & AVX512;
        let avx512_ok = avx512 == 0 || (avx512 == AVX512 && value & AVX != 0);
        self.supported != 0 && x87 && !avx_without_sse && avx512_ok && value & !self.supported == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The architectural standard-format layout of a Skylake-SP with AVX-512.
    fn skylake(leaf: u32, sub: u32) -> [u32; 4] {
        match (leaf, sub) {
            (0, _) => [0x16, 0, 0, 0],
            (1, _) => [0, 0, 1 << 26, 0],
            (0xd, 0) => [0x2ff, 0xa88, 0xa88, 0],
            (0xd, 2) => [256, 576, 0, 0],
            (0xd, 3) => [64, 960, 0, 0],
            (0xd, 4) => [64, 1024, 0, 0],
            (0xd, 5) => [64, 1088, 0, 0],
            (0xd, 6) => [512, 1152, 0, 0],
            (0xd, 7) => [1024, 1664, 0, 0],
            (0xd, 9) => [8, 2688, 0, 0],
            _ => [0; 4],
        }
    }

    #[test]
    fn sizes_follow_the_sdm_rules() {
        let l = XsaveLayout::from_host(&skylake);
        assert_eq!(l.supported, 0xe7, "MPX and PKRU are not offered");
        assert_eq!(l.standard_size(0b11), 576);
        assert_eq!(l.standard_size(0b111), 832);
        // The standard format leaves MPX's hole: Hi16_ZMM ends at 1664 + 1024.
        assert_eq!(l.standard_size(0xe7), 2688);
        // The compacted format packs the offered components after the header.
        assert_eq!(l.compacted_size(0xe7), 576 + 256 + 64 + 512 + 1024);
        assert_eq!(l.compacted_size(0b111), 832);
        // Bits the guest is not offered add nothing.
        assert_eq!(l.standard_size(0x2ff), 2688);
    }

    #[test]
    fn compacted_alignment() {
        let host = |leaf: u32, sub: u32| match (leaf, sub) {
            (0, _) => [0xd, 0, 0, 0],
            (1, _) => [0, 0, 1 << 26, 0],
            (0xd, 0) => [0x7, 0, 0, 0],
            (0xd, 2) => [200, 576, 2, 0],
            _ => [0; 4],
        };
        let l = XsaveLayout::from_host(&host);
        // 576 is already a multiple of 64: no padding.
        assert_eq!(l.compacted_size(0b111), 776);
    }

    #[test]
    fn partial_avx512_and_bad_layouts_are_not_offered() {
        let host = |leaf: u32, sub: u32| match (leaf, sub) {
            (0, _) => [0xd, 0, 0, 0],
            (1, _) => [0, 0, 1 << 26, 0],
            (0xd, 0) => [0x67, 0, 0, 0], // opmask and ZMM_Hi256 without Hi16_ZMM
            (0xd, 2) => [256, 576, 0, 0],
            (0xd, 5) => [64, 1088, 0, 0],
            (0xd, 6) => [512, 1152, 0, 0],
            _ => [0; 4],
        };
        assert_eq!(XsaveLayout::from_host(&host).supported, 0x7);
        let beyond_a_page = |leaf: u32, sub: u32| match (leaf, sub) {
            (0, _) => [0xd, 0, 0, 0],
            (1, _) => [0, 0, 1 << 26, 0],
            (0xd, 0) => [0x7, 0, 0, 0],
            (0xd, 2) => [256, 4000, 0, 0],
            _ => [0; 4],
        };
        assert_eq!(XsaveLayout::from_host(&beyond_a_page).supported, 0x3);
        let no_xsave = |leaf: u32, sub: u32| if leaf == 1 { [0; 4] } else { skylake(leaf, sub) };
        assert_eq!(XsaveLayout::from_host(&no_xsave), XsaveLayout::NONE);
    }

    #[test]
    fn xsetbv_rules() {
        let l = XsaveLayout::from_host(&skylake);
        assert!(l.xcr0_valid(0b1) && l.xcr0_valid(0b11) && l.xcr0_valid(0b111) && l.xcr0_valid(0xe7));
        assert!(!l.xcr0_valid(0), "x87 is mandatory");
        assert!(!l.xcr0_valid(0b101), "AVX without SSE");
        assert!(!l.xcr0_valid(0x27), "part of AVX-512");
        assert!(!l.xcr0_valid(0xe3), "AVX-512 without AVX");
        assert!(!l.xcr0_valid(0x1f), "MPX is not offered");
        assert!(!l.xcr0_valid(0x207), "PKRU is not offered");
        assert!(!XsaveLayout::NONE.xcr0_valid(1));
    }
}

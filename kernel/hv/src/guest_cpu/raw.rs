//! The host's raw CPUID as a list of (leaf, sub-leaf, registers): which sub-leaves of which
//! leaves to read (for `cpuid-dump` on the kernel command line, whose output is the test data
//! in `kernel/hv/testdata/cpuid/`), the line format, and a table that answers like the CPU did
//! (for the host tests). It does not decide anything the guest sees (`GuestCpu` does).

/// How many sub-leaves of `leaf` to read, given its sub-leaf 0 (None: it has no sub-leaves).
/// Leaves that enumerate until an empty entry (caches, topology) stop at the first one.
pub fn subleaf_count(leaf: u32, first: [u32; 4]) -> Option<u32> {
    match leaf {
        // Deterministic cache parameters: until the cache type (EAX[4:0]) is 0.
        4 | 0x8000_001d => Some(16),
        // Structured features: EAX of sub-leaf 0 is the last sub-leaf.
        7 => Some(first[0].min(7) + 1),
        // Topology: until the level type (ECX[15:8]) is 0.
        0xb | 0x1f => Some(8),
        // XSAVE: one sub-leaf per state component.
        0xd => Some(64),
        // RDT, SGX, PT, SoC vendor, TLB, AMX, ... : a few each.
        0xf | 0x10 | 0x12 | 0x14 | 0x17 | 0x18 | 0x1d | 0x1e | 0x20 | 0x23 | 0x24 | 0x8000_0020 | 0x8000_0026 => {
            Some(4)
        }
        _ => None,
    }
}

/// Whether enumeration of `leaf` ends at this sub-leaf's result (an empty cache or level).
fn ends(leaf: u32, regs: [u32; 4]) -> bool {
    match leaf {
        4 | 0x8000_001d => regs[0] & 0x1f == 0,
        0xb | 0x1f => (regs[2] >> 8) & 0xff == 0,
        _ => false,
    }
}

/// Read the host's CPUID leaves: `f(leaf, subleaf, regs)` for each, basic then extended, up to
/// 64 leaves of each range. Sub-leaves that are all zero are left out (except sub-leaf 0 and
/// the entry that ends an enumeration).
pub fn for_each_host_leaf(host: impl Fn(u32, u32) -> [u32; 4], mut f: impl FnMut(u32, u32, [u32; 4])) {
    for base in [0u32, 0x8000_0000] {
        let max = host(base, 0)[0];
        if max < base {
            continue;
        }
        let last = max.min(base + 0x3f);
        for leaf in base..=last {
            let first = host(leaf, 0);
            f(leaf, 0, first);
            if ends(leaf, first) {
                continue;
            }
            let Some(count) = subleaf_count(leaf, first) else { continue };
            for sub in 1..count {
                let regs = host(leaf, sub);
                if regs != [0; 4] || ends(leaf, regs) {
                    f(leaf, sub, regs);
                }
                if ends(leaf, regs) {
                    break;
                }
            }
        }
    }
}

/// The line format: `LLLLLLLL SSSSSSSS EAX EBX ECX EDX`, eight hex digits each.
pub struct Line(pub u32, pub u32, pub [u32; 4]);

impl core::fmt::Display for Line {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let Line(leaf, sub, [a, b, c, d]) = self;
        write!(f, "{leaf:08x} {sub:08x} {a:08x} {b:08x} {c:08x} {d:08x}")
    }
}

/// A captured CPUID, answering like the CPU it was read from (host tests only).
#[cfg(test)]
pub struct Captured {
    pub name: &'static str,
    entries: std::vec::Vec<(u32, u32, [u32; 4])>,
}

#[cfg(test)]
impl Captured {
    /// Parse lines in `Line` format; `#` starts a comment.
    pub fn parse(name: &'static str, text: &str) -> Captured {
        let mut entries = std::vec::Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let v: std::vec::Vec<u32> = line
                .split_whitespace()
                .map(|w| u32::from_str_radix(w, 16).unwrap_or_else(|_| panic!("{name}:{}: bad hex '{w}'", n + 1)))
                .collect();
            assert_eq!(v.len(), 6, "{name}:{}: six fields", n + 1);
            entries.push((v[0], v[1], [v[2], v[3], v[4], v[5]]));
        }
        assert!(!entries.is_empty(), "{name}: no CPUID lines");
        Captured { name, entries }
    }

    /// CPUID as the captured CPU answered: a sub-leaf that was not recorded is zero for a leaf
    /// with sub-leaves, and sub-leaf 0's answer for one without.
    pub fn cpuid(&self, leaf: u32, sub: u32) -> [u32; 4] {
        if let Some(e) = self.entries.iter().find(|e| e.0 == leaf && e.1 == sub) {
            return e.2;
        }
        let Some(first) = self.entries.iter().find(|e| e.0 == leaf && e.1 == 0) else { return [0; 4] };
        if subleaf_count(leaf, first.2).is_some() {
            [0; 4]
        } else {
            first.2
        }
    }
}

//! The guest's memory type range registers: exactly what IA32_MTRRCAP advertises (fixed ranges,
//! `VARIABLE_COUNT` variable ranges, write-combining, no SMRR), kept per vCPU with the write
//! checks the hardware makes. The values have no effect on the host: Keel's nested page tables
//! decide the real memory types; a guest reads back what it wrote, so its view is consistent.
//!
//! A directly booted guest has no firmware to program them, so a vCPU starts with the state a
//! PC's firmware leaves: MTRRs enabled, fixed ranges enabled, everything write-back, no variable
//! range in use.
//!
//! See: SDM Vol 3A 12.11 (MTRRs: 12.11.1 MTRRcap, 12.11.2.1 MTRRdefType, 12.11.2.2 fixed ranges,
//! 12.11.2.3 variable ranges), Vol 4 Table 2-2.

/// Variable-range pairs offered (MTRRcap VCNT).
pub const VARIABLE_COUNT: usize = 8;
/// IA32_MTRRCAP: VCNT, FIX (bit 8), WC (bit 10); no SMRR (bit 11).
pub const CAP: u64 = VARIABLE_COUNT as u64 | (1 << 8) | (1 << 10);
pub const MTRRCAP: u32 = 0xfe;
pub const DEF_TYPE: u32 = 0x2ff;
/// IA32_MTRR_PHYSBASE0; PHYSMASKn is PHYSBASEn + 1, pairs follow each other.
pub const PHYS_BASE0: u32 = 0x200;
/// The eleven fixed-range MSRs, in address order: 64K_00000, 16K_80000, 16K_A0000, 4K_C0000 to
/// 4K_F8000.
pub const FIXED: [u32; 11] = [0x250, 0x258, 0x259, 0x268, 0x269, 0x26a, 0x26b, 0x26c, 0x26d, 0x26e, 0x26f];

/// Memory types an MTRR may hold: UC 0, WC 1, WT 4, WP 5, WB 6 (2, 3 and 7 are reserved).
fn valid_type(t: u8) -> bool {
    matches!(t, 0 | 1 | 4 | 5 | 6)
}
const WB: u64 = 6;
/// MTRRdefType: type in bits 7:0, FE bit 10, E bit 11; the rest reserved.
const DEF_E: u64 = 1 << 11;
const DEF_FE: u64 = 1 << 10;
/// PHYSMASK valid bit.
const MASK_VALID: u64 = 1 << 11;

/// Is `msr` one of the MTRR MSRs this module answers?
pub fn is_mtrr(msr: u32) -> bool {
    msr == MTRRCAP
        || msr == DEF_TYPE
        || FIXED.contains(&msr)
        || (PHYS_BASE0..PHYS_BASE0 + 2 * VARIABLE_COUNT as u32).contains(&msr)
}

/// One vCPU's MTRRs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mtrrs {
    def_type: u64,
    fixed: [u64; 11],
    /// (PHYSBASE, PHYSMASK) pairs.
    variable: [(u64, u64); VARIABLE_COUNT],
}

impl Default for Mtrrs {
    fn default() -> Self {
        Self::firmware_state()
    }
}

impl Mtrrs {
    /// What a PC's firmware leaves: enabled, fixed ranges enabled and write-back, default
    /// write-back, no variable range valid.
    pub const fn firmware_state() -> Mtrrs {
        Mtrrs { def_type: DEF_E | DEF_FE | WB, fixed: [0x0606_0606_0606_0606; 11], variable: [(0, 0); VARIABLE_COUNT] }
    }

    /// RDMSR of an MTRR MSR (None if `msr` is not one).
    pub fn read(&self, msr: u32) -> Option<u64> {
        match msr {
            MTRRCAP => Some(CAP),
            DEF_TYPE => Some(self.def_type),
            _ => {
                if let Some(i) = FIXED.iter().position(|&m| m == msr) {
                    return Some(self.fixed[i]);
                }
                let (pair, is_mask) = variable_index(msr)?;
                let (base, mask) = self.variable[pair];
                Some(if is_mask { mask } else { base })
            }
        }
    }

    /// WRMSR of an MTRR MSR with the hardware's checks: `Err` is #GP (MTRRcap is read-only,
    /// reserved bits set, an invalid memory type, address bits at or above `phys_bits`).
    #[allow(clippy::result_unit_err)] // the only error is "#GP"
    pub fn write(&mut self, msr: u32, value: u64, phys_bits: u8) -> Result<(), ()> {
        let address_bits = if phys_bits >= 64 { u64::MAX } else { (1u64 << phys_bits) - 1 };
        let page_address = address_bits & !0xfff;
        match msr {
            MTRRCAP => Err(()),
            DEF_TYPE => {
                if value & !(DEF_E | DEF_FE | 0xff) != 0 || !valid_type(value as u8) {
                    return Err(());
                }
                self.def_type = value;
                Ok(())
            }
            _ => {
                if let Some(i) = FIXED.iter().position(|&m| m == msr) {
                    if !value.to_le_bytes().into_iter().all(valid_type) {
                        return Err(());
                    }
                    self.fixed[i] = value;
                    return Ok(());
                }
                let (pair, is_mask) = variable_index(msr).ok_or(())?;
                if is_mask {
                    if value & !(page_address | MASK_VALID) != 0 {
                        return Err(());
                    }
                    self.variable[pair].1 = value;
                } else {
                    if value & !(page_address | 0xff) != 0 || !valid_type(value as u8) {
                        return Err(());
                    }
                    self.variable[pair].0 = value;
                }
                Ok(())
            }
        }
    }
}

/// The variable pair an MSR belongs to, and whether it is the mask.
fn variable_index(msr: u32) -> Option<(usize, bool)> {
    let n = msr.checked_sub(PHYS_BASE0)? as usize;
    (n < 2 * VARIABLE_COUNT).then_some((n / 2, n % 2 == 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_advertised_mtrr_reads_and_writes_back() {
        let mut m = Mtrrs::firmware_state();
        let vcnt = (m.read(MTRRCAP).unwrap() & 0xff) as u32;
        assert_eq!(vcnt as usize, VARIABLE_COUNT);
        for i in 0..vcnt {
            let base = PHYS_BASE0 + 2 * i;
            assert_eq!(m.read(base), Some(0));
            assert_eq!(m.read(base + 1), Some(0));
            assert_eq!(m.write(base, 0x8000_0000 | 1, 36), Ok(()));
            assert_eq!(m.write(base + 1, 0xf_c000_0000 | MASK_VALID, 36), Ok(()));
            assert_eq!(m.read(base), Some(0x8000_0001));
            assert_eq!(m.read(base + 1), Some(0xf_c000_0800));
            assert!(is_mtrr(base) && is_mtrr(base + 1));
        }
        assert!(!is_mtrr(PHYS_BASE0 + 2 * vcnt), "no MSR past the advertised count");
        assert_eq!(m.read(PHYS_BASE0 + 2 * vcnt), None);
        for msr in FIXED {
            assert_eq!(m.read(msr), Some(0x0606_0606_0606_0606));
            assert_eq!(m.write(msr, 0x0000_0101_0404_0506, 36), Ok(()));
            assert_eq!(m.read(msr), Some(0x0000_0101_0404_0506));
        }
        assert_eq!(m.read(DEF_TYPE), Some(0xc06));
    }

    #[test]
    fn hardware_write_checks() {
        let mut m = Mtrrs::firmware_state();
        assert_eq!(m.write(MTRRCAP, CAP, 36), Err(()), "MTRRcap is read-only");
        assert_eq!(m.write(DEF_TYPE, 0x1000 | 6, 36), Err(()), "reserved bit");
        assert_eq!(m.write(DEF_TYPE, 0x802, 36), Err(()), "type 2 is reserved");
        assert_eq!(m.write(DEF_TYPE, 0x807, 36), Err(()), "UC- is a PAT type only");
        assert_eq!(m.write(DEF_TYPE, 0, 36), Ok(()), "MTRRs off");
        assert_eq!(m.write(FIXED[0], 0x0606_0606_0606_0603, 36), Err(()));
        assert_eq!(m.write(PHYS_BASE0, 0x10_0000_0006, 36), Err(()), "beyond the physical width");
        assert_eq!(m.write(PHYS_BASE0, 0x100 | 6, 36), Err(()), "reserved bits 11:8");
        assert_eq!(m.write(PHYS_BASE0 + 1, 0x10_0000_0800, 36), Err(()), "mask beyond the width");
        assert_eq!(m.write(PHYS_BASE0 + 1, 0xf_ffff_f801, 36), Err(()), "reserved bits 10:0");
        assert_eq!(m.write(PHYS_BASE0 + 1, 0xff_ffff_f800, 40), Ok(()));
        assert_eq!(m.write(0x2fe, 0, 36), Err(()), "not an MTRR");
    }
}

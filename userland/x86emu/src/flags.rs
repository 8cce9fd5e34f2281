//! The arithmetic and logic operations that can target MMIO, with their RFLAGS results.
//!
//! Status flags per SDM Vol 1 3.4.3.1 and the instruction pages of Vol 2: ADD and SUB (and CMP)
//! set CF, PF, AF, ZF, SF and OF from the result; AND, OR and XOR (and TEST) clear CF and OF, set
//! PF, ZF and SF, and leave AF undefined, which here means cleared.
//!
//! Does not: touch any flag outside the six status flags (DF, IF, TF, ... are preserved).

use crate::regs::mask;

pub const CF: u64 = 1 << 0;
pub const PF: u64 = 1 << 2;
pub const AF: u64 = 1 << 4;
pub const ZF: u64 = 1 << 6;
pub const SF: u64 = 1 << 7;
pub const DF: u64 = 1 << 10;
pub const OF: u64 = 1 << 11;
/// The flags an ALU operation replaces.
pub const STATUS: u64 = CF | PF | AF | ZF | SF | OF;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AluOp {
    Add,
    Sub,
    And,
    Or,
    Xor,
}

/// `a op b` on `size`-byte operands: the result (masked) and the new status flags.
pub fn alu(op: AluOp, a: u64, b: u64, size: u8) -> (u64, u64) {
    let mask = mask(size);
    let sign = 1u64 << (u32::from(size) * 8 - 1);
    let (a, b) = (a & mask, b & mask);
    let (result, carry, overflow, adjust) = match op {
        AluOp::Add => {
            let r = a.wrapping_add(b) & mask;
            (r, r < a, (a ^ r) & (b ^ r) & sign != 0, (a ^ b ^ r) & 0x10 != 0)
        }
        AluOp::Sub => {
            let r = a.wrapping_sub(b) & mask;
            (r, a < b, (a ^ b) & (a ^ r) & sign != 0, (a ^ b ^ r) & 0x10 != 0)
        }
        AluOp::And => (a & b, false, false, false),
        AluOp::Or => (a | b, false, false, false),
        AluOp::Xor => (a ^ b, false, false, false),
    };
    let mut flags = 0;
    if carry {
        flags |= CF;
    }
    if (result as u8).count_ones().is_multiple_of(2) {
        flags |= PF;
    }
    if adjust {
        flags |= AF;
    }
    if result == 0 {
        flags |= ZF;
    }
    if result & sign != 0 {
        flags |= SF;
    }
    if overflow {
        flags |= OF;
    }
    (result, flags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_flags() {
        assert_eq!(alu(AluOp::Add, 0xFF, 1, 1), (0, CF | PF | AF | ZF));
        assert_eq!(alu(AluOp::Add, 0x7F, 1, 1), (0x80, AF | SF | OF));
        assert_eq!(alu(AluOp::Add, 0x7FFF_FFFF, 1, 4), (0x8000_0000, AF | SF | OF | PF));
        assert_eq!(alu(AluOp::Add, u64::MAX, u64::MAX, 8), (u64::MAX - 1, CF | AF | SF));
        assert_eq!(alu(AluOp::Add, 1, 2, 2), (3, PF));
        assert_eq!(alu(AluOp::Add, 0x8000, 0x8000, 2), (0, CF | ZF | PF | OF));
    }

    #[test]
    fn sub_flags() {
        assert_eq!(alu(AluOp::Sub, 0, 1, 1), (0xFF, CF | PF | AF | SF));
        assert_eq!(alu(AluOp::Sub, 0x80, 1, 1), (0x7F, AF | OF));
        assert_eq!(alu(AluOp::Sub, 5, 5, 8), (0, ZF | PF));
        assert_eq!(alu(AluOp::Sub, 0x8000_0000_0000_0000, 1, 8), (0x7FFF_FFFF_FFFF_FFFF, AF | OF | PF));
        assert_eq!(alu(AluOp::Sub, 0x10, 0x01, 4), (0x0F, AF | PF));
    }

    #[test]
    fn logic_flags() {
        assert_eq!(alu(AluOp::And, 0xF0, 0x0F, 1), (0, ZF | PF));
        assert_eq!(alu(AluOp::Or, 0x80, 0x01, 1), (0x81, SF | PF));
        assert_eq!(alu(AluOp::Xor, 0xFFFF, 0x0001, 2), (0xFFFE, SF));
        assert_eq!(alu(AluOp::And, u64::MAX, 0x1_0000_0000, 8), (0x1_0000_0000, PF));
        // Operands wider than the size are truncated first.
        assert_eq!(alu(AluOp::Or, 0x1234, 0x100, 1), (0x34, 0));
    }
}

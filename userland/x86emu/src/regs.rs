//! General-purpose register operands: which slot of [`Regs::gpr`] an `iced_x86::Register` names,
//! its width, and the x86 rules for partial writes.
//!
//! Writes (SDM Vol 1 3.4.1.1): an 8-bit register replaces bits 7:0 (or 15:8 for AH, CH, DH, BH)
//! and a 16-bit register bits 15:0, leaving the rest; a 32-bit register write zero-extends into
//! bits 63:32. That is the rule in 64-bit mode; outside it the upper halves are invisible to the
//! guest (and undefined after a mode switch), so it is applied in every mode, as KVM does.
//!
//! Does not: know segment, control, debug or vector registers (they are not operands here).

use crate::Regs;
use iced_x86::Register;

/// Indices into [`Regs::gpr`], in the hardware's register-number order (SDM Vol 2A Table 3-1):
/// the vCPU page's, defined once in keel-abi.
pub use keel_abi::vcpu::reg as index;

/// A general-purpose register operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gpr {
    index: usize,
    /// Width in bytes: 1, 2, 4 or 8.
    pub size: u8,
    /// AH, CH, DH or BH: bits 15:8 of registers 0-3.
    high: bool,
}

impl Gpr {
    /// The operand for `reg`, if it is a general-purpose register.
    pub fn new(reg: Register) -> Option<Self> {
        // iced numbers the registers AL, CL, DL, BL, AH, CH, DH, BH, SPL, BPL, SIL, DIL,
        // R8L..R15L, then AX..R15W, EAX..R15D and RAX..R15, each in hardware order.
        const AL: usize = Register::AL as usize;
        const R15L: usize = Register::R15L as usize;
        const AX: usize = Register::AX as usize;
        const R15W: usize = Register::R15W as usize;
        const EAX: usize = Register::EAX as usize;
        const R15D: usize = Register::R15D as usize;
        const RAX: usize = Register::RAX as usize;
        const R15: usize = Register::R15 as usize;
        let n = reg as usize;
        let (index, size, high) = match n {
            AL..=R15L => match n - AL {
                i @ 0..=3 => (i, 1, false),
                i @ 4..=7 => (i - 4, 1, true),
                i => (i - 4, 1, false),
            },
            AX..=R15W => (n - AX, 2, false),
            EAX..=R15D => (n - EAX, 4, false),
            RAX..=R15 => (n - RAX, 8, false),
            _ => return None,
        };
        Some(Self { index, size, high })
    }

    /// The operand for register number `number` (0-15, REX.R/REX.B already applied) of `size`
    /// bytes, as a ModRM field encodes it: without a REX prefix, 8-bit numbers 4-7 are AH, CH,
    /// DH and BH; with any REX prefix they are SPL, BPL, SIL and DIL (SDM Vol 2A 3.7.2.1).
    pub fn encoded(number: u8, size: u8, rex: bool) -> Self {
        let number = usize::from(number & 15);
        if size == 1 && !rex && (4..8).contains(&number) {
            Self { index: number - 4, size, high: true }
        } else {
            Self { index: number, size, high: false }
        }
    }

    /// The register's value, zero-extended.
    pub fn read(self, regs: &Regs) -> u64 {
        let full = regs.gpr[self.index];
        if self.high {
            (full >> 8) & 0xFF
        } else {
            full & mask(self.size)
        }
    }

    /// Writes the low `size` bytes of `value` with the x86 partial-register rules.
    pub fn write(self, regs: &mut Regs, value: u64) {
        let full = &mut regs.gpr[self.index];
        *full = match (self.size, self.high) {
            (1, true) => (*full & !0xFF00) | ((value & 0xFF) << 8),
            (4, _) => value & 0xFFFF_FFFF,
            (size, _) => (*full & !mask(size)) | (value & mask(size)),
        };
    }
}

/// All ones in the low `size` bytes (1, 2, 4 or 8).
pub(crate) fn mask(size: u8) -> u64 {
    match size {
        1 => 0xFF,
        2 => 0xFFFF,
        4 => 0xFFFF_FFFF,
        _ => u64::MAX,
    }
}

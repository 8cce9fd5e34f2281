//! The fast path: decodes by hand, without iced-x86, the few instruction forms device drivers use
//! for MMIO (Linux `readb`..`readq`, `writeb`..`writeq`, `ioread*`/`iowrite*`, firmware pokes)
//! and executes them with the same helpers as the general path. [`crate::emulate`] tries it first
//! and falls back to the iced-x86 decoder whenever it declines.
//!
//! Handled, in 32-bit and 64-bit code only, with a memory operand (ModRM mod != 3, any SIB and
//! displacement of 32/64-bit addressing, including RIP-relative):
//! - `88`/`89` MOV r/m, reg; `8A`/`8B` MOV reg, r/m;
//! - `C6 /0` MOV r/m8, imm8; `C7 /0` MOV r/m16/32/64, imm16/32 (sign-extended with REX.W);
//! - `0F B6`/`0F B7` MOVZX reg, r/m8 and r/m16;
//!
//! with at most one `66` operand-size prefix, any segment overrides (`26 2E 36 3E 64 65`: the
//! access goes to the fault address, so they change nothing), and in 64-bit mode one REX prefix
//! directly before the opcode.
//!
//! Declines (returns `None`, having touched nothing) everything else: 16-bit code, the `67`
//! address-size prefix, `LOCK`, `REP`/`REPNE`, a second `66`, a REX prefix not directly before the
//! opcode, VEX/EVEX/XOP, register operands (mod == 3), `C6`/`C7` with reg != 0, other opcodes,
//! and instructions that run past the bytes given or past 15 bytes. The general path then
//! reports the error or emulates the instruction. Whatever the fast path handles, it handles
//! exactly as the general path would (same registers, RIP, access and MMIO calls); the
//! differential tests in `tests/fast.rs` and the fuzz target check this.
//!
//! See: SDM Vol 2A 2.1 (prefixes), 2.1.5 and Tables 2-2 and 2-3 (ModRM and SIB), 2.2.1 (REX),
//! 3.7.2.1 (byte registers with REX); Vol 2B "MOV" and "MOVZX".

use crate::exec::{next_ip, read, write};
use crate::regs::Gpr;
use crate::{Access, Mmio, Mode, Regs, MAX_INSN_LEN};
use keel_addr::Gpa;

/// What the instruction does with its memory operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// MOV r/m, reg: stores the register.
    Store(Gpr),
    /// MOV r/m, imm: stores the immediate (already sign-extended for REX.W).
    StoreImm(u64),
    /// MOV reg, r/m and MOVZX: loads into the register, which may be wider (zero-extension).
    Load(Gpr),
}

/// A decoded fast-path instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Insn {
    pub op: Op,
    /// The memory operand's size in bytes: 1, 2, 4 or 8.
    pub size: u8,
    /// The instruction's length in bytes.
    pub len: usize,
}

/// Decodes `bytes` if they start with a fast-path form that fits in them.
pub(crate) fn decode(mode: Mode, bytes: &[u8]) -> Option<Insn> {
    if mode == Mode::Real16 {
        return None;
    }
    let bytes = bytes.get(..MAX_INSN_LEN).unwrap_or(bytes);
    let mut at = 0;
    let mut operand16 = false;
    loop {
        match *bytes.get(at)? {
            0x26 | 0x2E | 0x36 | 0x3E | 0x64 | 0x65 => {}
            0x66 if !operand16 => operand16 = true,
            _ => break,
        }
        at += 1;
    }
    let mut rex = None;
    if mode == Mode::Long64 {
        if let b @ 0x40..=0x4F = bytes[at] {
            rex = Some(b);
            at += 1;
        }
    }
    let rex_bits = rex.unwrap_or(0);
    let rex_w = rex_bits & 0x8 != 0;
    let wide = if rex_w {
        8
    } else if operand16 {
        2
    } else {
        4
    };
    let opcode = *bytes.get(at)?;
    at += 1;
    // (size of the memory operand, size of the register operand or 0 for an immediate, load)
    let (size, reg_size, load) = match opcode {
        0x88 => (1, 1, false),
        0x89 => (wide, wide, false),
        0x8A => (1, 1, true),
        0x8B => (wide, wide, true),
        0xC6 => (1, 0, false),
        0xC7 => (wide, 0, false),
        0x0F => {
            let second = *bytes.get(at)?;
            at += 1;
            match second {
                0xB6 => (1, wide, true),
                0xB7 => (2, wide, true),
                _ => return None,
            }
        }
        _ => return None,
    };
    let modrm = *bytes.get(at)?;
    at += 1;
    let (md, reg, rm) = (modrm >> 6, (modrm >> 3) & 7, modrm & 7);
    if md == 3 || (reg_size == 0 && reg != 0) {
        return None;
    }
    // 32/64-bit addressing (SDM Vol 2A Tables 2-2 and 2-3); REX.B does not change the special
    // cases, which look at the unextended fields.
    if rm == 4 {
        let sib = *bytes.get(at)?;
        at += 1;
        if md == 0 && sib & 7 == 5 {
            at += 4;
        }
    } else if md == 0 && rm == 5 {
        at += 4;
    }
    at += match md {
        1 => 1,
        2 => 4,
        _ => 0,
    };
    let op = if reg_size == 0 {
        let imm_len = usize::from(size.min(4));
        let imm = bytes.get(at..at + imm_len)?;
        at += imm_len;
        let mut buf = [0u8; 4];
        buf[..imm_len].copy_from_slice(imm);
        let imm = u32::from_le_bytes(buf);
        Op::StoreImm(if size == 8 { imm as i32 as i64 as u64 } else { u64::from(imm) })
    } else {
        let number = reg | ((rex_bits & 0x4) << 1);
        let gpr = Gpr::encoded(number, reg_size, rex.is_some());
        if load {
            Op::Load(gpr)
        } else {
            Op::Store(gpr)
        }
    };
    // `bytes` holds at most 15, so this also keeps the length within the limit.
    if at > bytes.len() {
        return None;
    }
    Some(Insn { op, size, len: at })
}

/// Performs a decoded instruction's access at `gpa` and updates the registers and RIP.
pub(crate) fn execute(mode: Mode, insn: Insn, gpa: Gpa, regs: &mut Regs, mmio: &mut dyn Mmio) -> Access {
    let size = insn.size;
    let access = match insn.op {
        Op::Store(reg) => write(mmio, gpa, size, reg.read(regs)),
        Op::StoreImm(imm) => write(mmio, gpa, size, imm),
        Op::Load(reg) => {
            let value = read(mmio, gpa, size);
            reg.write(regs, value);
            Access { gpa, size, write: false, value }
        }
    };
    regs.rip = next_ip(mode, regs.rip, insn.len);
    access
}

/// Emulates the instruction if it is a fast-path form; `None` (nothing touched) otherwise.
pub(crate) fn emulate(mode: Mode, bytes: &[u8], gpa: Gpa, regs: &mut Regs, mmio: &mut dyn Mmio) -> Option<Access> {
    let insn = decode(mode, bytes)?;
    Some(execute(mode, insn, gpa, regs, mmio))
}

//! Emulation of the one guest instruction behind an MMIO exit: a nested page fault on a
//! guest-physical address that is not RAM. The monitor hands over the instruction bytes, the
//! fault address and the guest's general-purpose registers; [`emulate`] decodes the instruction
//! (with `iced-x86`), performs its memory access through the [`Mmio`] trait, updates the
//! registers and flags exactly as the CPU would, and advances RIP.
//!
//! Fast path: the forms device drivers use for MMIO (`MOV` to and from memory with a register or
//! immediate, and `MOVZX` from memory: opcodes `88`, `89`, `8A`, `8B`, `C6 /0`, `C7 /0`, `0F B6`,
//! `0F B7`, with an optional `66`, segment overrides and, in 64-bit mode, a REX prefix) in 32-
//! and 64-bit code are decoded by hand (module `fast`), which costs a small fraction of the
//! general decoder. Everything else, and anything the fast path is unsure of (16-bit code, other
//! prefixes, bytes that end early), goes to the iced-x86 path. Both give identical results for
//! every instruction the fast path takes; differential tests and the fuzz target check that.
//!
//! Emulated: `MOV` in all its register/memory, immediate and moffs forms, `MOVZX`, `MOVSX`,
//! `MOVSXD`, `MOVNTI`, `STOS` (with `REP`, one iteration per exit), `XCHG` with memory,
//! `ADD`/`SUB`/`AND`/`OR`/`XOR` to or from memory, and `CMP`/`TEST` against memory, with 8-, 16-,
//! 32- and 64-bit operands in 16-, 32- and 64-bit code, including operand- and address-size
//! prefixes, REX and the AH/CH/DH/BH registers. Anything else, and any `LOCK`, `REP`/`REPNE` or
//! `XACQUIRE`/`XRELEASE` prefix on something other than `STOS`, is refused with
//! [`EmuError::Unsupported`] rather than emulated approximately.
//!
//! Does not: compute the effective address (the access goes to the fault address the hardware
//! reported, which segment overrides and address-size prefixes cannot change), check segment
//! limits or privilege, fetch instruction bytes, split an access that straddles a page boundary,
//! or inject exceptions (an error tells the monitor what to do: `#UD` for [`EmuError::Decode`],
//! `#GP` for [`EmuError::TooLong`]).
//!
//! See: Intel SDM Vol 1 3.4.1.1 (32-bit results zero-extend in 64-bit mode), Vol 1 3.4.3.1 and
//! Appendix A (status flags), Vol 2 2.1 (prefixes, 15-byte limit), Vol 2 chapter 4 (MOV, MOVZX,
//! MOVSX/MOVSXD, STOS, XCHG, ADD, SUB, AND, OR, XOR, CMP, TEST).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

mod exec;
mod fast;
mod flags;
mod regs;
pub mod string_io;

#[cfg(test)]
mod tests;

use core::fmt;
use iced_x86::{Decoder, DecoderError, DecoderOptions};
use keel_addr::Gpa;

pub use regs::index;

/// The longest x86 instruction (SDM Vol 2A 2.1 and 2.3.11).
pub const MAX_INSN_LEN: usize = 15;

/// The code size the guest executes with, which fixes the default operand and address sizes.
/// The monitor derives it from CR0.PE, EFER.LMA and the CS descriptor (see [`Mode::from_cs`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 16-bit code: real mode, virtual-8086 mode or a 16-bit protected-mode code segment.
    Real16,
    /// 32-bit code: a 32-bit segment in protected or compatibility mode.
    Protected32,
    /// 64-bit mode.
    Long64,
}

impl Mode {
    /// The code size from EFER.LMA and the cached CS.L and CS.D bits (SDM Vol 3A 3.4.5; in real
    /// mode CS.D is clear).
    pub fn from_cs(long_mode_active: bool, cs_l: bool, cs_d: bool) -> Self {
        match (long_mode_active && cs_l, cs_d) {
            (true, _) => Self::Long64,
            (false, true) => Self::Protected32,
            (false, false) => Self::Real16,
        }
    }

    fn bitness(self) -> u32 {
        match self {
            Self::Real16 => 16,
            Self::Protected32 => 32,
            Self::Long64 => 64,
        }
    }
}

/// The guest registers an instruction can read or write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Regs {
    /// RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8-R15, in the hardware's encoding order
    /// (see [`index`]).
    pub gpr: [u64; 16],
    pub rip: u64,
    pub rflags: u64,
}

/// Guest-physical MMIO as the monitor dispatches it. Values are little-endian; `data.len()` is
/// the access size (1, 2, 4 or 8).
pub trait Mmio {
    fn read(&mut self, gpa: Gpa, data: &mut [u8]);
    fn write(&mut self, gpa: Gpa, data: &[u8]);
}

/// What the instruction did on the bus (for logging and tests). For a read-modify-write
/// instruction (ADD, XCHG, ...) it is the write, which followed a read of the same bytes; for
/// CMP and TEST it is the read. `size` is 0 for a `REP STOS` whose count was already zero, which
/// touches no memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    pub gpa: Gpa,
    pub size: u8,
    pub write: bool,
    /// The value read or written, zero-extended.
    pub value: u64,
}

/// Why an instruction was not emulated. The registers are unchanged and nothing was accessed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmuError {
    /// Not a valid instruction in this mode (the CPU would raise #UD).
    Decode,
    /// The instruction continues past the bytes given (fetch more and retry).
    Truncated,
    /// The instruction is longer than 15 bytes (the CPU would raise #GP).
    TooLong,
    /// A valid instruction this emulator does not handle; names what was refused.
    Unsupported(&'static str),
}

impl fmt::Display for EmuError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Decode => f.write_str("invalid instruction"),
            Self::Truncated => f.write_str("instruction bytes truncated"),
            Self::TooLong => f.write_str("instruction longer than 15 bytes"),
            Self::Unsupported(what) => write!(f, "unsupported instruction: {what}"),
        }
    }
}

/// Emulates the instruction at `regs.rip`, whose bytes start `bytes` (up to 15 are looked at;
/// trailing bytes of later instructions are fine), that faulted on MMIO at guest-physical `gpa`:
/// performs the access through `mmio`, updates the registers and flags, and advances RIP (for a
/// `REP STOS` that has iterations left, RIP stays so the guest re-executes it). On error nothing
/// was accessed and `regs` is unchanged.
///
/// Tries the hand-written fast path first and falls back to the iced-x86 decoder.
pub fn emulate(mode: Mode, bytes: &[u8], gpa: Gpa, regs: &mut Regs, mmio: &mut dyn Mmio) -> Result<Access, EmuError> {
    match fast::emulate(mode, bytes, gpa, regs, mmio) {
        Some(access) => Ok(access),
        None => emulate_iced(mode, bytes, gpa, regs, mmio),
    }
}

/// The fast path alone: `Some` exactly when it handled the instruction (with the same effects
/// [`emulate`] has), `None` with nothing touched otherwise. For differential tests and fuzzing.
#[doc(hidden)]
pub fn emulate_fast(mode: Mode, bytes: &[u8], gpa: Gpa, regs: &mut Regs, mmio: &mut dyn Mmio) -> Option<Access> {
    fast::emulate(mode, bytes, gpa, regs, mmio)
}

/// The general (iced-x86) path alone, as [`emulate`] without the fast path. For differential
/// tests and fuzzing.
#[doc(hidden)]
pub fn emulate_iced(
    mode: Mode,
    bytes: &[u8],
    gpa: Gpa,
    regs: &mut Regs,
    mmio: &mut dyn Mmio,
) -> Result<Access, EmuError> {
    let bytes = bytes.get(..MAX_INSN_LEN).unwrap_or(bytes);
    let mut decoder = Decoder::with_ip(mode.bitness(), bytes, regs.rip, DecoderOptions::NONE);
    let insn = decoder.decode();
    match decoder.last_error() {
        DecoderError::None if !insn.is_invalid() && insn.len() <= MAX_INSN_LEN => {}
        DecoderError::NoMoreBytes => return Err(EmuError::Truncated),
        // The decoder stops at 15 bytes: an instruction that filled the window without ending
        // is too long.
        _ if insn.len() >= MAX_INSN_LEN => return Err(EmuError::TooLong),
        _ => return Err(EmuError::Decode),
    }
    exec::execute(mode, &insn, gpa, regs, mmio)
}

//! Executes a decoded instruction against the fault address: operand checks first (so a refused
//! instruction touches neither MMIO nor registers), then the access, then register, flag and RIP
//! updates.
//!
//! Does not: decode (lib.rs does) or compute effective addresses (the access goes to `gpa`).

use crate::flags::{alu, AluOp, DF, STATUS};
use crate::regs::{index, mask, Gpr};
use crate::{Access, EmuError, Mmio, Mode, Regs};
use iced_x86::{Instruction, MemorySize, Mnemonic, OpKind};
use keel_addr::Gpa;

/// The operand that is not the memory operand.
#[derive(Debug, Clone, Copy)]
enum Other {
    Reg(Gpr),
    Imm(u64),
}

/// The emulated instruction families.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Mov,
    Extend {
        sign: bool,
    },
    Xchg,
    /// The operation, and whether its result is stored (CMP and TEST only set flags).
    Alu(AluOp, bool),
    Stos,
}

/// A two-operand instruction with one memory operand.
#[derive(Debug, Clone, Copy)]
struct Form {
    /// The memory operand is the destination (operand 0).
    mem_is_dest: bool,
    other: Other,
}

pub(crate) fn execute(
    mode: Mode,
    insn: &Instruction,
    gpa: Gpa,
    regs: &mut Regs,
    mmio: &mut dyn Mmio,
) -> Result<Access, EmuError> {
    let mnemonic = insn.mnemonic();
    let is_stos = matches!(mnemonic, Mnemonic::Stosb | Mnemonic::Stosw | Mnemonic::Stosd | Mnemonic::Stosq);
    // SDM Vol 2 2.1.1: LOCK is only legal on read-modify-write forms (the decoder already
    // rejects the rest as #UD); it is refused rather than emulated. REP/REPNE are meaningful only
    // on string instructions, and XACQUIRE/XRELEASE are hints the emulator will not silently drop.
    if insn.has_lock_prefix() {
        return Err(EmuError::Unsupported("lock prefix"));
    }
    if insn.has_repne_prefix()
        || insn.has_xacquire_prefix()
        || insn.has_xrelease_prefix()
        || (insn.has_rep_prefix() && !is_stos)
    {
        return Err(EmuError::Unsupported("rep prefix"));
    }
    let kind = match mnemonic {
        _ if is_stos => Kind::Stos,
        Mnemonic::Mov | Mnemonic::Movnti => Kind::Mov,
        Mnemonic::Movzx => Kind::Extend { sign: false },
        Mnemonic::Movsx | Mnemonic::Movsxd => Kind::Extend { sign: true },
        Mnemonic::Xchg => Kind::Xchg,
        Mnemonic::Add => Kind::Alu(AluOp::Add, true),
        Mnemonic::Sub => Kind::Alu(AluOp::Sub, true),
        Mnemonic::And => Kind::Alu(AluOp::And, true),
        Mnemonic::Or => Kind::Alu(AluOp::Or, true),
        Mnemonic::Xor => Kind::Alu(AluOp::Xor, true),
        Mnemonic::Cmp => Kind::Alu(AluOp::Sub, false),
        Mnemonic::Test => Kind::Alu(AluOp::And, false),
        other => return Err(EmuError::Unsupported(family(other))),
    };
    let size = memory_size(insn)?;
    let next_rip = next_ip(mode, regs.rip, insn.len());
    let access = match kind {
        Kind::Stos => return stos(insn, gpa, size, next_rip, regs, mmio),
        Kind::Mov => mov(form(insn)?, gpa, size, regs, mmio)?,
        Kind::Extend { sign } => load_extend(insn, sign, gpa, size, regs, mmio)?,
        Kind::Xchg => xchg(form(insn)?, gpa, size, regs, mmio)?,
        Kind::Alu(op, store) => arith(form(insn)?, op, store, gpa, size, regs, mmio)?,
    };
    regs.rip = next_rip;
    Ok(access)
}

/// RIP after an instruction of `len` bytes: IP wraps at 64 KiB in 16-bit code and EIP at 4 GiB
/// in 32-bit code (SDM Vol 1 3.5; the upper bits are cleared, as a near jump would).
pub(crate) fn next_ip(mode: Mode, rip: u64, len: usize) -> u64 {
    let next = rip.wrapping_add(len as u64);
    match mode {
        Mode::Real16 => next & 0xFFFF,
        Mode::Protected32 => next & 0xFFFF_FFFF,
        Mode::Long64 => next,
    }
}

/// The memory operand's size in bytes.
fn memory_size(insn: &Instruction) -> Result<u8, EmuError> {
    match insn.memory_size() {
        MemorySize::UInt8 | MemorySize::Int8 => Ok(1),
        MemorySize::UInt16 | MemorySize::Int16 => Ok(2),
        MemorySize::UInt32 | MemorySize::Int32 => Ok(4),
        MemorySize::UInt64 | MemorySize::Int64 => Ok(8),
        MemorySize::Unknown => Err(EmuError::Unsupported("no memory operand")),
        _ => Err(EmuError::Unsupported("memory operand size")),
    }
}

/// Splits a two-operand instruction into its memory operand and the other one, which must be a
/// general-purpose register or an immediate.
fn form(insn: &Instruction) -> Result<Form, EmuError> {
    if insn.op_count() != 2 {
        return Err(EmuError::Unsupported("operand form"));
    }
    let mem_is_dest = match (insn.op0_kind(), insn.op1_kind()) {
        (OpKind::Memory, OpKind::Memory) => return Err(EmuError::Unsupported("operand form")),
        (OpKind::Memory, _) => true,
        (_, OpKind::Memory) => false,
        _ => return Err(EmuError::Unsupported("no memory operand")),
    };
    let other_index = u32::from(mem_is_dest);
    let other = match insn.op_kind(other_index) {
        OpKind::Register => Other::Reg(
            Gpr::new(insn.op_register(other_index)).ok_or(EmuError::Unsupported("non-general-purpose register"))?,
        ),
        OpKind::Immediate8
        | OpKind::Immediate16
        | OpKind::Immediate32
        | OpKind::Immediate64
        | OpKind::Immediate8to16
        | OpKind::Immediate8to32
        | OpKind::Immediate8to64
        | OpKind::Immediate32to64 => Other::Imm(insn.immediate(other_index)),
        _ => return Err(EmuError::Unsupported("operand form")),
    };
    Ok(Form { mem_is_dest, other })
}

pub(crate) fn read(mmio: &mut dyn Mmio, gpa: Gpa, size: u8) -> u64 {
    let mut data = [0u8; 8];
    mmio.read(gpa, &mut data[..usize::from(size)]);
    u64::from_le_bytes(data)
}

pub(crate) fn write(mmio: &mut dyn Mmio, gpa: Gpa, size: u8, value: u64) -> Access {
    let value = value & mask(size);
    mmio.write(gpa, &value.to_le_bytes()[..usize::from(size)]);
    Access { gpa, size, write: true, value }
}

fn same_size(reg: Gpr, size: u8) -> Result<(), EmuError> {
    if reg.size == size {
        Ok(())
    } else {
        Err(EmuError::Unsupported("operand size"))
    }
}

/// MOV r/m, reg | imm and MOV reg, r/m (including the moffs forms), MOVNTI.
fn mov(form: Form, gpa: Gpa, size: u8, regs: &mut Regs, mmio: &mut dyn Mmio) -> Result<Access, EmuError> {
    match (form.mem_is_dest, form.other) {
        (true, Other::Reg(reg)) => {
            same_size(reg, size)?;
            Ok(write(mmio, gpa, size, reg.read(regs)))
        }
        // MOV r/m64, imm32 sign-extends (the decoder's Immediate32to64).
        (true, Other::Imm(imm)) => Ok(write(mmio, gpa, size, imm)),
        (false, Other::Reg(reg)) => {
            same_size(reg, size)?;
            let value = read(mmio, gpa, size);
            reg.write(regs, value);
            Ok(Access { gpa, size, write: false, value })
        }
        (false, Other::Imm(_)) => Err(EmuError::Unsupported("operand form")),
    }
}

/// MOVZX, MOVSX and MOVSXD: a narrower load extended into the destination register.
fn load_extend(
    insn: &Instruction,
    sign: bool,
    gpa: Gpa,
    size: u8,
    regs: &mut Regs,
    mmio: &mut dyn Mmio,
) -> Result<Access, EmuError> {
    let form = form(insn)?;
    let Other::Reg(dest) = form.other else { return Err(EmuError::Unsupported("operand form")) };
    if form.mem_is_dest || dest.size < size {
        return Err(EmuError::Unsupported("operand form"));
    }
    let value = read(mmio, gpa, size);
    let extended = if sign { sign_extend(value, size) } else { value };
    dest.write(regs, extended);
    Ok(Access { gpa, size, write: false, value })
}

fn sign_extend(value: u64, size: u8) -> u64 {
    match size {
        1 => value as u8 as i8 as u64,
        2 => value as u16 as i16 as u64,
        4 => value as u32 as i32 as u64,
        _ => value,
    }
}

/// XCHG r/m, reg: the memory operand gets the register and the register the old memory value.
fn xchg(form: Form, gpa: Gpa, size: u8, regs: &mut Regs, mmio: &mut dyn Mmio) -> Result<Access, EmuError> {
    let Other::Reg(reg) = form.other else { return Err(EmuError::Unsupported("operand form")) };
    same_size(reg, size)?;
    let old = read(mmio, gpa, size);
    let access = write(mmio, gpa, size, reg.read(regs));
    reg.write(regs, old);
    Ok(access)
}

/// ADD, SUB, AND, OR, XOR (`store` = true) and CMP, TEST (`store` = false) with one memory
/// operand. Immediates arrive sign-extended to the operand size from the decoder.
fn arith(
    form: Form,
    op: AluOp,
    store: bool,
    gpa: Gpa,
    size: u8,
    regs: &mut Regs,
    mmio: &mut dyn Mmio,
) -> Result<Access, EmuError> {
    let other = match form.other {
        Other::Reg(reg) => {
            same_size(reg, size)?;
            reg.read(regs)
        }
        Other::Imm(_) if !form.mem_is_dest => return Err(EmuError::Unsupported("operand form")),
        Other::Imm(imm) => imm,
    };
    let mem = read(mmio, gpa, size);
    let (a, b) = if form.mem_is_dest { (mem, other) } else { (other, mem) };
    let (result, flags) = alu(op, a, b, size);
    regs.rflags = (regs.rflags & !STATUS) | flags;
    let read_access = Access { gpa, size, write: false, value: mem };
    if !store {
        return Ok(read_access);
    }
    match form.other {
        _ if form.mem_is_dest => Ok(write(mmio, gpa, size, result)),
        Other::Reg(reg) => {
            reg.write(regs, result);
            Ok(read_access)
        }
        Other::Imm(_) => Ok(read_access), // excluded above
    }
}

/// STOS (SDM Vol 2 "STOS"): stores AL/AX/EAX/RAX and steps (E/R)DI by the operand size, down if
/// RFLAGS.DF. With REP, one iteration per call: (E/R)CX counts down and RIP stays on the
/// instruction until it reaches zero, as when the CPU is interrupted between iterations.
fn stos(
    insn: &Instruction,
    gpa: Gpa,
    size: u8,
    next_rip: u64,
    regs: &mut Regs,
    mmio: &mut dyn Mmio,
) -> Result<Access, EmuError> {
    let address_size = match insn.op0_kind() {
        OpKind::MemoryESDI => 2,
        OpKind::MemoryESEDI => 4,
        OpKind::MemoryESRDI => 8,
        _ => return Err(EmuError::Unsupported("operand form")),
    };
    let source = match insn.op1_kind() {
        OpKind::Register => Gpr::new(insn.op_register(1)).ok_or(EmuError::Unsupported("operand form"))?,
        _ => return Err(EmuError::Unsupported("operand form")),
    };
    same_size(source, size)?;
    let rep = insn.has_rep_prefix();
    let count = regs.gpr[index::RCX] & mask(address_size);
    if rep && count == 0 {
        regs.rip = next_rip;
        return Ok(Access { gpa, size: 0, write: true, value: 0 });
    }
    let access = write(mmio, gpa, size, source.read(regs));
    let rdi = regs.gpr[index::RDI];
    let stepped =
        if regs.rflags & DF != 0 { rdi.wrapping_sub(u64::from(size)) } else { rdi.wrapping_add(u64::from(size)) };
    regs.gpr[index::RDI] = assign(rdi, stepped, address_size);
    if rep {
        let rcx = regs.gpr[index::RCX];
        regs.gpr[index::RCX] = assign(rcx, count - 1, address_size);
        if count > 1 {
            return Ok(access);
        }
    }
    regs.rip = next_rip;
    Ok(access)
}

/// Writes an address-sized register: 16-bit keeps bits 63:16, 32-bit zero-extends.
fn assign(old: u64, new: u64, size: u8) -> u64 {
    match size {
        2 => (old & !0xFFFF) | (new & 0xFFFF),
        4 => new & 0xFFFF_FFFF,
        _ => new,
    }
}

/// A name for the refused instruction's family, for the monitor's log.
fn family(mnemonic: Mnemonic) -> &'static str {
    use Mnemonic::*;
    match mnemonic {
        Movsb | Movsw | Movsd | Movsq => "movs",
        Lodsb | Lodsw | Lodsd | Lodsq => "lods",
        Cmpsb | Cmpsw | Cmpsd | Cmpsq => "cmps",
        Scasb | Scasw | Scasd | Scasq => "scas",
        Insb | Insw | Insd | Outsb | Outsw | Outsd => "ins/outs",
        Adc | Sbb => "adc/sbb",
        Inc | Dec | Neg | Not => "inc/dec/neg/not",
        Rol | Ror | Rcl | Rcr | Shl | Shr | Sal | Sar | Shld | Shrd => "shift/rotate",
        Bt | Bts | Btr | Btc => "bit test",
        Cmpxchg | Cmpxchg8b | Cmpxchg16b | Xadd => "cmpxchg/xadd",
        Push | Pop => "push/pop",
        Lea => "lea",
        Mul | Imul | Div | Idiv => "mul/div",
        Movd | Movq | Movdqa | Movdqu | Movaps | Movups | Movapd | Movupd | Movntdq | Movntps | Movss | Vmovd
        | Vmovq | Vmovdqa | Vmovdqu | Vmovaps | Vmovups | Vmovntdq => "vector move",
        Call | Jmp => "call/jmp",
        _ => "instruction",
    }
}

//! MOV, MOVZX, MOVSX, MOVSXD and MOVNTI in all three modes.

use super::*;
use crate::index::*;
use iced_x86::code_asm::*;

#[test]
fn store_register_each_size_64() {
    let cases: [(Vec<u8>, u8, usize); 4] = [
        (asm(64, |a| a.mov(byte_ptr(rax), cl)), 1, RCX),
        (asm(64, |a| a.mov(word_ptr(rax), cx)), 2, RCX),
        (asm(64, |a| a.mov(dword_ptr(rax), ecx)), 4, RCX),
        (asm(64, |a| a.mov(qword_ptr(rax), rcx)), 8, RCX),
    ];
    for (bytes, size, reg) in cases {
        let mut regs = regs();
        let before = regs;
        let mut mock = Mock::default();
        let access = run_one(Mode::Long64, &bytes, &mut regs, &mut mock);
        let value = before.gpr[reg] & crate::regs::mask(size);
        assert_eq!(access, write(size, value));
        assert_eq!(mock.log.len(), 1);
        assert_eq!(regs.gpr, before.gpr, "a store changes no register");
        assert_eq!(regs.rflags, before.rflags);
    }
}

#[test]
fn load_register_each_size_64() {
    let mem = 0xF1F2_F3F4_F5F6_F7F8u64;
    // (instruction, size, expected RCX from old RCX)
    let old = regs().gpr[RCX];
    let cases: [(Vec<u8>, u8, u64); 4] = [
        (asm(64, |a| a.mov(cl, byte_ptr(rax))), 1, (old & !0xFF) | 0xF8),
        (asm(64, |a| a.mov(cx, word_ptr(rax))), 2, (old & !0xFFFF) | 0xF7F8),
        (asm(64, |a| a.mov(ecx, dword_ptr(rax))), 4, 0xF5F6_F7F8),
        (asm(64, |a| a.mov(rcx, qword_ptr(rax))), 8, mem),
    ];
    for (bytes, size, expect) in cases {
        let mut regs = regs();
        let mut mock = Mock::with(GPA, &mem.to_le_bytes());
        let access = run_one(Mode::Long64, &bytes, &mut regs, &mut mock);
        assert_eq!(access, read(size, mem & crate::regs::mask(size)));
        assert_eq!(regs.gpr[RCX], expect, "{bytes:02x?}");
        let mut others = regs.gpr;
        others[RCX] = old;
        assert_eq!(others, super::regs().gpr, "only RCX changed");
    }
}

#[test]
fn high_byte_registers() {
    // MOV AH, [RBX] (8A 27) and MOV [RBX], BH (88 3B) without REX name AH..BH.
    let mut regs = regs();
    let old_rax = regs.gpr[RAX];
    let mut mock = Mock::with(GPA, &[0x5C]);
    run_one(Mode::Long64, &asm(64, |a| a.mov(ah, byte_ptr(rbx))), &mut regs, &mut mock);
    assert_eq!(regs.gpr[RAX], (old_rax & !0xFF00) | 0x5C00);
    let bh_value = (regs.gpr[RBX] >> 8) & 0xFF;
    let access = run_one(Mode::Long64, &asm(64, |a| a.mov(byte_ptr(rbx), bh)), &mut regs, &mut mock);
    assert_eq!(access, write(1, bh_value));
    // With a REX prefix the same ModRM register numbers name SPL..DIL instead.
    let mut mock = Mock::with(GPA, &[0x5C]);
    let mut regs = super::regs();
    let old_rsi = regs.gpr[RSI];
    let old_rdx = regs.gpr[RDX];
    let bytes = [0x40, 0x8A, 0x30]; // MOV SIL, [RAX]
    run_one(Mode::Long64, &bytes, &mut regs, &mut mock);
    assert_eq!(regs.gpr[RSI], (old_rsi & !0xFF) | 0x5C);
    assert_eq!(regs.gpr[RDX], old_rdx, "not DH");
    // Without REX, 8A 30 is MOV DH, [RAX].
    let mut regs = super::regs();
    run_one(Mode::Long64, &[0x8A, 0x30], &mut regs, &mut mock);
    assert_eq!(regs.gpr[RDX], (old_rdx & !0xFF00) | 0x5C00);
    assert_eq!(regs.gpr[RSI], old_rsi);
    // High-byte registers in 16- and 32-bit code too.
    for (mode, bits) in [(Mode::Real16, 16), (Mode::Protected32, 32)] {
        let mut regs = super::regs();
        let old_rcx = regs.gpr[RCX];
        let bytes =
            if bits == 16 { asm(16, |a| a.mov(ch, byte_ptr(bx))) } else { asm(32, |a| a.mov(ch, byte_ptr(ebx))) };
        run_one(mode, &bytes, &mut regs, &mut mock);
        assert_eq!(regs.gpr[RCX], (old_rcx & !0xFF00) | 0x5C00);
    }
}

#[test]
fn extended_registers() {
    let mem = 0x8899_AABB_CCDD_EEFFu64;
    let mut regs = regs();
    let mut mock = Mock::with(GPA, &mem.to_le_bytes());
    let old = regs.gpr;
    run_one(Mode::Long64, &asm(64, |a| a.mov(r9d, dword_ptr(rax))), &mut regs, &mut mock);
    assert_eq!(regs.gpr[R9], 0xCCDD_EEFF);
    run_one(Mode::Long64, &asm(64, |a| a.mov(r10b, byte_ptr(r15))), &mut regs, &mut mock);
    assert_eq!(regs.gpr[R10], (old[R10] & !0xFF) | 0xFF);
    run_one(Mode::Long64, &asm(64, |a| a.mov(r15w, word_ptr(r12 + r13 * 4 + 0x100))), &mut regs, &mut mock);
    assert_eq!(regs.gpr[R15], (old[R15] & !0xFFFF) | 0xEEFF);
    let access = run_one(Mode::Long64, &asm(64, |a| a.mov(qword_ptr(rsp + 8), r14)), &mut regs, &mut mock);
    assert_eq!(access, write(8, old[R14]));
    let access = run_one(Mode::Long64, &asm(64, |a| a.mov(word_ptr(r8), r12w)), &mut regs, &mut mock);
    assert_eq!(access, write(2, old[R12] & 0xFFFF));
}

#[test]
fn store_immediate() {
    let mut regs = regs();
    let mut mock = Mock::default();
    let cases: [(Vec<u8>, Access); 6] = [
        (asm(64, |a| a.mov(byte_ptr(rax), 0x80)), write(1, 0x80)),
        (asm(64, |a| a.mov(word_ptr(rax), 0xBEEF)), write(2, 0xBEEF)),
        (asm(64, |a| a.mov(dword_ptr(rax), 0xDEAD_BEEFu32)), write(4, 0xDEAD_BEEF)),
        // C7 /0 with REX.W: imm32 sign-extended to 64 bits.
        (asm(64, |a| a.mov(qword_ptr(rax), -1)), write(8, u64::MAX)),
        (asm(64, |a| a.mov(qword_ptr(rax), i32::MIN)), write(8, 0xFFFF_FFFF_8000_0000)),
        (asm(64, |a| a.mov(qword_ptr(rax + 0x7FFF_FFF0), 0x7FFF_FFFF)), write(8, 0x7FFF_FFFF)),
    ];
    for (bytes, expect) in cases {
        assert_eq!(run_one(Mode::Long64, &bytes, &mut regs, &mut mock), expect, "{bytes:02x?}");
    }
    assert_eq!(mock.get(GPA, 8), 0x7FFF_FFFF);
}

#[test]
fn moffs_forms() {
    let mem = 0x1122_3344_5566_7788u64;
    // 64-bit: A1 with an 8-byte offset (MOV EAX, [moffs64]).
    let mut regs = regs();
    let mut mock = Mock::with(GPA, &mem.to_le_bytes());
    let mut bytes = vec![0xA1];
    bytes.extend_from_slice(&GPA.0.to_le_bytes());
    assert_eq!(run_one(Mode::Long64, &bytes, &mut regs, &mut mock), read(4, 0x5566_7788));
    assert_eq!(regs.gpr[RAX], 0x5566_7788);
    // REX.W A3: MOV [moffs64], RAX.
    let mut bytes = vec![0x48, 0xA3];
    bytes.extend_from_slice(&GPA.0.to_le_bytes());
    assert_eq!(run_one(Mode::Long64, &bytes, &mut regs, &mut mock), write(8, 0x5566_7788));
    // 67 A0: MOV AL, [moffs32] with a 32-bit address in 64-bit mode (6 bytes).
    let mut regs = super::regs();
    let old = regs.gpr[RAX];
    let bytes = [0x67, 0xA0, 0x10, 0x00, 0xB0, 0xFE];
    assert_eq!(run_one(Mode::Long64, &bytes, &mut regs, &mut mock), read(1, 0x88));
    assert_eq!(regs.gpr[RAX], (old & !0xFF) | 0x88);
    // 32-bit: A2 with a 4-byte offset: MOV [moffs32], AL.
    let bytes = [0xA2, 0x10, 0x00, 0xB0, 0xFE];
    assert_eq!(run_one(Mode::Protected32, &bytes, &mut regs, &mut mock), write(1, 0x88));
    // 16-bit: A1 with a 2-byte offset, and 66 A1 for EAX.
    let mut regs = super::regs();
    let old = regs.gpr[RAX];
    assert_eq!(run_one(Mode::Real16, &[0xA1, 0x10, 0x00], &mut regs, &mut mock), read(2, 0x7788));
    assert_eq!(regs.gpr[RAX], (old & !0xFFFF) | 0x7788);
    assert_eq!(run_one(Mode::Real16, &[0x66, 0xA1, 0x10, 0x00], &mut regs, &mut mock), read(4, 0x5566_7788));
    assert_eq!(regs.gpr[RAX], 0x5566_7788);
    // 16-bit with 67: a 4-byte offset.
    assert_eq!(run_one(Mode::Real16, &[0x67, 0xA0, 0x10, 0x00, 0xB0, 0xFE], &mut regs, &mut mock), read(1, 0x88));
}

#[test]
fn zero_and_sign_extension() {
    let mut mock = Mock::with(GPA, &[0x80, 0x90, 0xA0, 0xB0]);
    let base = regs();
    let cases: [(Vec<u8>, usize, u64, Access); 10] = [
        (asm(64, |a| a.movzx(eax, byte_ptr(rbx))), RAX, 0x80, read(1, 0x80)),
        (asm(64, |a| a.movsx(eax, byte_ptr(rbx))), RAX, 0xFFFF_FF80, read(1, 0x80)),
        (asm(64, |a| a.movsx(rax, byte_ptr(rbx))), RAX, 0xFFFF_FFFF_FFFF_FF80, read(1, 0x80)),
        (asm(64, |a| a.movzx(rdx, word_ptr(rbx))), RDX, 0x9080, read(2, 0x9080)),
        (asm(64, |a| a.movsx(rdx, word_ptr(rbx))), RDX, 0xFFFF_FFFF_FFFF_9080, read(2, 0x9080)),
        (asm(64, |a| a.movsx(edx, word_ptr(rbx))), RDX, 0xFFFF_9080, read(2, 0x9080)),
        (asm(64, |a| a.movsxd(r11, dword_ptr(rbx))), R11, 0xFFFF_FFFF_B0A0_9080, read(4, 0xB0A0_9080)),
        // MOVSXD without REX.W is a 32-bit load that zero-extends.
        (asm(64, |a| a.movsxd(r11d, dword_ptr(rbx))), R11, 0xB0A0_9080, read(4, 0xB0A0_9080)),
        // 16-bit destinations keep bits 63:16.
        (asm(64, |a| a.movzx(si, byte_ptr(rbx))), RSI, (base.gpr[RSI] & !0xFFFF) | 0x0080, read(1, 0x80)),
        (asm(64, |a| a.movsx(si, byte_ptr(rbx))), RSI, (base.gpr[RSI] & !0xFFFF) | 0xFF80, read(1, 0x80)),
    ];
    for (bytes, reg, expect, access) in cases {
        let mut regs = base;
        assert_eq!(run_one(Mode::Long64, &bytes, &mut regs, &mut mock), access, "{bytes:02x?}");
        assert_eq!(regs.gpr[reg], expect, "{bytes:02x?}");
    }
    // 16-bit code: MOVZX AX, byte; 66 MOVSX EAX, word.
    let mut regs = base;
    run_one(Mode::Real16, &asm(16, |a| a.movzx(ax, byte_ptr(si))), &mut regs, &mut mock);
    assert_eq!(regs.gpr[RAX], (base.gpr[RAX] & !0xFFFF) | 0x80);
    run_one(Mode::Real16, &asm(16, |a| a.movsx(eax, word_ptr(si))), &mut regs, &mut mock);
    assert_eq!(regs.gpr[RAX], 0xFFFF_9080);
}

#[test]
fn thirty_two_bit_writes_zero_extend_sixteen_and_eight_preserve() {
    let mut mock = Mock::with(GPA, &[0x01, 0x02, 0x03, 0x04]);
    let mut regs = regs();
    regs.gpr[RDI] = u64::MAX;
    run_one(Mode::Long64, &asm(64, |a| a.mov(edi, dword_ptr(rax))), &mut regs, &mut mock);
    assert_eq!(regs.gpr[RDI], 0x0403_0201);
    regs.gpr[RDI] = u64::MAX;
    run_one(Mode::Long64, &asm(64, |a| a.mov(di, word_ptr(rax))), &mut regs, &mut mock);
    assert_eq!(regs.gpr[RDI], 0xFFFF_FFFF_FFFF_0201);
    regs.gpr[RDI] = u64::MAX;
    run_one(Mode::Long64, &asm(64, |a| a.mov(dil, byte_ptr(rax))), &mut regs, &mut mock);
    assert_eq!(regs.gpr[RDI], 0xFFFF_FFFF_FFFF_FF01);
}

#[test]
fn prefixes_in_16_bit_code() {
    let mut mock = Mock::with(GPA, &[0x11, 0x22, 0x33, 0x44]);
    let mut regs = regs();
    // 89 07: MOV [BX], AX; 66 89 07: MOV [BX], EAX; 67 89 00: MOV [EAX], AX.
    let ax_value = regs.gpr[RAX] & 0xFFFF;
    let eax_value = regs.gpr[RAX] & 0xFFFF_FFFF;
    assert_eq!(run_one(Mode::Real16, &[0x89, 0x07], &mut regs, &mut mock), write(2, ax_value));
    assert_eq!(run_one(Mode::Real16, &[0x66, 0x89, 0x07], &mut regs, &mut mock), write(4, eax_value));
    assert_eq!(run_one(Mode::Real16, &[0x67, 0x89, 0x00], &mut regs, &mut mock), write(2, ax_value));
    assert_eq!(run_one(Mode::Real16, &[0x66, 0x67, 0x89, 0x00], &mut regs, &mut mock), write(4, eax_value));
    // Segment overrides (ES, CS, SS, DS, FS, GS) change nothing: the address is given.
    for seg in [0x26, 0x2E, 0x36, 0x3E, 0x64, 0x65] {
        assert_eq!(run_one(Mode::Real16, &[seg, 0x89, 0x07], &mut regs, &mut mock), write(2, ax_value));
    }
    // Several prefixes in any order, with a displacement.
    let bytes = [0x26, 0x67, 0x66, 0x8B, 0x80, 0x00, 0x10, 0x00, 0x00]; // MOV EAX, ES:[EAX+0x1000]
    assert_eq!(run_one(Mode::Real16, &bytes, &mut regs, &mut mock).size, 4);
    // IP wraps at 64 KiB and the upper half of EIP is cleared.
    let mut regs = super::regs();
    regs.rip = 0xFFFF;
    run(Mode::Real16, &[0x89, 0x07], &mut regs, &mut mock).unwrap();
    assert_eq!(regs.rip, 0x0001);
}

#[test]
fn prefixes_in_32_bit_code() {
    let mut mock = Mock::with(GPA, &[0x11, 0x22, 0x33, 0x44]);
    let mut regs = regs();
    let old = regs.gpr;
    assert_eq!(run_one(Mode::Protected32, &[0x89, 0x08], &mut regs, &mut mock), write(4, old[RCX] & 0xFFFF_FFFF));
    assert_eq!(run_one(Mode::Protected32, &[0x66, 0x89, 0x08], &mut regs, &mut mock), write(2, old[RCX] & 0xFFFF));
    // 67: 16-bit addressing ([BX+SI]).
    let mut mock = Mock::with(GPA, &[0x11, 0x22, 0x33, 0x44]);
    assert_eq!(run_one(Mode::Protected32, &[0x67, 0x8B, 0x08], &mut regs, &mut mock), read(4, 0x4433_2211));
    assert_eq!(regs.gpr[RCX], 0x4433_2211);
    // 0x40-0x4F are INC/DEC here, not REX: 48 89 08 is DEC EAX.
    assert_eq!(
        run(Mode::Protected32, &[0x48, 0x89, 0x08], &mut regs, &mut mock),
        Err(EmuError::Unsupported("inc/dec/neg/not"))
    );
    // EIP wraps at 4 GiB.
    regs.rip = 0xFFFF_FFFF;
    run(Mode::Protected32, &[0x89, 0x08], &mut regs, &mut mock).unwrap();
    assert_eq!(regs.rip, 1);
}

#[test]
fn prefixes_in_64_bit_code() {
    let mut mock = Mock::with(GPA, &[0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]);
    let mut regs = regs();
    let old = regs.gpr;
    // 66 with REX.W: REX.W wins (64-bit operand).
    assert_eq!(run_one(Mode::Long64, &[0x66, 0x48, 0x89, 0x08], &mut regs, &mut mock), write(8, old[RCX]));
    // A REX before a legacy prefix is ignored: 48 66 89 08 is a 16-bit store.
    assert_eq!(run_one(Mode::Long64, &[0x48, 0x66, 0x89, 0x08], &mut regs, &mut mock), write(2, old[RCX] & 0xFFFF));
    // 67 (32-bit address), FS and GS overrides, RIP-relative addressing.
    assert_eq!(run_one(Mode::Long64, &[0x67, 0x89, 0x08], &mut regs, &mut mock), write(4, old[RCX] & 0xFFFF_FFFF));
    assert_eq!(run_one(Mode::Long64, &[0x64, 0x89, 0x08], &mut regs, &mut mock).size, 4);
    let mut mock = Mock::with(GPA, &[0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]);
    assert_eq!(run_one(Mode::Long64, &[0x65, 0x48, 0x8B, 0x08], &mut regs, &mut mock), read(8, 0x8877_6655_4433_2211));
    assert_eq!(run_one(Mode::Long64, &[0x8B, 0x05, 0x00, 0x10, 0x00, 0x00], &mut regs, &mut mock).size, 4);
    // Trailing bytes of the next instructions are not part of this one.
    let mut regs = super::regs();
    let rip = regs.rip;
    run(
        Mode::Long64,
        &[0x89, 0x08, 0x90, 0x90, 0xCC, 0xCC, 0xCC, 0xCC, 0xCC, 0xCC, 0xCC, 0xCC, 0xCC, 0xCC, 0xCC, 0xCC, 0xCC],
        &mut regs,
        &mut mock,
    )
    .unwrap();
    assert_eq!(regs.rip, rip + 2);
    // RIP wraps in 64-bit mode only at 2^64.
    regs.rip = u64::MAX;
    run(Mode::Long64, &[0x89, 0x08], &mut regs, &mut mock).unwrap();
    assert_eq!(regs.rip, 1);
}

#[test]
fn movnti_and_longest_mov() {
    let mut mock = Mock::default();
    let mut regs = regs();
    let old = regs.gpr;
    assert_eq!(
        run_one(Mode::Long64, &asm(64, |a| a.movnti(dword_ptr(rdi), eax)), &mut regs, &mut mock),
        write(4, old[RAX] & 0xFFFF_FFFF)
    );
    assert_eq!(
        run_one(Mode::Long64, &asm(64, |a| a.movnti(qword_ptr(rdi), r8)), &mut regs, &mut mock),
        write(8, old[R8])
    );
    // 15 bytes: four prefixes, REX.W, C7 /0, SIB, disp32, imm32.
    let bytes = [0x2E, 0x3E, 0x26, 0x67, 0x48, 0xC7, 0x84, 0x24, 0x44, 0x33, 0x22, 0x11, 0xFF, 0xFF, 0xFF];
    assert_eq!(run(Mode::Long64, &bytes, &mut regs, &mut mock), Err(EmuError::TooLong), "16 bytes");
    let bytes = [0x2E, 0x3E, 0x67, 0x48, 0xC7, 0x84, 0x24, 0x44, 0x33, 0x22, 0x11, 0xFF, 0xFF, 0xFF, 0x7F];
    assert_eq!(run_one(Mode::Long64, &bytes, &mut regs, &mut mock), write(8, 0x7FFF_FFFF));
}

#[test]
fn mode_from_cs() {
    assert_eq!(Mode::from_cs(true, true, false), Mode::Long64);
    assert_eq!(Mode::from_cs(true, false, true), Mode::Protected32);
    assert_eq!(Mode::from_cs(true, false, false), Mode::Real16);
    assert_eq!(Mode::from_cs(false, true, true), Mode::Protected32, "CS.L means nothing without LMA");
    assert_eq!(Mode::from_cs(false, false, false), Mode::Real16);
}

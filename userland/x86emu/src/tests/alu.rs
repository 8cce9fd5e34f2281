//! Read-modify-write and compare instructions on MMIO: ADD, SUB, AND, OR, XOR, CMP, TEST, XCHG.

use super::*;
use crate::flags::*;
use crate::index::*;
use iced_x86::code_asm::*;

#[test]
fn or_immediate_to_memory() {
    let mut mock = Mock::with(GPA, &0x8000_0000u32.to_le_bytes());
    let mut regs = regs();
    regs.rflags = 0x2 | CF | ZF | DF;
    let access = run_one(Mode::Long64, &asm(64, |a| a.or(dword_ptr(rax), 1)), &mut regs, &mut mock);
    assert_eq!(access, write(4, 0x8000_0001));
    assert_eq!(&mock.log[..1], &[read(4, 0x8000_0000)], "read before write");
    assert_eq!(regs.rflags, 0x2 | SF | DF, "CF and ZF cleared, DF kept, PF odd");
}

#[test]
fn and_with_sign_extended_imm8() {
    let mut mock = Mock::with(GPA, &u64::MAX.to_le_bytes());
    let mut regs = regs();
    // 48 83 20 F0: AND QWORD [RAX], -16
    let access = run_one(Mode::Long64, &[0x48, 0x83, 0x20, 0xF0], &mut regs, &mut mock);
    assert_eq!(access, write(8, 0xFFFF_FFFF_FFFF_FFF0));
    assert_eq!(regs.rflags & STATUS, SF | PF);
}

#[test]
fn add_sub_xor_memory_destination() {
    let mut mock = Mock::with(GPA, &[0xFF]);
    let mut regs = regs();
    regs.gpr[RCX] = 0x01;
    run_one(Mode::Long64, &asm(64, |a| a.add(byte_ptr(rax), cl)), &mut regs, &mut mock);
    assert_eq!(mock.get(GPA, 1), 0);
    assert_eq!(regs.rflags & STATUS, CF | PF | AF | ZF);
    run_one(Mode::Long64, &asm(64, |a| a.sub(byte_ptr(rax), cl)), &mut regs, &mut mock);
    assert_eq!(mock.get(GPA, 1), 0xFF);
    assert_eq!(regs.rflags & STATUS, CF | PF | AF | SF);
    run_one(Mode::Long64, &asm(64, |a| a.xor(byte_ptr(rax), 0x0F)), &mut regs, &mut mock);
    assert_eq!(mock.get(GPA, 1), 0xF0);
    assert_eq!(regs.rflags & STATUS, SF | PF);
}

#[test]
fn register_destination_writes_back() {
    let mut mock = Mock::with(GPA, &[0x10, 0, 0, 0]);
    let mut regs = regs();
    regs.gpr[RDX] = 0xFFFF_FFFF_0000_0005;
    let access = run_one(Mode::Long64, &asm(64, |a| a.add(edx, dword_ptr(rax))), &mut regs, &mut mock);
    assert_eq!(access, read(4, 0x10));
    assert_eq!(regs.gpr[RDX], 0x15, "32-bit result zero-extended");
    assert_eq!(mock.log.len(), 1, "no write to memory");
    regs.gpr[RDX] = 0xFFFF_FFFF_FFFF_0005;
    run_one(Mode::Long64, &asm(64, |a| a.sub(dx, word_ptr(rax))), &mut regs, &mut mock);
    assert_eq!(regs.gpr[RDX], 0xFFFF_FFFF_FFFF_FFF5);
    assert_eq!(regs.rflags & STATUS, CF | SF | PF, "no borrow out of bit 3");
    regs.gpr[RDX] = 0x0234;
    run_one(Mode::Long64, &asm(64, |a| a.or(dh, byte_ptr(rax))), &mut regs, &mut mock);
    assert_eq!(regs.gpr[RDX], 0x1234);
}

#[test]
fn cmp_and_test_only_read() {
    let mut mock = Mock::with(GPA, &[0x05, 0, 0, 0]);
    let mut regs = regs();
    regs.gpr[RCX] = 5;
    let before = regs.gpr;
    let access = run_one(Mode::Long64, &asm(64, |a| a.cmp(dword_ptr(rax), ecx)), &mut regs, &mut mock);
    assert_eq!(access, read(4, 5));
    assert_eq!(regs.rflags & STATUS, ZF | PF);
    run_one(Mode::Long64, &asm(64, |a| a.cmp(ecx, dword_ptr(rax))), &mut regs, &mut mock);
    assert_eq!(regs.rflags & STATUS, ZF | PF);
    run_one(Mode::Long64, &asm(64, |a| a.cmp(dword_ptr(rax), 6)), &mut regs, &mut mock);
    assert_eq!(regs.rflags & STATUS, CF | SF | AF | PF, "5 - 6 borrows");
    run_one(Mode::Long64, &asm(64, |a| a.test(byte_ptr(rax), 0x04)), &mut regs, &mut mock);
    assert_eq!(regs.rflags & STATUS, 0, "bit 2 set: ZF clear, one bit: PF clear");
    run_one(Mode::Long64, &asm(64, |a| a.test(dword_ptr(rax), ecx)), &mut regs, &mut mock);
    assert_eq!(regs.rflags & STATUS, PF);
    assert_eq!(regs.gpr, before);
    assert!(mock.log.iter().all(|a| !a.write));
}

#[test]
fn alu_in_16_and_32_bit_code() {
    let mut mock = Mock::with(GPA, &[0xFF, 0x7F, 0, 0]);
    let mut regs = regs();
    run_one(Mode::Real16, &asm(16, |a| a.add(word_ptr(bx), 1)), &mut regs, &mut mock);
    assert_eq!(mock.get(GPA, 2), 0x8000);
    assert_eq!(regs.rflags & STATUS, OF | SF | AF | PF);
    run_one(Mode::Protected32, &asm(32, |a| a.and(dword_ptr(ebx), 0x8000)), &mut regs, &mut mock);
    assert_eq!(mock.get(GPA, 4), 0x8000);
    assert_eq!(regs.rflags & STATUS, PF);
}

#[test]
fn xchg_with_memory() {
    let mut mock = Mock::with(GPA, &0x1122_3344u32.to_le_bytes());
    let mut regs = regs();
    regs.gpr[RBX] = 0xFFFF_FFFF_AABB_CCDD;
    let flags = regs.rflags;
    let access = run_one(Mode::Long64, &asm(64, |a| a.xchg(dword_ptr(rax), ebx)), &mut regs, &mut mock);
    assert_eq!(access, write(4, 0xAABB_CCDD));
    assert_eq!(regs.gpr[RBX], 0x1122_3344);
    assert_eq!(mock.get(GPA, 4), 0xAABB_CCDD);
    assert_eq!(regs.rflags, flags, "XCHG sets no flags");
    // The 8-bit form with a high-byte register.
    run_one(Mode::Long64, &asm(64, |a| a.xchg(byte_ptr(rax), bh)), &mut regs, &mut mock);
    assert_eq!(regs.gpr[RBX], 0x1122_DD44);
}

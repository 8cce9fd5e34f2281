//! STOS with and without REP, direction flag and address sizes.

use super::*;
use crate::flags::DF;
use crate::index::*;

#[test]
fn stos_each_size_64() {
    for (bytes, size) in [(&[0xAA][..], 1u8), (&[0x66, 0xAB], 2), (&[0xAB], 4), (&[0x48, 0xAB], 8)] {
        let mut regs = regs();
        let old = regs.gpr;
        let mut mock = Mock::default();
        let access = run_one(Mode::Long64, bytes, &mut regs, &mut mock);
        assert_eq!(access, write(size, old[RAX] & crate::regs::mask(size)));
        assert_eq!(regs.gpr[RDI], old[RDI] + u64::from(size));
        assert_eq!(regs.gpr[RCX], old[RCX], "no REP: RCX untouched");
    }
}

#[test]
fn stos_direction_flag() {
    let mut regs = regs();
    regs.rflags |= DF;
    let old = regs.gpr;
    run_one(Mode::Long64, &[0x48, 0xAB], &mut regs, &mut Mock::default());
    assert_eq!(regs.gpr[RDI], old[RDI] - 8);
}

#[test]
fn stos_address_sizes() {
    // 64-bit code with 67: EDI is stepped and the upper half cleared.
    let mut regs = regs();
    regs.gpr[RDI] = 0xFFFF_FFFF_FFFF_FFFE;
    run_one(Mode::Long64, &[0x67, 0xAB], &mut regs, &mut Mock::default());
    assert_eq!(regs.gpr[RDI], 0x0000_0000_0000_0002);
    // 16-bit code: DI wraps and bits 63:16 stay.
    let mut regs = super::regs();
    regs.gpr[RDI] = 0x1234_5678_9ABC_FFFF;
    run_one(Mode::Real16, &[0xAA], &mut regs, &mut Mock::default());
    assert_eq!(regs.gpr[RDI], 0x1234_5678_9ABC_0000);
    // 32-bit code: EDI.
    let mut regs = super::regs();
    regs.gpr[RDI] = 0x10;
    regs.rflags |= DF;
    run_one(Mode::Protected32, &[0xAB], &mut regs, &mut Mock::default());
    assert_eq!(regs.gpr[RDI], 0xC);
    // 16-bit code, 66 67: STOSD with EDI.
    let mut regs = super::regs();
    regs.gpr[RDI] = 0xFFFF_FFFC;
    run_one(Mode::Real16, &[0x66, 0x67, 0xAB], &mut regs, &mut Mock::default());
    assert_eq!(regs.gpr[RDI], 0);
}

#[test]
fn rep_stos_one_iteration_per_exit() {
    let mut regs = regs();
    regs.gpr[RCX] = 3;
    let old = regs.gpr;
    let rip = regs.rip;
    let mut mock = Mock::default();
    let bytes = [0xF3, 0x48, 0xAB];
    for left in [2, 1] {
        let access = run(Mode::Long64, &bytes, &mut regs, &mut mock).unwrap();
        assert_eq!(access, write(8, old[RAX]));
        assert_eq!(regs.gpr[RCX], left);
        assert_eq!(regs.rip, rip, "iterations left: RIP stays");
    }
    run(Mode::Long64, &bytes, &mut regs, &mut mock).unwrap();
    assert_eq!(regs.gpr[RCX], 0);
    assert_eq!(regs.rip, rip + 3);
    assert_eq!(regs.gpr[RDI], old[RDI] + 24);
    assert_eq!(mock.log.len(), 3);
    // A zero count touches nothing and completes.
    let access = run(Mode::Long64, &bytes, &mut regs, &mut mock).unwrap();
    assert_eq!(access.size, 0);
    assert_eq!(regs.rip, rip + 6);
    assert_eq!(mock.log.len(), 3);
}

#[test]
fn rep_stos_counts_with_the_address_size() {
    // 16-bit code: CX counts, bits 63:16 of RCX stay.
    let mut regs = regs();
    regs.gpr[RCX] = 0xABCD_0000_0000_0001;
    let rip = regs.rip;
    run(Mode::Real16, &[0xF3, 0xAA], &mut regs, &mut Mock::default()).unwrap();
    assert_eq!(regs.gpr[RCX], 0xABCD_0000_0000_0000);
    assert_eq!(regs.rip, rip + 2);
    // CX = 0 with the upper bits set: zero count.
    let access = run(Mode::Real16, &[0xF3, 0xAA], &mut regs, &mut Mock::default()).unwrap();
    assert_eq!(access.size, 0);
    // 64-bit code with 67: ECX counts, and the write zero-extends.
    let mut regs = super::regs();
    regs.gpr[RCX] = 0xFFFF_FFFF_0000_0002;
    run(Mode::Long64, &[0x67, 0xF3, 0xAB], &mut regs, &mut Mock::default()).unwrap();
    assert_eq!(regs.gpr[RCX], 1);
}

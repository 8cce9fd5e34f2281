//! What must not be emulated: bad encodings, over-long or truncated instructions, prefixes and
//! instructions outside the supported set. Each leaves registers and MMIO untouched (checked by
//! `run`).

use super::*;
use iced_x86::code_asm::*;

fn refused(mode: Mode, bytes: &[u8]) -> EmuError {
    let mut regs = regs();
    let mut mock = Mock::default();
    run(mode, bytes, &mut regs, &mut mock).expect_err("must be refused")
}

#[test]
fn lock_and_rep_prefixes() {
    assert_eq!(
        refused(Mode::Long64, &asm(64, |a| a.lock().add(dword_ptr(rax), ecx))),
        EmuError::Unsupported("lock prefix")
    );
    assert_eq!(
        refused(Mode::Long64, &asm(64, |a| a.lock().xchg(dword_ptr(rax), ecx))),
        EmuError::Unsupported("lock prefix")
    );
    // LOCK MOV is #UD.
    assert_eq!(refused(Mode::Long64, &[0xF0, 0x89, 0x08]), EmuError::Decode);
    // F3/F2 on a MOV (XRELEASE/XACQUIRE without LOCK, or a stray REP).
    assert_eq!(refused(Mode::Long64, &[0xF3, 0x89, 0x08]), EmuError::Unsupported("rep prefix"));
    assert_eq!(refused(Mode::Long64, &[0xF2, 0x89, 0x08]), EmuError::Unsupported("rep prefix"));
    assert_eq!(refused(Mode::Long64, &[0xF3, 0x8B, 0x08]), EmuError::Unsupported("rep prefix"));
    assert_eq!(refused(Mode::Real16, &[0xF3, 0x0F, 0xB6, 0x07]), EmuError::Unsupported("rep prefix"));
    // REPNE STOS is not emulated.
    assert_eq!(refused(Mode::Long64, &[0xF2, 0xAA]), EmuError::Unsupported("rep prefix"));
    // REP on other string instructions.
    assert_eq!(refused(Mode::Long64, &[0xF3, 0xA4]), EmuError::Unsupported("rep prefix"));
}

#[test]
fn unsupported_instructions() {
    let cases: [(&[u8], &str); 12] = [
        (&[0xA4], "movs"),
        (&[0x48, 0xA5], "movs"),
        (&[0xAC], "lods"),
        (&[0xFF, 0x30], "push/pop"),
        (&[0x8F, 0x00], "push/pop"),
        (&[0xFF, 0x00], "inc/dec/neg/not"),
        (&[0x11, 0x08], "adc/sbb"),
        (&[0xD1, 0x20], "shift/rotate"),
        (&[0x0F, 0xA3, 0x08], "bit test"),
        (&[0x0F, 0xB1, 0x08], "cmpxchg/xadd"),
        (&[0xF3, 0x0F, 0x6F, 0x00], "vector move"),
        (&[0xC5, 0xFE, 0x6F, 0x00], "vector move"),
    ];
    for (bytes, family) in cases {
        assert_eq!(refused(Mode::Long64, bytes), EmuError::Unsupported(family), "{bytes:02x?}");
    }
    // Segment registers and forms without a memory operand.
    assert_eq!(refused(Mode::Long64, &[0x8E, 0x18]), EmuError::Unsupported("non-general-purpose register"));
    assert_eq!(refused(Mode::Real16, &[0x8C, 0x1F]), EmuError::Unsupported("non-general-purpose register"));
    assert_eq!(refused(Mode::Long64, &[0x89, 0xC8]), EmuError::Unsupported("no memory operand"));
    assert_eq!(refused(Mode::Long64, &[0xB8, 1, 0, 0, 0]), EmuError::Unsupported("no memory operand"));
    assert_eq!(refused(Mode::Long64, &[0x0F, 0x20, 0xC0]), EmuError::Unsupported("no memory operand"));
    assert_eq!(refused(Mode::Long64, &[0x8D, 0x00]), EmuError::Unsupported("lea"));
    assert_eq!(refused(Mode::Long64, &[0x90]), EmuError::Unsupported("instruction"));
    assert_eq!(refused(Mode::Long64, &[0x0F, 0xAE, 0x00]), EmuError::Unsupported("instruction"), "FXSAVE");
    assert_eq!(refused(Mode::Long64, &[0xFF, 0x18]), EmuError::Unsupported("call/jmp"), "far call");
}

#[test]
fn bad_encodings() {
    // Invalid in 64-bit mode (PUSH ES, the old BCD instructions, ARPL's slot is MOVSXD there).
    assert_eq!(refused(Mode::Long64, &[0x06, 0x90, 0x90]), EmuError::Decode);
    assert_eq!(refused(Mode::Long64, &[0x27, 0x90, 0x90]), EmuError::Decode);
    assert_eq!(refused(Mode::Long64, &[0x0F, 0x04, 0x90, 0x90]), EmuError::Decode);
    assert_eq!(refused(Mode::Real16, &[0x0F, 0x04, 0x90, 0x90]), EmuError::Decode);
    // MOVSXD with a register source is valid but has no memory operand.
    assert_eq!(refused(Mode::Long64, &[0x48, 0x63, 0xC1]), EmuError::Unsupported("no memory operand"));
    // ARPL in 32-bit code is valid but not emulated.
    assert_eq!(refused(Mode::Protected32, &[0x63, 0x08]), EmuError::Unsupported("instruction"));
    // MOVSXD (63) in 64-bit mode is emulated.
    let mut regs = regs();
    run_one(Mode::Long64, &[0x48, 0x63, 0x08], &mut regs, &mut Mock::with(GPA, &[0, 0, 0, 0x80]));
    assert_eq!(regs.gpr[crate::index::RCX], 0xFFFF_FFFF_8000_0000);
    // 66 63: MOVSXD r16, r/m16 is a plain 16-bit load.
    let mut regs = super::regs();
    let old = regs.gpr[crate::index::RCX];
    run_one(Mode::Long64, &[0x66, 0x63, 0x08], &mut regs, &mut Mock::with(GPA, &[0x34, 0x92]));
    assert_eq!(regs.gpr[crate::index::RCX], (old & !0xFFFF) | 0x9234);
}

#[test]
fn lengths() {
    assert_eq!(refused(Mode::Long64, &[]), EmuError::Truncated);
    assert_eq!(refused(Mode::Long64, &[0x89]), EmuError::Truncated);
    assert_eq!(refused(Mode::Long64, &[0x89, 0x80, 0x00, 0x10]), EmuError::Truncated, "disp32 cut short");
    assert_eq!(refused(Mode::Long64, &[0x66, 0x66, 0x66]), EmuError::Truncated);
    // 14 prefixes and a 2-byte MOV: 16 bytes.
    let mut long = vec![0x66; 14];
    long.extend_from_slice(&[0x89, 0x08]);
    assert_eq!(refused(Mode::Long64, &long), EmuError::TooLong);
    assert_eq!(refused(Mode::Long64, &long[..15]), EmuError::TooLong);
    assert_eq!(refused(Mode::Long64, &[0x66; 40]), EmuError::TooLong);
    // 13 prefixes and a 2-byte MOV: exactly 15, allowed.
    let mut regs = regs();
    run_one(Mode::Long64, &long[1..], &mut regs, &mut Mock::default());
}

#[test]
fn display() {
    assert_eq!(EmuError::Decode.to_string(), "invalid instruction");
    assert_eq!(EmuError::Truncated.to_string(), "instruction bytes truncated");
    assert_eq!(EmuError::TooLong.to_string(), "instruction longer than 15 bytes");
    assert_eq!(EmuError::Unsupported("movs").to_string(), "unsupported instruction: movs");
}

//! The fast path against the iced-x86 path: on every instruction the fast path takes, both give
//! the same result, registers, RIP and MMIO calls; a declined instruction is left untouched; and
//! the forms drivers use are actually taken.

use super::*;
use crate::{emulate_fast, emulate_iced, MAX_INSN_LEN};

/// Runs both paths on identical inputs and checks they agree whenever the fast path handles the
/// instruction; returns whether it did.
fn compare(mode: Mode, bytes: &[u8], regs: &Regs) -> bool {
    let mut fast_regs = *regs;
    let mut fast_mock = Mock::default();
    let Some(access) = emulate_fast(mode, bytes, GPA, &mut fast_regs, &mut fast_mock) else {
        assert_eq!(fast_regs, *regs, "{mode:?} {bytes:02x?}: declined but changed registers");
        assert!(fast_mock.log.is_empty(), "{mode:?} {bytes:02x?}: declined but accessed MMIO");
        return false;
    };
    let mut iced_regs = *regs;
    let mut iced_mock = Mock::default();
    let iced = emulate_iced(mode, bytes, GPA, &mut iced_regs, &mut iced_mock);
    assert_eq!(iced, Ok(access), "{mode:?} {bytes:02x?}: result");
    assert_eq!(fast_regs, iced_regs, "{mode:?} {bytes:02x?}: registers");
    assert_eq!(fast_mock.log, iced_mock.log, "{mode:?} {bytes:02x?}: MMIO calls");
    assert_eq!(fast_mock.mem, iced_mock.mem, "{mode:?} {bytes:02x?}: MMIO contents");
    // The public entry point takes the fast path and so agrees too.
    let mut regs_public = *regs;
    let mut mock_public = Mock::default();
    assert_eq!(emulate(mode, bytes, GPA, &mut regs_public, &mut mock_public), Ok(access));
    assert_eq!(regs_public, fast_regs);
    true
}

/// The handled instruction's length: the shortest prefix of `bytes` the fast path takes (every
/// shorter one must be declined, as the instruction continues past it).
fn fast_len(mode: Mode, bytes: &[u8], regs: &Regs) -> Option<usize> {
    (1..=bytes.len()).find(|&n| {
        let mut r = *regs;
        emulate_fast(mode, &bytes[..n], GPA, &mut r, &mut Mock::default()).is_some()
    })
}

fn random_regs(rng: &mut Rng, mode: Mode) -> Regs {
    let mut regs = Regs { rip: rng.next(), rflags: rng.next(), ..Regs::default() };
    for r in &mut regs.gpr {
        *r = rng.next();
    }
    // RIP at the top of the 32-bit space exercises EIP wraparound, one above it the masking.
    match rng.next() % 4 {
        0 => regs.rip = 0xFFFF_FFF0 + rng.next() % 16,
        1 if mode == Mode::Protected32 => regs.rip &= 0xFFFF_FFFF,
        _ => {}
    }
    regs
}

const PREFIXES: [&[u8]; 16] = [
    &[],
    &[0x66],
    &[0x3E],
    &[0x64],
    &[0x65, 0x66],
    &[0x66, 0x2E],
    &[0x26, 0x36, 0x3E, 0x64, 0x65, 0x66],
    &[0x2E, 0x2E, 0x2E, 0x2E, 0x2E, 0x2E, 0x2E, 0x2E, 0x2E],
    &[0x66, 0x66],
    &[0xF0],
    &[0xF2],
    &[0xF3],
    &[0x67],
    &[0x66, 0x67],
    &[0x48, 0x66],
    &[0x41, 0x3E],
];

const OPCODES: [&[u8]; 16] = [
    &[0x88],
    &[0x89],
    &[0x8A],
    &[0x8B],
    &[0xC6],
    &[0xC7],
    &[0x0F, 0xB6],
    &[0x0F, 0xB7],
    // Declined neighbours.
    &[0x0F, 0xBE],
    &[0x0F, 0xBF],
    &[0x8C],
    &[0x8E],
    &[0xA1],
    &[0x63],
    &[0x87],
    &[0xC5],
];

/// Every handled opcode with every prefix combination, REX value (64-bit), ModRM byte and register
/// number, random SIB, displacement and immediate bytes, in both modes; and every truncation of
/// a handled instruction is declined.
#[test]
fn differential_generated() {
    let mut rng = Rng(0x5EED_0FFA_5700);
    let mut handled = 0u32;
    let mut total = 0u32;
    for mode in [Mode::Protected32, Mode::Long64] {
        let rexes: &[Option<u8>] = if mode == Mode::Long64 {
            &[
                None,
                Some(0x40),
                Some(0x41),
                Some(0x42),
                Some(0x43),
                Some(0x44),
                Some(0x45),
                Some(0x46),
                Some(0x47),
                Some(0x48),
                Some(0x49),
                Some(0x4A),
                Some(0x4B),
                Some(0x4C),
                Some(0x4D),
                Some(0x4E),
                Some(0x4F),
            ]
        } else {
            &[None]
        };
        for prefixes in PREFIXES {
            for &rex in rexes {
                for opcode in OPCODES {
                    for modrm in 0..=255u8 {
                        let mut bytes = Vec::with_capacity(MAX_INSN_LEN + 4);
                        bytes.extend_from_slice(prefixes);
                        bytes.extend(rex);
                        bytes.extend_from_slice(opcode);
                        bytes.push(modrm);
                        // SIB (base 5 often, for the no-base disp32 form), then displacement,
                        // immediate and trailing bytes.
                        let sib = if rng.one_in(3) { (rng.byte() & !7) | 5 } else { rng.byte() };
                        bytes.push(sib);
                        for _ in 0..10 {
                            bytes.push(rng.byte());
                        }
                        let regs = random_regs(&mut rng, mode);
                        total += 1;
                        if compare(mode, &bytes, &regs) {
                            handled += 1;
                            let len = fast_len(mode, &bytes, &regs).unwrap();
                            assert!(len <= MAX_INSN_LEN);
                            for n in 0..len {
                                assert!(!compare(mode, &bytes[..n], &regs), "{mode:?} {bytes:02x?} cut at {n}");
                            }
                        }
                    }
                }
            }
        }
    }
    // Per accepted prefix set and REX value: 6 opcodes x 192 memory ModRM bytes plus C6/C7 x 24
    // (/0 only) = 1,200; 8 prefix sets x (1 + 17 REX choices) minus the too-long ones.
    assert!(handled > 150_000, "only {handled} of {total} handled");
}

/// Random byte strings, biased towards the handled opcodes and prefixes, in all three modes.
#[test]
fn differential_random() {
    let mut rng = Rng(0xD1FF_E4E4_7A11);
    let mut handled = 0u32;
    for _ in 0..400_000u32 {
        let mode = rng.pick(&[Mode::Real16, Mode::Protected32, Mode::Long64]);
        let mut bytes = [0u8; 16];
        for b in &mut bytes {
            *b = rng.byte();
        }
        let hot = [0x88, 0x89, 0x8A, 0x8B, 0xC6, 0xC7, 0x0F, 0x66, 0x2E, 0x3E, 0x64, 0x65, 0x48, 0x41, 0x4C, 0xB6];
        for b in &mut bytes[..4] {
            if rng.one_in(2) {
                *b = rng.pick(&hot);
            }
        }
        // C6/C7 /0 and 0F B6/B7 need a matching second byte now and then.
        if rng.one_in(4) {
            let at = (rng.next() % 4) as usize;
            bytes[at] = 0x0F;
            bytes[at + 1] = rng.pick(&[0xB6, 0xB7]);
        }
        if rng.one_in(4) {
            let at = (rng.next() % 4) as usize;
            bytes[at + 1] &= 0xC7;
        }
        let len = (rng.next() % 17) as usize;
        let regs = random_regs(&mut rng, mode);
        if compare(mode, &bytes[..len], &regs) {
            handled += 1;
        }
    }
    assert!(handled > 30_000, "only {handled} handled");
}

/// The forms Linux's MMIO accessors and simple firmware compile to take the fast path.
#[test]
fn common_forms_are_fast() {
    let both = [Mode::Protected32, Mode::Long64];
    let cases: [(&[u8], &[Mode]); 19] = [
        (&[0x89, 0x03], &both),                                         // mov %eax,(%ebx)
        (&[0x8B, 0x03], &both),                                         // mov (%ebx),%eax
        (&[0x88, 0x03], &both),                                         // mov %al,(%ebx)
        (&[0x8A, 0x43, 0x10], &both),                                   // mov 0x10(%ebx),%al
        (&[0xC7, 0x03, 0x78, 0x56, 0x34, 0x12], &both),                 // movl $0x12345678,(%ebx)
        (&[0xC6, 0x03, 0x5A], &both),                                   // movb $0x5a,(%ebx)
        (&[0x66, 0x89, 0x03], &both),                                   // mov %ax,(%ebx)
        (&[0x66, 0x8B, 0x03], &both),                                   // mov (%ebx),%ax
        (&[0x66, 0xC7, 0x03, 0x34, 0x12], &both),                       // movw $0x1234,(%ebx)
        (&[0x0F, 0xB6, 0x03], &both),                                   // movzbl (%ebx),%eax
        (&[0x0F, 0xB7, 0x03], &both),                                   // movzwl (%ebx),%eax
        (&[0x8B, 0x84, 0x24, 0x00, 0x01, 0x00, 0x00], &both),           // mov 0x100(%esp),%eax
        (&[0x89, 0x05, 0x00, 0x00, 0xB0, 0xFE], &both),                 // mov %eax,0xfeb00000 / (%rip)
        (&[0x64, 0x89, 0x03], &both),                                   // mov %eax,%fs:(%ebx)
        (&[0x48, 0x89, 0x03], &[Mode::Long64]),                         // mov %rax,(%rbx)
        (&[0x41, 0x8B, 0x04, 0x24], &[Mode::Long64]),                   // mov (%r12),%eax
        (&[0x44, 0x89, 0x47, 0x08], &[Mode::Long64]),                   // mov %r8d,0x8(%rdi)
        (&[0x48, 0xC7, 0x03, 0xFF, 0xFF, 0xFF, 0xFF], &[Mode::Long64]), // movq $-1,(%rbx)
        (&[0x40, 0x88, 0x37], &[Mode::Long64]),                         // mov %sil,(%rdi)
    ];
    let mut rng = Rng(7);
    for (bytes, modes) in cases {
        for &mode in modes {
            let regs = random_regs(&mut rng, mode);
            assert!(compare(mode, bytes, &regs), "{mode:?} {bytes:02x?} not taken by the fast path");
            // With trailing bytes of the next instruction, too.
            let mut longer = bytes.to_vec();
            longer.extend_from_slice(&[0x90, 0xC3, 0xCC]);
            assert!(compare(mode, &longer, &regs));
            assert_eq!(fast_len(mode, &longer, &regs), Some(bytes.len()));
        }
    }
}

/// Spot checks of the register rules through the fast path: AH..BH without REX, SPL..DIL with
/// REX, zero-extension of 32-bit loads, merging of 8/16-bit loads, EIP wraparound.
#[test]
fn fast_register_rules() {
    use crate::index::*;
    let mem = 0xF1F2_F3F4_F5F6_F7F8u64;
    let mut regs = regs();
    let old = regs;
    let mut mock = Mock::with(GPA, &mem.to_le_bytes());
    // mov (%ebx),%ah
    assert!(emulate_fast(Mode::Long64, &[0x8A, 0x23], GPA, &mut regs, &mut mock).is_some());
    assert_eq!(regs.gpr[RAX], (old.gpr[RAX] & !0xFF00) | 0xF800);
    // mov (%rbx),%spl
    assert!(emulate_fast(Mode::Long64, &[0x40, 0x8A, 0x23], GPA, &mut regs, &mut mock).is_some());
    assert_eq!(regs.gpr[RSP], (old.gpr[RSP] & !0xFF) | 0xF8);
    // mov (%rbx),%r9w
    assert!(emulate_fast(Mode::Long64, &[0x66, 0x44, 0x8B, 0x0B], GPA, &mut regs, &mut mock).is_some());
    assert_eq!(regs.gpr[R9], (old.gpr[R9] & !0xFFFF) | 0xF7F8);
    // mov (%rbx),%ecx zero-extends
    assert!(emulate_fast(Mode::Long64, &[0x8B, 0x0B], GPA, &mut regs, &mut mock).is_some());
    assert_eq!(regs.gpr[RCX], 0xF5F6_F7F8);
    // movzbw (%rbx),%dx merges bits 63:16
    assert!(emulate_fast(Mode::Long64, &[0x66, 0x0F, 0xB6, 0x13], GPA, &mut regs, &mut mock).is_some());
    assert_eq!(regs.gpr[RDX], (old.gpr[RDX] & !0xFFFF) | 0x00F8);
    // movzwq (%rbx),%r15
    assert!(emulate_fast(Mode::Long64, &[0x4C, 0x0F, 0xB7, 0x3B], GPA, &mut regs, &mut mock).is_some());
    assert_eq!(regs.gpr[R15], 0xF7F8);
    // EIP wraps at 4 GiB in 32-bit code.
    regs.rip = 0xFFFF_FFFF;
    assert!(emulate_fast(Mode::Protected32, &[0x89, 0x03], GPA, &mut regs, &mut mock).is_some());
    assert_eq!(regs.rip, 1);
}

/// What the fast path leaves to the general path.
#[test]
fn fast_declines() {
    let cases: [(Mode, &[u8]); 14] = [
        (Mode::Real16, &[0x89, 0x07]),                  // 16-bit code
        (Mode::Protected32, &[0x67, 0x89, 0x07]),       // address-size prefix
        (Mode::Protected32, &[0xF0, 0x89, 0x03]),       // lock
        (Mode::Protected32, &[0xF3, 0x89, 0x03]),       // rep
        (Mode::Protected32, &[0x66, 0x66, 0x89, 0x03]), // two operand-size prefixes
        (Mode::Long64, &[0x48, 0x66, 0x89, 0x03]),      // REX not before the opcode
        (Mode::Long64, &[0x48, 0x48, 0x89, 0x03]),      // two REX prefixes
        (Mode::Protected32, &[0x48, 0x89, 0x03]),       // DEC EAX in 32-bit code
        (Mode::Protected32, &[0x89, 0xC3]),             // register operand
        (Mode::Protected32, &[0xC7, 0x0B, 1, 2, 3, 4]), // C7 /1
        (Mode::Protected32, &[0xC7, 0x03, 1, 2, 3]),    // truncated immediate
        (Mode::Protected32, &[0x8B, 0x84, 0x24, 0, 1]), // truncated displacement
        (Mode::Protected32, &[0xA1, 0, 0, 0xB0, 0xFE]), // moffs
        (Mode::Long64, &[0xC5, 0xF9, 0x7E, 0x03]),      // VEX
    ];
    for (mode, bytes) in cases {
        let mut regs = regs();
        assert_eq!(emulate_fast(mode, bytes, GPA, &mut regs, &mut Mock::default()), None, "{mode:?} {bytes:02x?}");
        assert_eq!(regs, super::regs());
    }
    // More than 15 bytes: 14 segment overrides and an instruction of 2.
    let mut long = vec![0x3E; 14];
    long.extend_from_slice(&[0x89, 0x03]);
    let mut regs = regs();
    assert_eq!(emulate_fast(Mode::Protected32, &long, GPA, &mut regs, &mut Mock::default()), None);
    assert_eq!(emulate(Mode::Protected32, &long, GPA, &mut regs, &mut Mock::default()), Err(EmuError::TooLong));
    // 13 and an instruction of 2 is exactly 15.
    assert!(compare(Mode::Protected32, &long[1..], &regs));
}

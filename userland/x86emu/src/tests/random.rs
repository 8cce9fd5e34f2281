//! Deterministic random inputs: no panic, and every accepted instruction behaves within bounds.

use super::*;

fn check(mode: Mode, bytes: &[u8], regs: &mut Regs, mock: &mut Mock) {
    let before = *regs;
    match run(mode, bytes, regs, mock) {
        Ok(access) => {
            assert!(matches!(access.size, 0 | 1 | 2 | 4 | 8), "{bytes:02x?}");
            assert_eq!(access.gpa, GPA);
            assert_eq!(access.value & !crate::regs::mask(access.size.max(1)), 0);
            let advanced = regs.rip.wrapping_sub(before.rip);
            let limit = match mode {
                Mode::Real16 => 0xFFFF,
                Mode::Protected32 => 0xFFFF_FFFF,
                Mode::Long64 => u64::MAX,
            };
            if regs.rip != before.rip {
                assert!(regs.rip <= limit);
                assert!(advanced <= 15 || regs.rip < before.rip, "{bytes:02x?}");
            }
            assert!(mock.log.len() <= 2);
            // Only the status flags can change.
            assert_eq!(regs.rflags & !crate::flags::STATUS, before.rflags & !crate::flags::STATUS);
        }
        Err(EmuError::Unsupported(what)) => assert!(!what.is_empty()),
        Err(_) => {}
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x0123_4567_89AB_CDEF);
    let mut accepted = 0;
    for i in 0..300_000u32 {
        let mode = [Mode::Real16, Mode::Protected32, Mode::Long64][(rng.next() % 3) as usize];
        let mut bytes = [0u8; 16];
        for b in &mut bytes {
            *b = rng.next() as u8;
        }
        // Bias towards the emulated opcodes so the interesting paths run often.
        if i % 2 == 0 {
            let hot = [0x88, 0x89, 0x8A, 0x8B, 0xC6, 0xC7, 0xA0, 0xA1, 0xA2, 0xA3, 0xAA, 0xAB, 0x80, 0x81, 0x83, 0x87];
            let at = (rng.next() % 4) as usize;
            bytes[at] = hot[(rng.next() % hot.len() as u64) as usize];
        }
        let len = (rng.next() % 17) as usize;
        let mut regs = regs();
        regs.rip = rng.next();
        regs.rflags = rng.next();
        for r in &mut regs.gpr {
            *r = rng.next();
        }
        let mut mock = Mock::default();
        check(mode, &bytes[..len], &mut regs, &mut mock);
        if !mock.log.is_empty() {
            accepted += 1;
        }
    }
    assert!(accepted > 10_000, "only {accepted} accepted");
}

//! Fuzz the MMIO instruction emulator: the first byte picks the mode, the next 15 are the
//! instruction bytes (fewer if the input is short), and any further bytes seed the registers.
//! Checks that nothing panics, that a refused instruction changes nothing, and that an emulated
//! one stays within its bounds (one access of 1/2/4/8 bytes, or a read and a write of it), and
//! that whenever the hand-written fast path takes an instruction, the iced-x86 path gives the
//! same result, registers and MMIO calls.
#![no_main]

use keel_addr::Gpa;
use keel_x86emu::{emulate, emulate_fast, emulate_iced, Access, EmuError, Mmio, Mode, Regs};
use libfuzzer_sys::fuzz_target;

const GPA: Gpa = Gpa(0xFEB0_0000);

/// Reads return a pattern from the address; every access is recorded with its value.
#[derive(Default, PartialEq, Eq, Debug)]
struct Mock {
    log: Vec<Access>,
}

impl Mmio for Mock {
    fn read(&mut self, gpa: Gpa, data: &mut [u8]) {
        assert!(matches!(data.len(), 1 | 2 | 4 | 8));
        for (i, b) in data.iter_mut().enumerate() {
            *b = (gpa.0 as u8).wrapping_add(i as u8) ^ 0xA5;
        }
        self.log.push(Access { gpa, size: data.len() as u8, write: false, value: value(data) });
    }

    fn write(&mut self, gpa: Gpa, data: &[u8]) {
        assert!(matches!(data.len(), 1 | 2 | 4 | 8));
        self.log.push(Access { gpa, size: data.len() as u8, write: true, value: value(data) });
    }
}

fn value(data: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    bytes[..data.len()].copy_from_slice(data);
    u64::from_le_bytes(bytes)
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let mode = match selector % 3 {
        0 => Mode::Real16,
        1 => Mode::Protected32,
        _ => Mode::Long64,
    };
    let (bytes, seed) = rest.split_at(rest.len().min(15));
    let mut regs = Regs { rip: 0x1000, rflags: 0x2, ..Regs::default() };
    for (i, chunk) in seed.chunks(8).take(18).enumerate() {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        let word = u64::from_le_bytes(word);
        match i {
            0..=15 => regs.gpr[i] = word,
            16 => regs.rip = word,
            _ => regs.rflags = word,
        }
    }
    let before = regs;

    // The fast path alone: either it declines untouched, or the iced path agrees exactly.
    let mut fast_regs = regs;
    let mut fast_mock = Mock::default();
    match emulate_fast(mode, bytes, GPA, &mut fast_regs, &mut fast_mock) {
        Some(access) => {
            let mut iced_regs = regs;
            let mut iced_mock = Mock::default();
            let iced = emulate_iced(mode, bytes, GPA, &mut iced_regs, &mut iced_mock);
            assert_eq!(iced, Ok(access), "{mode:?} {bytes:02x?}");
            assert_eq!(fast_regs, iced_regs, "{mode:?} {bytes:02x?}");
            assert_eq!(fast_mock, iced_mock, "{mode:?} {bytes:02x?}");
        }
        None => {
            assert_eq!(fast_regs, before);
            assert!(fast_mock.log.is_empty());
        }
    }

    let mut mock = Mock::default();
    match emulate(mode, bytes, GPA, &mut regs, &mut mock) {
        Ok(access) => {
            assert_eq!(access.gpa, GPA);
            assert!(matches!(access.size, 0 | 1 | 2 | 4 | 8));
            assert!(mock.log.len() <= 2);
            assert!(mock.log.iter().all(|a| a.gpa == GPA && a.size == access.size));
            assert_eq!(access.size == 0, mock.log.is_empty());
            // Only the six status flags may change.
            assert_eq!(regs.rflags & !0x8D5, before.rflags & !0x8D5);
        }
        Err(error) => {
            assert_eq!(regs, before);
            assert!(mock.log.is_empty());
            let _ = error.to_string();
            if let EmuError::Unsupported(what) = error {
                assert!(!what.is_empty());
            }
        }
    }
});

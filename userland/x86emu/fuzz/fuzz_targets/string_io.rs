//! Fuzz string port I/O (INS/OUTS): the first byte picks the mode, the next 15 are the
//! instruction bytes, the following 8 the element budget and flags, the rest seed the registers
//! (RCX, RSI, RDI, RFLAGS) and a segment base. Memory is 8 KiB at a fuzzed linear base (the
//! rest faults); ports echo a counter. Checks that nothing panics, that the element budget bounds
//! the port accesses, that RIP either stays or moves to the given next RIP, and that a refused
//! instruction changes nothing.
#![no_main]

use keel_x86emu::index::{RCX, RDI, RSI};
use keel_x86emu::string_io::{
    decode_string_io, run_string_io, LinearMemory, PageFault, Ports, StringIoOutcome, StringIoSite,
};
use keel_x86emu::{Mode, Regs};
use libfuzzer_sys::fuzz_target;

struct Mem {
    base: u64,
    bytes: Vec<u8>,
}

impl Mem {
    fn at(&self, linear: u64, len: usize, write: bool) -> Result<usize, PageFault> {
        let offset = linear.wrapping_sub(self.base);
        if offset.checked_add(len as u64).is_some_and(|end| end <= self.bytes.len() as u64) {
            Ok(offset as usize)
        } else {
            Err(PageFault { linear, write })
        }
    }
}

impl LinearMemory for Mem {
    fn read(&mut self, linear: u64, data: &mut [u8]) -> Result<(), PageFault> {
        assert!(matches!(data.len(), 1 | 2 | 4));
        let at = self.at(linear, data.len(), false)?;
        data.copy_from_slice(&self.bytes[at..at + data.len()]);
        Ok(())
    }
    fn write(&mut self, linear: u64, data: &[u8]) -> Result<(), PageFault> {
        assert!(matches!(data.len(), 1 | 2 | 4));
        let at = self.at(linear, data.len(), true)?;
        self.bytes[at..at + data.len()].copy_from_slice(data);
        Ok(())
    }
}

#[derive(Default)]
struct Io {
    accesses: u64,
    stop_after: u64,
}

impl Ports for Io {
    fn read(&mut self, _port: u16, data: &mut [u8]) {
        assert!(matches!(data.len(), 1 | 2 | 4));
        self.accesses += 1;
        data.fill(self.accesses as u8);
    }
    fn write(&mut self, _port: u16, data: &[u8]) -> bool {
        assert!(matches!(data.len(), 1 | 2 | 4));
        self.accesses += 1;
        self.accesses != self.stop_after
    }
}

fn word(data: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    if let Some(src) = data.get(at..) {
        let n = src.len().min(8);
        b[..n].copy_from_slice(&src[..n]);
    }
    u64::from_le_bytes(b)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let mode = [Mode::Real16, Mode::Protected32, Mode::Long64][usize::from(mode % 3)];
    let insn = &rest[..rest.len().min(15)];
    let op = match decode_string_io(mode, insn) {
        Ok(op) => op,
        Err(_) => return,
    };
    assert!(usize::from(op.len) <= insn.len() && matches!(op.size, 1 | 2 | 4) && matches!(op.addr_size, 2 | 4 | 8));
    let knobs = word(rest, 15);
    let budget = (knobs & 0x3FF) as u32;
    let mut regs = Regs { rip: 0x1000, rflags: 2 | (knobs & (1 << 20)) >> 10, ..Regs::default() };
    regs.gpr[RCX] = word(rest, 23);
    regs.gpr[RSI] = word(rest, 31);
    regs.gpr[RDI] = word(rest, 39);
    let segment_base = word(rest, 47) & 0xFFFF_FFFF;
    let mut mem = Mem { base: word(rest, 55) & 0xFFFF_F000, bytes: vec![0x5A; 0x2000] };
    let mut io = Io { accesses: 0, stop_after: (knobs >> 32) & 0xFF };
    let before = regs;
    let next_rip = 0x1000 + u64::from(op.len);
    let site = StringIoSite { port: 0x80, segment_base, next_rip };
    let outcome = run_string_io(&op, site, &mut regs, &mut mem, &mut io, budget);
    assert!(io.accesses <= u64::from(budget).max(1), "{} port accesses with a budget of {budget}", io.accesses);
    assert!(regs.rip == before.rip || regs.rip == next_rip);
    match outcome {
        StringIoOutcome::Partial | StringIoOutcome::Fault(_) => assert_eq!(regs.rip, before.rip),
        StringIoOutcome::Done => assert_eq!(regs.rip, next_rip),
        StringIoOutcome::Stopped => {}
    }
    // Only RCX, RSI and RDI may change among the registers.
    for (i, (a, b)) in before.gpr.iter().zip(regs.gpr.iter()).enumerate() {
        if ![RCX, RSI, RDI].contains(&i) {
            assert_eq!(a, b, "register {i} changed");
        }
    }
    assert_eq!(before.rflags, regs.rflags);
});

//! Host tests: a mock MMIO space that records accesses, instructions assembled with iced-x86's
//! code assembler or by hand, and checks of registers, flags, RIP and the bus.

mod alu;
mod fast;
mod mov;
mod random;
mod reject;
mod stos;

use crate::{emulate, Access, EmuError, Mmio, Mode, Regs};
use iced_x86::code_asm::CodeAssembler;
use iced_x86::IcedError;
use keel_addr::Gpa;
use std::collections::HashMap;

/// The fault address used by most tests.
pub const GPA: Gpa = Gpa(0xFEB0_0010);

/// Bytes nobody wrote read as a pattern derived from the address, so a wrong size shows.
pub fn pattern(addr: u64) -> u8 {
    (addr as u8) ^ 0x5A
}

#[derive(Default)]
pub struct Mock {
    pub mem: HashMap<u64, u8>,
    pub log: Vec<Access>,
}

impl Mock {
    pub fn with(gpa: Gpa, bytes: &[u8]) -> Self {
        let mut mock = Self::default();
        for (i, &b) in bytes.iter().enumerate() {
            mock.mem.insert(gpa.0 + i as u64, b);
        }
        mock
    }

    pub fn get(&self, gpa: Gpa, size: usize) -> u64 {
        let mut data = [0u8; 8];
        for (i, b) in data[..size].iter_mut().enumerate() {
            let addr = gpa.0.wrapping_add(i as u64);
            *b = self.mem.get(&addr).copied().unwrap_or(pattern(addr));
        }
        u64::from_le_bytes(data)
    }
}

impl Mmio for Mock {
    fn read(&mut self, gpa: Gpa, data: &mut [u8]) {
        assert!(matches!(data.len(), 1 | 2 | 4 | 8), "access size {}", data.len());
        let value = self.get(gpa, data.len());
        data.copy_from_slice(&value.to_le_bytes()[..data.len()]);
        self.log.push(Access { gpa, size: data.len() as u8, write: false, value });
    }

    fn write(&mut self, gpa: Gpa, data: &[u8]) {
        assert!(matches!(data.len(), 1 | 2 | 4 | 8), "access size {}", data.len());
        let mut value = [0u8; 8];
        value[..data.len()].copy_from_slice(data);
        for (i, &b) in data.iter().enumerate() {
            self.mem.insert(gpa.0.wrapping_add(i as u64), b);
        }
        self.log.push(Access { gpa, size: data.len() as u8, write: true, value: u64::from_le_bytes(value) });
    }
}

/// Assembles one instruction for `bitness`-bit code.
pub fn asm(bitness: u32, f: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>) -> Vec<u8> {
    let mut a = CodeAssembler::new(bitness).unwrap();
    f(&mut a).unwrap();
    a.assemble(0).unwrap()
}

/// Registers with recognizable values: register n holds 0x1111_1111_1111_1111 * (n + 1)
/// truncated, with a distinct byte pattern in each.
pub fn regs() -> Regs {
    let mut regs = Regs { rip: 0x1000, rflags: 0x2, ..Regs::default() };
    for (i, r) in regs.gpr.iter_mut().enumerate() {
        *r = 0x0102_0304_0506_0708u64.wrapping_mul(i as u64 + 1) ^ 0x8080_8080_8080_8080;
    }
    regs
}

/// Runs `bytes` at `regs.rip` against `mock`; on success checks that RIP advanced by the
/// instruction length `len`.
pub fn run(mode: Mode, bytes: &[u8], regs: &mut Regs, mock: &mut Mock) -> Result<Access, EmuError> {
    let before = *regs;
    let log_len = mock.log.len();
    let result = emulate(mode, bytes, GPA, regs, mock);
    match result {
        Ok(access) if access.size == 0 => assert_eq!(mock.log.len(), log_len, "size 0: no access"),
        Ok(access) => assert_eq!(mock.log.last().copied(), Some(access), "the reported access was the last one"),
        Err(_) => {
            assert_eq!(*regs, before, "an error leaves the registers alone");
            assert_eq!(mock.log.len(), log_len, "an error touches no MMIO");
        }
    }
    result
}

/// Runs a one-instruction encoding and checks RIP advanced past all of it.
pub fn run_one(mode: Mode, bytes: &[u8], regs: &mut Regs, mock: &mut Mock) -> Access {
    let rip = regs.rip;
    let access = run(mode, bytes, regs, mock).unwrap_or_else(|e| panic!("{bytes:02x?}: {e}"));
    assert_eq!(regs.rip, rip + bytes.len() as u64, "{bytes:02x?}: RIP");
    access
}

pub fn read(size: u8, value: u64) -> Access {
    Access { gpa: GPA, size, write: false, value }
}

pub fn write(size: u8, value: u64) -> Access {
    Access { gpa: GPA, size, write: true, value }
}

/// xorshift64* (Vigna): deterministic pseudo-random inputs.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn byte(&mut self) -> u8 {
        self.next() as u8
    }

    /// True with probability 1/`n`.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.next().is_multiple_of(n)
    }

    /// One of `items`.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[(self.next() % items.len() as u64) as usize]
    }
}

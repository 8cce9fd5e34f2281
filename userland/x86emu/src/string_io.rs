//! String port I/O: `INS` and `OUTS` (with or without `REP`), which exit to the monitor as port
//! I/O whose data lives in guest memory rather than in RAX.
//!
//! [`decode_string_io`] reads the instruction's prefixes and opcode (operand and address size,
//! segment override, `REP`) from its bytes; [`run_string_io`] then moves elements between the
//! port and guest memory (through the [`Ports`] and [`LinearMemory`] traits), stepping RSI or
//! RDI by the element size (backwards when RFLAGS.DF is set) and counting RCX down, all at the
//! instruction's address size. It does at most `max_elements` elements per call: a `REP` with
//! more left returns [`StringIoOutcome::Partial`] with RIP unchanged, so the guest executes the
//! instruction again and the rest follows on later exits (the architectural state between two
//! iterations is exactly what a CPU interrupted there would show).
//!
//! Memory operand: `OUTS` reads at seg:RSI (DS unless overridden), `INS` writes at ES:RDI (no
//! override). In 64-bit mode only FS and GS have bases. The caller passes the segment bases;
//! [`LinearMemory`] translates linear addresses (and reports a page fault).
//!
//! Does not: check segment limits or access rights, the I/O permission bitmap or IOPL (the
//! hardware checked those before the exit), or emulate anything but INS/OUTS.
//!
//! See: Intel SDM Vol 2A "INS/INSB/INSW/INSD" and Vol 2B "OUTS/OUTSB/OUTSW/OUTSD", "REP";
//! Vol 1 3.6 (operand and address size attributes), Vol 2A 2.1.1 (prefixes).

use crate::{EmuError, Mode, Regs, MAX_INSN_LEN};

/// The decoded INS/OUTS instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StringIo {
    /// Instruction length in bytes.
    pub len: u8,
    /// OUTS (memory to port) rather than INS.
    pub out: bool,
    /// Element size: 1, 2 or 4 bytes.
    pub size: u8,
    /// Address size: 2, 4 or 8 bytes (the width of RSI/RDI/RCX used).
    pub addr_size: u8,
    /// A REP (F3) or REPNE (F2) prefix: both repeat INS/OUTS RCX times.
    pub rep: bool,
    /// The memory operand's segment as an index into the state page's segments (ES 0, CS 1,
    /// SS 2, DS 3, FS 4, GS 5).
    pub segment: usize,
}

const ES: usize = 0;
const DS: usize = 3;

/// Decode INS/OUTS from `bytes` (prefixes, then opcode 6C-6F) in `mode`.
pub fn decode_string_io(mode: Mode, bytes: &[u8]) -> Result<StringIo, EmuError> {
    let mut operand_override = false;
    let mut address_override = false;
    let mut segment = None;
    let mut rep = false;
    for (i, &b) in bytes.iter().enumerate().take(MAX_INSN_LEN) {
        match b {
            0x66 => operand_override = true,
            0x67 => address_override = true,
            0x26 => segment = Some(0),
            0x2E => segment = Some(1),
            0x36 => segment = Some(2),
            0x3E => segment = Some(3),
            0x64 => segment = Some(4),
            0x65 => segment = Some(5),
            0xF2 | 0xF3 => rep = true,
            0xF0 => return Err(EmuError::Decode), // LOCK on INS/OUTS is #UD
            // REX: no effect on INS/OUTS (REX.W does not widen them).
            0x40..=0x4F if mode == Mode::Long64 => {}
            0x6C..=0x6F => {
                let out = b >= 0x6E;
                let size = if b & 1 == 0 {
                    1
                } else {
                    match (mode, operand_override) {
                        (Mode::Real16, false) | (Mode::Protected32 | Mode::Long64, true) => 2,
                        _ => 4,
                    }
                };
                let addr_size = match (mode, address_override) {
                    (Mode::Real16, false) | (Mode::Protected32, true) => 2,
                    (Mode::Real16, true) | (Mode::Protected32, false) | (Mode::Long64, true) => 4,
                    (Mode::Long64, false) => 8,
                };
                // INS always writes at ES:RDI; OUTS reads at DS:RSI unless overridden.
                let segment = if out { segment.unwrap_or(DS) } else { ES };
                return Ok(StringIo { len: i as u8 + 1, out, size, addr_size, rep, segment });
            }
            _ => return Err(EmuError::Unsupported("not INS or OUTS")),
        }
    }
    if bytes.len() >= MAX_INSN_LEN {
        Err(EmuError::TooLong)
    } else {
        Err(EmuError::Truncated)
    }
}

/// A page fault on a linear address (the caller injects #PF with this CR2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageFault {
    pub linear: u64,
    /// The access was a write (INS storing to memory).
    pub write: bool,
}

/// Guest memory by linear address: translation through the guest's page tables, RAM or not.
pub trait LinearMemory {
    fn read(&mut self, linear: u64, data: &mut [u8]) -> Result<(), PageFault>;
    fn write(&mut self, linear: u64, data: &[u8]) -> Result<(), PageFault>;
}

/// The port bus. `write` returns false when the write asks the monitor to stop iterating (the
/// guest asked for a reset or power-off, or wrote the debug-exit port).
pub trait Ports {
    fn read(&mut self, port: u16, data: &mut [u8]);
    fn write(&mut self, port: u16, data: &[u8]) -> bool;
}

/// How a [`run_string_io`] call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StringIoOutcome {
    /// All done: RIP points past the instruction.
    Done,
    /// `max_elements` done and more left: RIP still points at the instruction.
    Partial,
    /// A page fault on the memory operand: the registers show the elements done before it and
    /// RIP points at the instruction, as the CPU leaves them.
    Fault(PageFault),
    /// A port write asked to stop (see [`Ports::write`]); the registers are up to date.
    Stopped,
}

fn mask(addr_size: u8) -> u64 {
    match addr_size {
        2 => 0xFFFF,
        4 => 0xFFFF_FFFF,
        _ => u64::MAX,
    }
}

/// Replace the low `addr_size` bytes of `reg` with `value` (a 16-bit address-size update leaves
/// bits 63:16 alone; a 32-bit one zero-extends, as any 32-bit register write does).
fn set_counter(reg: &mut u64, value: u64, addr_size: u8) {
    *reg = match addr_size {
        2 => (*reg & !0xFFFF) | (value & 0xFFFF),
        4 => value & 0xFFFF_FFFF,
        _ => value,
    };
}

/// Where a string I/O instruction works, beyond what its bytes say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StringIoSite {
    /// The I/O port (from the exit).
    pub port: u16,
    /// The base of the memory operand's segment (`StringIo::segment`).
    pub segment_base: u64,
    /// Where RIP goes once the instruction completes.
    pub next_rip: u64,
}

/// Execute `op` at `site` (see the module documentation).
pub fn run_string_io(
    op: &StringIo,
    site: StringIoSite,
    regs: &mut Regs,
    mem: &mut dyn LinearMemory,
    ports: &mut dyn Ports,
    max_elements: u32,
) -> StringIoOutcome {
    use crate::index::{RCX, RDI, RSI};
    const DF: u64 = 1 << 10;
    let StringIoSite { port, segment_base, next_rip } = site;
    let m = mask(op.addr_size);
    let pointer = if op.out { RSI } else { RDI };
    let step = if regs.rflags & DF != 0 { u64::from(op.size).wrapping_neg() } else { u64::from(op.size) };
    let size = usize::from(op.size);
    let mut done = 0u32;
    loop {
        if op.rep && regs.gpr[RCX] & m == 0 {
            regs.rip = next_rip;
            return StringIoOutcome::Done;
        }
        if done == max_elements {
            return StringIoOutcome::Partial;
        }
        let offset = regs.gpr[pointer] & m;
        let linear = segment_base.wrapping_add(offset);
        let mut data = [0u8; 4];
        let mut go_on = true;
        if op.out {
            if let Err(fault) = mem.read(linear, &mut data[..size]) {
                return StringIoOutcome::Fault(fault);
            }
            go_on = ports.write(port, &data[..size]);
        } else {
            // The port is read before memory is checked, as on hardware (SDM: INS reads the
            // port, then stores); a faulting store then repeats the read when the guest retries.
            ports.read(port, &mut data[..size]);
            if let Err(fault) = mem.write(linear, &data[..size]) {
                return StringIoOutcome::Fault(fault);
            }
        }
        set_counter(&mut regs.gpr[pointer], offset.wrapping_add(step), op.addr_size);
        done += 1;
        if op.rep {
            let count = (regs.gpr[RCX] & m).wrapping_sub(1);
            set_counter(&mut regs.gpr[RCX], count, op.addr_size);
        }
        if !go_on {
            if !op.rep || regs.gpr[RCX] & m == 0 {
                regs.rip = next_rip;
            }
            return StringIoOutcome::Stopped;
        }
        if !op.rep {
            regs.rip = next_rip;
            return StringIoOutcome::Done;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{RCX, RDI, RSI};
    use alloc::vec;
    use alloc::vec::Vec;

    /// 64 KiB of memory at linear 0x10000; anything else faults.
    struct Mem(Vec<u8>);
    const BASE: u64 = 0x10000;

    impl LinearMemory for Mem {
        fn read(&mut self, linear: u64, data: &mut [u8]) -> Result<(), PageFault> {
            let at = linear.checked_sub(BASE).filter(|&a| a + data.len() as u64 <= self.0.len() as u64);
            let at = at.ok_or(PageFault { linear, write: false })? as usize;
            data.copy_from_slice(&self.0[at..at + data.len()]);
            Ok(())
        }
        fn write(&mut self, linear: u64, data: &[u8]) -> Result<(), PageFault> {
            let at = linear.checked_sub(BASE).filter(|&a| a + data.len() as u64 <= self.0.len() as u64);
            let at = at.ok_or(PageFault { linear, write: true })? as usize;
            self.0[at..at + data.len()].copy_from_slice(data);
            Ok(())
        }
    }

    /// Port 0x10 echoes a counter on reads and records writes; a write of 0xEE asks to stop.
    #[derive(Default)]
    struct Io {
        written: Vec<u8>,
        next: u8,
    }
    impl Ports for Io {
        fn read(&mut self, _port: u16, data: &mut [u8]) {
            for b in data {
                *b = self.next;
                self.next = self.next.wrapping_add(1);
            }
        }
        fn write(&mut self, _port: u16, data: &[u8]) -> bool {
            self.written.extend_from_slice(data);
            !data.contains(&0xEE)
        }
    }

    fn site(port: u16, segment_base: u64, next_rip: u64) -> StringIoSite {
        StringIoSite { port, segment_base, next_rip }
    }

    fn decode(mode: Mode, bytes: &[u8]) -> StringIo {
        decode_string_io(mode, bytes).unwrap()
    }

    #[test]
    fn decodes_sizes_prefixes_and_segments() {
        let d = decode(Mode::Long64, &[0xF3, 0x6E]);
        assert_eq!(d, StringIo { len: 2, out: true, size: 1, addr_size: 8, rep: true, segment: DS });
        let d = decode(Mode::Long64, &[0x66, 0xF3, 0x6D]);
        assert_eq!((d.len, d.out, d.size, d.segment), (3, false, 2, ES));
        let d = decode(Mode::Protected32, &[0x64, 0x67, 0x6F]);
        assert_eq!((d.size, d.addr_size, d.segment, d.rep), (4, 2, 4, false));
        let d = decode(Mode::Real16, &[0x26, 0x6F]);
        assert_eq!((d.size, d.addr_size, d.segment), (2, 2, 0));
        // INS ignores a segment override: ES always.
        assert_eq!(decode(Mode::Protected32, &[0x2E, 0x6C]).segment, ES);
        // REX before the opcode is allowed in 64-bit mode (REX.W does not widen INS/OUTS).
        assert_eq!(decode(Mode::Long64, &[0xF3, 0x48, 0x6F]).size, 4);
        assert_eq!(decode_string_io(Mode::Long64, &[0xF0, 0x6E]), Err(EmuError::Decode));
        assert_eq!(decode_string_io(Mode::Long64, &[0x89, 0x03]), Err(EmuError::Unsupported("not INS or OUTS")));
        assert_eq!(decode_string_io(Mode::Long64, &[0xF3, 0x66]), Err(EmuError::Truncated));
        assert_eq!(decode_string_io(Mode::Long64, &[0x66; 15]), Err(EmuError::TooLong));
    }

    fn regs(rcx: u64, rsi: u64, rdi: u64) -> Regs {
        let mut r = Regs { rip: 0x1000, rflags: 2, ..Regs::default() };
        r.gpr[RCX] = rcx;
        r.gpr[RSI] = rsi;
        r.gpr[RDI] = rdi;
        r
    }

    #[test]
    fn rep_outsb_in_batches_then_done() {
        let mut mem = Mem((0..=255u8).cycle().take(0x10000).collect());
        let mut io = Io::default();
        let op = decode(Mode::Long64, &[0xF3, 0x6E]);
        let mut r = regs(10, BASE + 3, 0);
        assert_eq!(run_string_io(&op, site(0x10, 0, 0x1002), &mut r, &mut mem, &mut io, 4), StringIoOutcome::Partial);
        assert_eq!((r.gpr[RCX], r.gpr[RSI], r.rip), (6, BASE + 7, 0x1000));
        assert_eq!(run_string_io(&op, site(0x10, 0, 0x1002), &mut r, &mut mem, &mut io, 100), StringIoOutcome::Done);
        assert_eq!((r.gpr[RCX], r.gpr[RSI], r.rip), (0, BASE + 13, 0x1002));
        assert_eq!(io.written, (3..13).collect::<Vec<u8>>());
    }

    #[test]
    fn rep_insw_backwards_with_df() {
        let mut mem = Mem(vec![0; 0x10000]);
        let mut io = Io::default();
        let op = decode(Mode::Protected32, &[0x66, 0xF3, 0x6D]);
        let mut r = regs(3, 0, BASE + 0x100);
        r.rflags |= 1 << 10;
        assert_eq!(run_string_io(&op, site(0x10, 0, 0x1003), &mut r, &mut mem, &mut io, 100), StringIoOutcome::Done);
        assert_eq!((r.gpr[RCX], r.gpr[RDI]), (0, BASE + 0x100 - 6));
        assert_eq!(&mem.0[0xFC..0x102], &[4, 5, 2, 3, 0, 1]);
    }

    #[test]
    fn rep_with_zero_count_does_nothing() {
        let mut mem = Mem(vec![0; 0x10000]);
        let mut io = Io::default();
        let op = decode(Mode::Long64, &[0xF3, 0x6C]);
        let mut r = regs(0, 0, BASE);
        assert_eq!(run_string_io(&op, site(0x10, 0, 0x1002), &mut r, &mut mem, &mut io, 100), StringIoOutcome::Done);
        assert_eq!((r.gpr[RDI], r.rip, io.next), (BASE, 0x1002, 0));
    }

    #[test]
    fn a_fault_stops_with_the_done_part_recorded() {
        let mut mem = Mem(vec![0; 0x10000]);
        let mut io = Io::default();
        let op = decode(Mode::Long64, &[0xF3, 0x6C]);
        // Two bytes fit before the end of memory; the third faults.
        let mut r = regs(100, 0, BASE + 0xFFFE);
        let outcome = run_string_io(&op, site(0x10, 0, 0x1002), &mut r, &mut mem, &mut io, 1000);
        assert_eq!(outcome, StringIoOutcome::Fault(PageFault { linear: BASE + 0x10000, write: true }));
        assert_eq!((r.gpr[RCX], r.gpr[RDI], r.rip), (98, BASE + 0x10000, 0x1000));
    }

    #[test]
    fn address_size_wraps_the_pointer_and_counter() {
        let mut mem = Mem(vec![7; 0x10000]);
        let mut io = Io::default();
        // 16-bit addressing: SI wraps from 0xFFFF to 0 within the segment; bits above stay.
        let op = decode(Mode::Real16, &[0xF3, 0x6E]);
        let mut r = regs(0xABCD_0002, 0x1234_FFFF, 0);
        assert_eq!(run_string_io(&op, site(0x10, BASE, 0x1002), &mut r, &mut mem, &mut io, 10), StringIoOutcome::Done);
        assert_eq!((r.gpr[RCX], r.gpr[RSI]), (0xABCD_0000, 0x1234_0001));
    }

    #[test]
    fn a_stopping_port_write_ends_the_call() {
        let mut mem = Mem(vec![0xEE; 0x10000]);
        let mut io = Io::default();
        let op = decode(Mode::Long64, &[0x6E]);
        let mut r = regs(5, BASE, 0);
        assert_eq!(run_string_io(&op, site(0x10, 0, 0x1001), &mut r, &mut mem, &mut io, 10), StringIoOutcome::Stopped);
        assert_eq!((r.gpr[RCX], r.gpr[RSI], r.rip), (5, BASE + 1, 0x1001));
    }
}

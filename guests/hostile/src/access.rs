//! Single memory accesses of a chosen size, each one instruction under [`crate::guarded!`], so a
//! probe of an address that faults reports the exception instead of stopping the guest.

use crate::trap::guarded;
use crate::trap::Fault;

/// Loads `size` bytes (1, 2, 4 or 8) at `va`, zero-extended.
pub fn load(va: u64, size: u8) -> Result<u64, Fault> {
    let mut value: u64 = 0;
    // Each access is at a virtual address the caller mapped: guest RAM, or an address that is
    // not RAM (an MMIO exit the monitor answers, or a fault the guard catches).
    let fault = match size {
        1 => guarded!(["movzx {v:e}, byte ptr [{a}]"], a = in(reg) va, v = inout(reg) value, options(nostack)),
        2 => guarded!(["movzx {v:e}, word ptr [{a}]"], a = in(reg) va, v = inout(reg) value, options(nostack)),
        4 => guarded!(["mov {v:e}, dword ptr [{a}]"], a = in(reg) va, v = inout(reg) value, options(nostack)),
        _ => guarded!(["mov {v}, qword ptr [{a}]"], a = in(reg) va, v = inout(reg) value, options(nostack)),
    };
    match fault {
        None => Ok(value),
        Some(f) => Err(f),
    }
}

/// Stores the low `size` bytes (1, 2, 4 or 8) of `value` at `va`.
pub fn store(va: u64, size: u8, value: u64) -> Result<(), Fault> {
    // As in `load`: the caller mapped `va` and owns what is there.
    let fault = match size {
        1 => guarded!(["mov byte ptr [{a}], {v:l}"], a = in(reg) va, v = in(reg) value, options(nostack)),
        2 => guarded!(["mov word ptr [{a}], {v:x}"], a = in(reg) va, v = in(reg) value, options(nostack)),
        4 => guarded!(["mov dword ptr [{a}], {v:e}"], a = in(reg) va, v = in(reg) value, options(nostack)),
        _ => guarded!(["mov qword ptr [{a}], {v}"], a = in(reg) va, v = in(reg) value, options(nostack)),
    };
    match fault {
        None => Ok(()),
        Some(f) => Err(f),
    }
}

/// All ones in the low `size` bytes.
pub fn ones(size: u8) -> u64 {
    if size >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * u32::from(size))) - 1
    }
}

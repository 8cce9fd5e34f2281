//! MMIO at awkward sizes and places: every operand size at every offset of the test register
//! (docs/guests.md: 8 scratch bytes, 8 read-only ID bytes, zeros to the end of its 4 KiB page),
//! unaligned accesses that straddle its two registers, accesses that straddle the end of its
//! page and the end of RAM, unclaimed MMIO at every size and offset, and read-modify-write and
//! string forms (`add`, `xchg`, `rep stosq` running off the end of the page).

use keel_guest_rt::check::Checks;

use crate::access::{load, ones, store};
use crate::trap::guarded;
use crate::trap::{Loaded, Outcome};

/// The test register page.
const TEST: u64 = 0xFEB0_0000;
const ID: u64 = 0x4B45_454C_4D4D_494F;
/// MMIO nothing claims: the page after the test register, and 3 GiB.
const UNCLAIMED: [u64; 2] = [0xFEB0_1000, 0xC000_0000];

/// Byte `i` of the test page as the device model defines it, given the scratch value.
fn model_byte(scratch: u64, i: u64) -> u8 {
    match i {
        0..=7 => scratch.to_le_bytes()[i as usize],
        8..=15 => ID.to_le_bytes()[(i - 8) as usize],
        _ => 0,
    }
}

fn model(scratch: u64, offset: u64, size: u8) -> u64 {
    (0..u64::from(size)).fold(0, |v, i| v | (u64::from(model_byte(scratch, offset + i)) << (8 * i)))
}

pub fn test_register(c: &mut Checks) {
    let scratch = 0x8877_6655_4433_2211u64;
    // Loads of every size at every offset 0..=16-size (straddling the two registers too).
    let mut bad = 0;
    let mut tried = 0;
    let _ = store(TEST, 8, scratch);
    for size in [1u8, 2, 4, 8] {
        for offset in 0..=(16 - u64::from(size)) {
            tried += 1;
            let got = load(TEST + offset, size);
            let want = model(scratch, offset, size);
            if got != Ok(want) {
                if bad < 4 {
                    c.note(format_args!("load of {size} at +{offset}: want {want:#x}, got {got:x?}"));
                }
                bad += 1;
            }
        }
    }
    c.check(
        bad == 0,
        format_args!("{tried} test-register loads, every size and offset: as the device says ({bad} wrong)"),
    );

    // Stores of every size at every offset 0..=16-size: only scratch bytes change.
    let (mut bad, mut tried) = (0, 0);
    for size in [1u8, 2, 4, 8] {
        for offset in 0..=(16 - u64::from(size)) {
            tried += 1;
            let _ = store(TEST, 8, 0);
            let value = 0xF1E2_D3C4_B5A6_9788u64;
            let w = store(TEST + offset, size, value);
            let mut want = 0u64;
            for i in 0..u64::from(size) {
                let at = offset + i;
                if at < 8 {
                    want |= u64::from(value.to_le_bytes()[i as usize]) << (8 * at);
                }
            }
            let got = (load(TEST, 8), load(TEST + 8, 8));
            if w.is_err() || got != (Ok(want), Ok(ID)) {
                if bad < 4 {
                    c.note(format_args!("store of {size} at +{offset}: want scratch {want:#x}, got {got:x?}"));
                }
                bad += 1;
            }
        }
    }
    c.check(
        bad == 0,
        format_args!("{tried} test-register stores, every size and offset: only scratch bytes change ({bad} wrong)"),
    );

    // Straddling the end of the test page (into unclaimed MMIO): bytes past the page read as
    // ones; the bytes inside read as the device's zeros or as ones (an access split at the page
    // boundary or treated as one unclaimed access: both harmless). Stores change nothing.
    let _ = store(TEST, 8, scratch);
    let (mut bad, mut tried) = (0, 0);
    for size in [2u8, 4, 8] {
        for inside in 1..u64::from(size) {
            tried += 1;
            let at = TEST + 0x1000 - inside;
            let got = load(at, size);
            let outside_mask = ones(size) & !ones(inside as u8);
            let ok = match got {
                Ok(v) => v & outside_mask == outside_mask && (v & ones(inside as u8) == 0 || v == ones(size)),
                Err(_) => false,
            };
            let w = store(at, size, 0);
            if !ok || w.is_err() {
                if bad < 4 {
                    c.note(format_args!(
                        "access of {size} at {at:#x} across the page end: load {got:x?}, store {}",
                        Outcome(w.err())
                    ));
                }
                bad += 1;
            }
        }
    }
    let after = (load(TEST, 8), load(TEST + 8, 8));
    c.check(
        bad == 0 && after == (Ok(scratch), Ok(ID)),
        format_args!("{tried} accesses across the test page's end: ones past it, stores dropped ({bad} wrong)"),
    );
}

pub fn unclaimed(c: &mut Checks) {
    let (mut bad, mut tried) = (0, 0);
    for base in UNCLAIMED {
        for size in [1u8, 2, 4, 8] {
            for offset in 0..8u64 {
                tried += 1;
                let w = store(base + offset, size, 0x1234_5678_9ABC_DEF0);
                let got = load(base + offset, size);
                if w.is_err() || got != Ok(ones(size)) {
                    if bad < 4 {
                        c.note(format_args!(
                            "unclaimed {:#x} size {size}: store {}, load {got:x?}",
                            base + offset,
                            Outcome(w.err())
                        ));
                    }
                    bad += 1;
                }
            }
        }
    }
    c.check(
        bad == 0,
        format_args!("{tried} unclaimed-MMIO stores and loads, every size and offset: dropped, ones ({bad} wrong)"),
    );
}

/// An 8-byte access at the last 4 bytes of RAM: half RAM, half nothing. The part past RAM must
/// read as ones; the part in RAM reads as RAM or (an access emulated as one unclaimed access) as
/// ones. Reported as it is.
pub fn straddle_ram_end(c: &mut Checks, ram_size: u64) {
    let at = ram_size - 4;
    // SAFETY: the last 4 bytes of RAM are unused by the guest (it lives below 2 MiB).
    unsafe { core::ptr::write_volatile(at as *mut u32, 0x5A5A_5A5A) };
    let got = load(at, 8);
    let w = store(at, 8, 0x0102_0304_0506_0708);
    // SAFETY: as above.
    let ram = unsafe { core::ptr::read_volatile(at as *const u32) };
    c.note(format_args!(
        "8-byte load across the end of RAM at {at:#x}: {} (RAM half was 0x5a5a5a5a); store: {}, RAM half now {ram:#x}",
        Loaded(got),
        Outcome(w.err())
    ));
    c.check(
        matches!(got, Ok(v) if v >> 32 == 0xFFFF_FFFF) && w.is_ok(),
        format_args!("an 8-byte load across the end of RAM reads ones past it, and a store there is harmless"),
    );
}

/// Read-modify-write and string forms on MMIO.
pub fn forms(c: &mut Checks) {
    let unclaimed = UNCLAIMED[0];
    // add [unclaimed], rax: reads ones, writes (dropped): flags as for 0xff..ff + 1.
    let fault = guarded!(["add qword ptr [{a}], {v}"], a = in(reg) unclaimed, v = in(reg) 1u64, options(nostack));
    c.check(
        fault.is_none() && load(unclaimed, 8) == Ok(u64::MAX),
        format_args!("add to unclaimed MMIO is emulated and dropped ({})", Outcome(fault)),
    );
    // xchg rax, [test register]: swaps with the scratch register.
    let _ = store(TEST, 8, 0x1111);
    let mut rax = 0x2222u64;
    let fault = guarded!(["xchg qword ptr [{a}], {v}"], a = in(reg) TEST, v = inout(reg) rax, options(nostack));
    c.check(
        fault.is_none() && rax == 0x1111 && load(TEST, 8) == Ok(0x2222),
        format_args!("xchg with the test register swaps (rax {rax:#x}, {})", Outcome(fault)),
    );
    // rep stosq from the start of the test page, 8 qwords past its end.
    let count = 512u64 + 8;
    let (mut rcx, mut rdi) = (count, TEST);
    let fault = guarded!(
        ["rep stosq"],
        inout("rcx") rcx,
        inout("rdi") rdi,
        in("rax") 0x5555_AAAA_5555_AAAAu64,
        options(nostack)
    );
    c.check(
        fault.is_none()
            && rcx == 0
            && rdi == TEST + 8 * count
            && load(TEST, 8) == Ok(0x5555_AAAA_5555_AAAA)
            && load(TEST + 8, 8) == Ok(ID),
        format_args!(
            "rep stosq of {count} qwords over the test page and past its end (rcx {rcx:#x}, rdi {rdi:#x}, {})",
            Outcome(fault)
        ),
    );
    let _ = store(TEST, 8, 0);
}

//! A storm of exits that the monitor must answer: millions of `out` to a port nothing claims
//! (each one a round trip through the kernel to the monitor), and `in` from it, which must read
//! all ones. The system tests check meanwhile that another VM keeps running and the shell
//! answers.

use keel_guest_rt::check::Checks;

/// A port no device of docs/guests.md claims (the ISA Plug and Play write-data port).
pub const PORT: u16 = 0xA79;

/// `count` × `out dx, al`.
fn outs(count: u64) {
    // SAFETY: `out` to an unclaimed port: the monitor ignores it; no memory is touched.
    unsafe {
        core::arch::asm!(
            "2:",
            "out dx, al",
            "dec {n}",
            "jnz 2b",
            n = inout(reg) count => _,
            in("dx") PORT,
            in("al") 0x5Au8,
            options(nomem, nostack),
        )
    };
}

/// `count` × `in al, dx`; returns how many reads were not 0xff.
fn ins(count: u64) -> u64 {
    let mut wrong = 0u64;
    // SAFETY: `in` from an unclaimed port: the monitor answers all ones; no memory is touched.
    unsafe {
        core::arch::asm!(
            "2:",
            "in al, dx",
            "cmp al, 0xff",
            "je 3f",
            "inc {w}",
            "3:",
            "dec {n}",
            "jnz 2b",
            n = inout(reg) count => _,
            w = inout(reg) wrong,
            in("dx") PORT,
            out("al") _,
            options(nomem, nostack),
        )
    };
    wrong
}

/// `total` outs in `chunks` pieces with a progress line after each, then `total / 10` ins.
pub fn run(c: &mut Checks, total: u64, chunks: u64) {
    c.note(format_args!("out storm: started: {total} exits to port {PORT:#x}"));
    let chunk = (total / chunks).max(1);
    let mut done = 0;
    let start = keel_guest_rt::cpu::rdtsc();
    while done < total {
        let n = chunk.min(total - done);
        outs(n);
        done += n;
        c.note(format_args!("out storm: {done} of {total}"));
    }
    let cycles = keel_guest_rt::cpu::rdtsc().wrapping_sub(start);
    c.note(format_args!("out storm: done ({} TSC cycles per exit)", cycles / total.max(1)));
    let reads = (total / 10).max(1);
    let wrong = ins(reads);
    c.check(
        wrong == 0,
        format_args!("{total} out exits survived; {reads} in from the unclaimed port all read 0xff ({wrong} did not)"),
    );
}

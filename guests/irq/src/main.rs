//! `irq`: timer interrupts through the emulated 8259 PIC pair and 8254 PIT, with HLT between them.
//!
//! It installs an IDT (every vector has a gate), remaps the PICs (master IRQs 0-7 on vectors
//! 0x20-0x27, slave IRQs 8-15 on 0x28-0x2F), unmasks IRQ 0 only, programs PIT channel 0 in mode 2
//! at 100 Hz, and then, with `sti; hlt`, waits for 20 timer interrupts, sending an EOI for each.
//! Exceptions stop the guest (the runtime's default handler); any other vector (a spurious IRQ 7
//! or 15, an IRQ that should be masked, anything else) is counted and fails the test.
//!
//! Bounds, so that a broken timer fails instead of hanging (as far as the guest can tell):
//! - the first tick is awaited by polling with interrupts enabled (no HLT), for at most
//!   `FIRST_TICK_TSC` TSC cycles: if no interrupt ever comes, a HLT would never return;
//! - after that each tick is awaited with HLT, and at most `MAX_WAKEUPS` HLT returns are allowed
//!   in all (a HLT that returns without an interrupt counts too), and at most `TOTAL_TSC` cycles.
//!
//! Verdict: `PASS irq`, or `FAIL irq: <first failed check>`. The line before the verdict reports
//! the ticks, HLT wake-ups and TSC cycles measured.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use keel_guest_rt::check::Checks;
use keel_guest_rt::cpu;
use keel_guest_rt::idt::{self, InterruptFrame};
use keel_guest_rt::{pic, pit};

keel_guest_rt::entry!(run);

/// Vector of IRQ 0 (the master PIC's base).
const MASTER_BASE: u8 = 0x20;
/// Vector of IRQ 8 (the slave PIC's base).
const SLAVE_BASE: u8 = 0x28;
/// Timer rate.
const HZ: u32 = 100;
/// Timer interrupts to wait for.
const TICKS: u32 = 20;
/// HLT returns allowed while waiting for the ticks: one per tick is expected; the slack covers
/// nothing architectural (HLT returns only for an interrupt) but keeps the bound loose.
const MAX_WAKEUPS: u32 = 10 * TICKS;
/// TSC cycles to wait for the first tick by polling: 2^34 is about 5 s at 3.4 GHz. (Under an
/// emulator the TSC may advance with instructions rather than time; the system test's own
/// timeout is the backstop.)
const FIRST_TICK_TSC: u64 = 1 << 34;
/// TSC cycles allowed for all the ticks (20 ticks at 100 Hz take 0.2 s): 2^36, about 20 s at 3.4 GHz.
const TOTAL_TSC: u64 = 1 << 36;

static TIMER_TICKS: AtomicU32 = AtomicU32::new(0);
static UNEXPECTED: AtomicU32 = AtomicU32::new(0);
static LAST_UNEXPECTED: AtomicU64 = AtomicU64::new(0);

fn timer(_frame: &mut InterruptFrame) {
    TIMER_TICKS.fetch_add(1, Ordering::SeqCst);
    pic::eoi(0);
}

fn unexpected(frame: &mut InterruptFrame) {
    UNEXPECTED.fetch_add(1, Ordering::SeqCst);
    LAST_UNEXPECTED.store(frame.vector, Ordering::SeqCst);
    let vector = frame.vector as u8;
    // A PIC vector other than a spurious one (IRQ 7 or 15, which must not be acknowledged) gets its
    // EOI so that it cannot block lower-priority IRQs.
    if (MASTER_BASE..SLAVE_BASE + 8).contains(&vector) && vector != MASTER_BASE + 7 && vector != SLAVE_BASE + 7 {
        pic::eoi(vector - MASTER_BASE);
    }
}

fn run(_ram_size: u64) -> ! {
    let mut c = Checks::new("irq");

    idt::install();
    for vector in 32..=255u8 {
        idt::set_handler(vector, unexpected);
    }
    idt::set_handler(MASTER_BASE, timer);
    pic::remap(MASTER_BASE, SLAVE_BASE);
    pic::set_masks(!1, 0xFF);
    let masks = pic::masks();
    c.check(
        masks == (0xFE, 0xFF),
        format_args!("PIC masks read back {:#04x} {:#04x}, want 0xfe 0xff", masks.0, masks.1),
    );
    c.note(format_args!("PIC remapped to {MASTER_BASE:#x}/{SLAVE_BASE:#x}, IRQ 0 unmasked"));
    pit::start_periodic(HZ);
    c.note(format_args!("PIT channel 0: mode 2, divisor {} ({HZ} Hz); waiting for {TICKS} ticks", pit::divisor(HZ)));
    c.check(
        TIMER_TICKS.load(Ordering::SeqCst) == 0,
        format_args!("no interrupt is delivered while RFLAGS.IF is clear"),
    );

    let start = cpu::rdtsc();
    // SAFETY: idt::install gave every vector a gate; 32-255 have handlers, exceptions the default.
    unsafe { cpu::sti() };
    let mut polls = 0u64;
    while TIMER_TICKS.load(Ordering::SeqCst) == 0 && UNEXPECTED.load(Ordering::SeqCst) == 0 {
        if cpu::rdtsc().wrapping_sub(start) > FIRST_TICK_TSC {
            cpu::cli();
            c.fail(format_args!("no timer interrupt within {FIRST_TICK_TSC} TSC cycles of sti ({polls} polls)"));
        }
        polls += 1;
        core::hint::spin_loop();
    }
    let first = cpu::rdtsc();

    let mut wakeups = 0u32;
    let mut timed_out = false;
    while TIMER_TICKS.load(Ordering::SeqCst) < TICKS && UNEXPECTED.load(Ordering::SeqCst) == 0 {
        if wakeups >= MAX_WAKEUPS || cpu::rdtsc().wrapping_sub(start) > TOTAL_TSC {
            timed_out = true;
            break;
        }
        // SAFETY: as for sti above. The STI shadow makes sure the HLT is reached before the next
        // interrupt is taken, so no tick can be missed between the check and the halt.
        unsafe { cpu::enable_and_halt() };
        wakeups += 1;
    }
    cpu::cli();
    let end = cpu::rdtsc();
    pic::set_masks(0xFF, 0xFF);

    let ticks = TIMER_TICKS.load(Ordering::SeqCst);
    let unexpected = UNEXPECTED.load(Ordering::SeqCst);
    let cycles = end.wrapping_sub(start);
    let per_tick = if ticks > 1 { end.wrapping_sub(first) / u64::from(ticks - 1) } else { 0 };
    c.note(format_args!(
        "measured: {ticks} timer interrupts, {wakeups} hlt wake-ups, {cycles} TSC cycles ({per_tick} per tick after the first, {polls} polls before it)"
    ));
    c.check(
        ticks >= TICKS,
        format_args!(
            "{TICKS} timer interrupts arrived (got {ticks}{})",
            if timed_out { ", gave up: too many hlt wake-ups or TSC cycles" } else { "" }
        ),
    );
    c.check(
        unexpected == 0,
        format_args!(
            "no spurious or unexpected vector ({unexpected} seen, last {:#x})",
            LAST_UNEXPECTED.load(Ordering::SeqCst)
        ),
    );
    c.check(wakeups <= ticks, format_args!("every hlt wake-up had an interrupt ({wakeups} wake-ups, {ticks} ticks)"));
    c.finish()
}

//! The interrupt controllers as attack surface (the local APIC at 0xFEE00000, the I/O APIC at
//! 0xFEC00000, the PIC pair, the PIT): garbage in every register, timers at their fastest,
//! self-IPI storms, illegal vectors, then a controlled look at what interrupts arrive.
//!
//! 1. With interrupts disabled: every LAPIC register offset at every size (and unaligned), 4096
//!    random writes over the LAPIC page (ICR writes among them send self-IPIs, INITs, NMIs,
//!    illegal vectors), every I/O APIC redirection entry with random values (all delivery modes,
//!    vectors 0-255, level and edge), the PIT at divisor 2, the LAPIC timer periodic at its
//!    shortest period. Meanwhile the guest keeps doing port I/O: the monitor must keep answering
//!    (a bounded number of exits completes) though its timers fire as fast as they can. Nothing
//!    is delivered while RFLAGS.IF is clear.
//! 2. Clean-up: all I/O APIC entries masked, LVTs masked, the PICs masked, PIT stopped; the
//!    version register still reads 0x00050014 and the ID 0.
//! 3. With interrupts enabled, for a bounded time: first whatever part 1 left requested is taken
//!    and counted (every vector 0x20-0xFF has a handler that EOIs; part 1 keeps the PICs masked
//!    and gives the I/O APIC no vectors 16-31, which would look like exceptions on any x86);
//!    then the LAPIC timer periodic at vector 0x40 every millisecond: interrupts arrive (each
//!    with an EOI), about as often as asked, and no other vector appears. (A period at the
//!    monitor's 50 µs clamp is not used here: under an emulator one interrupt with its EOI takes
//!    longer than that, and the guest would do nothing but take interrupts; that is the guest's
//!    own loss, as on hardware, and the clamp is covered by keel-devices' tests.)
//!
//! What would be wrong: the VM or the host hanging, an exception, an interrupt while IF is clear,
//! vectors below 16 delivered, the timer firing much faster than asked.

use core::sync::atomic::{AtomicU64, Ordering};

use keel_guest_rt::check::Checks;
use keel_guest_rt::cpu;
use keel_guest_rt::idt::{self, InterruptFrame};

use crate::access::{load, store};
use crate::rng::Rng;

const LAPIC: u64 = 0xFEE0_0000;
const IOAPIC: u64 = 0xFEC0_0000;
const TIMER_VECTOR: u8 = 0x40;
const SPURIOUS: u8 = 0xFF;

static TICKS: AtomicU64 = AtomicU64::new(0);
static OTHER: AtomicU64 = AtomicU64::new(0);
static LAST_OTHER: AtomicU64 = AtomicU64::new(0);

fn lapic_read(offset: u64) -> u32 {
    load(LAPIC + offset, 4).unwrap_or(u64::MAX) as u32
}

fn lapic_write(offset: u64, value: u32) {
    let _ = store(LAPIC + offset, 4, u64::from(value));
}

fn ioapic_write(register: u32, value: u32) {
    let _ = store(IOAPIC, 4, u64::from(register));
    let _ = store(IOAPIC + 0x10, 4, u64::from(value));
}

fn outb(port: u16, value: u8) {
    // SAFETY: port I/O to the emulated PIC/PIT/an unclaimed port; touches no memory.
    unsafe { core::arch::asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack)) };
}

fn timer_tick(_frame: &mut InterruptFrame) {
    TICKS.fetch_add(1, Ordering::SeqCst);
    lapic_write(0xB0, 0);
}

fn other_vector(frame: &mut InterruptFrame) {
    OTHER.fetch_add(1, Ordering::SeqCst);
    LAST_OTHER.store(frame.vector, Ordering::SeqCst);
    lapic_write(0xB0, 0);
}

/// `count` port writes to an unclaimed port, each a round trip through the monitor; returns the
/// TSC cycles they took.
fn exits(count: u32) -> u64 {
    let start = cpu::rdtsc();
    for _ in 0..count {
        outb(0xA79, 0x55);
    }
    cpu::rdtsc().wrapping_sub(start)
}

pub fn garbage(c: &mut Checks, rng: &mut Rng, random_writes: u32) {
    // Every register offset at every size, and unaligned: reads only (nothing to check but that
    // they complete: misaligned and odd-sized accesses read as 0 by the model).
    let mut reads = 0;
    for offset in (0..0x1000u64).step_by(4) {
        for size in [1u8, 2, 4, 8] {
            let _ = load(LAPIC + offset + u64::from(size == 2), size);
            reads += 1;
        }
    }
    c.note(format_args!("{reads} LAPIC reads at every offset and size"));

    // The PICs stay masked: their vectors (from an ICW2 this guest never wrote) would arrive as
    // exception vectors once interrupts are enabled in part 3.
    outb(0x21, 0xFF);
    outb(0xA1, 0xFF);
    // The fastest timers the models allow: PIT channel 0 at divisor 2, LAPIC periodic at 1 tick.
    outb(0x43, 0x34);
    outb(0x40, 2);
    outb(0x40, 0);
    lapic_write(0xF0, 0x1FF); // software-enable
    lapic_write(0x3E0, 0xB); // divide by 1
    lapic_write(0x320, (1 << 17) | u32::from(TIMER_VECTOR)); // periodic
    lapic_write(0x380, 1);

    // Random writes over the LAPIC page (ICR included) and every I/O APIC entry.
    for _ in 0..random_writes {
        let offset = rng.below(0x100) << 4;
        lapic_write(offset, rng.next() as u32);
    }
    for pin in 0..24u32 {
        // Any delivery mode, trigger, mask and destination; vectors 0-15 (illegal: the LAPIC
        // refuses them) and 32-255, not 16-31 (see the module documentation).
        let mut low = rng.next() as u32;
        if (16..32).contains(&(low & 0xFF)) {
            low += 16;
        }
        ioapic_write(0x10 + 2 * pin, low);
        ioapic_write(0x11 + 2 * pin, rng.next() as u32);
    }
    // Self-IPIs: legal, illegal (below 16), NMI, INIT, SIPI, all shorthands.
    for icr in [0x4_4040u32, 0x4_4005, 0x4_4400, 0x4_4500, 0x4_4600, 0x8_4041, 0xC_4042, 0x4_C040] {
        for _ in 0..256 {
            lapic_write(0x310, 0);
            lapic_write(0x300, icr);
        }
    }
    // The monitor keeps answering while every timer fires as fast as it can.
    let cycles = exits(2000);
    c.check(
        !cpu::interrupts_enabled(),
        format_args!("2000 port exits with the LAPIC and PIT at full speed completed ({cycles} TSC cycles)"),
    );
}

pub fn clean_up(c: &mut Checks) {
    for pin in 0..24u32 {
        ioapic_write(0x10 + 2 * pin, 1 << 16);
        ioapic_write(0x11 + 2 * pin, 0);
    }
    for lvt in [0x320u64, 0x330, 0x340, 0x350, 0x360, 0x370] {
        lapic_write(lvt, 1 << 16);
    }
    lapic_write(0x380, 0);
    lapic_write(0x80, 0); // TPR
    outb(0x21, 0xFF);
    outb(0xA1, 0xFF);
    outb(0x43, 0x30); // PIT channel 0 mode 0, no count: stops
                      // End what part 1 left in service (requested vectors are taken in part 3).
    for _ in 0..300 {
        lapic_write(0xB0, 0);
    }
    let version = lapic_read(0x30);
    let id = lapic_read(0x20);
    c.check(
        version == 0x0005_0014 && id == 0,
        format_args!("the LAPIC still answers after the garbage: version {version:#x}, id {id:#x}"),
    );
}

pub fn controlled_timer(c: &mut Checks, window_tsc: u64) {
    for vector in 0x20..=0xFFu8 {
        idt::set_handler(vector, other_vector);
    }
    lapic_write(0xF0, 0x100 | u32::from(SPURIOUS));
    // Take what part 1 left requested.
    // SAFETY: every vector 0x20-0xFF has a handler that EOIs; exceptions keep the runtime's.
    unsafe { cpu::sti() };
    let start = cpu::rdtsc();
    while cpu::rdtsc().wrapping_sub(start) < 1 << 24 {
        core::hint::spin_loop();
    }
    cpu::cli();
    let stale = OTHER.swap(0, Ordering::SeqCst);
    c.note(format_args!("{stale} interrupts left requested by the garbage were taken"));
    idt::set_handler(TIMER_VECTOR, timer_tick);
    lapic_write(0x3E0, 0xB); // divide by 1: the count runs at 1 GHz
    lapic_write(0x320, (1 << 17) | u32::from(TIMER_VECTOR));
    lapic_write(0x380, 1_000_000); // 1 ms
    let start = cpu::rdtsc();
    // SAFETY: every vector 0x20-0xFF has a handler that EOIs; exceptions keep the runtime's.
    unsafe { cpu::sti() };
    let mut spins = 0u64;
    // Until 5 ticks, or `window_tsc` cycles at most (a timer that never fires fails).
    while TICKS.load(Ordering::SeqCst) < 5 && cpu::rdtsc().wrapping_sub(start) < window_tsc {
        spins += 1;
        core::hint::spin_loop();
    }
    cpu::cli();
    lapic_write(0x320, 1 << 16);
    lapic_write(0x380, 0);
    let ticks = TICKS.load(Ordering::SeqCst);
    let other = OTHER.load(Ordering::SeqCst);
    c.check(
        ticks >= 5,
        format_args!("the LAPIC timer at 1 ms delivered {ticks} ticks, the guest ran meanwhile ({spins} spins)"),
    );
    c.check(
        other == 0,
        format_args!("no other vector arrived ({other}, last {:#x})", LAST_OTHER.load(Ordering::SeqCst)),
    );
}

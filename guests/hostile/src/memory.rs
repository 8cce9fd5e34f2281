//! Guest-physical memory past the end of RAM, reached through the window's own page tables: a
//! 64-bit load, a store of a marker, and a load again at each probed address. Nested paging maps
//! only the VM's RAM, so every probe is an MMIO exit that nothing claims: both loads must give all
//! ones and the store must vanish (another VM's memory, or the host's, is never reached; the
//! `spinner` guest checks its own pattern while this runs).
//!
//! Not checked (their contents belong to devices; loads there are made and reported): the PCI
//! memory window 0xE0000000-0xEFFFFFFF where the monitor puts PCI BARs (a virtio device), the
//! test register page, and the APIC/HPET window 0xFEC00000-0xFEFFFFFF, which a later platform
//! will fill. A device added to docs/guests.md's platform outside these must be added to
//! `DEVICES`.

use keel_guest_rt::check::Checks;

use crate::access::{load, store};
use crate::trap::{Loaded, Outcome};
use crate::window;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
/// Written at each probe; if it ever reads back, a store reached memory.
pub const MARKER: u64 = 0x686F_7374_696C_6521; // "!elitsoh": "hostile!" in memory
/// Ranges with (future) devices: (start, end).
const DEVICES: [(u64, u64); 3] = [(0xE000_0000, 0xF000_0000), (0xFEB0_0000, 0xFEB0_1000), (0xFEC0_0000, 0xFF00_0000)];

fn in_device(gpa: u64) -> bool {
    DEVICES.iter().any(|&(s, e)| (s..e).contains(&gpa))
}

/// Totals over a set of probes.
#[derive(Default)]
pub struct Tally {
    pub probes: u64,
    pub bad: u64,
    pub skipped: u64,
}

/// Probes one guest-physical address through the window (`large`: a 2 MiB mapping, else 4 KiB).
/// Returns whether it behaved (all ones, store dropped).
fn probe(c: &Checks, gpa: u64, large: bool, tally: &mut Tally) {
    if in_device(gpa) {
        let va = if large { window::map_2m(gpa) } else { window::map_4k(gpa) };
        let got = load(va, 8);
        if tally.skipped == 0 {
            c.note(format_args!("probe at {gpa:#x} (a device window) read {}: not checked", Loaded(got)));
        }
        tally.skipped += 1;
        return;
    }
    let va = if large { window::map_2m(gpa) } else { window::map_4k(gpa) };
    let before = load(va, 8);
    let w = store(va, 8, MARKER);
    let after = load(va, 8);
    tally.probes += 1;
    if before != Ok(u64::MAX) || w.is_err() || after != Ok(u64::MAX) {
        if tally.bad < 8 {
            c.note(format_args!(
                "probe at {gpa:#x}: load {}, store {}, load again {}",
                Loaded(before),
                Outcome(w.err()),
                Loaded(after)
            ));
        }
        tally.bad += 1;
    }
}

/// Every `step` from `start` (aligned up to `step`) to `end`, with 2 MiB mappings when `step` is
/// a multiple of 2 MiB. Prints progress every `report` bytes (0: never).
pub fn sweep(c: &Checks, start: u64, end: u64, step: u64, report: u64) -> Tally {
    let mut tally = Tally::default();
    let large = step.is_multiple_of(2 * MIB);
    let mut gpa = start.div_ceil(step) * step;
    let mut next_report = gpa.checked_div(report).map_or(u64::MAX, |q| (q + 1) * report);
    while gpa < end {
        probe(c, gpa, large, &mut tally);
        gpa += step;
        if gpa >= next_report {
            c.note(format_args!("probed up to {} GiB ({} probes, {} wrong)", gpa / GIB, tally.probes, tally.bad));
            next_report += report;
        }
    }
    tally
}

/// Single probes at chosen addresses (4 KiB mappings).
pub fn points(c: &Checks, gpas: &[u64]) -> Tally {
    let mut tally = Tally::default();
    for &gpa in gpas {
        probe(c, gpa & !7, false, &mut tally);
    }
    tally
}

/// A page-directory entry that points at a "page table" outside RAM: the walk reads memory
/// that is not there. The hardware would see all-ones entries (reserved bits: #PF); an emulated
/// walk may answer the load itself with all ones. Either is fine; a host crash is not.
pub fn table_outside_ram(c: &mut Checks, gpa: u64) {
    let va = window::map_table(gpa);
    let got = load(va, 8);
    let w = store(va, 8, MARKER);
    c.check(
        matches!(got, Ok(u64::MAX) | Err(_)),
        format_args!(
            "a load through a page table at {gpa:#x} (not RAM) gives all ones or a fault (got {}; store: {})",
            Loaded(got),
            Outcome(w.err())
        ),
    );
}

/// The guest's physical address width (CPUID 0x80000008 EAX[7:0]; 36 if absent).
pub fn phys_bits() -> u32 {
    if keel_guest_rt::cpu::cpuid(0x8000_0000, 0).eax >= 0x8000_0008 {
        keel_guest_rt::cpu::cpuid(0x8000_0008, 0).eax & 0xFF
    } else {
        36
    }
}

/// The guest's first page beyond its physical address width: a guest page-table entry naming it
/// has reserved bits set (#PF). Anything but a host crash is fine; reported.
pub fn beyond_phys_bits(c: &mut Checks) {
    let bits = phys_bits();
    let gpa = 1u64 << bits.min(51);
    let va = window::map_4k(gpa);
    let got = load(va, 8);
    c.check(
        matches!(got, Ok(u64::MAX) | Err(_)),
        format_args!(
            "a load at {gpa:#x} (beyond the {bits}-bit physical address width) gives all ones or a fault (got {})",
            Loaded(got)
        ),
    );
}

pub fn report(c: &mut Checks, what: core::fmt::Arguments, tally: &Tally) {
    c.check(
        tally.bad == 0 && tally.probes > 0,
        format_args!(
            "{what}: {} probes all ones, stores dropped ({} wrong, {} in device windows unchecked)",
            tally.probes, tally.bad, tally.skipped
        ),
    );
}

//! Host tests for the local APIC: reset state, Linux's enable sequence, the timer in periodic and
//! one-shot modes with calibration-style current-count reads, divide values, TPR/PPR masking,
//! nested ISR and EOI order, level EOIs, IPIs, the ESR protocol, and a random register stream.

use super::*;
use crate::testutil::Rng;

const MS: u64 = 1_000_000;

fn rd(apic: &mut Lapic, offset: u64, now: u64) -> u32 {
    let mut data = [0u8; 4];
    apic.read(offset, &mut data, now);
    u32::from_le_bytes(data)
}

fn wr(apic: &mut Lapic, offset: u64, now: u64, value: u32) -> LapicEffect {
    apic.write(offset, &value.to_le_bytes(), now)
}

/// Linux's setup_local_APIC, in short: TPR 0, SVR enabled with spurious vector 0xFF, LINT0
/// ExtINT, LINT1 NMI, error vector 0xFE, ESR cleared.
fn linux_enable(apic: &mut Lapic) {
    wr(apic, REG_TPR, 0, 0);
    wr(apic, REG_SVR, 0, 0x1FF);
    wr(apic, 0x350, 0, 0x700);
    wr(apic, 0x360, 0, 0x400);
    wr(apic, 0x370, 0, 0xFE);
    wr(apic, REG_ESR, 0, 0);
    wr(apic, REG_ESR, 0, 0);
}

fn enabled() -> Lapic {
    let mut apic = Lapic::new();
    linux_enable(&mut apic);
    apic
}

#[test]
fn reset_state() {
    let mut apic = Lapic::new();
    assert_eq!(rd(&mut apic, REG_ID, 0), 0);
    assert_eq!(rd(&mut apic, REG_VERSION, 0), 0x0005_0014);
    assert_eq!(rd(&mut apic, REG_SVR, 0), 0xFF);
    assert_eq!(rd(&mut apic, REG_DFR, 0), 0xFFFF_FFFF);
    assert_eq!(rd(&mut apic, 0x320, 0), LVT_MASKED);
    assert_eq!(rd(&mut apic, 0x350, 0), 0x700);
    assert_eq!(rd(&mut apic, 0x360, 0), 0x400);
    assert_eq!(rd(&mut apic, 0x370, 0), LVT_MASKED);
    assert!(!apic.software_enabled());
    assert!(apic.extint_enabled());
    // Held but not offered while software-disabled.
    apic.accept(0x40, false);
    assert_eq!(rd(&mut apic, 0x220, 0), 1);
    assert_eq!(apic.pending(), None);
    assert_eq!(apic.acknowledge(), None);
    wr(&mut apic, REG_SVR, 0, 0x1FF);
    assert_eq!(apic.acknowledge(), Some(0x40));
}

#[test]
fn software_disable_masks_lvts() {
    let mut apic = enabled();
    assert!(apic.software_enabled());
    wr(&mut apic, 0x320, 0, 0x2_00EC);
    assert_eq!(rd(&mut apic, 0x320, 0), 0x2_00EC);
    wr(&mut apic, REG_SVR, 0, 0xFF);
    for offset in (0x320..=0x370).step_by(16) {
        assert_ne!(rd(&mut apic, offset, 0) & LVT_MASKED, 0, "LVT {offset:#x}");
    }
    assert!(!apic.extint_enabled());
    // Attempts to unmask while disabled are ignored.
    wr(&mut apic, 0x350, 0, 0x700);
    assert_eq!(rd(&mut apic, 0x350, 0), 0x1_0700);
    // Re-enabling keeps the masks until the guest clears them.
    wr(&mut apic, REG_SVR, 0, 0x1FF);
    assert_eq!(rd(&mut apic, 0x350, 0), 0x1_0700);
    wr(&mut apic, 0x350, 0, 0x700);
    assert!(apic.extint_enabled());
}

#[test]
fn register_write_masks() {
    let mut apic = enabled();
    wr(&mut apic, REG_LDR, 0, 0xFFFF_FFFF);
    assert_eq!(rd(&mut apic, REG_LDR, 0), 0xFF00_0000);
    wr(&mut apic, REG_DFR, 0, 0);
    assert_eq!(rd(&mut apic, REG_DFR, 0), 0x0FFF_FFFF);
    wr(&mut apic, REG_SVR, 0, 0xFFFF_FFFF);
    assert_eq!(rd(&mut apic, REG_SVR, 0), 0x3FF);
    wr(&mut apic, REG_TPR, 0, 0xFFFF_FFFF);
    assert_eq!(rd(&mut apic, REG_TPR, 0), 0xFF);
    // TSC-deadline mode (bit 18) and delivery status are not writable on the timer entry.
    wr(&mut apic, 0x320, 0, 0xFFFF_FFFF);
    assert_eq!(rd(&mut apic, 0x320, 0), 0x3_00FF);
    wr(&mut apic, REG_DCR, 0, 0xFFFF_FFFF);
    assert_eq!(rd(&mut apic, REG_DCR, 0), 0xB);
    wr(&mut apic, REG_ICR_HI, 0, 0xFFFF_FFFF);
    assert_eq!(rd(&mut apic, REG_ICR_HI, 0), 0xFF00_0000);
    // Read-only registers.
    wr(&mut apic, REG_ID, 0, 0xFF00_0000);
    wr(&mut apic, REG_VERSION, 0, 0);
    wr(&mut apic, REG_CURRENT, 0, 5);
    assert_eq!(rd(&mut apic, REG_ID, 0), 0);
    assert_eq!(rd(&mut apic, REG_VERSION, 0), VERSION);
    assert_eq!(rd(&mut apic, REG_CURRENT, 0), 0);
}

#[test]
fn odd_sizes_and_offsets_are_ignored() {
    let mut apic = enabled();
    apic.write(REG_TPR, &[0x50], 0);
    apic.write(REG_TPR, &[0x50, 0, 0, 0, 0, 0, 0, 0], 0);
    apic.write(REG_TPR + 4, &0x50u32.to_le_bytes(), 0);
    assert_eq!(rd(&mut apic, REG_TPR, 0), 0);
    let mut data = [0xAAu8; 8];
    apic.read(REG_VERSION, &mut data, 0);
    assert_eq!(data, [0; 8]);
    let mut data = [0xAAu8; 4];
    apic.read(REG_VERSION + 1, &mut data, 0);
    assert_eq!(data, [0; 4]);
    apic.read(0xFF0, &mut data, 0);
    assert_eq!(data, [0; 4]);
    apic.read(u64::MAX - 15, &mut data, 0);
    assert_eq!(data, [0; 4]);
    assert_eq!(apic.write(u64::MAX - 15, &[1, 2, 3, 4], 0), LapicEffect::None);
    apic.read(0, &mut [], 0);
}

#[test]
fn divide_values() {
    let mut apic = enabled();
    for (dcr, div) in [(0x0, 2), (0x1, 4), (0x2, 8), (0x3, 16), (0x8, 32), (0x9, 64), (0xA, 128), (0xB, 1)] {
        wr(&mut apic, REG_DCR, 0, dcr);
        assert_eq!(apic.divisor(), div, "dcr {dcr:#x}");
    }
}

#[test]
fn calibration_reads_of_the_current_count() {
    // Linux's calibrate_APIC_clock: periodic, masked, divide by 16, initial 0xFFFFFFFF, then
    // current-count reads a known time apart.
    let mut apic = enabled();
    let t0 = 5 * MS;
    wr(&mut apic, 0x320, t0, 0x2_00EC | LVT_MASKED);
    wr(&mut apic, REG_DCR, t0, 0x3);
    wr(&mut apic, REG_INITIAL, t0, 0xFFFF_FFFF);
    assert_eq!(rd(&mut apic, REG_CURRENT, t0), 0xFFFF_FFFF);
    assert_eq!(apic.next_event_ns(t0), None, "masked timer arms nothing");
    let a = rd(&mut apic, REG_CURRENT, t0 + MS);
    let b = rd(&mut apic, REG_CURRENT, t0 + 101 * MS);
    // 100 ms at 1 GHz / 16.
    assert_eq!(a - b, 6_250_000);
    assert_eq!(u64::from(0xFFFF_FFFF - a), MS / 16);
    apic.advance(t0 + 200 * MS);
    assert_eq!(apic.pending(), None);
}

#[test]
fn periodic_timer() {
    let mut apic = enabled();
    // Linux's __setup_APIC_LVTT(clocks, 0, 1): LVTT, TDCR, TMICT. 4 ms at 1 GHz / 16.
    let t0 = 1000;
    wr(&mut apic, 0x320, t0, 0x2_00EC);
    wr(&mut apic, REG_DCR, t0, 0x3);
    wr(&mut apic, REG_INITIAL, t0, 250_000);
    assert_eq!(apic.next_event_ns(t0), Some(t0 + 4 * MS));
    assert_eq!(rd(&mut apic, REG_CURRENT, t0 + 2 * MS), 125_000);
    apic.advance(t0 + 4 * MS - 1);
    assert_eq!(apic.pending(), None);
    apic.advance(t0 + 4 * MS);
    assert_eq!(apic.acknowledge(), Some(0xEC));
    assert_eq!(wr(&mut apic, REG_EOI, t0 + 4 * MS, 0), LapicEffect::None);
    assert_eq!(apic.next_event_ns(t0 + 4 * MS), Some(t0 + 8 * MS));
    assert_eq!(rd(&mut apic, REG_CURRENT, t0 + 5 * MS), 187_500);
    // Missed periods coalesce into one interrupt and the phase is kept.
    apic.advance(t0 + 20 * MS + 7);
    assert_eq!(apic.acknowledge(), Some(0xEC));
    assert_eq!(apic.acknowledge(), None);
    assert_eq!(apic.next_event_ns(0), Some(t0 + 24 * MS));
    // Initial count 0 stops it.
    wr(&mut apic, REG_INITIAL, t0 + 21 * MS, 0);
    assert_eq!(apic.next_event_ns(0), None);
    assert_eq!(rd(&mut apic, REG_CURRENT, t0 + 21 * MS), 0);
}

#[test]
fn periodic_timer_rate_is_bounded() {
    let mut apic = enabled();
    wr(&mut apic, 0x320, 0, 0x2_00EC);
    wr(&mut apic, REG_DCR, 0, 0xB);
    wr(&mut apic, REG_INITIAL, 0, 1);
    assert_eq!(apic.next_event_ns(0), Some(MIN_PERIOD_NS));
    assert_eq!(rd(&mut apic, REG_CURRENT, 0), 1);
    assert_eq!(rd(&mut apic, REG_CURRENT, 10), 0);
}

#[test]
fn one_shot_timer() {
    let mut apic = enabled();
    // Linux's lapic_next_event: one-shot LVTT, then TMICT per event.
    wr(&mut apic, 0x320, 0, 0xEC);
    wr(&mut apic, REG_DCR, 0, 0xB);
    wr(&mut apic, REG_INITIAL, 100, 1_000);
    assert_eq!(apic.next_event_ns(100), Some(1_100));
    assert_eq!(rd(&mut apic, REG_CURRENT, 600), 500);
    assert_eq!(rd(&mut apic, REG_CURRENT, 1_100), 0);
    assert_eq!(apic.acknowledge(), Some(0xEC), "a read catches up with the expiry");
    assert_eq!(apic.next_event_ns(1_100), None);
    apic.advance(1_000_000);
    wr(&mut apic, REG_EOI, 1_000_000, 0);
    assert_eq!(apic.pending(), None, "a one-shot fires once");
    // Rearming while running restarts the count.
    wr(&mut apic, REG_INITIAL, 2_000_000, 500);
    wr(&mut apic, REG_INITIAL, 2_000_400, 500);
    assert_eq!(apic.next_event_ns(0), Some(2_000_900));
    // A write after a missed deadline still sees the expiry first.
    wr(&mut apic, REG_INITIAL, 3_000_000, 500);
    assert_eq!(apic.pending(), Some(0xEC));
}

#[test]
fn masked_timer_counts_without_interrupts() {
    let mut apic = enabled();
    wr(&mut apic, 0x320, 0, 0xEC | LVT_MASKED);
    wr(&mut apic, REG_DCR, 0, 0xB);
    wr(&mut apic, REG_INITIAL, 0, 100);
    apic.advance(1_000);
    assert_eq!(apic.pending(), None);
    assert_eq!(rd(&mut apic, REG_CURRENT, 1_000), 0);
}

#[test]
fn divide_and_mode_changes_keep_the_count() {
    let mut apic = enabled();
    wr(&mut apic, 0x320, 0, 0xEC);
    wr(&mut apic, REG_DCR, 0, 0x0); // by 2
    wr(&mut apic, REG_INITIAL, 0, 100_000);
    assert_eq!(rd(&mut apic, REG_CURRENT, 40_000), 80_000);
    wr(&mut apic, REG_DCR, 40_000, 0x3); // by 16
    assert_eq!(rd(&mut apic, REG_CURRENT, 40_000), 80_000);
    assert_eq!(rd(&mut apic, REG_CURRENT, 40_000 + 16 * 10_000), 70_000);
    assert_eq!(apic.next_event_ns(0), Some(40_000 + 16 * 80_000));
    // One-shot to periodic carries on and then reloads.
    wr(&mut apic, 0x320, 200_000, 0x2_00EC);
    assert_eq!(rd(&mut apic, REG_CURRENT, 200_000), 70_000);
    assert_eq!(apic.next_event_ns(0), Some(40_000 + 16 * 80_000));
    apic.advance(40_000 + 16 * 80_000);
    assert_eq!(apic.acknowledge(), Some(0xEC));
    wr(&mut apic, REG_EOI, 40_000 + 16 * 80_000, 0);
    assert_eq!(rd(&mut apic, REG_CURRENT, 40_000 + 16 * 80_000), 100_000);
    assert_eq!(apic.next_event_ns(0), Some(40_000 + 16 * 180_000));
    // Periodic back to one-shot: fires once at the end of this period.
    wr(&mut apic, 0x320, 40_000 + 16 * 90_000, 0xEC);
    assert_eq!(rd(&mut apic, REG_CURRENT, 40_000 + 16 * 90_000), 90_000);
    apic.advance(40_000 + 16 * 180_000);
    assert_eq!(apic.pending(), Some(0xEC));
    assert_eq!(apic.next_event_ns(0), None);
}

#[test]
fn time_going_backwards_counts_as_no_time() {
    let mut apic = enabled();
    wr(&mut apic, 0x320, 0, 0xEC);
    wr(&mut apic, REG_DCR, 0, 0xB);
    wr(&mut apic, REG_INITIAL, 1_000, 1_000);
    assert_eq!(rd(&mut apic, REG_CURRENT, 1_500), 500);
    assert_eq!(rd(&mut apic, REG_CURRENT, 0), 500);
    apic.advance(u64::MAX);
    assert_eq!(apic.acknowledge(), Some(0xEC));
    assert_eq!(rd(&mut apic, REG_CURRENT, 0), 0);
}

#[test]
fn tpr_masks_by_priority_class() {
    let mut apic = enabled();
    apic.accept(0x51, false);
    wr(&mut apic, REG_TPR, 0, 0x60);
    assert_eq!(rd(&mut apic, REG_PPR, 0), 0x60);
    assert_eq!(apic.pending(), None);
    wr(&mut apic, REG_TPR, 0, 0x5F);
    assert_eq!(apic.pending(), None, "same class as the TPR is blocked");
    wr(&mut apic, REG_TPR, 0, 0x4F);
    assert_eq!(apic.pending(), Some(0x51));
    assert_eq!(rd(&mut apic, REG_APR, 0), 0x50);
    assert_eq!(apic.acknowledge(), Some(0x51));
    assert_eq!(rd(&mut apic, REG_PPR, 0), 0x50);
    wr(&mut apic, REG_TPR, 0, 0x70);
    assert_eq!(rd(&mut apic, REG_PPR, 0), 0x70);
    assert_eq!(rd(&mut apic, REG_APR, 0), 0x70);
}

#[test]
fn nested_interrupts_and_eoi_order() {
    let mut apic = enabled();
    apic.accept(0x31, false);
    assert_eq!(apic.acknowledge(), Some(0x31));
    // Same class: waits for the EOI.
    apic.accept(0x3F, false);
    assert_eq!(apic.pending(), None);
    // Higher class preempts.
    apic.accept(0x61, false);
    assert_eq!(apic.acknowledge(), Some(0x61));
    assert_eq!(rd(&mut apic, REG_PPR, 0), 0x60);
    apic.accept(0x41, false);
    assert_eq!(apic.pending(), None);
    assert_eq!(rd(&mut apic, 0x130, 0), 1 << 0x01);
    assert_eq!(rd(&mut apic, 0x110, 0), 1 << 0x11);
    assert_eq!(rd(&mut apic, 0x210, 0), 1 << 0x1F);
    assert_eq!(rd(&mut apic, 0x220, 0), 1 << 0x01);
    // EOI ends the highest in-service vector first.
    wr(&mut apic, REG_EOI, 0, 0);
    assert_eq!(rd(&mut apic, 0x130, 0), 0);
    assert_eq!(rd(&mut apic, REG_PPR, 0), 0x30);
    assert_eq!(apic.acknowledge(), Some(0x41));
    wr(&mut apic, REG_EOI, 0, 0);
    assert_eq!(apic.pending(), None);
    wr(&mut apic, REG_EOI, 0, 0);
    assert_eq!(apic.acknowledge(), Some(0x3F));
    wr(&mut apic, REG_EOI, 0, 0);
    assert_eq!(rd(&mut apic, REG_PPR, 0), 0);
    // A stray EOI does nothing.
    assert_eq!(wr(&mut apic, REG_EOI, 0, 0), LapicEffect::None);
}

#[test]
fn level_triggered_eoi_is_reported() {
    let mut apic = enabled();
    apic.accept(0x39, true);
    assert_eq!(rd(&mut apic, 0x190, 0), 1 << 0x19, "TMR");
    assert_eq!(apic.acknowledge(), Some(0x39));
    apic.accept(0xA0, false);
    assert_eq!(apic.acknowledge(), Some(0xA0));
    assert_eq!(wr(&mut apic, REG_EOI, 0, 0), LapicEffect::None);
    assert_eq!(wr(&mut apic, REG_EOI, 0, 0), LapicEffect::LevelEoi(0x39));
    // The same vector later edge-triggered clears TMR.
    apic.accept(0x39, false);
    assert_eq!(rd(&mut apic, 0x190, 0), 0);
}

#[test]
fn illegal_vectors_and_the_esr() {
    let mut apic = enabled();
    apic.accept(0x0F, false);
    assert_eq!(rd(&mut apic, REG_ESR, 0), 0, "not latched until written");
    assert_eq!(apic.pending(), Some(0xFE), "the error LVT fires");
    wr(&mut apic, REG_ESR, 0, 0);
    assert_eq!(rd(&mut apic, REG_ESR, 0), ESR_RECEIVE_ILLEGAL_VECTOR);
    wr(&mut apic, REG_ESR, 0, 0);
    assert_eq!(rd(&mut apic, REG_ESR, 0), 0);
    // A self IPI with an illegal vector is a send error.
    wr(&mut apic, REG_ICR_LO, 0, 0x4_0005);
    wr(&mut apic, REG_ESR, 0, 0);
    assert_eq!(rd(&mut apic, REG_ESR, 0), ESR_SEND_ILLEGAL_VECTOR);
    // An illegal timer vector.
    wr(&mut apic, 0x320, 0, 0x3);
    wr(&mut apic, REG_INITIAL, 0, 10);
    apic.advance(1_000);
    wr(&mut apic, REG_ESR, 0, 0);
    assert_eq!(rd(&mut apic, REG_ESR, 0), ESR_RECEIVE_ILLEGAL_VECTOR);
}

#[test]
fn inter_processor_interrupts() {
    let mut apic = enabled();
    wr(&mut apic, REG_LDR, 0, 0x0100_0000);
    // Self shorthand.
    assert_eq!(wr(&mut apic, REG_ICR_LO, 0, 0x4_00F3), LapicEffect::None);
    assert_eq!(apic.acknowledge(), Some(0xF3));
    wr(&mut apic, REG_EOI, 0, 0);
    // Physical destination 0, then 1 (nobody).
    wr(&mut apic, REG_ICR_HI, 0, 0);
    wr(&mut apic, REG_ICR_LO, 0, 0xF4);
    assert_eq!(apic.acknowledge(), Some(0xF4));
    wr(&mut apic, REG_EOI, 0, 0);
    wr(&mut apic, REG_ICR_HI, 0, 0x0100_0000);
    wr(&mut apic, REG_ICR_LO, 0, 0xF5);
    assert_eq!(apic.pending(), None);
    // Logical flat destination 1 matches LDR 1; 2 does not.
    wr(&mut apic, REG_ICR_LO, 0, 0x8F6);
    assert_eq!(apic.acknowledge(), Some(0xF6));
    wr(&mut apic, REG_EOI, 0, 0);
    wr(&mut apic, REG_ICR_HI, 0, 0x0200_0000);
    wr(&mut apic, REG_ICR_LO, 0, 0x8F7);
    assert_eq!(apic.pending(), None);
    // All-excluding-self reaches nobody; all-including-self reaches us.
    wr(&mut apic, REG_ICR_LO, 0, 0xC_00F8);
    assert_eq!(apic.pending(), None);
    wr(&mut apic, REG_ICR_LO, 0, 0x8_00F9);
    assert_eq!(apic.acknowledge(), Some(0xF9));
    wr(&mut apic, REG_EOI, 0, 0);
    // NMI to self is the monitor's; INIT and SIPI are ignored.
    assert_eq!(wr(&mut apic, REG_ICR_LO, 0, 0x4_0400), LapicEffect::Nmi);
    assert_eq!(wr(&mut apic, REG_ICR_LO, 0, 0x4_0500), LapicEffect::None);
    assert_eq!(wr(&mut apic, REG_ICR_LO, 0, 0x4_0608), LapicEffect::None);
    assert_eq!(apic.pending(), None);
    // Delivery status reads idle.
    assert_eq!(rd(&mut apic, REG_ICR_LO, 0) & (1 << 12), 0);
}

#[test]
fn cluster_logical_destinations() {
    let mut apic = enabled();
    wr(&mut apic, REG_DFR, 0, 0x0FFF_FFFF);
    wr(&mut apic, REG_LDR, 0, 0x2100_0000);
    wr(&mut apic, REG_ICR_HI, 0, 0x2100_0000);
    wr(&mut apic, REG_ICR_LO, 0, 0x8F6);
    assert_eq!(apic.acknowledge(), Some(0xF6));
    wr(&mut apic, REG_ICR_HI, 0, 0x1100_0000);
    wr(&mut apic, REG_ICR_LO, 0, 0x8F7);
    assert_eq!(apic.pending(), None);
}

/// A hostile register stream: random offsets, sizes, values and times never panic, and the
/// priority rules hold throughout.
#[test]
fn random_register_stream() {
    let mut rng = Rng::new(0x1A_71C0);
    let mut apic = Lapic::new();
    let mut now = 0u64;
    for _ in 0..200_000 {
        now = match rng.below(8) {
            0 => rng.next_u64(),
            1 => now.saturating_sub(rng.below(1000)),
            _ => now.saturating_add(rng.below(100_000)),
        };
        let offset = match rng.below(8) {
            0 => rng.next_u64(),
            1 => rng.below(0x1000),
            _ => rng.below(0x40) << 4,
        };
        let size = [4, 4, 4, 1, 2, 8, 0][rng.below(7) as usize];
        match rng.below(10) {
            0..=3 => {
                let mut data = [0u8; 8];
                apic.read(offset, &mut data[..size], now);
            }
            4..=6 => {
                let mut value = rng.next_u64().to_le_bytes();
                if rng.below(4) == 0 {
                    value = [0; 8];
                }
                let effect = apic.write(offset, &value[..size], now);
                if let LapicEffect::LevelEoi(vector) = effect {
                    assert!(vector >= 16);
                }
            }
            7 => apic.accept(rng.byte(), rng.below(2) == 0),
            8 => {
                if let Some(vector) = apic.pending() {
                    assert!(vector >> 4 > apic.ppr() >> 4);
                    assert!(apic.software_enabled());
                }
                if let Some(vector) = apic.acknowledge() {
                    assert!(vector >= 16);
                    assert!(test_bit(&apic.isr, vector));
                }
            }
            _ => {
                apic.advance(now);
                if let Some(at) = apic.next_event_ns(now) {
                    assert!(at >= apic.last_ns || at == u64::MAX);
                }
            }
        }
        assert!(apic.irr[0] & 0xFFFF == 0 && apic.isr[0] & 0xFFFF == 0);
    }
}

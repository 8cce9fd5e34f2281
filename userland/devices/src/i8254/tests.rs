//! Host tests for the 8254 model: periods in modes 2 and 3, edge counting over time, one-shots,
//! latches, read-back, BCD, counter 2 through port 0x61 (Linux's TSC calibration), and a random
//! register stream.

use super::*;
use crate::testutil::Rng;
use crate::Device;

/// The device offset of `port` (ports below the base wrap to offsets no port reaches).
fn at(port: u16) -> u64 {
    u64::from(port).wrapping_sub(u64::from(BASE))
}

/// Nanoseconds for `ticks` PIT clocks (rounded up).
fn ns(ticks: u64) -> u64 {
    ns_at(ticks)
}

fn out(pit: &mut Pit, port: u16, now: u64, value: u8) {
    pit.write(at(port), &[value], now);
}

fn inb(pit: &mut Pit, port: u16, now: u64) -> u8 {
    let mut data = [0u8];
    pit.read(at(port), &mut data, now);
    data[0]
}

/// Linux's i8253 clockevent in periodic mode: 0x34, then LATCH low and high.
fn periodic(pit: &mut Pit, now: u64, count: u16) {
    out(pit, CONTROL, now, 0x34);
    out(pit, COUNTER0, now, count as u8);
    out(pit, COUNTER0, now, (count >> 8) as u8);
}

/// Counter 0 via the latch command, as Linux's i8253 clocksource reads it.
fn latched_count(pit: &mut Pit, now: u64) -> u16 {
    out(pit, CONTROL, now, 0x00);
    let lo = inb(pit, COUNTER0, now);
    let hi = inb(pit, COUNTER0, now);
    u16::from_le_bytes([lo, hi])
}

#[test]
fn bios_default_is_18_hz() {
    let mut pit = Pit::new(0);
    let mut edges = 0;
    for ms in 1..=1000u64 {
        edges += pit.advance(ms * 1_000_000);
    }
    assert_eq!(edges, 18, "1193182 / 65536 = 18.2");
    assert_eq!(pit.read_port61(0) & 0x20, 0x20, "counter 2 waits for its gate; OUT high");
}

#[test]
fn mode2_period_and_edges() {
    let t0 = 5_000_000_000; // the monitor's clock need not start at 0
    let mut pit = Pit::new(t0);
    periodic(&mut pit, t0, 1193); // HZ = 1000
    let start = ticks_at(t0);
    let mut edges = 0u64;
    for step in 1..=100_000u64 {
        // 10 µs steps for 1 s
        let now = t0 + step * 10_000;
        edges += u64::from(pit.advance(now));
        assert_eq!(edges, (ticks_at(now) - start) / 1193, "at {now}");
    }
    assert_eq!(edges, 1000);
    // next_event_ns lands exactly on the next multiple.
    let now = t0 + 1_000_000_000;
    let d = ticks_at(now) - start;
    let next = pit.next_event_ns(now).unwrap();
    assert_eq!(next, ns(start + (d / 1193 + 1) * 1193));
    assert!(next > now);
    assert_eq!(pit.advance(next - 1), 0);
    assert_eq!(pit.advance(next), 1);
}

#[test]
fn mode2_count_reads_down_and_reloads() {
    let mut pit = Pit::new(0);
    periodic(&mut pit, 0, 100);
    assert_eq!(latched_count(&mut pit, 0), 100);
    assert_eq!(latched_count(&mut pit, ns(1)), 99);
    assert_eq!(latched_count(&mut pit, ns(99)), 1);
    assert_eq!(latched_count(&mut pit, ns(100)), 100);
    assert_eq!(latched_count(&mut pit, ns(150)), 50);
}

#[test]
fn mode3_square_wave() {
    let mut pit = Pit::new(0);
    // Counter 2 in mode 3, count 10, gate on: OUT high 5 clocks, low 5 clocks.
    out(&mut pit, CONTROL, 0, 0xB6);
    out(&mut pit, 0x42, 0, 10);
    out(&mut pit, 0x42, 0, 0);
    pit.write_port61(0, 0x01);
    for t in 0..40u64 {
        let high = pit.read_port61(ns(t)) & 0x20 != 0;
        assert_eq!(high, t % 10 < 5, "tick {t}");
    }
    // Odd counts: high (N+1)/2, low (N-1)/2.
    let mut pit = Pit::new(0);
    out(&mut pit, CONTROL, 0, 0xB6);
    out(&mut pit, 0x42, 0, 7);
    out(&mut pit, 0x42, 0, 0);
    pit.write_port61(0, 0x01);
    let levels: Vec<bool> = (0..7).map(|t| pit.read_port61(ns(t)) & 0x20 != 0).collect();
    assert_eq!(levels, [true, true, true, true, false, false, false]);
    // Counter 0 in mode 3: one rising edge per period.
    let mut pit = Pit::new(0);
    out(&mut pit, CONTROL, 0, 0x36);
    out(&mut pit, COUNTER0, 0, 0x00);
    out(&mut pit, COUNTER0, 0, 0x10); // 4096
    assert_eq!(pit.advance(ns(4095)), 0);
    assert_eq!(pit.advance(ns(4096)), 1);
    assert_eq!(pit.advance(ns(4096 * 11 + 5)), 10);
    assert_eq!(pit.next_event_ns(ns(4096 * 11 + 5)), Some(ns(4096 * 12)));
    // Even count read back decrements by two.
    assert_eq!(latched_count(&mut pit, ns(4096 * 12 + 3)), 4096 - 6);
}

#[test]
fn mode0_one_edge_at_terminal_count() {
    let mut pit = Pit::new(0);
    out(&mut pit, CONTROL, 0, 0x30);
    out(&mut pit, COUNTER0, 0, 0xE8);
    out(&mut pit, COUNTER0, 0, 0x03); // 1000
    assert_eq!(pit.next_event_ns(0), Some(ns(1000)));
    assert_eq!(pit.advance(ns(999)), 0);
    assert_eq!(pit.advance(ns(1000)), 1);
    assert_eq!(pit.next_event_ns(ns(1000)), None);
    // The counter keeps counting down through 0 and wraps.
    assert_eq!(latched_count(&mut pit, ns(1001)), 0xFFFF);
    assert_eq!(pit.advance(ns(1_000_000)), 0, "stays high");
    // Reprogramming mode 0 drops OUT; the next count raises it again.
    let t = 1_000_100;
    out(&mut pit, CONTROL, ns(t), 0x30);
    out(&mut pit, COUNTER0, ns(t), 10);
    out(&mut pit, COUNTER0, ns(t), 0);
    assert_eq!(pit.advance(ns(t + 9)), 0);
    assert_eq!(pit.advance(ns(t + 10)), 1);
}

#[test]
fn mode0_first_byte_stops_counting() {
    let mut pit = Pit::new(0);
    out(&mut pit, CONTROL, 0, 0x30);
    out(&mut pit, COUNTER0, 0, 100);
    out(&mut pit, COUNTER0, 0, 0);
    out(&mut pit, COUNTER0, ns(50), 200);
    assert_eq!(pit.next_event_ns(ns(50)), None, "stopped between the two bytes");
    assert_eq!(pit.advance(ns(500)), 0);
    out(&mut pit, COUNTER0, ns(500), 0);
    assert_eq!(pit.advance(ns(699)), 0);
    assert_eq!(pit.advance(ns(700)), 1);
}

/// Linux's oneshot clockevent: mode 4 (0x38), each count write retriggers.
#[test]
fn mode4_oneshot() {
    let mut pit = Pit::new(0);
    out(&mut pit, CONTROL, 0, 0x38);
    assert_eq!(pit.next_event_ns(0), None);
    out(&mut pit, COUNTER0, 0, 100);
    out(&mut pit, COUNTER0, 0, 0);
    // OUT strobes low at count 0 (tick 100) and rises on the next clock.
    assert_eq!(pit.next_event_ns(0), Some(ns(101)));
    assert_eq!(pit.advance(ns(100)), 0);
    assert_eq!(pit.advance(ns(101)), 1);
    assert_eq!(pit.advance(ns(1_000_000)), 0);
    // Retrigger with a new count.
    out(&mut pit, COUNTER0, ns(1_000_000), 50);
    out(&mut pit, COUNTER0, ns(1_000_000), 0);
    let t = ticks_at(ns(1_000_000));
    assert_eq!(pit.next_event_ns(ns(1_000_000)), Some(ns(t + 51)));
    assert_eq!(pit.advance(ns(t + 51)), 1);
}

#[test]
fn control_word_edge_reaches_irq0() {
    let mut pit = Pit::new(0);
    out(&mut pit, CONTROL, 0, 0x30); // mode 0: OUT low
    out(&mut pit, CONTROL, 0, 0x34); // mode 2: OUT high
    assert_eq!(pit.next_event_ns(7), Some(7), "an edge is waiting");
    assert_eq!(pit.advance(0), 1);
    assert_eq!(pit.next_event_ns(0), None, "mode 2 without a count");
}

#[test]
fn edges_capped_per_advance() {
    let mut pit = Pit::new(0);
    periodic(&mut pit, 0, 2);
    assert_eq!(pit.advance(10_000_000_000), MAX_EDGES_PER_ADVANCE);
    assert_eq!(pit.advance(10_000_000_000), 0, "the rest were dropped");
    assert_eq!(pit.advance(u64::MAX), MAX_EDGES_PER_ADVANCE);
    let next = pit.next_event_ns(u64::MAX);
    assert!(next.is_none() || next == Some(u64::MAX));
}

#[test]
fn time_never_runs_backwards() {
    let mut pit = Pit::new(1_000_000);
    periodic(&mut pit, 1_000_000, 1000);
    assert_eq!(pit.advance(2_000_000), 1);
    assert_eq!(pit.advance(0), 0);
    let before = latched_count(&mut pit, 2_000_000);
    assert_eq!(latched_count(&mut pit, 10), before);
    assert!(pit.next_event_ns(0).unwrap() > 2_000_000);
}

#[test]
fn mode2_new_count_waits_for_period_end() {
    let mut pit = Pit::new(0);
    periodic(&mut pit, 0, 1000);
    // Without a control word the new count is taken at the end of the current period.
    out(&mut pit, COUNTER0, ns(300), 0x64);
    out(&mut pit, COUNTER0, ns(300), 0x00); // 100
    let status = {
        out(&mut pit, CONTROL, ns(300), 0xE2); // read-back status of counter 0
        inb(&mut pit, COUNTER0, ns(300))
    };
    assert_ne!(status & 0x40, 0, "null count until the reload");
    assert_eq!(latched_count(&mut pit, ns(300)), 700);
    assert_eq!(pit.advance(ns(999)), 0);
    assert_eq!(pit.advance(ns(1000)), 1);
    assert_eq!(pit.next_event_ns(ns(1000)), Some(ns(1100)));
    assert_eq!(pit.advance(ns(1550)), 5);
    assert_eq!(latched_count(&mut pit, ns(1550)), 50);
}

#[test]
fn latch_holds_value_until_read() {
    let mut pit = Pit::new(0);
    periodic(&mut pit, 0, 0); // 65536
    out(&mut pit, CONTROL, ns(10), 0x00);
    out(&mut pit, CONTROL, ns(20), 0x00); // ignored: already latched
    assert_eq!(inb(&mut pit, COUNTER0, ns(500)), (65536u32 - 10) as u8);
    assert_eq!(inb(&mut pit, COUNTER0, ns(900)), ((65536u32 - 10) >> 8) as u8);
    // Unlatched lobyte/hibyte reads follow the live count.
    let lo = inb(&mut pit, COUNTER0, ns(1000));
    let hi = inb(&mut pit, COUNTER0, ns(1000));
    assert_eq!(u32::from(u16::from_le_bytes([lo, hi])), 65536 - 1000);
}

#[test]
fn lobyte_and_hibyte_modes() {
    let mut pit = Pit::new(0);
    out(&mut pit, CONTROL, 0, 0x14); // counter 0, LSB only, mode 2
    out(&mut pit, COUNTER0, 0, 200);
    assert_eq!(inb(&mut pit, COUNTER0, ns(50)), 150);
    assert_eq!(inb(&mut pit, COUNTER0, ns(60)), 140);
    assert_eq!(pit.advance(ns(400)), 2);
    out(&mut pit, CONTROL, ns(400), 0x24); // MSB only, mode 2
    out(&mut pit, COUNTER0, ns(400), 0x01); // 256
    let t = ticks_at(ns(400));
    assert_eq!(inb(&mut pit, COUNTER0, ns(t)), 0x01, "MSB of 256");
    assert_eq!(inb(&mut pit, COUNTER0, ns(t + 1)), 0x00, "MSB of 255");
}

#[test]
fn read_back_command() {
    let mut pit = Pit::new(0);
    out(&mut pit, CONTROL, 0, 0xB0); // counter 2, both, mode 0
    assert_eq!(pit.read_port61(0) & 0x20, 0, "mode 0 control word drops OUT");
    // Status of counter 2 before a count: OUT low, null count, RW 3, mode 0, binary.
    out(&mut pit, CONTROL, 0, 0xE8);
    assert_eq!(inb(&mut pit, 0x42, 0), 0x70);
    out(&mut pit, 0x42, 0, 0x10);
    out(&mut pit, 0x42, 0, 0x00);
    pit.write_port61(0, 0x01);
    // Latch both count and status of counters 0 and 2: status first, then the count.
    out(&mut pit, CONTROL, ns(4), 0xCA);
    assert_eq!(inb(&mut pit, 0x42, ns(9)), 0x30, "OUT low, count loaded, RW 3, mode 0");
    assert_eq!(inb(&mut pit, 0x42, ns(9)), 12);
    assert_eq!(inb(&mut pit, 0x42, ns(9)), 0);
    assert_eq!(inb(&mut pit, COUNTER0, ns(9)), 0xB6, "counter 0: BIOS mode 3, OUT high");
    // Control register reads float.
    assert_eq!(inb(&mut pit, CONTROL, 0), 0xFF);
}

#[test]
fn bcd_counting() {
    let mut pit = Pit::new(0);
    out(&mut pit, CONTROL, 0, 0x35); // mode 2, BCD
    out(&mut pit, COUNTER0, 0, 0x00);
    out(&mut pit, COUNTER0, 0, 0x10); // 1000 decimal
    assert_eq!(latched_count(&mut pit, ns(1)), 0x0999);
    assert_eq!(pit.advance(ns(3000)), 3);
    out(&mut pit, CONTROL, ns(3000), 0x35);
    out(&mut pit, COUNTER0, ns(3000), 0x00);
    out(&mut pit, COUNTER0, ns(3000), 0x00); // 0 = 10000 in BCD
    let t = ticks_at(ns(3000));
    assert_eq!(latched_count(&mut pit, ns(t + 1)), 0x9999);
    assert_eq!(pit.next_event_ns(ns(t + 1)), Some(ns(t + 10_000)));
    // Invalid digits do not panic.
    out(&mut pit, COUNTER0, ns(t + 5), 0xFF);
    out(&mut pit, COUNTER0, ns(t + 5), 0xFF);
    let _ = latched_count(&mut pit, ns(t + 20_000));
}

/// Linux's pit_calibrate_tsc: gate high, speaker off, counter 2 mode 0, poll port 0x61 bit 5.
#[test]
fn linux_pit_calibrate_tsc() {
    let mut pit = Pit::new(0);
    let port61 = pit.read_port61(0);
    pit.write_port61(0, (port61 & !0x02) | 0x01);
    let latch: u16 = 59659; // 50 ms
    out(&mut pit, CONTROL, 0, 0xB0);
    out(&mut pit, 0x42, 0, latch as u8);
    out(&mut pit, 0x42, 0, (latch >> 8) as u8);
    let mut now = 0;
    while pit.read_port61(now) & 0x20 == 0 {
        now += 1000;
        assert!(now < 100_000_000);
    }
    let expected = ns(u64::from(latch));
    assert!(now >= expected && now < expected + 1000, "OUT2 rose at {now}, expected {expected}");
    assert_eq!(pit.read_port61(now) & 0x0F, 0x01);
}

/// Linux's quick_pit_calibrate: counter 2 mode 0 count 0xFFFF, MSB read after LSB, decreasing.
#[test]
fn linux_quick_pit_calibrate() {
    let mut pit = Pit::new(0);
    pit.write_port61(0, 0x01);
    out(&mut pit, CONTROL, 0, 0xB0);
    out(&mut pit, 0x42, 0, 0xFF);
    out(&mut pit, 0x42, 0, 0xFF);
    let mut last = 0xFF;
    for i in 1..=200u64 {
        let now = ns(i * 256);
        let _lsb = inb(&mut pit, 0x42, now);
        let msb = inb(&mut pit, 0x42, now);
        assert_eq!(msb, last - 1, "MSB after {i} * 256 clocks");
        last = msb;
    }
}

#[test]
fn gate_pauses_mode0_and_restarts_mode2() {
    let mut pit = Pit::new(0);
    pit.write_port61(0, 0x01);
    out(&mut pit, CONTROL, 0, 0xB0);
    out(&mut pit, 0x42, 0, 100);
    out(&mut pit, 0x42, 0, 0);
    pit.write_port61(ns(40), 0x00); // pause at 60 left
    let read = |pit: &mut Pit, t: u64| {
        out(pit, CONTROL, ns(t), 0x80);
        u16::from_le_bytes([inb(pit, 0x42, ns(t)), inb(pit, 0x42, ns(t))])
    };
    assert_eq!(read(&mut pit, 500), 60);
    pit.write_port61(ns(1000), 0x01);
    assert_eq!(read(&mut pit, 1010), 50);
    assert_eq!(pit.read_port61(ns(1059)) & 0x20, 0);
    assert_eq!(pit.read_port61(ns(1060)) & 0x20, 0x20);
    // Mode 2: gate low forces OUT high and freezes; rising reloads.
    out(&mut pit, CONTROL, ns(2000), 0xB4);
    out(&mut pit, 0x42, ns(2000), 10);
    out(&mut pit, 0x42, ns(2000), 0);
    assert_eq!(read(&mut pit, 2003), 7);
    pit.write_port61(ns(2003), 0x00);
    assert_eq!(read(&mut pit, 2100), 7);
    assert_eq!(pit.read_port61(ns(2100)) & 0x20, 0x20);
    pit.write_port61(ns(2100), 0x01);
    assert_eq!(read(&mut pit, 2100), 10);
    assert_eq!(read(&mut pit, 2102), 8);
}

#[test]
fn mode1_one_shot_on_gate() {
    let mut pit = Pit::new(0);
    out(&mut pit, CONTROL, 0, 0xB2); // counter 2, mode 1
    out(&mut pit, 0x42, 0, 20);
    out(&mut pit, 0x42, 0, 0);
    assert_eq!(pit.read_port61(ns(100)) & 0x20, 0x20, "waits for a trigger");
    pit.write_port61(ns(100), 0x01);
    let t = ticks_at(ns(100));
    assert_eq!(pit.read_port61(ns(t + 5)) & 0x20, 0, "low while counting");
    assert_eq!(pit.read_port61(ns(t + 20)) & 0x20, 0x20);
    // Retrigger.
    pit.write_port61(ns(t + 30), 0x00);
    pit.write_port61(ns(t + 30), 0x01);
    assert_eq!(pit.read_port61(ns(t + 31)) & 0x20, 0);
}

#[test]
fn refresh_bit_toggles() {
    let mut pit = Pit::new(0);
    let a = pit.read_port61(ns(0)) & 0x10;
    let b = pit.read_port61(ns(18)) & 0x10;
    let c = pit.read_port61(ns(36)) & 0x10;
    assert_ne!(a, b);
    assert_eq!(a, c);
    pit.write_port61(ns(40), 0xFF);
    assert_eq!(pit.read_port61(ns(40)) & 0xCF, 0x0F, "bits 4-7 are not stored");
}

#[test]
fn odd_ports_and_sizes() {
    let mut pit = Pit::new(0);
    let mut data = [0u8; 4];
    pit.read(at(0x44), &mut data, 0);
    assert_eq!(data, [0xFF; 4]);
    pit.read(at(0x3F), &mut data[..1], 0);
    assert_eq!(data[0], 0xFF);
    pit.read(at(COUNTER0), &mut [], 0);
    pit.write(at(COUNTER0), &[], 0);
    pit.write(at(0x44), &[0x34], 0);
    pit.write(at(0), &[0x34], 0);
    pit.write(at(CONTROL), &[0x34, 0xFF], 0);
    assert_eq!(pit.next_event_ns(0), None, "mode 2 programmed, no count");
}

#[test]
fn random_register_stream() {
    let mut rng = Rng::new(0x8254);
    for _ in 0..10 {
        let mut now = rng.below(1 << 40);
        let mut pit = Pit::new(now);
        for _ in 0..50_000 {
            now = now.saturating_add(match rng.below(4) {
                0 => 0,
                1 => rng.below(2000),
                2 => rng.below(10_000_000),
                _ => rng.below(1 << 36),
            });
            if rng.below(1000) == 0 {
                now = rng.next_u64();
            }
            let port = 0x40 + rng.below(5) as u16;
            match rng.below(8) {
                0..=2 => {
                    let _ = pit.write(at(port), &[rng.byte()], now);
                }
                3 => {
                    let mut data = [0u8; 2];
                    pit.read(at(port), &mut data, now);
                }
                4 => pit.write_port61(now, rng.byte()),
                5 => {
                    let _ = pit.read_port61(now);
                }
                6 => assert!(pit.advance(now) <= MAX_EDGES_PER_ADVANCE),
                _ => {
                    if let Some(next) = pit.next_event_ns(now) {
                        assert!(next >= now);
                    }
                }
            }
        }
    }
}

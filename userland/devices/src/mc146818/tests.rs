//! Host tests for the RTC: the calendar conversion against a day-by-day walk and known dates
//! (leap years, 2000, 2038, 2100), register formats, the UIP window, Linux's read and set
//! sequences, and a random register stream.

use super::*;
use crate::testutil::Rng;
use crate::Device;

/// The device offset of `port` (ports below the base wrap to offsets no port reaches).
fn at(port: u16) -> u64 {
    u64::from(port).wrapping_sub(u64::from(BASE))
}

const NS: u64 = 1_000_000_000;

fn sel(rtc: &mut Rtc, index: u8) {
    rtc.write(at(INDEX), &[index], 0);
}

fn rd(rtc: &mut Rtc, index: u8, now: u64) -> u8 {
    rtc.write(at(INDEX), &[index], now);
    let mut b = [0u8];
    rtc.read(at(DATA), &mut b, now);
    b[0]
}

fn wr(rtc: &mut Rtc, index: u8, value: u8, now: u64) {
    rtc.write(at(INDEX), &[index], now);
    rtc.write(at(DATA), &[value], now);
}

fn bcd(v: u8) -> u8 {
    ((v / 10) << 4) | (v % 10)
}

#[test]
fn calendar_walk_matches_conversion() {
    // Walk every day from 1600-01-01 to 2500-12-31 by hand and compare both directions.
    let mut days = days_from_civil(1600, 1, 1);
    assert_eq!(days, -135_140, "1600-01-01");
    let mut weekday = DateTime::from_unix(days * 86_400).weekday;
    for year in 1600..=2500i64 {
        for month in 1..=12 {
            for day in 1..=days_in_month(year, month) {
                assert_eq!(civil_from_days(days), (year, month, day), "day {days}");
                assert_eq!(days_from_civil(year, month, day), days);
                let t = DateTime::from_unix(days * 86_400 + 86_399);
                assert_eq!((t.year, t.month, t.day, t.hour, t.minute, t.second), (year, month, day, 23, 59, 59));
                assert_eq!(t.weekday, weekday);
                weekday = weekday % 7 + 1;
                days += 1;
            }
        }
    }
}

#[test]
fn known_dates() {
    let check = |secs: i64, date: (i64, u32, u32, u32, u32, u32), weekday: u32| {
        let t = DateTime::from_unix(secs);
        assert_eq!((t.year, t.month, t.day, t.hour, t.minute, t.second), date, "{secs}");
        assert_eq!(t.weekday, weekday, "{secs}");
        assert_eq!(t.to_unix(), Some(secs));
    };
    check(0, (1970, 1, 1, 0, 0, 0), 5);
    check(951_782_400, (2000, 2, 29, 0, 0, 0), 3);
    check(946_684_799, (1999, 12, 31, 23, 59, 59), 6);
    check(2_147_483_647, (2038, 1, 19, 3, 14, 7), 3);
    check(2_147_483_648, (2038, 1, 19, 3, 14, 8), 3);
    check(4_107_542_399, (2100, 2, 28, 23, 59, 59), 1);
    check(4_107_542_400, (2100, 3, 1, 0, 0, 0), 2);
    check(1_710_510_330, (2024, 3, 15, 13, 45, 30), 6);
    check(-2_203_891_200, (1900, 3, 1, 0, 0, 0), 5);
    check(-62_135_596_800, (1, 1, 1, 0, 0, 0), 2);
    check(MAX_SECS, (9999, 12, 31, 23, 59, 59), 6);
    check(MIN_SECS, (0, 1, 1, 0, 0, 0), 7);
    assert!(is_leap_year(2000) && is_leap_year(2024) && is_leap_year(0));
    assert!(!is_leap_year(1900) && !is_leap_year(2100) && !is_leap_year(2023));
    assert_eq!(days_in_month(2100, 2), 28);
    assert_eq!(days_in_month(2000, 2), 29);
    assert_eq!(days_in_month(2000, 13), 0);
    let bad = DateTime { year: 2100, month: 2, day: 29, hour: 0, minute: 0, second: 0, weekday: 1 };
    assert_eq!(bad.to_unix(), None);
    assert_eq!(DateTime { month: 0, ..bad }.to_unix(), None);
    assert_eq!(DateTime { day: 28, hour: 24, ..bad }.to_unix(), None);
    assert_eq!(DateTime { day: 28, second: 60, ..bad }.to_unix(), None);
}

#[test]
fn reads_bcd_24h_by_default() {
    let mut rtc = Rtc::new();
    let now = 1_710_510_330 * NS + NS / 2; // 2024-03-15 13:45:30.5, a Friday
    assert_eq!(rd(&mut rtc, REG_SECONDS, now), 0x30);
    assert_eq!(rd(&mut rtc, REG_MINUTES, now), 0x45);
    assert_eq!(rd(&mut rtc, REG_HOURS, now), 0x13);
    assert_eq!(rd(&mut rtc, REG_DAY_OF_WEEK, now), 0x06);
    assert_eq!(rd(&mut rtc, REG_DAY_OF_MONTH, now), 0x15);
    assert_eq!(rd(&mut rtc, REG_MONTH, now), 0x03);
    assert_eq!(rd(&mut rtc, REG_YEAR, now), 0x24);
    assert_eq!(rd(&mut rtc, REG_CENTURY, now), 0x20);
    assert_eq!(rd(&mut rtc, REG_A, now), 0x26);
    assert_eq!(rd(&mut rtc, REG_B, now), 0x02);
    assert_eq!(rd(&mut rtc, REG_C, now), 0);
    assert_eq!(rd(&mut rtc, REG_D, now), 0x80);
    assert_eq!(rtc.guest_time(now), 1_710_510_330);
}

#[test]
fn binary_and_12_hour_formats() {
    let mut rtc = Rtc::new();
    let now = 1_710_510_330 * NS; // 13:45:30
    wr(&mut rtc, REG_B, B_DM_BINARY | B_24H, now);
    assert_eq!(rd(&mut rtc, REG_HOURS, now), 13);
    assert_eq!(rd(&mut rtc, REG_YEAR, now), 24);
    assert_eq!(rd(&mut rtc, REG_CENTURY, now), 20);
    wr(&mut rtc, REG_B, B_DM_BINARY, now);
    assert_eq!(rd(&mut rtc, REG_HOURS, now), 0x80 | 1, "1 PM");
    wr(&mut rtc, REG_B, 0, now);
    assert_eq!(rd(&mut rtc, REG_HOURS, now), 0x81, "1 PM in BCD");
    let midnight = 1_710_460_800 * NS; // 2024-03-15 00:00:00
    assert_eq!(rd(&mut rtc, REG_HOURS, midnight), 0x12, "12 AM");
    assert_eq!(rd(&mut rtc, REG_HOURS, midnight + 12 * 3600 * NS), 0x92, "12 PM");
    assert_eq!(rd(&mut rtc, REG_HOURS, midnight + 11 * 3600 * NS), 0x11, "11 AM");
    assert_eq!(rd(&mut rtc, REG_HOURS, midnight + 23 * 3600 * NS), 0x91, "11 PM");
}

#[test]
fn uip_window() {
    let mut rtc = Rtc::new();
    let base = 1_710_510_330 * NS;
    let uip = |rtc: &mut Rtc, now: u64| rd(rtc, REG_A, now) & A_UIP != 0;
    assert!(!uip(&mut rtc, base + NS / 2));
    assert!(!uip(&mut rtc, base + NS - UIP_LEAD_NS - 1));
    assert!(uip(&mut rtc, base + NS - UIP_LEAD_NS));
    assert!(uip(&mut rtc, base + NS - 1));
    assert!(uip(&mut rtc, base + NS));
    assert!(uip(&mut rtc, base + NS + UPDATE_CYCLE_NS - 1));
    assert!(!uip(&mut rtc, base + NS + UPDATE_CYCLE_NS));
    // The seconds change at the boundary, inside the window.
    assert_eq!(rd(&mut rtc, REG_SECONDS, base + NS - 1), 0x30);
    assert_eq!(rd(&mut rtc, REG_SECONDS, base + NS), 0x31);
    // SET inhibits updates and clears UIP.
    wr(&mut rtc, REG_B, B_SET | B_24H, base + NS / 2);
    assert!(!uip(&mut rtc, base + NS));
    // Register A keeps bits 0-6; UIP is read-only.
    wr(&mut rtc, REG_B, B_24H, base);
    wr(&mut rtc, REG_A, 0xFF, base + NS / 2);
    assert_eq!(rd(&mut rtc, REG_A, base + NS / 2), 0x7F);
    assert_eq!(rd(&mut rtc, REG_A, base + NS), 0xFF);
}

/// Linux 6.1's `mc146818_avoid_UIP` followed by the reads of `mc146818_get_time`, with every port
/// access taking `access_ns` and `mdelay(1)` taking 1 ms. Returns the time read, or `None` after
/// 100 failed tries (as Linux gives up).
fn linux_get_time(rtc: &mut Rtc, start: u64, access_ns: u64) -> Option<(i64, u64)> {
    let mut now = start;
    let read = |rtc: &mut Rtc, index: u8, now: &mut u64| {
        *now += access_ns;
        rtc.write(at(INDEX), &[index], *now);
        *now += access_ns;
        let mut b = [0u8];
        rtc.read(at(DATA), &mut b, *now);
        b[0]
    };
    for _ in 0..100 {
        let seconds = read(rtc, REG_SECONDS, &mut now);
        if read(rtc, REG_A, &mut now) & A_UIP != 0 {
            now += 1_000_000;
            continue;
        }
        if seconds != read(rtc, REG_SECONDS, &mut now) {
            continue;
        }
        let minutes = read(rtc, REG_MINUTES, &mut now);
        let hours = read(rtc, REG_HOURS, &mut now);
        let day = read(rtc, REG_DAY_OF_MONTH, &mut now);
        let month = read(rtc, REG_MONTH, &mut now);
        let year = read(rtc, REG_YEAR, &mut now);
        let control = read(rtc, REG_B, &mut now);
        let century = read(rtc, REG_CENTURY, &mut now);
        if read(rtc, REG_A, &mut now) & A_UIP != 0 {
            now += 1_000_000;
            continue;
        }
        if seconds != read(rtc, REG_SECONDS, &mut now) {
            continue;
        }
        assert_eq!(control & B_DM_BINARY, 0, "x86 Linux always decodes BCD");
        let d = |b: u8| i64::from(decode(b, true).unwrap());
        let t = DateTime {
            year: d(century) * 100 + d(year),
            month: d(month) as u32,
            day: d(day) as u32,
            hour: d(hours) as u32,
            minute: d(minutes) as u32,
            second: d(seconds) as u32,
            weekday: 0,
        };
        return Some((t.to_unix().unwrap(), now));
    }
    None
}

#[test]
fn linux_reads_a_consistent_time() {
    let mut rng = Rng::new(0x146818);
    let mut rtc = Rtc::new();
    for i in 0..20_000 {
        let start = 1_700_000_000 * NS + rng.below(100 * NS);
        // From a fast exit path to one so slow that a read sequence spans several windows.
        let access_ns = [100, 2_000, 20_000, 150_000][i % 4];
        let (secs, end) = linux_get_time(&mut rtc, start, access_ns).expect("Linux gave up");
        // The time read is one the clock showed during the sequence.
        assert!(secs >= (start / NS) as i64 && secs <= (end / NS) as i64, "{secs} {start} {end}");
    }
}

/// Linux 6.1's `mc146818_set_time` (the AMD variant clears bit 4 of register A instead of
/// resetting the divider; both are just stored here).
fn linux_set_time(rtc: &mut Rtc, now: u64, t: &DateTime) {
    let save_control = rd(rtc, REG_B, now);
    wr(rtc, REG_B, save_control | B_SET, now);
    let save_freq = rd(rtc, REG_A, now);
    wr(rtc, REG_A, save_freq | 0x70, now);
    wr(rtc, REG_YEAR, bcd((t.year % 100) as u8), now);
    wr(rtc, REG_MONTH, bcd(t.month as u8), now);
    wr(rtc, REG_DAY_OF_MONTH, bcd(t.day as u8), now);
    wr(rtc, REG_HOURS, bcd(t.hour as u8), now);
    wr(rtc, REG_MINUTES, bcd(t.minute as u8), now);
    wr(rtc, REG_SECONDS, bcd(t.second as u8), now);
    wr(rtc, REG_CENTURY, bcd((t.year / 100) as u8), now);
    wr(rtc, REG_B, save_control, now);
    wr(rtc, REG_A, save_freq, now);
}

#[test]
fn guest_sets_the_clock() {
    let mut rtc = Rtc::new();
    let now = 1_710_510_330 * NS + 300_000_000;
    let target = DateTime::from_unix(4_107_542_398); // 2100-02-28 23:59:58
    linux_set_time(&mut rtc, now, &target);
    assert_eq!(rtc.guest_time(now), 4_107_542_398);
    assert_eq!(rtc.guest_time(now + NS - 1), 4_107_542_398);
    assert_eq!(rtc.guest_time(now + 2 * NS), 4_107_542_400);
    let later = now + 2 * NS;
    assert_eq!(rd(&mut rtc, REG_MONTH, later), 0x03, "no 29 February in 2100");
    assert_eq!(rd(&mut rtc, REG_DAY_OF_MONTH, later), 0x01);
    assert_eq!(rd(&mut rtc, REG_CENTURY, later), 0x21);
    assert_eq!(rd(&mut rtc, REG_A, later + NS / 2), 0x26, "register A restored");
    assert_eq!(rd(&mut rtc, REG_B, later), 0x02);

    // While SET is 1 the registers hold what was written and do not tick.
    wr(&mut rtc, REG_B, B_SET | B_24H | B_UIE, later);
    assert_eq!(rd(&mut rtc, REG_B, later) & B_UIE, 0, "SET clears UIE");
    assert_eq!(rd(&mut rtc, REG_SECONDS, later + 5 * NS), 0x00);
    wr(&mut rtc, REG_SECONDS, 0x59, later);
    assert_eq!(rd(&mut rtc, REG_SECONDS, later + 5 * NS), 0x59);
    // An invalid time leaves the clock where it was.
    wr(&mut rtc, REG_MONTH, 0x13, later);
    wr(&mut rtc, REG_B, B_24H, later + 7 * NS);
    assert_eq!(rtc.guest_time(later + 7 * NS), 4_107_542_407);
}

#[test]
fn field_write_while_running() {
    let mut rtc = Rtc::new();
    let now = 1_710_510_330 * NS + 250_000_000; // 13:45:30.25
    wr(&mut rtc, REG_MINUTES, 0x05, now);
    assert_eq!(rtc.guest_time(now), 1_710_510_330 - 40 * 60);
    assert_eq!(rd(&mut rtc, REG_MINUTES, now + 10 * NS), 0x05);
    assert_eq!(rd(&mut rtc, REG_SECONDS, now + 10 * NS), 0x40);
    // The fraction of a second is kept: the next second starts 0.75 s later.
    assert_eq!(rd(&mut rtc, REG_SECONDS, now + 750_000_000 - 1), 0x30);
    assert_eq!(rd(&mut rtc, REG_SECONDS, now + 750_000_000), 0x31);
    wr(&mut rtc, REG_HOURS, 0x99, now);
    assert_eq!(rd(&mut rtc, REG_HOURS, now), 0x13, "invalid hour ignored");
    // Day of week is stored through but recomputed from the date.
    wr(&mut rtc, REG_DAY_OF_WEEK, 0x01, now);
    assert_eq!(rd(&mut rtc, REG_DAY_OF_WEEK, now), 0x06);
}

#[test]
fn twelve_hour_set() {
    let mut rtc = Rtc::new();
    let now = 1_710_460_800 * NS; // 2024-03-15 00:00:00
    wr(&mut rtc, REG_B, B_SET, now); // 12-hour BCD
    wr(&mut rtc, REG_HOURS, 0x80 | 0x12, now); // 12 PM
    wr(&mut rtc, REG_B, 0, now);
    assert_eq!(rtc.guest_time(now), 1_710_460_800 + 12 * 3600);
    wr(&mut rtc, REG_B, B_SET, now);
    wr(&mut rtc, REG_HOURS, 0x12, now); // 12 AM
    wr(&mut rtc, REG_B, 0, now);
    assert_eq!(rtc.guest_time(now), 1_710_460_800);
    wr(&mut rtc, REG_B, B_SET, now);
    wr(&mut rtc, REG_HOURS, 0x13, now); // not a 12-hour value
    wr(&mut rtc, REG_B, 0, now);
    assert_eq!(rtc.guest_time(now), 1_710_460_800);
}

#[test]
fn clock_is_clamped() {
    let mut rtc = Rtc::new();
    assert_eq!(rtc.guest_time(u64::MAX), (u64::MAX / NS) as i64, "2554-07-21");
    linux_set_time(&mut rtc, 0, &DateTime::from_unix(MAX_SECS - 1));
    assert_eq!(rtc.guest_time(NS), MAX_SECS);
    assert_eq!(rtc.guest_time(5 * NS), MAX_SECS);
    assert_eq!(rtc.guest_time(u64::MAX), MAX_SECS);
    assert_eq!(rd(&mut rtc, REG_CENTURY, u64::MAX), 0x99);
    assert_eq!(rd(&mut rtc, REG_YEAR, u64::MAX), 0x99);
    assert_eq!(rd(&mut rtc, REG_MONTH, u64::MAX), 0x12);
    // Year 0 set by the guest, then time runs from there.
    wr(&mut rtc, REG_B, B_SET | B_24H, 0);
    for (reg, v) in [(REG_CENTURY, 0), (REG_YEAR, 0), (REG_MONTH, 1), (REG_DAY_OF_MONTH, 1), (REG_HOURS, 0)] {
        wr(&mut rtc, reg, v, 0);
    }
    wr(&mut rtc, REG_MINUTES, 0, 0);
    wr(&mut rtc, REG_SECONDS, 0, 0);
    wr(&mut rtc, REG_B, B_24H, 5 * NS);
    assert_eq!(rtc.guest_time(5 * NS), MIN_SECS);
    assert_eq!(rtc.guest_time(0), MIN_SECS, "earlier host time clamps");
    assert_eq!(rd(&mut rtc, REG_DAY_OF_WEEK, 5 * NS), 0x07, "0000-01-01 was a Saturday");
}

#[test]
fn ports_index_and_ram() {
    let mut rtc = Rtc::new();
    let mut b = [0u8; 2];
    rtc.read(at(INDEX), &mut b[..1], 0);
    assert_eq!(b[0], 0xFF, "the index port is write-only");
    rtc.write(at(INDEX), &[0x80 | 0x40], 0);
    assert!(rtc.nmi_disabled());
    rtc.write(at(DATA), &[0xAB], 0);
    assert_eq!(rd(&mut rtc, 0x40, 0), 0xAB);
    assert!(!rtc.nmi_disabled());
    // A 16-bit write to 0x70 selects and writes; a 16-bit read from 0x70 gives 0xFF then data.
    rtc.write(at(INDEX), &[0x41, 0xCD], 0);
    rtc.read(at(INDEX), &mut b, 0);
    assert_eq!(b, [0xFF, 0xCD]);
    rtc.read(at(DATA), &mut b, 0);
    assert_eq!(b, [0xCD, 0xFF]);
    rtc.write(at(0x72), &[0x01, 0x02], 0);
    sel(&mut rtc, 0x41);
    rtc.read(at(DATA), &mut b[..1], 0);
    assert_eq!(b[0], 0xCD);
    // Registers C and D ignore writes.
    wr(&mut rtc, REG_C, 0xFF, 0);
    wr(&mut rtc, REG_D, 0x00, 0);
    assert_eq!(rd(&mut rtc, REG_C, 0), 0);
    assert_eq!(rd(&mut rtc, REG_D, 0), 0x80);
    assert!(rtc.set_ram(0x0E, 1));
    assert!(rtc.set_ram(0x7F, 2));
    assert!(!rtc.set_ram(0x0D, 3));
    assert!(!rtc.set_ram(REG_CENTURY, 3));
    assert!(!rtc.set_ram(0x80, 3));
    assert_eq!(rd(&mut rtc, 0x7F, 0), 2);
    rtc.read(at(DATA), &mut [], 0);
    rtc.write(at(DATA), &[], 0);
    rtc.read(at(u16::MAX), &mut b, 0);
    rtc.write(at(u16::MAX), &[1, 2], 0);
}

#[test]
fn random_register_stream() {
    let mut rng = Rng::new(0x7C);
    let mut rtc = Rtc::new();
    let mut now = 1_700_000_000 * NS;
    for _ in 0..200_000 {
        now = now.wrapping_add(rng.below(3 * NS));
        let port = [INDEX, DATA, DATA, 0x72, 0x6F][rng.below(5) as usize];
        let size = [1, 2, 4, 0][rng.below(4) as usize];
        let mut data = [0u8; 4];
        if rng.below(2) == 0 {
            for b in &mut data[..size] {
                *b = rng.byte();
            }
            rtc.write(at(port), &data[..size], now);
        } else {
            rtc.read(at(port), &mut data[..size], now);
        }
        let t = rtc.guest_time(now);
        assert!((MIN_SECS..=MAX_SECS).contains(&t));
    }
}

//! The Motorola MC146818A real-time clock and CMOS RAM of a PC: the index port 0x70 (bits 0-6
//! select one of 128 bytes, bit 7 masks NMI) and the data port 0x71.
//!
//! The clock is the caller's: every access passes `now_unix_ns` (nanoseconds since 1970-01-01
//! 00:00:00 UTC), and the guest sees that time plus an offset that changes only when the guest
//! sets the clock. Through [`crate::Device`], whose clock is the monitor's monotonic one, the wall time
//! is that clock plus the host's epoch given to [`Rtc::set_host_epoch`] (the wall-clock time at
//! clock 0, which is how Keel's kernel keeps wall time: `ClockRealtime` is a boot-time epoch plus
//! `ClockNs`). Registers 0-9 (seconds, alarms, day of week, date, month, year) and the century
//! byte at 0x32 (where the FADT's CENTURY field points) are computed from it on every read, in BCD
//! or binary and in 24- or 12-hour form as register B says. Years 0-9999 are representable; a
//! clock outside them reads as the nearest end.
//!
//! Register A's UIP bit is set during the 244 µs before each second boundary and the 1984 µs
//! update cycle after it (MC146818A "Update Cycle" and "UIP" under "Register A"), so a reader that
//! waits for UIP to clear and checks the seconds afterwards (Linux's `mc146818_avoid_UIP`) gets a
//! consistent time. The registers always hold a consistent time, even inside that window.
//!
//! Setting the clock: while register B's SET bit is 1 the time registers hold what the guest
//! wrote (latched from the clock when SET went to 1) and UIP reads 0; clearing SET starts the
//! clock at the written time (the fraction of a second restarts at 0). A time register written
//! while SET is 0 changes that field of the running clock. A written time that does not decode
//! (month 13, a BCD nibble above 9, the 31st of April) leaves the clock where it was. A change of
//! format (DM or 24/12 in register B) while SET is 1 does not convert the latched bytes.
//!
//! Registers: A keeps bits 0-6 (divider and rate select; the divider does not stop the clock),
//! B keeps all bits (SET also clears UIE, as on the part), C reads 0 (no interrupt flags are
//! modelled), D reads 0x80 (VRT: the battery is good). Bytes 0x0E-0x7F other than 0x32 are plain
//! RAM, zero at creation.
//!
//! Does not: raise IRQ 8 (periodic, alarm and update-ended interrupts are not modelled, so the
//! guest never sees PF, AF or UF in register C), apply daylight saving (DSE is stored and
//! ignored), or model the extended bank at ports 0x72-0x73. Holds no buffers beyond its 128 bytes.
//!
//! See: Motorola MC146818A Real-Time Clock Plus RAM (RTC) datasheet, cited as "MC146818A";
//! the calendar conversion is the proleptic Gregorian algorithm described in [`days_from_civil`].

use crate::device::{ClockNs, PortDevice, WriteEffect};

/// The RTC's base port: [`crate::Device`] offsets are ports minus this (0 index, 1 data).
pub const BASE: u16 = INDEX;
/// The index port (write-only; bit 7 masks NMI).
pub const INDEX: u16 = 0x70;
/// The data port.
pub const DATA: u16 = 0x71;
/// Bytes of CMOS RAM, time and status registers included.
pub const CMOS_SIZE: usize = 128;

/// Register indices (MC146818A "Address Map").
pub const REG_SECONDS: u8 = 0x00;
pub const REG_SECONDS_ALARM: u8 = 0x01;
pub const REG_MINUTES: u8 = 0x02;
pub const REG_MINUTES_ALARM: u8 = 0x03;
pub const REG_HOURS: u8 = 0x04;
pub const REG_HOURS_ALARM: u8 = 0x05;
pub const REG_DAY_OF_WEEK: u8 = 0x06;
pub const REG_DAY_OF_MONTH: u8 = 0x07;
pub const REG_MONTH: u8 = 0x08;
pub const REG_YEAR: u8 = 0x09;
pub const REG_A: u8 = 0x0A;
pub const REG_B: u8 = 0x0B;
pub const REG_C: u8 = 0x0C;
pub const REG_D: u8 = 0x0D;
/// The century byte (IBM PC/AT convention; the ACPI FADT CENTURY field names it).
pub const REG_CENTURY: u8 = 0x32;

/// Register A: update in progress (read-only).
pub const A_UIP: u8 = 0x80;
/// Register B bits (MC146818A "Register B").
pub const B_SET: u8 = 0x80;
pub const B_PIE: u8 = 0x40;
pub const B_AIE: u8 = 0x20;
pub const B_UIE: u8 = 0x10;
pub const B_SQWE: u8 = 0x08;
/// Data mode: 1 = binary, 0 = BCD.
pub const B_DM_BINARY: u8 = 0x04;
/// 1 = 24-hour mode, 0 = 12-hour mode (hours 1-12, bit 7 = PM).
pub const B_24H: u8 = 0x02;
pub const B_DSE: u8 = 0x01;
/// Register D: valid RAM and time (the battery is good).
pub const D_VRT: u8 = 0x80;

/// UIP is set this long before the update cycle starts (MC146818A: "When UIP is a 0, the update
/// transfer will not occur for at least 244 µs").
pub const UIP_LEAD_NS: u64 = 244_000;
/// Length of the update cycle at a 32.768 kHz time base (MC146818A Table "Update Cycle Time").
pub const UPDATE_CYCLE_NS: u64 = 1_984_000;

/// Register A as a PC BIOS leaves it: 32.768 kHz time base, 1024 Hz periodic rate.
const A_DEFAULT: u8 = 0x26;
/// Register B as a PC BIOS leaves it: 24-hour mode, BCD, no interrupts.
const B_DEFAULT: u8 = B_24H;

const NS_PER_SEC: i128 = 1_000_000_000;
const SECS_PER_DAY: i64 = 86_400;
/// The clock's range: 0000-01-01 00:00:00 ..= 9999-12-31 23:59:59 in Unix seconds.
const MIN_SECS: i64 = -62_167_219_200;
const MAX_SECS: i64 = 253_402_300_799;

/// Days since 1970-01-01 of the proleptic Gregorian date `year-month-day` (month 1-12, day
/// 1-31; not validated). The algorithm counts 400-year eras of 146097 days, with each year
/// starting on March 1 so that February's leap day falls at the end of the year (after Howard
/// Hinnant, "chrono-Compatible Low-Level Date Algorithms").
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400); // 0..=399
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 }; // March = 0
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1; // 0..=365
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // 0..=146096
    era * 146_097 + doe - 719_468 // 719468 = days from 0000-03-01 to 1970-01-01
}

/// The date `(year, month 1-12, day 1-31)` of `days` since 1970-01-01: the inverse of
/// [`days_from_civil`].
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // 0..=365
    let mp = (5 * doy + 2) / 153; // 0..=11, March = 0
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Whether `year` is a Gregorian leap year.
pub fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// Days in `month` (1-12) of `year`.
pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// A broken-down UTC time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTime {
    pub year: i64,
    /// 1-12.
    pub month: u32,
    /// 1-31.
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    /// 1-7, Sunday = 1 (the RTC's convention).
    pub weekday: u32,
}

impl DateTime {
    /// The time `secs` seconds after the Unix epoch (negative: before it).
    pub fn from_unix(secs: i64) -> Self {
        let days = secs.div_euclid(SECS_PER_DAY);
        let rem = secs.rem_euclid(SECS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        Self {
            year,
            month,
            day,
            hour: (rem / 3600) as u32,
            minute: (rem / 60 % 60) as u32,
            second: (rem % 60) as u32,
            // 1970-01-01 was a Thursday (weekday 5 with Sunday = 1).
            weekday: ((days + 4).rem_euclid(7) + 1) as u32,
        }
    }

    /// Seconds since the Unix epoch, if every field is in range (the weekday is not checked: the
    /// RTC does not check it either).
    pub fn to_unix(&self) -> Option<i64> {
        let valid = (1..=12).contains(&self.month)
            && self.day >= 1
            && self.day <= days_in_month(self.year, self.month)
            && self.hour < 24
            && self.minute < 60
            && self.second < 60;
        valid.then(|| {
            days_from_civil(self.year, self.month, self.day) * SECS_PER_DAY
                + i64::from(self.hour) * 3600
                + i64::from(self.minute) * 60
                + i64::from(self.second)
        })
    }
}

/// The RTC and its CMOS RAM.
#[derive(Debug, Clone)]
pub struct Rtc {
    cmos: [u8; CMOS_SIZE],
    index: u8,
    nmi_disabled: bool,
    /// Guest time minus host time, in nanoseconds.
    offset_ns: i128,
    /// Host wall-clock time (ns since the epoch) at [`ClockNs`] 0, for [`crate::Device`] accesses.
    host_epoch_ns: u64,
}

impl Default for Rtc {
    fn default() -> Self {
        Self::new()
    }
}

impl Rtc {
    /// An RTC showing the caller's time, registers as a PC BIOS leaves them, NMI unmasked.
    pub fn new() -> Self {
        let mut cmos = [0u8; CMOS_SIZE];
        cmos[usize::from(REG_A)] = A_DEFAULT;
        cmos[usize::from(REG_B)] = B_DEFAULT;
        cmos[usize::from(REG_D)] = D_VRT;
        Self { cmos, index: 0, nmi_disabled: false, offset_ns: 0, host_epoch_ns: 0 }
    }

    /// An RTC as [`Rtc::new`] whose [`crate::Device`] accesses add `epoch_ns` (see
    /// [`Rtc::set_host_epoch`]).
    pub fn with_host_epoch(epoch_ns: u64) -> Self {
        let mut rtc = Self::new();
        rtc.set_host_epoch(epoch_ns);
        rtc
    }

    /// Sets the host's wall-clock time at [`ClockNs`] 0 (`ClockRealtime - ClockNs`), which
    /// [`crate::Device`] accesses add to their clock.
    pub fn set_host_epoch(&mut self, epoch_ns: u64) {
        self.host_epoch_ns = epoch_ns;
    }

    /// Whether the guest masked NMI (port 0x70 bit 7).
    pub fn nmi_disabled(&self) -> bool {
        self.nmi_disabled
    }

    /// The guest's clock in whole seconds since the Unix epoch (clamped to years 0-9999).
    pub fn guest_time(&self, now_unix_ns: u64) -> i64 {
        self.clock_secs(now_unix_ns)
    }

    /// Sets a CMOS RAM byte that is not a clock or status register (0x0E-0x7F except 0x32), as
    /// firmware would before the guest starts; false for any other index.
    pub fn set_ram(&mut self, index: u8, value: u8) -> bool {
        if !(0x0E..0x80).contains(&index) || index == REG_CENTURY {
            return false;
        }
        self.cmos[usize::from(index)] = value;
        true
    }

    fn reg_b(&self) -> u8 {
        self.cmos[usize::from(REG_B)]
    }

    fn guest_ns(&self, now_unix_ns: u64) -> i128 {
        i128::from(now_unix_ns) + self.offset_ns
    }

    fn clock_secs(&self, now_unix_ns: u64) -> i64 {
        let secs = self.guest_ns(now_unix_ns).div_euclid(NS_PER_SEC);
        secs.clamp(i128::from(MIN_SECS), i128::from(MAX_SECS)) as i64
    }

    /// UIP: inside the 244 µs before a second boundary or the update cycle after it, unless SET
    /// inhibits updates (MC146818A "Register A", "Register B").
    fn update_in_progress(&self, now_unix_ns: u64) -> bool {
        if self.reg_b() & B_SET != 0 {
            return false;
        }
        let frac = self.guest_ns(now_unix_ns).rem_euclid(NS_PER_SEC);
        frac >= NS_PER_SEC - i128::from(UIP_LEAD_NS) || frac < i128::from(UPDATE_CYCLE_NS)
    }

    fn read_reg(&mut self, index: u8, now_unix_ns: u64) -> u8 {
        let set = self.reg_b() & B_SET != 0;
        match index {
            REG_A => {
                let uip = if self.update_in_progress(now_unix_ns) { A_UIP } else { 0 };
                self.cmos[usize::from(REG_A)] & !A_UIP | uip
            }
            REG_C => 0,
            REG_D => D_VRT,
            _ if is_time_reg(index) && !set => {
                let time = DateTime::from_unix(self.clock_secs(now_unix_ns));
                encode_field(index, &time, self.reg_b())
            }
            _ => self.cmos.get(usize::from(index)).copied().unwrap_or(0xFF),
        }
    }

    fn write_reg(&mut self, index: u8, value: u8, now_unix_ns: u64) {
        let i = usize::from(index);
        if i >= CMOS_SIZE {
            return;
        }
        match index {
            REG_A => self.cmos[i] = value & !A_UIP,
            REG_B => self.write_b(value, now_unix_ns),
            REG_C | REG_D => {}
            _ if is_time_reg(index) => {
                if self.reg_b() & B_SET != 0 {
                    self.cmos[i] = value;
                } else {
                    // Change one field of the running clock, keeping the fraction of a second.
                    self.latch(now_unix_ns);
                    self.cmos[i] = value;
                    let frac = self.guest_ns(now_unix_ns).rem_euclid(NS_PER_SEC);
                    self.start_from_latch(now_unix_ns, frac);
                }
            }
            _ => self.cmos[i] = value,
        }
    }

    fn write_b(&mut self, value: u8, now_unix_ns: u64) {
        let old = self.reg_b();
        let mut value = value;
        if value & B_SET != 0 {
            // MC146818A "Register B": setting SET clears UIE.
            value &= !B_UIE;
        }
        if old & B_SET == 0 && value & B_SET != 0 {
            self.cmos[usize::from(REG_B)] = value;
            self.latch(now_unix_ns);
        } else if old & B_SET != 0 && value & B_SET == 0 {
            self.cmos[usize::from(REG_B)] = value;
            self.start_from_latch(now_unix_ns, 0);
        } else {
            self.cmos[usize::from(REG_B)] = value;
        }
    }

    /// Copies the running clock into the time registers, in the current format.
    fn latch(&mut self, now_unix_ns: u64) {
        let time = DateTime::from_unix(self.clock_secs(now_unix_ns));
        let b = self.reg_b();
        for index in TIME_REGS {
            self.cmos[usize::from(index)] = encode_field(index, &time, b);
        }
    }

    /// Sets the clock to the time in the registers plus `frac_ns`, if they decode.
    fn start_from_latch(&mut self, now_unix_ns: u64, frac_ns: i128) {
        if let Some(secs) = self.decode_latched() {
            self.offset_ns = i128::from(secs) * NS_PER_SEC + frac_ns - i128::from(now_unix_ns);
        }
    }

    fn decode_latched(&self) -> Option<i64> {
        let b = self.reg_b();
        let bcd = b & B_DM_BINARY == 0;
        let get = |index: u8| decode(self.cmos[usize::from(index)], bcd);
        let raw_hour = self.cmos[usize::from(REG_HOURS)];
        let hour = if b & B_24H != 0 {
            decode(raw_hour, bcd)?
        } else {
            let h12 = decode(raw_hour & 0x7F, bcd)?;
            if !(1..=12).contains(&h12) {
                return None;
            }
            h12 % 12 + if raw_hour & 0x80 != 0 { 12 } else { 0 }
        };
        let year = i64::from(get(REG_CENTURY)?) * 100 + i64::from(get(REG_YEAR)?);
        let time = DateTime {
            year,
            month: u32::from(get(REG_MONTH)?),
            day: u32::from(get(REG_DAY_OF_MONTH)?),
            hour: u32::from(hour),
            minute: u32::from(get(REG_MINUTES)?),
            second: u32::from(get(REG_SECONDS)?),
            weekday: 0,
        };
        time.to_unix()
    }
}

/// The registers the clock drives.
const TIME_REGS: [u8; 8] =
    [REG_SECONDS, REG_MINUTES, REG_HOURS, REG_DAY_OF_WEEK, REG_DAY_OF_MONTH, REG_MONTH, REG_YEAR, REG_CENTURY];

fn is_time_reg(index: u8) -> bool {
    TIME_REGS.contains(&index)
}

/// Register `index`'s byte for `time` in the format register `b` selects.
fn encode_field(index: u8, time: &DateTime, b: u8) -> u8 {
    let bcd = b & B_DM_BINARY == 0;
    // Every field is below 100 here: the clock is clamped to years 0-9999.
    let field = |v: u32| encode(v as u8, bcd);
    match index {
        REG_SECONDS => field(time.second),
        REG_MINUTES => field(time.minute),
        REG_HOURS if b & B_24H != 0 => field(time.hour),
        REG_HOURS => {
            // MC146818A Table "Time, Calendar and Alarm Data Modes": 12-hour mode counts 1-12
            // with bit 7 set for PM.
            let h12 = match time.hour % 12 {
                0 => 12,
                h => h,
            };
            field(h12) | if time.hour >= 12 { 0x80 } else { 0 }
        }
        REG_DAY_OF_WEEK => field(time.weekday),
        REG_DAY_OF_MONTH => field(time.day),
        REG_MONTH => field(time.month),
        REG_YEAR => field(time.year.rem_euclid(100) as u32),
        REG_CENTURY => field(time.year.div_euclid(100).clamp(0, 99) as u32),
        _ => 0,
    }
}

/// `value` (0-99) as BCD or binary.
fn encode(value: u8, bcd: bool) -> u8 {
    if bcd {
        ((value / 10) << 4) | (value % 10)
    } else {
        value
    }
}

/// A register byte as a number 0-99, if it is valid in its format.
fn decode(byte: u8, bcd: bool) -> Option<u8> {
    if !bcd {
        return (byte < 100).then_some(byte);
    }
    let (hi, lo) = (byte >> 4, byte & 0xF);
    (hi <= 9 && lo <= 9).then_some(hi * 10 + lo)
}

impl PortDevice for Rtc {
    const BASE: u16 = BASE;

    /// Reads ports `port..port + data.len()` at wall time `now` plus the host epoch (0x70 reads
    /// as all ones: the index register is write-only; 0x71 reads the selected byte; any other
    /// port reads as all ones).
    fn read_port(&mut self, port: u16, data: &mut [u8], now: ClockNs) {
        let now_unix_ns = now.saturating_add(self.host_epoch_ns);
        for (i, byte) in data.iter_mut().enumerate() {
            *byte = match u32::from(port) + i as u32 {
                p if p == u32::from(DATA) => self.read_reg(self.index, now_unix_ns),
                _ => 0xFF,
            };
        }
    }

    /// Writes ports `port..port + data.len()`: 0x70 selects a byte and sets the NMI mask, 0x71
    /// writes the selected byte (a 16-bit write to 0x70 does both). Other ports are ignored.
    fn write_port(&mut self, port: u16, data: &[u8], now: ClockNs) -> WriteEffect {
        let now_unix_ns = now.saturating_add(self.host_epoch_ns);
        for (i, &value) in data.iter().enumerate() {
            match u32::from(port) + i as u32 {
                p if p == u32::from(INDEX) => {
                    self.index = value & 0x7F;
                    self.nmi_disabled = value & 0x80 != 0;
                }
                p if p == u32::from(DATA) => self.write_reg(self.index, value, now_unix_ns),
                _ => {}
            }
        }
        WriteEffect::None
    }
}

#[cfg(test)]
mod tests;

//! The ACPI fixed-hardware power-management registers of a legacy (not hardware-reduced) PC: the
//! PM1a event block (PM1_STS, PM1_EN), the PM1a control block (PM1_CNT) and the power-management
//! timer, in one I/O block the FADT points at (keel-acpitables uses the same offsets):
//!
//! | offset | register | width |
//! |---|---|---|
//! | 0 | PM1a_STS (write 1 to clear) | 16 |
//! | 2 | PM1a_EN | 16 |
//! | 4 | PM1a_CNT | 16 |
//! | 8 | PM_TMR (read-only) | 32 (24 bits of count) |
//!
//! Sleep: a PM1_CNT write with SLP_EN (bit 13) and SLP_TYP (bits 10-12) = [`SLP_TYP_S5`], the
//! value the DSDT's `\_S5` object gives, is a request to power off
//! ([`AcpiPm::take_poweroff_request`]). Any other sleep type wakes at once: WAK_STS is set so that
//! an OS polling for the wake (ACPICA does, for S1-S3) goes on. SLP_EN and GBL_RLS read as 0.
//! SCI_EN starts set: there is no SMI_CMD port, so the machine is always in ACPI mode (ACPI 6.5,
//! 4.8.2.1 and the FADT SMI_CMD field).
//!
//! The PM timer counts at 3.579545 MHz from the monotonic `now_ns` the monitor passes in (a time
//! earlier than one already seen counts as no time passing); it wraps at 2^24 and TMR_STS is set
//! whenever its bit 23 changes. Access is byte-granular: a register may be read or written in any
//! width at any offset in the block; bytes outside the registers read as 0.
//!
//! The SCI (IRQ 9 in the FADT) is a level: [`AcpiPm::sci_level`] is high while SCI_EN is set and
//! an enabled status bit (timer, global lock, power button, sleep button, RTC) is set. The power
//! button can be pressed with [`AcpiPm::press_power_button`].
//!
//! Does not: model GPE blocks, PM1b, PM2, the sleep button, or RTC wake. Holds no buffers.
//!
//! See: ACPI 6.5 sections 4.8.3.1 (PM1 event grouping, Tables 4.11-4.14), 4.8.3.2 (PM1 control
//! grouping, Table 4.15), 4.8.3.3 (power management timer) and 7.4.2 (`\_Sx` objects).

use crate::device::{ClockNs, Device, WriteEffect};

/// Offset of PM1a_STS in the block.
pub const PM1_STS: u64 = 0;
/// Offset of PM1a_EN.
pub const PM1_EN: u64 = 2;
/// Offset of PM1a_CNT.
pub const PM1_CNT: u64 = 4;
/// Offset of PM_TMR.
pub const PM_TMR: u64 = 8;
/// Bytes of I/O space the block decodes.
pub const BLOCK_LEN: u64 = 12;
/// Where the Keel platform puts the block (the I/O base QEMU's PIIX4 PM uses too).
pub const DEFAULT_BASE: u16 = 0x600;

/// The timer's clock (ACPI 6.5, 4.8.3.3).
pub const PM_TIMER_HZ: u64 = 3_579_545;
/// The SLP_TYP value that means soft off (S5), matching the DSDT's `\_S5` package.
pub const SLP_TYP_S5: u8 = 5;

/// PM1_STS bits (ACPI 6.5 Table 4.11).
pub const STS_TMR: u16 = 1 << 0;
pub const STS_BM: u16 = 1 << 4;
pub const STS_GBL: u16 = 1 << 5;
pub const STS_PWRBTN: u16 = 1 << 8;
pub const STS_SLPBTN: u16 = 1 << 9;
pub const STS_RTC: u16 = 1 << 10;
pub const STS_WAK: u16 = 1 << 15;
/// PM1_EN bits (ACPI 6.5 Table 4.13).
pub const EN_TMR: u16 = 1 << 0;
pub const EN_GBL: u16 = 1 << 5;
pub const EN_PWRBTN: u16 = 1 << 8;
pub const EN_SLPBTN: u16 = 1 << 9;
pub const EN_RTC: u16 = 1 << 10;
/// PM1_CNT bits (ACPI 6.5 Table 4.15).
pub const CNT_SCI_EN: u16 = 1 << 0;
pub const CNT_BM_RLD: u16 = 1 << 1;
pub const CNT_GBL_RLS: u16 = 1 << 2;
pub const CNT_SLP_TYP_SHIFT: u16 = 10;
pub const CNT_SLP_TYP: u16 = 7 << CNT_SLP_TYP_SHIFT;
pub const CNT_SLP_EN: u16 = 1 << 13;

/// Status bits that raise the SCI when enabled (same positions in PM1_EN).
const SCI_EVENTS: u16 = STS_TMR | STS_GBL | STS_PWRBTN | STS_SLPBTN | STS_RTC;
/// Status bits that exist here.
const STS_MASK: u16 = SCI_EVENTS | STS_BM | STS_WAK;
const EN_MASK: u16 = EN_TMR | EN_GBL | EN_PWRBTN | EN_SLPBTN | EN_RTC;
/// PM1_CNT bits that hold a value (SLP_EN and GBL_RLS are write-only).
const CNT_KEPT: u16 = CNT_SCI_EN | CNT_BM_RLD | CNT_SLP_TYP;
const TIMER_BITS: u32 = 24;

/// The PM1a event and control registers and the PM timer.
#[derive(Debug, Clone)]
pub struct AcpiPm {
    sts: u16,
    en: u16,
    cnt: u16,
    start_ns: u64,
    last_ns: u64,
    /// Timer ticks >> 23 when TMR_STS was last cleared: TMR_STS is set while it differs.
    tmr_epoch: u64,
    poweroff: bool,
}

impl AcpiPm {
    /// The registers after power-on: nothing pending, nothing enabled, SCI_EN set, the timer at 0
    /// at `now_ns`.
    pub fn new(now_ns: u64) -> Self {
        Self { sts: 0, en: 0, cnt: CNT_SCI_EN, start_ns: now_ns, last_ns: now_ns, tmr_epoch: 0, poweroff: false }
    }

    /// Returns whether the write entered S5.
    fn write_cnt(&mut self, value: u16, written: u16) -> bool {
        self.cnt = (self.cnt & !written | value & written) & CNT_KEPT;
        if value & written & CNT_SLP_EN != 0 {
            let slp_typ = ((self.cnt & CNT_SLP_TYP) >> CNT_SLP_TYP_SHIFT) as u8;
            if slp_typ == SLP_TYP_S5 {
                return true;
            }
            // Not a state we enter: wake at once (ACPI 6.5, 4.8.3.1.1 WAK_STS).
            self.sts |= STS_WAK;
        }
        false
    }

    /// Whether the guest asked for soft off (S5) since the last call. Clears the request.
    pub fn take_poweroff_request(&mut self) -> bool {
        core::mem::take(&mut self.poweroff)
    }

    /// Latches a power button press (PWRBTN_STS); it raises the SCI if the guest enabled it.
    pub fn press_power_button(&mut self) {
        self.sts |= STS_PWRBTN;
    }

    /// The SCI line at `now_ns`.
    pub fn sci_level(&mut self, now_ns: u64) -> bool {
        self.observe(now_ns);
        self.cnt & CNT_SCI_EN != 0 && self.status() & self.en & SCI_EVENTS != 0
    }

    /// When the SCI could next rise by itself (without a register access): the next change of
    /// the timer's bit 23, if the timer's status would raise the SCI then (SCI_EN and TMR_EN set,
    /// TMR_STS clear). `None`: only register accesses and button presses change the SCI.
    pub fn next_event_ns(&self) -> Option<u64> {
        if self.cnt & CNT_SCI_EN == 0 || self.en & EN_TMR == 0 || self.status() & STS_TMR != 0 {
            return None;
        }
        let half = 1u128 << (TIMER_BITS - 1);
        let next_ticks = (u128::from(self.ticks()) / half + 1) * half;
        let ns = (next_ticks * 1_000_000_000).div_ceil(u128::from(PM_TIMER_HZ));
        u64::try_from(ns).ok().and_then(|ns| ns.checked_add(self.start_ns))
    }

    /// The timer's 24-bit count at `now_ns`.
    pub fn timer_at(&mut self, now_ns: u64) -> u32 {
        self.observe(now_ns);
        self.timer()
    }

    fn observe(&mut self, now_ns: u64) {
        self.last_ns = self.last_ns.max(now_ns);
    }

    /// Ticks since creation (not wrapped).
    fn ticks(&self) -> u64 {
        let ns = u128::from(self.last_ns - self.start_ns);
        (ns * u128::from(PM_TIMER_HZ) / 1_000_000_000) as u64
    }

    fn timer(&self) -> u32 {
        (self.ticks() & ((1 << TIMER_BITS) - 1)) as u32
    }

    fn status(&self) -> u16 {
        let tmr = if self.ticks() >> (TIMER_BITS - 1) != self.tmr_epoch { STS_TMR } else { 0 };
        (self.sts | tmr) & STS_MASK
    }
}

impl Device for AcpiPm {
    /// Reads `data.len()` bytes at `offset` in the block.
    fn read(&mut self, offset: u64, data: &mut [u8], now_ns: ClockNs) {
        self.observe(now_ns);
        let sts = self.status().to_le_bytes();
        let en = self.en.to_le_bytes();
        let cnt = self.cnt.to_le_bytes();
        let tmr = self.timer().to_le_bytes();
        for (i, byte) in data.iter_mut().enumerate() {
            *byte = match offset.checked_add(i as u64) {
                Some(at @ 0..=1) => sts[at as usize],
                Some(at @ 2..=3) => en[at as usize - 2],
                Some(at @ 4..=5) => cnt[at as usize - 4],
                Some(at @ 8..=11) => tmr[at as usize - 8],
                _ => 0,
            };
        }
    }

    /// Writes `data` at `offset` in the block, a byte at a time as far as storage goes; PM1_CNT
    /// acts on the value after the whole access. Entering S5 returns
    /// [`WriteEffect::PowerOff`] (and is also kept for [`AcpiPm::take_poweroff_request`]).
    fn write(&mut self, offset: u64, data: &[u8], now_ns: ClockNs) -> WriteEffect {
        self.observe(now_ns);
        let mut cnt_written = 0u16;
        let mut cnt = self.cnt.to_le_bytes();
        for (i, &value) in data.iter().enumerate() {
            match offset.checked_add(i as u64) {
                Some(at @ 0..=1) => {
                    let clear = u16::from(value) << (8 * at);
                    if clear & STS_TMR != 0 {
                        self.tmr_epoch = self.ticks() >> (TIMER_BITS - 1);
                    }
                    self.sts &= !clear;
                }
                Some(at @ 2..=3) => {
                    let shift = 8 * (at - 2);
                    self.en = (self.en & !(0xFF << shift) | u16::from(value) << shift) & EN_MASK;
                }
                Some(at @ 4..=5) => {
                    cnt[at as usize - 4] = value;
                    cnt_written |= 0xFF << (8 * (at - 4));
                }
                _ => {}
            }
        }
        if cnt_written != 0 && self.write_cnt(u16::from_le_bytes(cnt), cnt_written) {
            self.poweroff = true;
            return WriteEffect::PowerOff;
        }
        WriteEffect::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Rng;

    fn r16(pm: &mut AcpiPm, offset: u64, now: u64) -> u16 {
        let mut b = [0u8; 2];
        pm.read(offset, &mut b, now);
        u16::from_le_bytes(b)
    }

    fn w16(pm: &mut AcpiPm, offset: u64, now: u64, value: u16) {
        pm.write(offset, &value.to_le_bytes(), now);
    }

    fn tmr(pm: &mut AcpiPm, now: u64) -> u32 {
        let mut b = [0u8; 4];
        pm.read(PM_TMR, &mut b, now);
        u32::from_le_bytes(b)
    }

    #[test]
    fn next_event_is_the_timer_overflow_only_when_it_would_raise_the_sci() {
        let mut pm = AcpiPm::new(1000);
        assert_eq!(pm.next_event_ns(), None, "TMR_EN clear");
        w16(&mut pm, PM1_EN, 1000, EN_TMR);
        // Bit 23 first changes after 2^23 ticks: 2.343 s after creation.
        let at = pm.next_event_ns().expect("armed");
        assert_eq!(at, 1000 + ((1u64 << 23) * 1_000_000_000).div_ceil(PM_TIMER_HZ));
        assert!(!pm.sci_level(at - 1));
        assert!(pm.sci_level(at));
        assert_eq!(pm.next_event_ns(), None, "TMR_STS already set");
        // Cleared: the next change is 2^23 ticks later.
        w16(&mut pm, PM1_STS, at, STS_TMR);
        assert_eq!(pm.next_event_ns(), Some(1000 + ((2u64 << 23) * 1_000_000_000).div_ceil(PM_TIMER_HZ)));
    }

    /// ACPICA's acpi_hw_legacy_sleep for S5: clear wake status, write SLP_TYP, then SLP_TYP|SLP_EN.
    #[test]
    fn linux_poweroff_sequence() {
        let mut pm = AcpiPm::new(0);
        assert_eq!(r16(&mut pm, PM1_CNT, 0), CNT_SCI_EN);
        w16(&mut pm, PM1_STS, 0, 0xFFFF);
        let cnt = r16(&mut pm, PM1_CNT, 0) & !(CNT_SLP_TYP | CNT_SLP_EN);
        let typ = u16::from(SLP_TYP_S5) << CNT_SLP_TYP_SHIFT;
        w16(&mut pm, PM1_CNT, 0, cnt | typ);
        assert!(!pm.take_poweroff_request(), "no SLP_EN yet");
        w16(&mut pm, PM1_CNT, 0, cnt | typ | CNT_SLP_EN);
        assert!(pm.take_poweroff_request());
        assert!(!pm.take_poweroff_request());
        assert_eq!(r16(&mut pm, PM1_CNT, 0), CNT_SCI_EN | typ, "SLP_EN reads 0");
        // A byte write to the high half does it too.
        pm.write(PM1_CNT + 1, &[((typ | CNT_SLP_EN) >> 8) as u8], 0);
        assert!(pm.take_poweroff_request());
    }

    #[test]
    fn other_sleep_types_wake_at_once() {
        let mut pm = AcpiPm::new(0);
        w16(&mut pm, PM1_CNT, 0, CNT_SCI_EN | (1 << CNT_SLP_TYP_SHIFT) | CNT_SLP_EN);
        assert!(!pm.take_poweroff_request());
        assert_ne!(r16(&mut pm, PM1_STS, 0) & STS_WAK, 0);
        w16(&mut pm, PM1_STS, 0, STS_WAK);
        assert_eq!(r16(&mut pm, PM1_STS, 0) & STS_WAK, 0);
    }

    #[test]
    fn timer_counts_and_wraps() {
        let mut pm = AcpiPm::new(1_000);
        assert_eq!(tmr(&mut pm, 1_000), 0);
        assert_eq!(tmr(&mut pm, 1_000 + 1_000_000_000), PM_TIMER_HZ as u32);
        // Time going backwards is no time passing.
        assert_eq!(tmr(&mut pm, 5), PM_TIMER_HZ as u32);
        // 2^24 ticks is 4.687 s.
        let wrap_ns = (1u64 << 24) * 1_000_000_000 / PM_TIMER_HZ + 1;
        assert!(tmr(&mut pm, 1_000 + wrap_ns) < 10);
        let mut b = [0u8; 4];
        pm.read(PM_TMR, &mut b, 1_000 + wrap_ns);
        assert_eq!(b[3], 0, "24 bits");
        assert_eq!(pm.timer_at(0), tmr(&mut pm, 0));
    }

    #[test]
    fn timer_status_and_sci() {
        let mut pm = AcpiPm::new(0);
        let half = (1u64 << 23) * 1_000_000_000 / PM_TIMER_HZ + 1; // bit 23 flips
        assert_eq!(r16(&mut pm, PM1_STS, 0), 0);
        assert_eq!(r16(&mut pm, PM1_STS, half) & STS_TMR, STS_TMR);
        assert!(!pm.sci_level(half), "not enabled");
        w16(&mut pm, PM1_EN, half, EN_TMR | 0x8000);
        assert_eq!(r16(&mut pm, PM1_EN, half), EN_TMR, "reserved enable bits drop");
        assert!(pm.sci_level(half));
        w16(&mut pm, PM1_STS, half, STS_TMR);
        assert_eq!(r16(&mut pm, PM1_STS, half) & STS_TMR, 0);
        assert!(!pm.sci_level(half));
        assert_ne!(r16(&mut pm, PM1_STS, 2 * half) & STS_TMR, 0, "set again at the next flip");
        w16(&mut pm, PM1_STS, 2 * half, STS_TMR);
        pm.press_power_button();
        assert!(!pm.sci_level(2 * half));
        w16(&mut pm, PM1_EN, 2 * half, EN_PWRBTN);
        assert!(pm.sci_level(2 * half));
        w16(&mut pm, PM1_CNT, 2 * half, 0);
        assert!(!pm.sci_level(2 * half), "SCI_EN clear");
        w16(&mut pm, PM1_CNT, 2 * half, CNT_SCI_EN);
        pm.write(PM1_STS + 1, &[(STS_PWRBTN >> 8) as u8], 2 * half);
        assert!(!pm.sci_level(2 * half));
    }

    #[test]
    fn odd_accesses() {
        let mut pm = AcpiPm::new(0);
        let mut b = [0xAAu8; 12];
        pm.read(0, &mut b, 0);
        assert_eq!(b, [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
        pm.write(0, &[0xFF; 12], 0);
        assert!(!pm.take_poweroff_request(), "SLP_TYP 7, not 5");
        assert_eq!(r16(&mut pm, PM1_CNT, 0), CNT_KEPT);
        pm.read(u64::MAX, &mut b, 0);
        pm.write(u64::MAX - 1, &[1, 2, 3, 4], 0);
        pm.read(6, &mut b[..2], 0);
        assert_eq!(&b[..2], &[0, 0]);
    }

    #[test]
    fn random_stream_never_panics() {
        let mut rng = Rng::new(0xAC91);
        let mut pm = AcpiPm::new(rng.next_u64() >> 1);
        let mut now = 0u64;
        for _ in 0..100_000 {
            now = now.wrapping_add(rng.below(1 << 30));
            let offset = rng.below(16);
            let size = rng.below(5) as usize;
            let mut data = [rng.byte(), rng.byte(), rng.byte(), rng.byte()];
            if rng.below(2) == 0 {
                pm.write(offset, &data[..size], now);
            } else {
                pm.read(offset, &mut data[..size], now);
            }
            let _ = pm.sci_level(now);
            let _ = pm.take_poweroff_request();
            assert!(pm.timer_at(now) < 1 << 24);
        }
    }
}

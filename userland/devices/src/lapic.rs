//! The local APIC of a guest's single vCPU, in xAPIC mode: the 4 KiB register page at
//! [`LAPIC_BASE`], with the timer, interrupt priority (TPR/PPR), the IRR/ISR/TMR vector
//! registers, EOI and self IPIs.
//!
//! Registers are 32 bits wide at 16-byte aligned offsets; an access of another size or at
//! another offset reads as 0 and its write is ignored, as is a write to a read-only register.
//! Modelled: ID (0, read-only), version ([`VERSION`]: 0x14, six LVT entries, no directed-EOI
//! support), TPR, APR and PPR, EOI, LDR, DFR, SVR (software enable, focus bit, spurious vector),
//! ISR/TMR/IRR, ESR (with the write-to-latch protocol), the ICR, the six LVT entries (timer,
//! thermal, performance counter, LINT0, LINT1, error), and the timer's initial count, current
//! count and divide configuration.
//!
//! Timer: one-shot and periodic modes (TSC-deadline is not offered: LVT timer bit 18 reads as 0).
//! It counts at [`TIMER_HZ`] (1 GHz, one tick per nanosecond, as QEMU's APIC bus) divided by the
//! divide configuration register, on a time base the monitor passes in (`now_ns`, monotonic; an
//! earlier time than one already seen counts as no time passing). Nothing ticks by itself: every
//! register access first catches up with `now_ns`, [`Lapic::advance`] fires a due timer into IRR
//! and [`Lapic::next_event_ns`] says when the next expiry is due. A periodic timer fires at most
//! once per [`Lapic::advance`] (missed periods coalesce, as IRR does), and fires no more often
//! than every [`MIN_PERIOD_NS`] (KVM clamps periodic timers the same way) so a guest cannot make
//! the monitor spin; the current count still reads as the architectural count.
//!
//! Interrupt flow: the monitor hands interrupts from the I/O APIC to [`Lapic::accept`]; when the
//! vCPU can take one it asks [`Lapic::acknowledge`] for the vector to inject (IRR to ISR). The
//! guest's EOI clears the highest ISR bit; for a level-triggered vector the write returns
//! [`LapicEffect::LevelEoi`] and the monitor passes the vector to the I/O APIC's `eoi`.
//! Interrupts are accepted into IRR even while the APIC is software-disabled (SDM: pending
//! interrupts are held) but none is offered until it is enabled.
//!
//! Reset state: as firmware leaves it in virtual wire mode (and as Firecracker sets up KVM's APIC
//! for a direct Linux boot): SVR 0xFF (software-disabled), LINT0 unmasked ExtINT, LINT1 NMI, the
//! other LVT entries masked, DFR all ones. [`Lapic::extint_enabled`] tells the monitor whether the
//! 8259A's output may still be injected directly (LINT0 unmasked ExtINT).
//!
//! Does not: model the IA32_APIC_BASE MSR (relocation, hardware disable), x2APIC, more than one
//! CPU (INIT and SIPI IPIs are ignored; IPIs reach this APIC only by self shorthand, physical
//! id 0 or 0xFF, or a matching logical destination), the illegal-register-address and
//! send-checksum errors, remote read, directed EOI (SVR bit 12), LINT0/LINT1 pins (the monitor
//! routes the 8259A itself), or thermal and performance-counter interrupts (those LVT entries
//! are only stored). An NMI IPI to itself is returned as [`LapicEffect::Nmi`]. Holds no buffers.
//!
//! See: Intel SDM Vol 3A chapter 12, "Advanced Programmable Interrupt Controller (APIC)", cited
//! as "SDM 12.x" (chapter 11 in editions before 2024).

use crate::device::{ClockNs, Device, WriteEffect};
use core::cell::Cell;

/// Guest-physical base of the register page.
pub const LAPIC_BASE: u64 = 0xFEE0_0000;
/// Size of the register page.
pub const LAPIC_SIZE: u64 = 0x1000;
/// Timer clock before the divider (one tick per nanosecond).
pub const TIMER_HZ: u64 = 1_000_000_000;
/// A periodic timer fires no more often than this (20 kHz).
pub const MIN_PERIOD_NS: u64 = 50_000;
/// The version register: version 0x14 (integrated APIC), max LVT entry 5 (SDM 12.4.8).
pub const VERSION: u32 = 0x0005_0014;

// Register offsets (SDM 12.4.1, Table 12-1 "Local APIC Register Address Map").
const REG_ID: u64 = 0x20;
const REG_VERSION: u64 = 0x30;
const REG_TPR: u64 = 0x80;
const REG_APR: u64 = 0x90;
const REG_PPR: u64 = 0xA0;
const REG_EOI: u64 = 0xB0;
const REG_LDR: u64 = 0xD0;
const REG_DFR: u64 = 0xE0;
const REG_SVR: u64 = 0xF0;
const REG_ISR: u64 = 0x100;
const REG_TMR: u64 = 0x180;
const REG_IRR: u64 = 0x200;
const REG_ESR: u64 = 0x280;
const REG_ICR_LO: u64 = 0x300;
const REG_ICR_HI: u64 = 0x310;
const REG_LVT: u64 = 0x320;
const REG_INITIAL: u64 = 0x380;
const REG_CURRENT: u64 = 0x390;
const REG_DCR: u64 = 0x3E0;

// LVT entries in register order from 0x320.
const LVT_TIMER: usize = 0;
const LVT_LINT0: usize = 3;
const LVT_LINT1: usize = 4;
const LVT_ERROR: usize = 5;
const LVT_COUNT: usize = 6;

/// LVT mask bit (SDM 12.5.1, Figure 12-8).
const LVT_MASKED: u32 = 1 << 16;
/// LVT timer mode bit 17: periodic (bit 18, TSC-deadline, is not offered).
const TIMER_PERIODIC: u32 = 1 << 17;
/// Writable bits of each LVT entry (SDM Figure 12-8): timer; thermal; perf; LINT0; LINT1; error.
const LVT_WRITABLE: [u32; LVT_COUNT] = [0x3_00FF, 0x1_07FF, 0x1_07FF, 0x1_A7FF, 0x1_A7FF, 0x1_00FF];
/// Delivery mode field of LVT and ICR entries.
const DELIVERY_MODE_SHIFT: u32 = 8;
const MODE_FIXED: u32 = 0;
const MODE_LOWEST: u32 = 1;
const MODE_NMI: u32 = 4;
const MODE_EXTINT: u32 = 7;

/// SVR: APIC software enable (SDM 12.9, Figure 12-23).
const SVR_ENABLE: u32 = 1 << 8;
/// SVR writable bits: vector, enable, focus processor checking (bit 12 needs directed EOI).
const SVR_WRITABLE: u32 = 0x3FF;

// ESR bits (SDM 12.5.3, Figure 12-9).
const ESR_SEND_ILLEGAL_VECTOR: u32 = 1 << 5;
const ESR_RECEIVE_ILLEGAL_VECTOR: u32 = 1 << 6;

/// ICR low writable bits: vector, delivery mode, destination mode, level, trigger, shorthand
/// (SDM 12.6.1, Figure 12-12); delivery status (bit 12) always reads idle.
const ICR_LO_WRITABLE: u32 = 0x000C_CFFF;

/// What a register write asks of the monitor: [`WriteEffect::None`], [`WriteEffect::LevelEoi`]
/// (the guest ended a level-triggered interrupt with this vector: pass it to the I/O APIC's EOI,
/// the EOI broadcast of SDM 12.8.5) or [`WriteEffect::Nmi`] (an NMI sent to itself through the
/// ICR); the local APIC returns no other.
pub type LapicEffect = WriteEffect;

/// The timer's counting element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    /// Not counting: the current count reads 0 (never started, stopped, or a one-shot expired).
    Stopped,
    /// Counting down from the initial count, which it held at `start_ns` (may be before time 0
    /// after a divide or mode change carried a partly elapsed count over).
    Running { start_ns: i128 },
}

/// One xAPIC (see the module documentation).
#[derive(Debug, Clone)]
pub struct Lapic {
    tpr: u8,
    ldr: u32,
    dfr: u32,
    svr: u32,
    isr: [u32; 8],
    tmr: [u32; 8],
    irr: [u32; 8],
    /// The ESR as the guest reads it (latched by an ESR write).
    esr: u32,
    /// Errors seen since the last ESR write.
    esr_pending: u32,
    icr_lo: u32,
    icr_hi: u32,
    lvt: [u32; LVT_COUNT],
    initial: u32,
    dcr: u32,
    timer: Timer,
    last_ns: u64,
    /// What [`Lapic::deadline`] last found: asked after every exit, and forgotten whenever a
    /// register write or the timer itself may change it.
    deadline_cache: Cell<Option<Option<u64>>>,
}

impl Default for Lapic {
    fn default() -> Self {
        Self::new()
    }
}

/// Highest set bit of a 256-bit vector register, as a vector.
fn highest(bits: &[u32; 8]) -> Option<u8> {
    bits.iter().enumerate().rev().find(|(_, &w)| w != 0).map(|(i, &w)| (i as u8) << 5 | (31 - w.leading_zeros()) as u8)
}

fn test_bit(bits: &[u32; 8], vector: u8) -> bool {
    bits[usize::from(vector >> 5)] & (1 << (vector & 31)) != 0
}

fn set_bit(bits: &mut [u32; 8], vector: u8, on: bool) {
    let word = &mut bits[usize::from(vector >> 5)];
    if on {
        *word |= 1 << (vector & 31);
    } else {
        *word &= !(1 << (vector & 31));
    }
}

impl Lapic {
    /// An APIC in virtual wire mode, as firmware leaves it (see the module documentation).
    pub fn new() -> Self {
        let mut lvt = [LVT_MASKED; LVT_COUNT];
        lvt[LVT_LINT0] = MODE_EXTINT << DELIVERY_MODE_SHIFT;
        lvt[LVT_LINT1] = MODE_NMI << DELIVERY_MODE_SHIFT;
        Self {
            tpr: 0,
            ldr: 0,
            dfr: u32::MAX,
            svr: 0xFF,
            isr: [0; 8],
            tmr: [0; 8],
            irr: [0; 8],
            esr: 0,
            esr_pending: 0,
            icr_lo: 0,
            icr_hi: 0,
            lvt,
            initial: 0,
            dcr: 0,
            timer: Timer::Stopped,
            last_ns: 0,
            deadline_cache: Cell::new(None),
        }
    }

    /// Whether SVR bit 8 (APIC software enable) is set (SDM 12.4.7.2).
    pub fn software_enabled(&self) -> bool {
        self.svr & SVR_ENABLE != 0
    }

    /// Whether LINT0 is an unmasked ExtINT entry, i.e. the 8259A's INTR reaches the CPU directly
    /// (virtual wire mode, SDM 12.5.1 "ExtINT").
    pub fn extint_enabled(&self) -> bool {
        let lint0 = self.lvt[LVT_LINT0];
        lint0 & LVT_MASKED == 0 && (lint0 >> DELIVERY_MODE_SHIFT) & 7 == MODE_EXTINT
    }

    /// Takes a fixed interrupt from the I/O APIC (or another source) into IRR; TMR records the
    /// trigger mode for the EOI (SDM 12.8.4). Vectors 0-15 are illegal: they set ESR bit 6.
    pub fn accept(&mut self, vector: u8, level_triggered: bool) {
        if vector < 16 {
            self.error(ESR_RECEIVE_ILLEGAL_VECTOR);
            return;
        }
        set_bit(&mut self.irr, vector, true);
        set_bit(&mut self.tmr, vector, level_triggered);
    }

    /// The processor priority (SDM 12.8.3.1): the TPR if its class is at least that of the
    /// highest in-service vector, else that vector's class.
    fn ppr(&self) -> u8 {
        let isrv = highest(&self.isr).unwrap_or(0);
        if self.tpr >> 4 >= isrv >> 4 {
            self.tpr
        } else {
            isrv & 0xF0
        }
    }

    /// The arbitration priority (SDM 12.6.2.4, Figure 12-15).
    fn apr(&self) -> u8 {
        let isrv = highest(&self.isr).unwrap_or(0);
        let irrv = highest(&self.irr).unwrap_or(0);
        if self.tpr >> 4 >= irrv >> 4 && self.tpr >> 4 > isrv >> 4 {
            self.tpr
        } else {
            (self.tpr & 0xF0).max(isrv & 0xF0).max(irrv & 0xF0)
        }
    }

    /// The highest requested vector whose priority class is above the processor priority's
    /// class, if the APIC is software-enabled (SDM 12.8.3.1, 12.8.4).
    pub fn pending(&self) -> Option<u8> {
        if !self.software_enabled() {
            return None;
        }
        let vector = highest(&self.irr)?;
        (vector >> 4 > self.ppr() >> 4).then_some(vector)
    }

    /// The interrupt acknowledge: moves [`Lapic::pending`]'s vector from IRR to ISR and returns
    /// it for the monitor to inject.
    pub fn acknowledge(&mut self) -> Option<u8> {
        let vector = self.pending()?;
        set_bit(&mut self.irr, vector, false);
        set_bit(&mut self.isr, vector, true);
        Some(vector)
    }

    /// Records an APIC error and raises the error LVT's interrupt if it is unmasked (SDM 12.5.3).
    fn error(&mut self, bits: u32) {
        self.esr_pending |= bits;
        let lvt = self.lvt[LVT_ERROR];
        let vector = lvt as u8;
        // An illegal error vector is itself an error that is not signalled again.
        if lvt & LVT_MASKED == 0 && vector >= 16 {
            set_bit(&mut self.irr, vector, true);
            set_bit(&mut self.tmr, vector, false);
        } else if lvt & LVT_MASKED == 0 {
            self.esr_pending |= ESR_RECEIVE_ILLEGAL_VECTOR;
        }
    }

    /// The timer's divisor from the divide configuration register (SDM 12.5.4, Figure 12-10):
    /// bits 0, 1 and 3 select 2, 4, 8, 16, 32, 64, 128 or (0b111) 1.
    fn divisor(&self) -> u64 {
        let code = (self.dcr & 3) | (self.dcr >> 1) & 4;
        if code == 7 {
            1
        } else {
            2 << code
        }
    }

    fn periodic(&self) -> bool {
        self.lvt[LVT_TIMER] & TIMER_PERIODIC != 0
    }

    /// Nanoseconds between periodic interrupts (never below [`MIN_PERIOD_NS`]).
    fn interval_ns(&self) -> u64 {
        (u64::from(self.initial) * self.divisor()).max(MIN_PERIOD_NS)
    }

    /// Clamps `now_ns` to the latest time seen.
    fn clock(&mut self, now_ns: u64) -> u64 {
        self.last_ns = self.last_ns.max(now_ns);
        self.last_ns
    }

    /// The current-count register at `now` (SDM 12.5.4).
    fn current_count(&self, now: u64) -> u32 {
        let Timer::Running { start_ns } = self.timer else { return 0 };
        let mut elapsed = u64::try_from(i128::from(now) - start_ns).unwrap_or(0);
        if self.periodic() {
            elapsed %= self.interval_ns();
        }
        let ticks = elapsed / self.divisor();
        u32::try_from(u64::from(self.initial).saturating_sub(ticks)).unwrap_or(0)
    }

    /// When the running timer next reaches zero.
    fn deadline(&self) -> Option<u64> {
        if let Some(cached) = self.deadline_cache.get() {
            return cached;
        }
        let deadline = self.compute_deadline();
        self.deadline_cache.set(Some(deadline));
        deadline
    }

    fn compute_deadline(&self) -> Option<u64> {
        let Timer::Running { start_ns } = self.timer else { return None };
        let span = if self.periodic() { self.interval_ns() } else { u64::from(self.initial) * self.divisor() };
        let at = (start_ns + i128::from(span)).clamp(0, i128::from(u64::MAX));
        Some(u64::try_from(at).unwrap_or(u64::MAX))
    }

    /// Restarts the counting element at `now` from `count` with the current mode and divisor.
    fn restart_from(&mut self, now: u64, count: u32) {
        let done = u64::from(self.initial.saturating_sub(count)) * self.divisor();
        self.timer = Timer::Running { start_ns: i128::from(now) - i128::from(done) };
        self.deadline_cache.set(None);
    }

    /// Catches up with `now_ns`: a timer that reached zero puts its vector in IRR (unless its
    /// LVT entry is masked); a periodic one reloads, a one-shot one stops.
    pub fn advance(&mut self, now_ns: u64) {
        let now = self.clock(now_ns);
        let Some(deadline) = self.deadline() else { return };
        if now < deadline {
            return;
        }
        self.deadline_cache.set(None);
        if let Timer::Running { start_ns } = self.timer {
            if self.periodic() {
                let interval = self.interval_ns();
                let periods = (i128::from(now) - start_ns) / i128::from(interval);
                self.timer = Timer::Running { start_ns: start_ns + periods * i128::from(interval) };
            } else {
                self.timer = Timer::Stopped;
            }
        }
        let lvt = self.lvt[LVT_TIMER];
        if lvt & LVT_MASKED == 0 {
            self.accept(lvt as u8, false);
        }
    }

    /// When the timer next fires (possibly already past: call [`Lapic::advance`]), if it runs
    /// and its LVT entry is unmasked.
    pub fn next_event_ns(&self, now_ns: u64) -> Option<u64> {
        let _ = now_ns;
        if self.lvt[LVT_TIMER] & LVT_MASKED != 0 {
            return None;
        }
        self.deadline()
    }

    /// The bits of the 256-bit register at `offset` within `base`'s eight registers.
    fn vector_reg(bits: &[u32; 8], offset: u64, base: u64) -> u32 {
        bits[((offset - base) >> 4) as usize & 7]
    }

    fn write_lvt(&mut self, index: usize, value: u32, now: u64) {
        let mut value = value & LVT_WRITABLE[index % LVT_COUNT];
        if !self.software_enabled() {
            value |= LVT_MASKED;
        }
        if index == LVT_TIMER && self.timer != Timer::Stopped && (value ^ self.lvt[index]) & TIMER_PERIODIC != 0 {
            // A mode change carries on from the current count in the new mode.
            let count = self.current_count(now);
            self.lvt[index] = value;
            self.restart_from(now, count);
            return;
        }
        if let Some(entry) = self.lvt.get_mut(index) {
            *entry = value;
        }
    }

    /// The EOI write (SDM 12.8.5): ends the highest-priority in-service interrupt; a level
    /// triggered one is broadcast to the I/O APIC through the return value.
    fn eoi(&mut self) -> LapicEffect {
        let Some(vector) = highest(&self.isr) else { return LapicEffect::None };
        set_bit(&mut self.isr, vector, false);
        if test_bit(&self.tmr, vector) {
            LapicEffect::LevelEoi(vector)
        } else {
            LapicEffect::None
        }
    }

    /// Whether an 8-bit logical destination names this APIC (SDM 12.6.2.2): flat model (DFR
    /// 0xF) if any LDR bit matches, cluster model (DFR 0x0) if the cluster matches (or is 0xF)
    /// and a member bit matches.
    fn logical_match(&self, dest: u8) -> bool {
        let ldr = (self.ldr >> 24) as u8;
        if self.dfr >> 28 == 0xF {
            dest & ldr != 0
        } else {
            (dest >> 4 == ldr >> 4 || dest >> 4 == 0xF) && dest & ldr & 0xF != 0
        }
    }

    /// An ICR low write sends an IPI (SDM 12.6.1). Only this APIC exists, so only IPIs that name
    /// it arrive; fixed and lowest-priority ones are edge-triggered interrupts, an NMI is the
    /// monitor's to inject, INIT, SIPI and the rest are dropped.
    fn send_ipi(&mut self) -> LapicEffect {
        let lo = self.icr_lo;
        let vector = lo as u8;
        let mode = (lo >> DELIVERY_MODE_SHIFT) & 7;
        let dest = (self.icr_hi >> 24) as u8;
        let to_self = match (lo >> 18) & 3 {
            0 if lo & (1 << 11) != 0 => self.logical_match(dest),
            0 => dest == 0 || dest == 0xFF,
            1 | 2 => true,
            _ => false,
        };
        match mode {
            MODE_FIXED | MODE_LOWEST if vector < 16 => self.error(ESR_SEND_ILLEGAL_VECTOR),
            MODE_FIXED | MODE_LOWEST if to_self => self.accept(vector, false),
            MODE_NMI if to_self => return LapicEffect::Nmi,
            _ => {}
        }
        LapicEffect::None
    }
}

impl Device for Lapic {
    /// A read of the register at `offset` in the page; see the module documentation for which
    /// accesses read as 0.
    fn read(&mut self, offset: u64, data: &mut [u8], now_ns: ClockNs) {
        self.advance(now_ns);
        let now = self.last_ns;
        if data.len() != 4 || offset & 0xF != 0 {
            data.fill(0);
            return;
        }
        let value = match offset {
            REG_ID => 0,
            REG_VERSION => VERSION,
            REG_TPR => u32::from(self.tpr),
            REG_APR => u32::from(self.apr()),
            REG_PPR => u32::from(self.ppr()),
            REG_LDR => self.ldr,
            REG_DFR => self.dfr | 0x0FFF_FFFF,
            REG_SVR => self.svr,
            0x100..=0x170 => Self::vector_reg(&self.isr, offset, REG_ISR),
            0x180..=0x1F0 => Self::vector_reg(&self.tmr, offset, REG_TMR),
            0x200..=0x270 => Self::vector_reg(&self.irr, offset, REG_IRR),
            REG_ESR => self.esr,
            REG_ICR_LO => self.icr_lo,
            REG_ICR_HI => self.icr_hi,
            0x320..=0x370 => self.lvt[((offset - REG_LVT) >> 4) as usize % LVT_COUNT],
            REG_INITIAL => self.initial,
            REG_CURRENT => self.current_count(now),
            REG_DCR => self.dcr,
            _ => 0,
        };
        data.copy_from_slice(&value.to_le_bytes());
    }

    /// A write of the register at `offset` in the page; see the module documentation for which
    /// accesses are ignored.
    fn write(&mut self, offset: u64, data: &[u8], now_ns: ClockNs) -> WriteEffect {
        self.advance(now_ns);
        // Any register below may move the timer's deadline (the initial count, the divider, the
        // timer's LVT entry, the software enable).
        self.deadline_cache.set(None);
        let now = self.last_ns;
        let Ok(bytes) = <[u8; 4]>::try_from(data) else { return LapicEffect::None };
        if offset & 0xF != 0 {
            return LapicEffect::None;
        }
        let value = u32::from_le_bytes(bytes);
        match offset {
            REG_TPR => self.tpr = value as u8,
            REG_EOI => return self.eoi(),
            REG_LDR => self.ldr = value & 0xFF00_0000,
            REG_DFR => self.dfr = value | 0x0FFF_FFFF,
            REG_SVR => {
                self.svr = value & SVR_WRITABLE;
                if !self.software_enabled() {
                    // SDM 12.4.7.2: software disable masks every LVT entry.
                    for entry in &mut self.lvt {
                        *entry |= LVT_MASKED;
                    }
                }
            }
            REG_ESR => {
                // SDM 12.5.3: a write latches the errors seen since the last write.
                self.esr = self.esr_pending;
                self.esr_pending = 0;
            }
            REG_ICR_LO => {
                self.icr_lo = value & ICR_LO_WRITABLE;
                return self.send_ipi();
            }
            REG_ICR_HI => self.icr_hi = value & 0xFF00_0000,
            0x320..=0x370 => self.write_lvt(((offset - REG_LVT) >> 4) as usize % LVT_COUNT, value, now),
            REG_INITIAL => {
                // SDM 12.5.4: a write starts counting from the new count; 0 stops the timer.
                self.initial = value;
                self.timer = if value == 0 { Timer::Stopped } else { Timer::Running { start_ns: i128::from(now) } };
            }
            REG_DCR => {
                let count = self.current_count(now);
                self.dcr = value & 0xB;
                if self.timer != Timer::Stopped {
                    self.restart_from(now, count);
                }
            }
            _ => {}
        }
        LapicEffect::None
    }
}

#[cfg(test)]
mod tests;

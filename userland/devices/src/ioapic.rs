//! An Intel 82093AA I/O APIC with 24 input pins, at [`IOAPIC_BASE`]: the index register IOREGSEL
//! at offset 0x00 and the data window IOWIN at 0x10, through which the guest reaches the ID
//! (0x00), version (0x01, [`VERSION`]), arbitration (0x02) and redirection table (0x10-0x3F)
//! registers.
//!
//! Modelled: per-pin redirection entries (vector, delivery mode, destination mode, polarity,
//! trigger mode, mask, destination), edge-triggered pins (a rising edge on an unmasked pin sends
//! one interrupt; an edge on a masked pin is lost) and level-triggered pins (an asserted,
//! unmasked pin sends an interrupt and sets Remote IRR; the local APIC's EOI with that vector
//! clears it and, if the pin is still asserted, sends again; unmasking an asserted pin sends).
//! Changing an entry to edge-triggered clears its Remote IRR (as KVM does), so a guest can
//! recover a stuck pin.
//!
//! Delivery: the APIC bus is replaced by a queue with one slot per pin, drained by the monitor
//! with [`Ioapic::pop_delivery`] into the local APIC's `accept`; a second edge on a pin whose
//! interrupt is still queued merges with it, as it would in the local APIC's IRR. Only fixed and
//! lowest-priority delivery modes deliver (SMI, NMI, INIT and ExtINT entries are ignored). There
//! is one CPU, APIC id 0: a physical destination delivers if it is 0 or the broadcast 0xFF, a
//! logical one if any destination bit is set.
//!
//! Simplifications: `set_irq`'s level is the line's asserted state; the polarity bit is stored
//! and reported but does not invert the input (as in QEMU and KVM): the monitor's devices drive
//! logical levels. The delivery status bit always reads idle. Registers are 32 bits: IOWIN takes
//! only 4-byte accesses at offset 0x10; IOREGSEL takes a 1- to 4-byte write (its low byte) or a
//! 4-byte read at offset 0; every other access reads as 0 and is ignored. Unknown register
//! indexes read as 0. There is no EOI register (that came with version 0x20). Holds no buffers
//! beyond the fixed per-pin queue.
//!
//! See: Intel 82093AA I/O Advanced Programmable Interrupt Controller (IOAPIC) datasheet (order
//! 290566-001, May 1996), cited as "82093AA".

use crate::device::{ClockNs, Device, WriteEffect};

/// Guest-physical base of the register window.
pub const IOAPIC_BASE: u64 = 0xFEC0_0000;
/// Size of the register window as mapped (one page).
pub const IOAPIC_SIZE: u64 = 0x1000;
/// Number of input pins (and redirection entries).
pub const PINS: usize = 24;
/// The version register: 24 redirection entries (maximum index 0x17), version 0x11
/// (82093AA 3.2.2).
pub const VERSION: u32 = 0x0017_0011;

/// IOREGSEL's offset in the window.
pub const IOREGSEL: u64 = 0x00;
/// IOWIN's offset in the window.
pub const IOWIN: u64 = 0x10;

const REG_ID: u8 = 0x00;
const REG_VERSION: u8 = 0x01;
const REG_ARB: u8 = 0x02;
const REG_REDIR: u8 = 0x10;
const REG_REDIR_END: u8 = REG_REDIR + 2 * PINS as u8 - 1;

// Redirection entry bits (82093AA 3.2.4).
const DELIVERY_MODE_SHIFT: u32 = 8;
const DEST_LOGICAL: u64 = 1 << 11;
const REMOTE_IRR: u64 = 1 << 14;
const TRIGGER_LEVEL: u64 = 1 << 15;
const MASKED: u64 = 1 << 16;
/// Writable bits of the low dword: vector, delivery mode, destination mode, polarity, trigger
/// mode, mask (delivery status and Remote IRR are read-only).
const LOW_WRITABLE: u64 = 0x1_AFFF;
/// Writable bits of the high dword: the destination field (bits 56-63).
const HIGH_WRITABLE: u64 = 0xFF00_0000;

/// One interrupt message for the local APIC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// The entry's vector (the local APIC rejects 0-15).
    pub vector: u8,
    /// Level-triggered: the local APIC sets TMR so that its EOI comes back to [`Ioapic::eoi`].
    pub level: bool,
}

/// One I/O APIC (see the module documentation).
#[derive(Debug, Clone)]
pub struct Ioapic {
    regsel: u8,
    /// The ID register (bits 24-27).
    id: u32,
    redir: [u64; PINS],
    /// Asserted input lines, one bit per pin.
    lines: u32,
    /// Interrupts sent and not yet taken by the monitor, one slot per pin.
    queue: [Option<Delivery>; PINS],
    /// Bit n set: `queue[n]` holds a message (so that the monitor's look after every exit is
    /// one test, not a walk of 24 slots).
    queued: u32,
}

impl Default for Ioapic {
    fn default() -> Self {
        Self::new()
    }
}

impl Ioapic {
    /// An I/O APIC after reset: ID 0, every entry masked (82093AA 3.2.4).
    pub fn new() -> Self {
        Self { regsel: 0, id: 0, redir: [MASKED; PINS], lines: 0, queue: [None; PINS], queued: 0 }
    }

    fn read_register(&self) -> u32 {
        match self.regsel {
            REG_ID | REG_ARB => self.id,
            REG_VERSION => VERSION,
            REG_REDIR..=REG_REDIR_END => {
                let index = usize::from(self.regsel - REG_REDIR);
                let entry = self.redir[(index / 2) % PINS];
                if index % 2 == 0 {
                    entry as u32
                } else {
                    (entry >> 32) as u32
                }
            }
            _ => 0,
        }
    }

    fn write_register(&mut self, value: u32) {
        match self.regsel {
            REG_ID => self.id = value & 0x0F00_0000,
            REG_REDIR..=REG_REDIR_END => {
                let index = usize::from(self.regsel - REG_REDIR);
                let pin = (index / 2) % PINS;
                let entry = &mut self.redir[pin];
                if index % 2 == 0 {
                    let keep = *entry & !LOW_WRITABLE;
                    *entry = keep | (u64::from(value) & LOW_WRITABLE);
                    if *entry & TRIGGER_LEVEL == 0 {
                        *entry &= !REMOTE_IRR;
                    }
                    // An asserted level-triggered pin sends once unmasked.
                    self.service_level(pin);
                } else {
                    *entry = (*entry & 0xFFFF_FFFF) | (u64::from(value) & HIGH_WRITABLE) << 32;
                }
            }
            _ => {}
        }
    }

    /// Drives input `pin` (asserted or not). Pins past [`PINS`] are ignored.
    pub fn set_irq(&mut self, pin: u8, level: bool) {
        let pin = usize::from(pin);
        if pin >= PINS {
            return;
        }
        let bit = 1u32 << pin;
        let was = self.lines & bit != 0;
        if level {
            self.lines |= bit;
        } else {
            self.lines &= !bit;
        }
        if self.redir[pin] & TRIGGER_LEVEL != 0 {
            self.service_level(pin);
        } else if level && !was {
            self.send(pin);
        }
    }

    /// A level-triggered pin sends if asserted, unmasked and not awaiting its EOI.
    fn service_level(&mut self, pin: usize) {
        let entry = self.redir[pin % PINS];
        if entry & TRIGGER_LEVEL != 0 && entry & REMOTE_IRR == 0 && self.lines & (1 << (pin % PINS)) != 0 {
            self.send(pin);
        }
    }

    /// Sends pin `pin`'s interrupt message if its entry is unmasked, has a delivering mode and
    /// names APIC id 0; a level-triggered one sets Remote IRR.
    fn send(&mut self, pin: usize) {
        let pin = pin % PINS;
        let entry = self.redir[pin];
        if entry & MASKED != 0 || (entry >> DELIVERY_MODE_SHIFT) & 7 > 1 {
            return;
        }
        let dest = (entry >> 56) as u8;
        let accepted = if entry & DEST_LOGICAL != 0 { dest != 0 } else { dest == 0 || dest == 0xFF };
        if !accepted {
            return;
        }
        let level = entry & TRIGGER_LEVEL != 0;
        if level {
            self.redir[pin] |= REMOTE_IRR;
        }
        self.queue[pin] = Some(Delivery { vector: entry as u8, level });
        self.queued |= 1 << pin;
    }

    /// The next interrupt message for the local APIC (lowest pin first).
    pub fn pop_delivery(&mut self) -> Option<Delivery> {
        if self.queued == 0 {
            return None;
        }
        let pin = self.queued.trailing_zeros() as usize;
        self.queued &= self.queued - 1;
        self.queue.get_mut(pin).and_then(Option::take)
    }

    /// Whether a message waits for [`Ioapic::pop_delivery`].
    pub fn has_delivery(&self) -> bool {
        self.queued != 0
    }

    /// The local APIC's EOI broadcast for a level-triggered `vector`: clears Remote IRR of every
    /// level-triggered entry with that vector and sends again from pins still asserted
    /// (82093AA 3.2.4, Remote IRR).
    pub fn eoi(&mut self, vector: u8) {
        for pin in 0..PINS {
            let entry = self.redir[pin];
            if entry & TRIGGER_LEVEL != 0 && entry & REMOTE_IRR != 0 && entry as u8 == vector {
                self.redir[pin] &= !REMOTE_IRR;
                self.service_level(pin);
            }
        }
    }

    /// Redirection entry `pin` (for tests and diagnostics); 0 past [`PINS`].
    pub fn entry(&self, pin: usize) -> u64 {
        self.redir.get(pin).copied().unwrap_or(0)
    }
}

impl Device for Ioapic {
    /// A read of the window at `offset`.
    fn read(&mut self, offset: u64, data: &mut [u8], _now: ClockNs) {
        let value = match (offset, data.len()) {
            (IOREGSEL, 4) => u32::from(self.regsel),
            (IOWIN, 4) => self.read_register(),
            _ => {
                data.fill(0);
                return;
            }
        };
        data.copy_from_slice(&value.to_le_bytes());
    }

    /// A write of the window at `offset`.
    fn write(&mut self, offset: u64, data: &[u8], _now: ClockNs) -> WriteEffect {
        match (offset, data.len()) {
            (IOREGSEL, 1..=4) => self.regsel = data[0],
            (IOWIN, 4) => {
                let value = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
                self.write_register(value);
            }
            _ => {}
        }
        WriteEffect::None
    }
}

#[cfg(test)]
mod tests;

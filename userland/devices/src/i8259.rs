//! The PC's pair of Intel 8259A programmable interrupt controllers: the master at ports
//! 0x20-0x21 (IRQ 0-7), the slave at 0xA0-0xA1 (IRQ 8-15) cascaded on the master's IR2, and the
//! two edge/level control registers (ELCR) at 0x4D0-0x4D1 for a monitor that maps them.
//!
//! Modelled: the ICW1-ICW4 initialization sequence, OCW1 (IMR), OCW2 (non-specific, specific
//! and rotating EOIs, set priority, rotate in automatic-EOI mode), OCW3 (IRR/ISR read select,
//! poll, special mask mode), edge and level triggering (ICW1.LTIM or ELCR), fully nested and
//! special fully nested modes, automatic EOI, rotating priorities, the INTA cycle with cascade
//! and the spurious IR7/IR15 default vectors.
//!
//! Simplifications: an edge-triggered device request stays in IRR until acknowledged even if
//! its line drops first (a pulse is enough, as the monitor drives edges as pulses); the real part
//! would answer such an INTA with the default IR7. The cascade input does follow the datasheet: a
//! slave request withdrawn before the INTA cycle (masked, say) withdraws the master's IR2 too. The slave is hard-wired to the master's IR2 as on a
//! PC: ICW3 only decides whether the master treats IR2 as a cascade input. 8080/8085 mode (ICW4
//! bit 0 = 0) and buffered mode are accepted and ignored: vectors are always x86 style. A chip in
//! the middle of its initialization sequence raises no interrupt.
//!
//! Does not: deliver interrupts (the monitor asks [`PicPair::has_interrupt`] and runs the INTA
//! cycle with [`PicPair::acknowledge`] when the vCPU can take one) or know which device is on
//! which line. Holds no buffers.
//!
//! See: Intel 8259A Programmable Interrupt Controller datasheet (order 231468-003, December 1988),
//! cited as "8259A"; the ELCR is from the Intel 82371AB PIIX4 datasheet, 12.1.

use crate::device::{ClockNs, PortDevice, WriteEffect};

/// The pair's base port: [`crate::Device`] offsets are ports minus this (master 0-1, slave 0x80-0x81,
/// ELCR 0x4B0-0x4B1; the platform maps the three windows).
pub const BASE: u16 = MASTER_CMD;
/// Master command port (ICW1, OCW2, OCW3; reads IRR, ISR or the poll byte).
pub const MASTER_CMD: u16 = 0x20;
/// Master data port (ICW2-ICW4, OCW1 = IMR).
pub const MASTER_DATA: u16 = 0x21;
/// Slave command port.
pub const SLAVE_CMD: u16 = 0xA0;
/// Slave data port.
pub const SLAVE_DATA: u16 = 0xA1;
/// Edge/level control for IRQ 0-7 (PIIX4 12.1.1).
pub const ELCR_MASTER: u16 = 0x4D0;
/// Edge/level control for IRQ 8-15.
pub const ELCR_SLAVE: u16 = 0x4D1;

/// The master's input the slave's INT output is wired to on a PC.
const CASCADE_IR: u8 = 2;

/// One 8259A.
#[derive(Debug, Clone)]
struct Pic {
    irr: u8,
    isr: u8,
    imr: u8,
    /// Current levels of the eight IR inputs (edge detection and level mode).
    lines: u8,
    vector_base: u8,
    /// Next initialization word expected on the data port: 2, 3 or 4; 0 when initialized.
    init_step: u8,
    need_icw4: bool,
    single: bool,
    /// ICW1.LTIM: every input level triggered.
    level_all: bool,
    icw3: u8,
    auto_eoi: bool,
    special_fully_nested: bool,
    rotate_on_auto_eoi: bool,
    /// The IR with the highest priority (0 after reset: IR0 highest, IR7 lowest).
    priority_base: u8,
    special_mask: bool,
    read_isr: bool,
    poll: bool,
    elcr: u8,
    /// ELCR bits that exist (PIIX4: IRQ 0, 1, 2, 8 and 13 are edge-only).
    elcr_mask: u8,
    is_master: bool,
}

impl Pic {
    /// A chip as a PC BIOS leaves it, with every input masked.
    fn new(is_master: bool) -> Self {
        Self {
            irr: 0,
            isr: 0,
            imr: 0xFF,
            lines: 0,
            vector_base: if is_master { 0x08 } else { 0x70 },
            init_step: 0,
            need_icw4: true,
            single: false,
            level_all: false,
            icw3: if is_master { 1 << CASCADE_IR } else { CASCADE_IR },
            auto_eoi: false,
            special_fully_nested: false,
            rotate_on_auto_eoi: false,
            priority_base: 0,
            special_mask: false,
            read_isr: false,
            poll: false,
            elcr: 0,
            elcr_mask: if is_master { 0xF8 } else { 0xDE },
            is_master,
        }
    }

    fn level_mask(&self) -> u8 {
        if self.level_all {
            0xFF
        } else {
            self.elcr
        }
    }

    /// Drives input `ir` (0-7). Edge mode: a rising edge latches IRR (8259A "Edge and Level
    /// Triggered Modes"). Level mode: IRR follows the line.
    fn set_input(&mut self, ir: u8, level: bool) {
        let bit = 1u8 << (ir & 7);
        let was = self.lines & bit != 0;
        if level {
            self.lines |= bit;
        } else {
            self.lines &= !bit;
        }
        if self.level_mask() & bit != 0 {
            if level {
                self.irr |= bit;
            } else {
                self.irr &= !bit;
            }
        } else if level && !was {
            self.irr |= bit;
        }
    }

    /// Re-derives the level-triggered IRR bits from the lines (after ICW1 or an ELCR write).
    fn sync_level_irr(&mut self) {
        let level = self.level_mask();
        self.irr = (self.irr & !level) | (self.lines & level);
    }

    /// The priority rank (0 = highest) of the best bit in `mask`, under the current rotation.
    fn best_rank(&self, mask: u8) -> Option<u8> {
        (0..8).find(|&rank| mask & (1 << ((rank + self.priority_base) & 7)) != 0)
    }

    fn ir_of_rank(&self, rank: u8) -> u8 {
        (rank + self.priority_base) & 7
    }

    /// The IR this chip would raise INT for: the best unmasked request that beats everything in
    /// service (8259A "Fully Nested Mode"; "Special Mask Mode" ignores masked in-service levels;
    /// "Special Fully Nested Mode" lets the master's cascade input interrupt itself).
    fn pending(&self) -> Option<u8> {
        if self.init_step != 0 {
            return None;
        }
        let request = self.best_rank(self.irr & !self.imr)?;
        let mut in_service = self.isr;
        if self.special_mask {
            in_service &= !self.imr;
        }
        if self.special_fully_nested && self.is_master && self.cascades() {
            in_service &= !(1 << CASCADE_IR);
        }
        match self.best_rank(in_service) {
            Some(current) if current <= request => None,
            _ => Some(self.ir_of_rank(request)),
        }
    }

    /// Whether the master takes IR2 as a cascade input (ICW1.SNGL = 0 and ICW3 bit 2).
    fn cascades(&self) -> bool {
        !self.single && self.icw3 & (1 << CASCADE_IR) != 0
    }

    /// The INTA cycle for `ir` (8259A "Interrupt Sequence"): IRR to ISR, or in automatic-EOI
    /// mode no ISR bit (with rotation if selected).
    fn acknowledge(&mut self, ir: u8) {
        let bit = 1u8 << ir;
        if self.level_mask() & bit == 0 {
            self.irr &= !bit;
        }
        if self.auto_eoi {
            if self.rotate_on_auto_eoi {
                self.priority_base = (ir + 1) & 7;
            }
        } else {
            self.isr |= bit;
        }
    }

    fn write_command(&mut self, value: u8) {
        if value & 0x10 != 0 {
            self.icw1(value);
        } else if value & 0x08 != 0 {
            self.ocw3(value);
        } else {
            self.ocw2(value);
        }
    }

    /// ICW1 (8259A "Initialization Command Words"): resets the edge sense circuit (a high line
    /// must go low and high again), clears IMR, gives IR7 the lowest priority, clears special
    /// mask mode and selects IRR for reads; without IC4 the ICW4 functions are zero. IRR and ISR
    /// are also cleared, as a fresh sequence expects.
    fn icw1(&mut self, value: u8) {
        self.need_icw4 = value & 0x01 != 0;
        self.single = value & 0x02 != 0;
        self.level_all = value & 0x08 != 0;
        self.init_step = 2;
        self.imr = 0;
        self.irr = 0;
        self.isr = 0;
        self.priority_base = 0;
        self.special_mask = false;
        self.read_isr = false;
        self.poll = false;
        self.rotate_on_auto_eoi = false;
        self.auto_eoi = false;
        self.special_fully_nested = false;
        self.sync_level_irr();
    }

    fn write_data(&mut self, value: u8) {
        match self.init_step {
            2 => {
                // ICW2: T7-T3 of the vector; the IR number fills bits 2-0.
                self.vector_base = value & 0xF8;
                self.init_step = match (self.single, self.need_icw4) {
                    (false, _) => 3,
                    (true, true) => 4,
                    (true, false) => 0,
                };
            }
            3 => {
                // ICW3: the master's slave bitmap, or the slave's ID.
                self.icw3 = value;
                self.init_step = if self.need_icw4 { 4 } else { 0 };
            }
            4 => {
                // ICW4: bit 1 AEOI, bit 4 SFNM; uPM and BUF/M-S are ignored.
                self.auto_eoi = value & 0x02 != 0;
                self.special_fully_nested = value & 0x10 != 0;
                self.init_step = 0;
            }
            _ => self.imr = value, // OCW1
        }
    }

    /// OCW2 (8259A Figure 9): R, SL, EOI in bits 7-5, the IR level in bits 2-0.
    fn ocw2(&mut self, value: u8) {
        let level = value & 7;
        match value >> 5 {
            0b000 => self.rotate_on_auto_eoi = false,
            0b100 => self.rotate_on_auto_eoi = true,
            0b001 | 0b101 => {
                // Non-specific EOI: the highest-priority in-service level.
                if let Some(rank) = self.best_rank(self.isr) {
                    let ir = self.ir_of_rank(rank);
                    self.isr &= !(1 << ir);
                    if value >> 5 == 0b101 {
                        self.priority_base = (ir + 1) & 7;
                    }
                }
            }
            0b011 => self.isr &= !(1 << level),
            0b111 => {
                self.isr &= !(1 << level);
                self.priority_base = (level + 1) & 7;
            }
            0b110 => self.priority_base = (level + 1) & 7, // set priority: `level` lowest
            _ => {}                                        // 0b010: no operation
        }
    }

    /// OCW3 (8259A Figure 9): ESMM/SMM in bits 6-5, P in bit 2, RR/RIS in bits 1-0.
    fn ocw3(&mut self, value: u8) {
        if value & 0x04 != 0 {
            self.poll = true;
        }
        if value & 0x02 != 0 {
            self.read_isr = value & 0x01 != 0;
        }
        match (value >> 5) & 3 {
            0b11 => self.special_mask = true,
            0b10 => self.special_mask = false,
            _ => {}
        }
    }

    /// A read of the command port: the poll word after an OCW3 poll command (8259A "The Poll
    /// Command": bit 7 set if an interrupt is pending, bits 2-0 its level; the read acknowledges
    /// it), otherwise IRR or ISR as OCW3 selected.
    fn read_command(&mut self) -> u8 {
        if self.poll {
            self.poll = false;
            return match self.pending() {
                Some(ir) => {
                    self.acknowledge(ir);
                    0x80 | ir
                }
                None => 0,
            };
        }
        if self.read_isr {
            self.isr
        } else {
            self.irr
        }
    }

    fn write_elcr(&mut self, value: u8) {
        self.elcr = value & self.elcr_mask;
        self.sync_level_irr();
    }
}

/// The master/slave pair of a PC.
#[derive(Debug, Clone)]
pub struct PicPair {
    master: Pic,
    slave: Pic,
}

impl Default for PicPair {
    fn default() -> Self {
        Self::new()
    }
}

impl PicPair {
    /// The pair as a PC BIOS leaves it (master vectors 0x08-0x0F, slave 0x70-0x77, cascade on
    /// IR2, normal EOI), with every input masked until the guest programs it.
    pub fn new() -> Self {
        Self { master: Pic::new(true), slave: Pic::new(false) }
    }

    /// Drives ISA interrupt line `irq` (0-15) to `level`. In edge mode a rising edge latches the
    /// request; the monitor pulses a line (true, then false) to signal an edge. IRQ 2 is the
    /// cascade input and is ignored here, as are numbers above 15.
    pub fn set_irq(&mut self, irq: u8, level: bool) {
        match irq {
            CASCADE_IR => return,
            0..=7 => self.master.set_input(irq, level),
            8..=15 => self.slave.set_input(irq - 8, level),
            _ => return,
        }
        self.update_cascade();
    }

    /// The slave's INT output drives the master's IR2. A rising INT latches the request; when INT
    /// drops first the request is withdrawn (8259A "Edge and Level Triggered Modes": the IR input
    /// must remain high until the first INTA, else the master answers with its default IR7).
    fn update_cascade(&mut self) {
        let int = self.slave.pending().is_some();
        self.master.set_input(CASCADE_IR, int);
        if !int {
            self.master.irr &= !(1 << CASCADE_IR);
        }
    }

    /// Whether the master raises INT: an unmasked request beats everything in service.
    pub fn has_interrupt(&self) -> bool {
        self.master.pending().is_some()
    }

    /// The INTA cycle: returns the vector and moves the request to in-service (8259A "Interrupt
    /// Sequence"). A cascade request on IR2 takes the vector from the slave. When no request is
    /// left by then (the guest masked it after [`PicPair::has_interrupt`], say), the master answers
    /// with its IR7 vector and sets no ISR bit (the spurious "default IR7"; were the slave to lose
    /// its request after the master's IR2 was taken, it would answer IR15 with the master's IR2 in
    /// service). Returns `None` only while the master is in its initialization sequence.
    pub fn acknowledge(&mut self) -> Option<u8> {
        if self.master.init_step != 0 {
            return None;
        }
        let vector = match self.master.pending() {
            Some(ir) => {
                self.master.acknowledge(ir);
                if ir == CASCADE_IR && self.master.cascades() {
                    match self.slave.pending() {
                        Some(slave_ir) => {
                            self.slave.acknowledge(slave_ir);
                            self.slave.vector_base | slave_ir
                        }
                        // The slave's default IR7 (IRQ 15). The cascade input follows the
                        // slave's INT, so this is the datasheet's answer kept for robustness.
                        None => self.slave.vector_base | 7,
                    }
                } else {
                    self.master.vector_base | ir
                }
            }
            None => self.master.vector_base | 7,
        };
        self.update_cascade();
        Some(vector)
    }

    /// Interrupt request registers, slave in the high byte.
    pub fn irr(&self) -> u16 {
        u16::from_le_bytes([self.master.irr, self.slave.irr])
    }

    /// In-service registers, slave in the high byte.
    pub fn isr(&self) -> u16 {
        u16::from_le_bytes([self.master.isr, self.slave.isr])
    }

    /// Interrupt mask registers, slave in the high byte.
    pub fn imr(&self) -> u16 {
        u16::from_le_bytes([self.master.imr, self.slave.imr])
    }
}

impl PortDevice for PicPair {
    const BASE: u16 = BASE;

    /// A read of `port` (0x20, 0x21, 0xA0, 0xA1, 0x4D0, 0x4D1) into `data[0]`; other bytes of a
    /// wider access and other ports read as all ones.
    fn read_port(&mut self, port: u16, data: &mut [u8], _now: ClockNs) {
        let Some((first, rest)) = data.split_first_mut() else { return };
        rest.fill(0xFF);
        *first = match port {
            MASTER_CMD => self.master.read_command(),
            MASTER_DATA => self.master.imr,
            SLAVE_CMD => self.slave.read_command(),
            SLAVE_DATA => self.slave.imr,
            ELCR_MASTER => self.master.elcr,
            ELCR_SLAVE => self.slave.elcr,
            _ => 0xFF,
        };
        // A poll read acknowledges a request.
        self.update_cascade();
    }

    /// A write of `data[0]` to `port`; other bytes and other ports are ignored.
    fn write_port(&mut self, port: u16, data: &[u8], _now: ClockNs) -> WriteEffect {
        let Some(&value) = data.first() else { return WriteEffect::None };
        match port {
            MASTER_CMD => self.master.write_command(value),
            MASTER_DATA => self.master.write_data(value),
            SLAVE_CMD => self.slave.write_command(value),
            SLAVE_DATA => self.slave.write_data(value),
            ELCR_MASTER => self.master.write_elcr(value),
            ELCR_SLAVE => self.slave.write_elcr(value),
            _ => return WriteEffect::None,
        }
        self.update_cascade();
        WriteEffect::None
    }
}

#[cfg(test)]
mod tests;

//! A National Semiconductor PC16550D (16550A-compatible) UART as seen at I/O offsets 0-7 of a
//! COM port: RBR/THR, IER, IIR/FCR, LCR, MCR, LSR, MSR, SCR, and DLL/DLM behind LCR.DLAB.
//!
//! Transmit is instantaneous: a byte written to THR goes straight to a bounded output queue
//! ([`OUTPUT_CAP`] bytes; further bytes are dropped and counted) and THR/TSR are empty again at
//! once, so LSR.THRE and LSR.TEMT always read as 1. Receive goes through the 16-byte RX FIFO (one
//! holding byte with FIFOs off): the monitor offers bytes with [`Uart::receive`], which refuses
//! them when the FIFO is full, so the console never overruns. Interrupts follow the datasheet's
//! IIR priorities; the line reaches the ISA bus only while MCR.OUT2 is set, as on a PC.
//!
//! Does not: model baud rate, character timing or word length (the divisor latch and LCR only
//! read back; all eight bits of a character pass, so a guest that never programs LCR still gets
//! its output through), parity, framing or break errors, the TX FIFO, DMA mode signalling, or
//! the 4-character RX timeout timer: in FIFO mode, data below the trigger level is reported at
//! once as a character timeout (IIR = 0xCC), which drivers treat as "data available". Because
//! transmit is instantaneous, a THR write with ETBEI set leaves the THRE interrupt (and so the
//! IRQ line) asserted rather than dropping and re-raising it; drivers that loop on IIR, as Linux
//! and OpenBSD do, are unaffected.
//!
//! See: PC16550D Universal Asynchronous Receiver/Transmitter with FIFOs, National Semiconductor,
//! June 1995 (cited below as "16550D"), Table II "Summary of Registers" and section 8.

use crate::device::{ClockNs, Device, WriteEffect};
use alloc::vec::Vec;

/// Bytes of transmitted output kept until [`Uart::take_output`]; more are dropped and counted.
pub const OUTPUT_CAP: usize = 64 * 1024;
/// Depth of the receiver FIFO (16550D 8.5: "16 bytes").
pub const RX_FIFO_LEN: usize = 16;

// Register offsets (16550D Table II).
const RBR_THR: u8 = 0; // DLL when LCR.DLAB
const IER: u8 = 1; // DLM when LCR.DLAB
const IIR_FCR: u8 = 2;
const LCR: u8 = 3;
const MCR: u8 = 4;
const LSR: u8 = 5;
const MSR: u8 = 6;
const SCR: u8 = 7;

// IER bits (16550D 8.6.3).
const IER_ERBFI: u8 = 1 << 0; // received data available
const IER_ETBEI: u8 = 1 << 1; // transmitter holding register empty
const IER_ELSI: u8 = 1 << 2; // receiver line status
const IER_EDSSI: u8 = 1 << 3; // modem status
const IER_MASK: u8 = 0x0F; // bits 4-7 are always 0

// IIR values (16550D Table IV): bit 0 = 1 means "no interrupt pending".
const IIR_NONE: u8 = 0x01;
const IIR_RLS: u8 = 0x06;
const IIR_RDA: u8 = 0x04;
const IIR_TIMEOUT: u8 = 0x0C;
const IIR_THRE: u8 = 0x02;
const IIR_MSR: u8 = 0x00;
const IIR_FIFOS: u8 = 0xC0; // bits 6-7 set when FCR0 = 1

// FCR bits (16550D 8.5).
const FCR_ENABLE: u8 = 1 << 0;
const FCR_CLEAR_RX: u8 = 1 << 1;

// LCR bits (16550D 8.6.1).
const LCR_DLAB: u8 = 1 << 7;

// MCR bits (16550D 8.6.4).
const MCR_DTR: u8 = 1 << 0;
const MCR_RTS: u8 = 1 << 1;
const MCR_OUT1: u8 = 1 << 2;
const MCR_OUT2: u8 = 1 << 3;
const MCR_LOOP: u8 = 1 << 4;
const MCR_MASK: u8 = 0x1F; // bits 5-7 are always 0

// LSR bits (16550D 8.6.2).
const LSR_DR: u8 = 1 << 0;
const LSR_OE: u8 = 1 << 1;
const LSR_ERRORS: u8 = 0x1E; // OE, PE, FE, BI
const LSR_THRE: u8 = 1 << 5;
const LSR_TEMT: u8 = 1 << 6;

// MSR bits (16550D 8.6.5): deltas in 0-3, line states in 4-7.
const MSR_DCTS: u8 = 1 << 0;
const MSR_DDSR: u8 = 1 << 1;
const MSR_TERI: u8 = 1 << 2;
const MSR_DDCD: u8 = 1 << 3;
const MSR_CTS: u8 = 1 << 4;
const MSR_DSR: u8 = 1 << 5;
const MSR_RI: u8 = 1 << 6;
const MSR_DCD: u8 = 1 << 7;
/// What the console "cable" presents outside loopback: a peer that is present and ready.
const MSR_PEER: u8 = MSR_CTS | MSR_DSR | MSR_DCD;

/// RX trigger levels selected by FCR bits 6-7 (16550D Table III).
const RX_TRIGGER: [u8; 4] = [1, 4, 8, 14];

/// The UART's register state and its two bounded buffers.
#[derive(Debug, Clone)]
pub struct Uart {
    rx: [u8; RX_FIFO_LEN],
    rx_head: usize,
    rx_len: usize,
    output: Vec<u8>,
    dropped: u64,
    ier: u8,
    lcr: u8,
    mcr: u8,
    /// LSR error bits (OE only, in this model) until LSR is read.
    lsr_errors: u8,
    /// MSR delta bits 0-3 until MSR is read.
    msr_delta: u8,
    scr: u8,
    dll: u8,
    dlm: u8,
    fifo_enabled: bool,
    rx_trigger: u8,
    /// The THRE interrupt source (16550D Table IV: set when THR empties, reset by reading IIR
    /// while it is the reported source or by writing THR).
    thre_pending: bool,
}

impl Default for Uart {
    fn default() -> Self {
        Self::new()
    }
}

impl Uart {
    /// A UART in its master-reset state (16550D Table V: IER = 0, IIR = 1, FCR = 0, LCR = 0,
    /// MCR = 0, LSR = 0x60, MSR deltas 0), divisor 12 (9600 baud at 1.8432 MHz).
    pub fn new() -> Self {
        Self {
            rx: [0; RX_FIFO_LEN],
            rx_head: 0,
            rx_len: 0,
            output: Vec::new(),
            dropped: 0,
            ier: 0,
            lcr: 0,
            mcr: 0,
            lsr_errors: 0,
            msr_delta: 0,
            scr: 0,
            dll: 12,
            dlm: 0,
            fifo_enabled: false,
            rx_trigger: 1,
            thre_pending: false,
        }
    }

    fn dlab(&self) -> bool {
        self.lcr & LCR_DLAB != 0
    }

    fn loopback(&self) -> bool {
        self.mcr & MCR_LOOP != 0
    }

    fn read_reg(&mut self, offset: u8) -> u8 {
        match offset {
            RBR_THR if self.dlab() => self.dll,
            RBR_THR => self.pop_rx().unwrap_or(0),
            IER if self.dlab() => self.dlm,
            IER => self.ier,
            IIR_FCR => {
                // 16550D Table IV: reading IIR resets a THRE interrupt that it reports.
                let id = self.interrupt_id();
                if id == Some(IIR_THRE) {
                    self.thre_pending = false;
                }
                id.unwrap_or(IIR_NONE) | if self.fifo_enabled { IIR_FIFOS } else { 0 }
            }
            LCR => self.lcr,
            MCR => self.mcr,
            LSR => {
                // 16550D 8.6.2: OE, PE, FE and BI are reset whenever the CPU reads LSR.
                let value = self.lsr();
                self.lsr_errors = 0;
                value
            }
            MSR => {
                // 16550D 8.6.5: the delta bits are reset when the CPU reads MSR.
                let value = self.msr_lines() | self.msr_delta;
                self.msr_delta = 0;
                value
            }
            SCR => self.scr,
            _ => 0xFF,
        }
    }

    fn write_reg(&mut self, offset: u8, value: u8) {
        match offset {
            RBR_THR if self.dlab() => self.dll = value,
            RBR_THR => self.transmit(value),
            IER if self.dlab() => self.dlm = value,
            IER => self.write_ier(value),
            IIR_FCR => self.write_fcr(value),
            LCR => self.lcr = value,
            MCR => self.write_mcr(value),
            // LSR and MSR are read-only here (writing them is a factory-test function: 16550D
            // Table II note).
            SCR => self.scr = value,
            _ => {}
        }
    }

    /// A byte written to THR: to the output queue, or to the receiver in loopback mode
    /// (16550D 8.6.4 bit 4: "the transmitter Shift Register output is looped back into the
    /// Receiver Shift Register input").
    fn transmit(&mut self, value: u8) {
        if self.loopback() {
            if !self.push_rx(value) {
                // The FIFO is full: the character in the shift register is overwritten and
                // OE set; the FIFO itself is untouched (16550D 8.6.2 bit 1).
                self.lsr_errors |= LSR_OE;
            }
        } else if self.output.len() < OUTPUT_CAP {
            self.output.push(value);
        } else {
            self.dropped = self.dropped.saturating_add(1);
        }
        // Writing THR resets the THRE interrupt; transmission is instantaneous, so THR is empty
        // again at once and the interrupt is raised again.
        self.thre_pending = true;
    }

    fn write_ier(&mut self, value: u8) {
        let old = self.ier;
        self.ier = value & IER_MASK;
        // Enabling ETBEI while THR is empty raises the THRE interrupt at once (Linux relies on
        // it: 8250_port.c's UART_BUG_THRE and UART_BUG_TXEN probes); disabling it drops it.
        if old & IER_ETBEI == 0 && self.ier & IER_ETBEI != 0 {
            self.thre_pending = true;
        } else if self.ier & IER_ETBEI == 0 {
            self.thre_pending = false;
        }
    }

    /// FCR (16550D 8.5): bit 0 enables both FIFOs and must be set for the other bits to take
    /// effect; changing it clears the FIFOs. Bits 1 and 2 clear RX / TX and self-clear.
    fn write_fcr(&mut self, value: u8) {
        let enable = value & FCR_ENABLE != 0;
        if enable != self.fifo_enabled {
            self.clear_rx();
            self.fifo_enabled = enable;
        }
        if !enable {
            return;
        }
        if value & FCR_CLEAR_RX != 0 {
            self.clear_rx();
        }
        self.rx_trigger = RX_TRIGGER[usize::from(value >> 6)];
    }

    fn write_mcr(&mut self, value: u8) {
        let before = self.msr_lines();
        self.mcr = value & MCR_MASK;
        let after = self.msr_lines();
        let changed = before ^ after;
        // 16550D 8.6.5: DCTS, DDSR, DDCD on any change; TERI on RI going from on to off.
        if changed & MSR_CTS != 0 {
            self.msr_delta |= MSR_DCTS;
        }
        if changed & MSR_DSR != 0 {
            self.msr_delta |= MSR_DDSR;
        }
        if changed & MSR_DCD != 0 {
            self.msr_delta |= MSR_DDCD;
        }
        if before & MSR_RI != 0 && after & MSR_RI == 0 {
            self.msr_delta |= MSR_TERI;
        }
    }

    /// MSR bits 4-7. In loopback they are MCR's outputs (16550D 8.6.4 bit 4: CTS = RTS,
    /// DSR = DTR, RI = OUT1, DCD = OUT2); otherwise the console peer's fixed lines.
    fn msr_lines(&self) -> u8 {
        if !self.loopback() {
            return MSR_PEER;
        }
        let mut lines = 0;
        if self.mcr & MCR_RTS != 0 {
            lines |= MSR_CTS;
        }
        if self.mcr & MCR_DTR != 0 {
            lines |= MSR_DSR;
        }
        if self.mcr & MCR_OUT1 != 0 {
            lines |= MSR_RI;
        }
        if self.mcr & MCR_OUT2 != 0 {
            lines |= MSR_DCD;
        }
        lines
    }

    fn lsr(&self) -> u8 {
        let dr = if self.rx_len > 0 { LSR_DR } else { 0 };
        dr | self.lsr_errors | LSR_THRE | LSR_TEMT
    }

    /// The highest-priority pending and enabled interrupt, as its IIR bits 0-3 (16550D Table IV:
    /// line status, then received data or character timeout, then THRE, then modem status).
    fn interrupt_id(&self) -> Option<u8> {
        if self.ier & IER_ELSI != 0 && self.lsr_errors & LSR_ERRORS != 0 {
            return Some(IIR_RLS);
        }
        if self.ier & IER_ERBFI != 0 && self.rx_len > 0 {
            if !self.fifo_enabled || self.rx_len >= usize::from(self.rx_trigger) {
                return Some(IIR_RDA);
            }
            return Some(IIR_TIMEOUT);
        }
        if self.ier & IER_ETBEI != 0 && self.thre_pending {
            return Some(IIR_THRE);
        }
        if self.ier & IER_EDSSI != 0 && self.msr_delta != 0 {
            return Some(IIR_MSR);
        }
        None
    }

    /// Whether the UART drives its ISA interrupt line (COM1: IRQ 4). On a PC the INTRPT pin is
    /// gated by the OUT2 output; loopback forces OUT2 inactive (16550D 8.6.4 bit 4: "the four
    /// Modem Control outputs are forced to their inactive state"), so no interrupt reaches the
    /// bus in loopback mode.
    pub fn irq_level(&self) -> bool {
        self.mcr & MCR_OUT2 != 0 && !self.loopback() && self.interrupt_id().is_some()
    }

    fn rx_capacity(&self) -> usize {
        if self.fifo_enabled {
            RX_FIFO_LEN
        } else {
            1
        }
    }

    fn push_rx(&mut self, byte: u8) -> bool {
        if self.rx_len >= self.rx_capacity() {
            return false;
        }
        let tail = (self.rx_head + self.rx_len) % RX_FIFO_LEN;
        self.rx[tail] = byte;
        self.rx_len += 1;
        true
    }

    fn pop_rx(&mut self) -> Option<u8> {
        if self.rx_len == 0 {
            return None;
        }
        let byte = self.rx[self.rx_head];
        self.rx_head = (self.rx_head + 1) % RX_FIFO_LEN;
        self.rx_len -= 1;
        Some(byte)
    }

    fn clear_rx(&mut self) {
        self.rx_head = 0;
        self.rx_len = 0;
    }

    /// Whether [`Uart::receive`] would take a byte now: the receiver FIFO (or holding register)
    /// has room and the serial input is connected (not loopback mode).
    pub fn can_receive(&self) -> bool {
        !self.loopback() && self.rx_len < self.rx_capacity()
    }

    /// Offers a byte from the console to the receiver. Returns false (and keeps nothing) when it
    /// cannot take it: the FIFO is full, or loopback mode disconnects the serial input
    /// (16550D 8.6.4 bit 4).
    pub fn receive(&mut self, byte: u8) -> bool {
        if self.loopback() {
            return false;
        }
        self.push_rx(byte)
    }

    /// Moves the transmitted bytes to the end of `out`.
    pub fn take_output(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.output);
        self.output.clear();
    }

    /// Transmitted bytes waiting for [`Uart::take_output`].
    pub fn output_len(&self) -> usize {
        self.output.len()
    }

    /// Bytes dropped because the output queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The divisor latch (DLM:DLL); read back only, it sets no timing.
    pub fn divisor(&self) -> u16 {
        u16::from_le_bytes([self.dll, self.dlm])
    }
}

impl Device for Uart {
    /// Reads the register at `offset` (0-7) into `data[0]`. Other bytes of a wider access read
    /// as all ones, as does any offset past 7; an empty access does nothing.
    fn read(&mut self, offset: u64, data: &mut [u8], _now: ClockNs) {
        let Some((first, rest)) = data.split_first_mut() else { return };
        rest.fill(0xFF);
        *first = match u8::try_from(offset) {
            Ok(offset) if offset <= SCR => self.read_reg(offset),
            _ => 0xFF,
        };
    }

    /// Writes `data[0]` to the register at `offset` (0-7). Other bytes of a wider access and
    /// offsets past 7 are ignored.
    fn write(&mut self, offset: u64, data: &[u8], _now: ClockNs) -> WriteEffect {
        let Some(&value) = data.first() else { return WriteEffect::None };
        if let Ok(offset) = u8::try_from(offset) {
            self.write_reg(offset, value);
        }
        WriteEffect::None
    }
}

#[cfg(test)]
mod tests;

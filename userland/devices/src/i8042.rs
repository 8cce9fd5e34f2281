//! The Intel 8042 keyboard controller of a PC/AT, with no keyboard and no mouse plugged in: the
//! data port 0x60 and the status (read) / command (write) port 0x64.
//!
//! What it is for: the controller's reset line (command 0xFE, or an output-port write with bit 0
//! clear, is how Linux's `reboot=kbd` path and many other guests restart the machine:
//! [`I8042::take_reset_request`]) and its A20 gate, plus enough of the command set that a guest
//! probing for PS/2 devices finds a working controller with nothing attached and moves on.
//!
//! Modelled: the status register (output buffer full, system flag, command/data, "not inhibited",
//! auxiliary data, timeout), the controller configuration byte and the rest of the 32-byte RAM
//! (commands 0x20-0x3F read, 0x60-0x7F write), self test 0xAA (answers 0x55), interface tests
//! 0xAB and 0xA9 (answer 0: the lines are fine), port enable/disable 0xA7/0xA8/0xAD/0xAE, read
//! input port 0xC0, read/write output port 0xD0/0xD1, the loop-back writes 0xD2 (as if from the
//! keyboard) and 0xD3 (as if from the mouse), 0xD4 (send to the mouse), A20 0xDD/0xDF, read test
//! inputs 0xE0 and the pulse commands 0xF0-0xFF. A byte sent to a device (a data-port write with no
//! command waiting for it, or after 0xD4) finds nobody: the controller answers 0xFE with the
//! timeout bit set, as a real one does when the device never clocks, so a driver's probe fails at
//! once instead of waiting out its own timeout.
//!
//! Interrupts: IRQ 1 is high while the output buffer holds a byte from the keyboard side and the
//! configuration byte enables it (bit 0); IRQ 12 likewise for the mouse side (bit 1). Answers to
//! controller commands raise no interrupt (drivers poll for them). Levels: the monitor passes them
//! to the edge-triggered PIC, which latches the rising edge.
//!
//! The output buffer is one byte, as on the part: a new byte replaces an unread one. A read of the
//! data port with nothing waiting returns the last byte again. Holds no other buffers.
//!
//! Does not: model keyboards or mice, scan-code translation, the security lock or password
//! commands, or A20 masking of guest memory (the gate's state is only reported by
//! [`I8042::a20_enabled`]).
//!
//! See: IBM Personal System/2 Hardware Interface Technical Reference, "Keyboard/Auxiliary Device
//! Controller" (cited as "PS/2 8042"); IBM PC/AT Technical Reference, "Keyboard Controller".

use crate::device::{reset_effect, ClockNs, PortDevice, WriteEffect};

/// The controller's base port: [`crate::Device`] offsets are ports minus this (0 data, 4 status and
/// command; the platform maps the two windows).
pub const BASE: u16 = DATA;
/// The data port.
pub const DATA: u16 = 0x60;
/// The status (read) and command (write) port.
pub const COMMAND: u16 = 0x64;

/// Status register bits (PS/2 8042 "Status Register").
pub const STS_OBF: u8 = 0x01;
pub const STS_IBF: u8 = 0x02;
pub const STS_SYS: u8 = 0x04;
/// The last write was to the command port.
pub const STS_CMD: u8 = 0x08;
/// The keyboard is not inhibited (the key lock is open).
pub const STS_UNLOCKED: u8 = 0x10;
/// The output buffer holds a byte from the auxiliary device (mouse).
pub const STS_AUX: u8 = 0x20;
pub const STS_TIMEOUT: u8 = 0x40;
pub const STS_PARITY: u8 = 0x80;

/// Controller configuration byte bits (PS/2 8042 "Controller Command Byte").
pub const CTR_KBD_INT: u8 = 0x01;
pub const CTR_AUX_INT: u8 = 0x02;
pub const CTR_SYS: u8 = 0x04;
pub const CTR_KBD_DISABLE: u8 = 0x10;
pub const CTR_AUX_DISABLE: u8 = 0x20;
pub const CTR_XLATE: u8 = 0x40;

/// Output port bits (PS/2 8042 "Output Port").
pub const OUT_RESET: u8 = 0x01;
pub const OUT_A20: u8 = 0x02;

/// What a device that is not there answers: "resend" after a transmit timeout.
const NO_DEVICE: u8 = 0xFE;
/// The configuration byte a PC BIOS leaves: keyboard interrupt, system flag, mouse port disabled,
/// scan-code translation.
const CTR_DEFAULT: u8 = CTR_KBD_INT | CTR_SYS | CTR_AUX_DISABLE | CTR_XLATE;
/// Output port after power-on: reset line inactive (high), A20 enabled, keyboard clock and data
/// high.
const OUT_DEFAULT: u8 = 0xC0 | OUT_A20 | OUT_RESET;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Controller,
    Keyboard,
    Aux,
}

/// The 8042.
#[derive(Debug, Clone)]
pub struct I8042 {
    /// The controller's RAM; byte 0 is the configuration byte.
    ram: [u8; 32],
    output: u8,
    /// Who put `output` there, if it has not been read.
    full: Option<Source>,
    timeout: bool,
    last_was_command: bool,
    self_tested: bool,
    /// A command that waits for its data byte.
    pending: Option<u8>,
    output_port: u8,
    reset_requested: bool,
}

impl Default for I8042 {
    fn default() -> Self {
        Self::new()
    }
}

impl I8042 {
    /// The controller as a PC BIOS leaves it: self-tested, keyboard interrupt enabled, mouse port
    /// disabled, output buffer empty.
    pub fn new() -> Self {
        let mut ram = [0u8; 32];
        ram[0] = CTR_DEFAULT;
        Self {
            ram,
            output: 0,
            full: None,
            timeout: false,
            last_was_command: false,
            self_tested: true,
            pending: None,
            output_port: OUT_DEFAULT,
            reset_requested: false,
        }
    }

    /// Whether the guest pulsed the reset line since the last call (command 0xFE or any 0xF0-0xFF
    /// with bit 0 clear, or an output-port write with bit 0 clear). Clears the request.
    pub fn take_reset_request(&mut self) -> bool {
        core::mem::take(&mut self.reset_requested)
    }

    /// The A20 gate (output port bit 1).
    pub fn a20_enabled(&self) -> bool {
        self.output_port & OUT_A20 != 0
    }

    /// IRQ 1: a keyboard-side byte waits and the configuration byte enables its interrupt.
    pub fn irq1_level(&self) -> bool {
        self.full == Some(Source::Keyboard) && self.ram[0] & CTR_KBD_INT != 0
    }

    /// IRQ 12: a mouse-side byte waits and the configuration byte enables its interrupt.
    pub fn irq12_level(&self) -> bool {
        self.full == Some(Source::Aux) && self.ram[0] & CTR_AUX_INT != 0
    }

    /// The configuration byte.
    pub fn config_byte(&self) -> u8 {
        self.ram[0]
    }

    fn status(&self) -> u8 {
        let mut s = STS_UNLOCKED;
        if self.full.is_some() {
            s |= STS_OBF;
        }
        if self.full == Some(Source::Aux) {
            s |= STS_AUX;
        }
        if self.self_tested && self.ram[0] & CTR_SYS != 0 {
            s |= STS_SYS;
        }
        if self.last_was_command {
            s |= STS_CMD;
        }
        if self.timeout {
            s |= STS_TIMEOUT;
        }
        s
    }

    fn read_data(&mut self) -> u8 {
        self.full = None;
        self.timeout = false;
        self.output
    }

    fn put(&mut self, byte: u8, source: Source) {
        self.output = byte;
        self.full = Some(source);
    }

    /// A byte for a device that is not attached: it never clocks, the controller times out.
    fn send_to_absent(&mut self, source: Source) {
        self.timeout = true;
        self.put(NO_DEVICE, source);
    }

    fn write_data(&mut self, value: u8) {
        self.last_was_command = false;
        match self.pending.take() {
            Some(cmd @ 0x60..=0x7F) => {
                self.ram[usize::from(cmd & 0x1F)] = value;
            }
            Some(0xD1) => self.write_output_port(value),
            Some(0xD2) => self.put(value, Source::Keyboard),
            Some(0xD3) => self.put(value, Source::Aux),
            Some(0xD4) => {
                // Sending to the mouse enables its port (PS/2 8042 "Write Auxiliary Device").
                self.ram[0] &= !CTR_AUX_DISABLE;
                self.send_to_absent(Source::Aux);
            }
            _ => {
                self.ram[0] &= !CTR_KBD_DISABLE;
                self.send_to_absent(Source::Keyboard);
            }
        }
    }

    fn write_output_port(&mut self, value: u8) {
        self.output_port = value;
        if value & OUT_RESET == 0 {
            self.reset_requested = true;
        }
    }

    fn command(&mut self, cmd: u8) {
        self.last_was_command = true;
        self.pending = None;
        match cmd {
            0x20..=0x3F => self.put(self.ram[usize::from(cmd & 0x1F)], Source::Controller),
            0x60..=0x7F | 0xD1..=0xD4 => self.pending = Some(cmd),
            0xA7 => self.ram[0] |= CTR_AUX_DISABLE,
            0xA8 => self.ram[0] &= !CTR_AUX_DISABLE,
            0xA9 | 0xAB => self.put(0x00, Source::Controller),
            0xAA => {
                self.self_tested = true;
                self.put(0x55, Source::Controller);
            }
            0xAD => self.ram[0] |= CTR_KBD_DISABLE,
            0xAE => self.ram[0] &= !CTR_KBD_DISABLE,
            // Input port: keyboard not inhibited (bit 7).
            0xC0 => self.put(0x80, Source::Controller),
            0xD0 => {
                let mut value = self.output_port & !0x30;
                if self.irq1_level() {
                    value |= 0x10;
                }
                if self.irq12_level() {
                    value |= 0x20;
                }
                self.put(value, Source::Controller);
            }
            0xDD => self.output_port &= !OUT_A20,
            0xDF => self.output_port |= OUT_A20,
            0xE0 => self.put(0x00, Source::Controller),
            // Pulse output port bits 0-3 low for those bits that are 0 in the command; bit 0 is
            // the reset line.
            0xF0..=0xFF if cmd & 1 == 0 => self.reset_requested = true,
            _ => {}
        }
    }
}

impl PortDevice for I8042 {
    const BASE: u16 = BASE;

    /// Reads `data.len()` bytes from ports `port..`: 0x60 the output buffer, 0x64 the status; any
    /// other port reads as all ones.
    fn read_port(&mut self, port: u16, data: &mut [u8], _now: ClockNs) {
        for (i, byte) in data.iter_mut().enumerate() {
            *byte = match u32::from(port) + i as u32 {
                p if p == u32::from(DATA) => self.read_data(),
                p if p == u32::from(COMMAND) => self.status(),
                _ => 0xFF,
            };
        }
    }

    /// Writes `data` to ports `port..`: 0x60 data, 0x64 commands; other ports are ignored. A reset
    /// pulse it causes is [`WriteEffect::Reset`] (and is also kept for
    /// [`I8042::take_reset_request`]).
    fn write_port(&mut self, port: u16, data: &[u8], _now: ClockNs) -> WriteEffect {
        let earlier = core::mem::take(&mut self.reset_requested);
        for (i, &value) in data.iter().enumerate() {
            match u32::from(port) + i as u32 {
                p if p == u32::from(DATA) => self.write_data(value),
                p if p == u32::from(COMMAND) => self.command(value),
                _ => {}
            }
        }
        reset_effect(&mut self.reset_requested, earlier)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Rng;
    use crate::Device;

    /// The device offset of `port` (ports below the base wrap to offsets no port reaches).
    fn at(port: u16) -> u64 {
        u64::from(port).wrapping_sub(u64::from(BASE))
    }

    fn inb(kbc: &mut I8042, port: u16) -> u8 {
        let mut b = [0u8];
        kbc.read(at(port), &mut b, 0);
        b[0]
    }

    fn outb(kbc: &mut I8042, port: u16, value: u8) {
        kbc.write(at(port), &[value], 0);
    }

    /// Command, then the answer (which must be waiting).
    fn ask(kbc: &mut I8042, cmd: u8) -> u8 {
        outb(kbc, COMMAND, cmd);
        assert_ne!(inb(kbc, COMMAND) & STS_OBF, 0, "command {cmd:#x} answers");
        inb(kbc, DATA)
    }

    #[test]
    fn initial_state() {
        let mut kbc = I8042::new();
        let status = inb(&mut kbc, COMMAND);
        assert_eq!(status & STS_OBF, 0);
        assert_eq!(status & STS_IBF, 0);
        assert_ne!(status & STS_SYS, 0);
        assert_eq!(inb(&mut kbc, DATA), 0, "nothing was ever output");
        assert_eq!(ask(&mut kbc, 0x20), CTR_DEFAULT);
        assert!(kbc.a20_enabled());
        assert!(!kbc.take_reset_request());
        assert!(!kbc.irq1_level() && !kbc.irq12_level());
    }

    /// What Linux's i8042 driver does at probe (i8042_controller_check, _selftest, _init).
    #[test]
    fn linux_probe_sequence() {
        let mut kbc = I8042::new();
        // i8042_flush: read while OBF.
        for _ in 0..16 {
            if inb(&mut kbc, COMMAND) & STS_OBF == 0 {
                break;
            }
            inb(&mut kbc, DATA);
        }
        assert_eq!(ask(&mut kbc, 0xAA), 0x55);
        let ctr = ask(&mut kbc, 0x20);
        assert_eq!(ask(&mut kbc, 0x20), ctr, "reads twice the same");
        outb(&mut kbc, COMMAND, 0x60);
        assert_ne!(inb(&mut kbc, COMMAND) & STS_CMD, 0);
        outb(&mut kbc, DATA, (ctr | CTR_KBD_DISABLE | CTR_AUX_DISABLE) & !(CTR_KBD_INT | CTR_AUX_INT));
        assert_eq!(inb(&mut kbc, COMMAND) & STS_CMD, 0);
        assert_eq!(ask(&mut kbc, 0x20), 0x74);
        assert_eq!(ask(&mut kbc, 0xAB), 0x00, "keyboard interface test");
        // AUX loop: the byte comes back from the mouse side.
        outb(&mut kbc, COMMAND, 0xD3);
        outb(&mut kbc, DATA, 0x5A);
        assert_eq!(inb(&mut kbc, COMMAND) & (STS_OBF | STS_AUX), STS_OBF | STS_AUX);
        assert!(!kbc.irq12_level(), "mouse interrupt disabled in the CTR");
        assert_eq!(inb(&mut kbc, DATA), 0x5A);
        assert_eq!(inb(&mut kbc, COMMAND) & STS_OBF, 0);
        outb(&mut kbc, COMMAND, 0xA8);
        assert_eq!(kbc.config_byte() & CTR_AUX_DISABLE, 0);
        outb(&mut kbc, COMMAND, 0xA7);
        assert_ne!(kbc.config_byte() & CTR_AUX_DISABLE, 0);
        assert_eq!(ask(&mut kbc, 0xA9), 0x00);
        // Enable interrupts, then the keyboard driver's GET ID finds nobody.
        outb(&mut kbc, COMMAND, 0x60);
        outb(&mut kbc, DATA, CTR_KBD_INT | CTR_AUX_INT | CTR_SYS | CTR_XLATE);
        outb(&mut kbc, DATA, 0xF2);
        assert_eq!(inb(&mut kbc, COMMAND) & (STS_OBF | STS_TIMEOUT | STS_AUX), STS_OBF | STS_TIMEOUT);
        assert!(kbc.irq1_level());
        assert_eq!(inb(&mut kbc, DATA), NO_DEVICE);
        assert!(!kbc.irq1_level());
        assert_eq!(inb(&mut kbc, COMMAND) & STS_TIMEOUT, 0);
        // The mouse too.
        outb(&mut kbc, COMMAND, 0xD4);
        outb(&mut kbc, DATA, 0xF2);
        assert!(kbc.irq12_level() && !kbc.irq1_level());
        assert_eq!(inb(&mut kbc, COMMAND) & (STS_AUX | STS_TIMEOUT), STS_AUX | STS_TIMEOUT);
        assert_eq!(inb(&mut kbc, DATA), NO_DEVICE);
        assert!(!kbc.irq12_level());
        // Nothing waiting: the last byte again.
        assert_eq!(inb(&mut kbc, DATA), NO_DEVICE);
    }

    #[test]
    fn reset_paths() {
        let mut kbc = I8042::new();
        outb(&mut kbc, COMMAND, 0xFE);
        assert!(kbc.take_reset_request());
        assert!(!kbc.take_reset_request(), "taken once");
        outb(&mut kbc, COMMAND, 0xFF);
        outb(&mut kbc, COMMAND, 0xFD);
        assert!(!kbc.take_reset_request(), "0xFF and 0xFD do not pulse bit 0");
        outb(&mut kbc, COMMAND, 0xF0);
        assert!(kbc.take_reset_request());
        outb(&mut kbc, COMMAND, 0xD1);
        outb(&mut kbc, DATA, 0xDF);
        assert!(!kbc.take_reset_request());
        assert_eq!(ask(&mut kbc, 0xD0) & 0x0F, 0x0F);
        outb(&mut kbc, COMMAND, 0xD1);
        outb(&mut kbc, DATA, 0xDE);
        assert!(kbc.take_reset_request());
    }

    #[test]
    fn a20_and_ram() {
        let mut kbc = I8042::new();
        outb(&mut kbc, COMMAND, 0xDD);
        assert!(!kbc.a20_enabled());
        outb(&mut kbc, COMMAND, 0xDF);
        assert!(kbc.a20_enabled());
        outb(&mut kbc, COMMAND, 0xD1);
        outb(&mut kbc, DATA, 0xCD);
        assert!(!kbc.a20_enabled());
        outb(&mut kbc, COMMAND, 0x7F);
        outb(&mut kbc, DATA, 0x42);
        assert_eq!(ask(&mut kbc, 0x3F), 0x42);
        // A command cancels a data byte that was still expected.
        outb(&mut kbc, COMMAND, 0x60);
        outb(&mut kbc, COMMAND, 0xAD);
        assert_ne!(kbc.config_byte() & CTR_KBD_DISABLE, 0);
        outb(&mut kbc, COMMAND, 0xAE);
        assert_eq!(kbc.config_byte() & CTR_KBD_DISABLE, 0);
        // Keyboard-side loopback raises IRQ 1 when enabled.
        outb(&mut kbc, COMMAND, 0xD2);
        outb(&mut kbc, DATA, 0x1C);
        assert!(kbc.irq1_level());
        assert_eq!(ask(&mut kbc, 0xE0), 0, "a controller answer replaces the unread byte");
        assert!(!kbc.irq1_level());
        assert_eq!(ask(&mut kbc, 0xC0), 0x80);
        // A system flag cleared in the CTR shows in the status.
        outb(&mut kbc, COMMAND, 0x60);
        outb(&mut kbc, DATA, 0);
        assert_eq!(inb(&mut kbc, COMMAND) & STS_SYS, 0);
        let mut two = [0u8; 2];
        kbc.read(at(0x63), &mut two, 0);
        assert_eq!(two[0], 0xFF);
        kbc.write(at(0x5F), &[1, 2], 0);
        kbc.read(at(DATA), &mut [], 0);
    }

    #[test]
    fn random_stream_never_panics() {
        let mut rng = Rng::new(0x8042);
        let mut kbc = I8042::new();
        for _ in 0..200_000 {
            let port = [DATA, COMMAND, 0x61, 0x63][rng.below(4) as usize];
            let mut data = [rng.byte(), rng.byte()];
            let size = rng.below(3) as usize;
            if rng.below(2) == 0 {
                kbc.write(at(port), &data[..size], 0);
            } else {
                kbc.read(at(port), &mut data[..size], 0);
            }
            let _ = kbc.take_reset_request();
            let _ = (kbc.irq1_level(), kbc.irq12_level());
        }
    }
}

//! COM1 output: the 16550 UART at port 0x3F8 (docs/guests.md), written by polling.
//!
//! The UART is used as the monitor presents it at reset: the divisor and line settings are left
//! alone (an emulated UART needs no baud rate), and its interrupts stay off. `\n` goes out as
//! `\r\n`. There is no lock: the guests run on one CPU, and an interrupt handler printing in the
//! middle of a line only interleaves characters.

use core::fmt;

use crate::io;

/// COM1's base port.
pub const COM1: u16 = 0x3F8;
/// Transmit holding register (DLAB = 0).
const THR: u16 = COM1;
/// Line status register.
const LSR: u16 = COM1 + 5;
/// LSR bit 5: the transmit holding register is empty.
const LSR_THRE: u8 = 1 << 5;
/// How many times to poll LSR before sending anyway, so that a UART that never reports THRE
/// garbles output instead of hanging the guest.
const THRE_POLLS: u32 = 1 << 20;

/// Sends one byte, after waiting (bounded) for the transmitter to be ready.
pub fn write_byte(byte: u8) {
    for _ in 0..THRE_POLLS {
        // SAFETY: reading COM1's LSR has no side effect besides the UART's status.
        if unsafe { io::inb(LSR) } & LSR_THRE != 0 {
            break;
        }
        core::hint::spin_loop();
    }
    // SAFETY: writing THR sends the byte on COM1; it has no effect on guest memory.
    unsafe { io::outb(THR, byte) };
}

/// Sends bytes, with `\n` as `\r\n`.
pub fn write_bytes(bytes: &[u8]) {
    for &b in bytes {
        if b == b'\n' {
            write_byte(b'\r');
        }
        write_byte(b);
    }
}

/// COM1 as a `fmt::Write` sink.
pub struct Com1;

impl fmt::Write for Com1 {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        write_bytes(s.as_bytes());
        Ok(())
    }
}

#[doc(hidden)]
pub fn _print(args: fmt::Arguments) {
    // Com1 never returns an error.
    let _ = fmt::Write::write_fmt(&mut Com1, args);
}

/// Prints to COM1.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::serial::_print(format_args!($($arg)*)) };
}

/// Prints a line to COM1 (`\r\n`-terminated on the wire).
#[macro_export]
macro_rules! println {
    () => { $crate::serial::_print(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::serial::_print(format_args!("{}\n", format_args!($($arg)*))) };
}

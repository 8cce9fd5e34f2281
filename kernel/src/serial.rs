//! COM1 (16550 UART at 0x3f8), shared by the logger, the prompt and the fatal-error path.
//!
//! The fatal path (`panic_writer`) takes the port even if another context holds its lock: a
//! panic or exception must reach the screen, and the holder will never run again anyway.

use core::fmt;
use spin::Mutex;
use uart_16550::SerialPort;

const COM1: u16 = 0x3f8;

// SAFETY: 0x3f8 is COM1's standard base; nothing else in the kernel drives these ports.
static PORT: Mutex<SerialPort> = Mutex::new(unsafe { SerialPort::new(COM1) });

pub fn init() {
    PORT.lock().init();
    // The crate programs 38400 baud; GRUB and the README say 115200 8N1: divisor 1.
    use crate::arch::x86_64::instructions::outb;
    // SAFETY: COM1's line-control (base+3) and divisor-latch registers (base+0/1 with DLAB set),
    // then IER (base+1) = receive interrupts, as the crate left it. See: 16550 datasheet.
    unsafe { outb(COM1 + 3, 0x80) };
    // SAFETY: as above (the divisor latch, low byte).
    unsafe { outb(COM1, 0x01) };
    // SAFETY: as above (the divisor latch, high byte).
    unsafe { outb(COM1 + 1, 0x00) };
    // SAFETY: as above (line control: 8N1, DLAB clear).
    unsafe { outb(COM1 + 3, 0x03) };
    // SAFETY: as above (IER: receive interrupts).
    unsafe { outb(COM1 + 1, 0x01) };
}

/// Write text, turning `\n` into `\r\n` for serial terminals.
pub fn write_str(s: &str) {
    let mut port = PORT.lock();
    write_to(&mut port, s);
}

fn write_to(port: &mut SerialPort, s: &str) {
    for b in s.bytes() {
        if b == b'\n' {
            port.send_raw(b'\r');
        }
        port.send_raw(b);
    }
}

/// Write raw bytes (echo of the line editor).
pub fn write_bytes(bytes: &[u8]) {
    let mut port = PORT.lock();
    for &b in bytes {
        port.send_raw(b);
    }
}

pub fn try_read_byte() -> Option<u8> {
    PORT.lock().try_receive().ok()
}

pub struct Writer;

impl fmt::Write for Writer {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        write_str(s);
        Ok(())
    }
}

/// A writer for the fatal-error path that does not wait for the lock.
pub struct PanicWriter;

impl fmt::Write for PanicWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // SAFETY: see the module doc: on the fatal path the current holder of the lock (if any)
        // is this CPU's interrupted code or a CPU that will be stopped; interleaved bytes are the
        // worst outcome.
        unsafe { PORT.force_unlock() };
        write_str(s);
        Ok(())
    }
}

pub fn panic_writer() -> PanicWriter {
    PanicWriter
}

#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = write!($crate::serial::Writer, $($arg)*);
    }};
}

#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => {{
        $crate::print!($($arg)*);
        $crate::print!("\n");
    }};
}

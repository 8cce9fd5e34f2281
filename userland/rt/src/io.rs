//! Printing: to the serial console for the process that holds it (vmd), else to the kernel log.

use core::fmt::{self, Write};

use keel_abi::HANDLE_CONSOLE;

use crate::sys;

/// Formats into a fixed buffer, then hands the bytes over in one call (no heap needed).
struct Line {
    buf: [u8; 512],
    len: usize,
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// A line to the kernel log (works in every process).
pub fn debug(args: fmt::Arguments) {
    let mut line = Line { buf: [0; 512], len: 0 };
    let _ = line.write_fmt(args);
    let _ = sys::debug_write(&line.buf[..line.len]);
}

/// Write text to the serial console, turning `\n` into `\r\n`.
pub fn console_str(s: &str) {
    let mut start = 0;
    let bytes = s.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\n' {
            let _ = sys::console_write(HANDLE_CONSOLE, &bytes[start..i]);
            let _ = sys::console_write(HANDLE_CONSOLE, b"\r\n");
            start = i + 1;
        }
    }
    if start < bytes.len() {
        let _ = sys::console_write(HANDLE_CONSOLE, &bytes[start..]);
    }
}

pub struct Console;

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        console_str(s);
        Ok(())
    }
}

#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = write!($crate::io::Console, $($arg)*);
    }};
}

#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => {{ $crate::print!($($arg)*); $crate::print!("\n"); }};
}

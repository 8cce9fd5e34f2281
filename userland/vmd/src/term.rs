//! The serial terminal: output is collected in a buffer and written in one system call per
//! event; text gets `\n` -> `\r\n`, echo and console bytes go out raw.

use alloc::vec::Vec;
use core::fmt;

use keel_abi::HANDLE_CONSOLE;
use keel_rt::sys;

pub const PROMPT: &str = "keel> ";

#[derive(Default)]
pub struct Term {
    out: Vec<u8>,
}

impl Term {
    /// Text with `\n` line ends (turned into CR LF).
    pub fn text(&mut self, s: &str) {
        for &b in s.as_bytes() {
            if b == b'\n' {
                self.out.push(b'\r');
            }
            self.out.push(b);
        }
    }

    pub fn line(&mut self, s: &str) {
        self.text(s);
        self.text("\n");
    }

    pub fn raw(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// A buffer to append raw bytes to (echo, console output).
    pub fn raw_buf(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }

    pub fn flush(&mut self) {
        let mut rest: &[u8] = &self.out;
        while !rest.is_empty() {
            let chunk = &rest[..rest.len().min(1 << 16)];
            match sys::console_write(HANDLE_CONSOLE, chunk) {
                Ok(n) if n > 0 => rest = &rest[n..],
                _ => break,
            }
        }
        self.out.clear();
    }
}

impl fmt::Write for Term {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.text(s);
        Ok(())
    }
}

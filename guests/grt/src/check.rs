//! Check lines and the verdict line.
//!
//! A guest prints one line per check, `<guest>: ok: <what>` or `<guest>: FAILED: <what>`, then
//! exactly one verdict line, `PASS <guest>` or `FAIL <guest>: <first failed check>`, and stops
//! the VM with [`EXIT_PASS`] or [`EXIT_FAIL`]. Check lines start with the guest's name, so only the
//! verdict line starts with `PASS` or `FAIL`.

use core::fmt::{self, Write};

use crate::{exit, println, EXIT_FAIL, EXIT_PASS};

/// A fixed-capacity string that silently truncates (on a character boundary).
pub struct FixedStr<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> FixedStr<N> {
    pub const fn new() -> Self {
        FixedStr { buf: [0; N], len: 0 }
    }

    pub fn as_str(&self) -> &str {
        // `write_str` only ever appends whole characters.
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl<const N: usize> Default for FixedStr<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Write for FixedStr<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            let mut bytes = [0; 4];
            let encoded = c.encode_utf8(&mut bytes).as_bytes();
            if self.len + encoded.len() > N {
                break;
            }
            self.buf[self.len..self.len + encoded.len()].copy_from_slice(encoded);
            self.len += encoded.len();
        }
        Ok(())
    }
}

/// The checks of one guest run.
pub struct Checks {
    guest: &'static str,
    passed: u32,
    failed: u32,
    first_failure: FixedStr<160>,
}

impl Checks {
    /// Starts the checks of the guest named `guest` (the name in its verdict line).
    pub fn new(guest: &'static str) -> Self {
        Checks { guest, passed: 0, failed: 0, first_failure: FixedStr::new() }
    }

    /// Records and prints one check; returns `ok`.
    pub fn check(&mut self, ok: bool, what: fmt::Arguments) -> bool {
        if ok {
            self.passed += 1;
            println!("{}: ok: {}", self.guest, what);
        } else {
            if self.failed == 0 {
                let _ = self.first_failure.write_fmt(what);
            }
            self.failed += 1;
            println!("{}: FAILED: {}", self.guest, what);
        }
        ok
    }

    /// Prints an informational line (not a check).
    pub fn note(&self, what: fmt::Arguments) {
        println!("{}: {}", self.guest, what);
    }

    /// Whether every check so far passed.
    pub fn all_passed(&self) -> bool {
        self.failed == 0
    }

    /// Prints the verdict line and stops the VM: `PASS <guest>` (exit status 0) if every check
    /// passed, else `FAIL <guest>: <first failure>` (exit status 1).
    pub fn finish(self) -> ! {
        if self.failed == 0 {
            println!("{}: {} checks passed", self.guest, self.passed);
            println!("PASS {}", self.guest);
            exit(EXIT_PASS)
        } else {
            println!("{}: {} of {} checks failed", self.guest, self.failed, self.failed + self.passed);
            println!("FAIL {}: {}", self.guest, self.first_failure.as_str());
            exit(EXIT_FAIL)
        }
    }

    /// Fails at once: prints `FAIL <guest>: <what>` and stops the VM with exit status 1.
    pub fn fail(self, what: fmt::Arguments) -> ! {
        println!("FAIL {}: {}", self.guest, what);
        exit(EXIT_FAIL)
    }
}

//! A group of related checks reported as one check line (the console is slow when another
//! guest competes for the CPU, so the guest prints little): each failed item is printed on its
//! own `hostile: FAILED: ...` note line, then the group's check line counts them (and names the
//! items if one failed).

use core::fmt::{self, Write};

use keel_guest_rt::check::{Checks, FixedStr};

pub struct Group {
    passed: u32,
    failed: u32,
    /// The items' short names, for the group's line.
    names: FixedStr<400>,
}

impl Group {
    pub fn new() -> Group {
        Group { passed: 0, failed: 0, names: FixedStr::new() }
    }

    /// One item: `name` goes into the group's line; `detail` is printed if it failed.
    pub fn item(&mut self, c: &Checks, ok: bool, name: &str, detail: fmt::Arguments) -> bool {
        if self.passed + self.failed > 0 {
            let _ = self.names.write_str(", ");
        }
        let _ = self.names.write_str(name);
        if ok {
            self.passed += 1;
        } else {
            self.failed += 1;
            c.note(format_args!("FAILED: {name}: {detail}"));
        }
        ok
    }

    /// The group's check line: `<what>: n of n`, with the items' names if one failed.
    pub fn finish(self, c: &mut Checks, what: fmt::Arguments) {
        let total = self.passed + self.failed;
        if self.failed == 0 {
            c.check(true, format_args!("{what}: {total} of {total}"));
        } else {
            c.check(false, format_args!("{what}: {} of {total} ({})", self.passed, self.names.as_str()));
        }
    }
}

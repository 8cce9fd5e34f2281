//! The one error type, `file:line: message`, and the helper that quotes user text inside a
//! message so that an error always stays on one short line.
//! Does not: collect several errors (parsing stops at the first, unlike vmd which goes on).

use alloc::string::String;
use core::fmt::{self, Write};

/// A configuration error. `Display` is `file:line: message`, e.g.
/// `vm.conf:12: syntax error: expected '{' after vm name, found 'memory'`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub file: String,
    pub line: u32,
    pub message: String,
}

impl Error {
    pub(crate) fn new(file: &str, line: u32, message: impl Into<String>) -> Self {
        Self { file: String::from(file), line, message: message.into() }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", plain(&self.file), self.line, self.message)
    }
}

impl core::error::Error for Error {}

/// Control characters and whitespace other than the blank (e.g. U+2028 LINE SEPARATOR), which
/// would break the one-line form of a message.
pub(crate) fn needs_escape(c: char) -> bool {
    c.is_control() || (c.is_whitespace() && c != ' ')
}

/// `s` with control characters escaped (for file names, which are not cut).
pub(crate) fn plain(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if needs_escape(c) {
            let _ = write!(out, "{}", c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Longest piece of user text quoted in a message; longer text is cut and ends in "...".
const SHOW_MAX: usize = 64;

/// `s` in double quotes, control characters escaped, cut to [`SHOW_MAX`] characters.
pub(crate) fn quoted(s: &str) -> String {
    quote(s, '"')
}

/// `s` between `q`s, control characters, `q` and backslashes escaped, cut to [`SHOW_MAX`].
pub(crate) fn quote(s: &str, q: char) -> String {
    let mut out = String::new();
    out.push(q);
    for (i, c) in s.chars().enumerate() {
        if i == SHOW_MAX {
            out.push_str("...");
            break;
        }
        if needs_escape(c) || c == q || c == '\\' {
            let _ = write!(out, "{}", c.escape_default());
        } else {
            out.push(c);
        }
    }
    out.push(q);
    out
}

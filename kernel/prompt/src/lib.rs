//! The foundation's serial prompt (`keel> `): a bounded line editor and the command parser.
//!
//! A placeholder until the control shell moves to ring 3 (vmd); kept small on purpose. Input
//! bytes come from the serial port, so anything may arrive: the editor keeps at most
//! [`MAX_LINE`] bytes, drops other control bytes and escape sequences, and never panics.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

use core::fmt;

/// The longest line the editor keeps; further bytes are dropped (and not echoed).
pub const MAX_LINE: usize = 128;

pub const PROMPT: &str = "keel> ";

/// What the editor asks its caller to do after a byte.
#[derive(Debug, PartialEq, Eq)]
pub enum Edit<'a> {
    /// Nothing to show.
    None,
    /// Echo these bytes to the terminal.
    Echo(&'a [u8]),
    /// Enter was pressed: here is the line (already echoed as CR LF by the caller).
    Line(&'a str),
}

#[derive(Default)]
enum EscapeState {
    #[default]
    Normal,
    Escape,
    Csi,
}

/// A line editor: printable ASCII, backspace/DEL, Ctrl-U (erase line), Ctrl-C (drop line).
pub struct LineEditor {
    buf: [u8; MAX_LINE],
    len: usize,
    escape: EscapeState,
    erase: [u8; 3 * MAX_LINE],
    done: bool,
}

impl Default for LineEditor {
    fn default() -> Self {
        Self::new()
    }
}

impl LineEditor {
    pub const fn new() -> Self {
        Self { buf: [0; MAX_LINE], len: 0, escape: EscapeState::Normal, erase: [0; 3 * MAX_LINE], done: false }
    }

    /// Feed one input byte.
    pub fn feed(&mut self, byte: u8) -> Edit<'_> {
        if self.done {
            self.len = 0;
            self.done = false;
        }
        match self.escape {
            EscapeState::Escape => {
                self.escape = if byte == b'[' { EscapeState::Csi } else { EscapeState::Normal };
                return Edit::None;
            }
            EscapeState::Csi => {
                // A CSI sequence ends with a byte in 0x40..=0x7e (arrow keys and the like).
                if (0x40..=0x7e).contains(&byte) {
                    self.escape = EscapeState::Normal;
                }
                return Edit::None;
            }
            EscapeState::Normal => {}
        }
        match byte {
            b'\r' | b'\n' => {
                self.done = true;
                // Only ASCII is ever stored, so this cannot fail.
                Edit::Line(core::str::from_utf8(&self.buf[..self.len]).unwrap_or(""))
            }
            0x08 | 0x7f => {
                if self.len == 0 {
                    return Edit::None;
                }
                self.len -= 1;
                Edit::Echo(b"\x08 \x08")
            }
            0x15 => self.erase_line(), // Ctrl-U
            0x03 => {
                // Ctrl-C: abandon the line, show ^C and a fresh prompt.
                self.len = 0;
                Edit::Echo(b"^C\r\nkeel> ")
            }
            0x1b => {
                self.escape = EscapeState::Escape;
                Edit::None
            }
            0x20..=0x7e if self.len < MAX_LINE => {
                self.buf[self.len] = byte;
                self.len += 1;
                Edit::Echo(&self.buf[self.len - 1..self.len])
            }
            _ => Edit::None,
        }
    }

    fn erase_line(&mut self) -> Edit<'_> {
        let n = self.len;
        self.len = 0;
        for i in 0..n {
            self.erase[3 * i..3 * i + 3].copy_from_slice(b"\x08 \x08");
        }
        Edit::Echo(&self.erase[..3 * n])
    }
}

/// A command the prompt understands.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Empty,
    Help,
    Version,
    Cpus,
    Mem,
    Reboot,
}

/// Why a line is not a command.
#[derive(Debug, PartialEq, Eq)]
pub enum ParseError<'a> {
    Unknown(&'a str),
    /// A command that takes no arguments was given some.
    ExtraArguments {
        command: &'a str,
    },
}

impl fmt::Display for ParseError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown(word) => write!(f, "unknown command '{word}' (try help)"),
            Self::ExtraArguments { command } => write!(f, "{command}: takes no arguments (usage: {command})"),
        }
    }
}

pub const HELP: &str = "\
commands:
  help     this list
  version  Keel's version and build
  cpus     the processors and their virtualization support
  mem      physical memory: total, free, kernel heap
  reboot   restart the machine";

pub fn parse(line: &str) -> Result<Command, ParseError<'_>> {
    let mut words = line.split_ascii_whitespace();
    let Some(verb) = words.next() else {
        return Ok(Command::Empty);
    };
    let command = match verb {
        "help" | "?" => Command::Help,
        "version" => Command::Version,
        "cpus" => Command::Cpus,
        "mem" => Command::Mem,
        "reboot" => Command::Reboot,
        other => return Err(ParseError::Unknown(other)),
    };
    if words.next().is_some() {
        return Err(ParseError::ExtraArguments { command: verb });
    }
    Ok(command)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn type_line(ed: &mut LineEditor, bytes: &[u8]) -> Option<String> {
        let mut out = None;
        for &b in bytes {
            if let Edit::Line(l) = ed.feed(b) {
                out = Some(l.to_string());
            }
        }
        out
    }

    #[test]
    fn parses_commands() {
        assert_eq!(parse("help"), Ok(Command::Help));
        assert_eq!(parse("  cpus  "), Ok(Command::Cpus));
        assert_eq!(parse(""), Ok(Command::Empty));
        assert_eq!(parse("   "), Ok(Command::Empty));
        assert_eq!(parse("mem"), Ok(Command::Mem));
        assert_eq!(parse("version"), Ok(Command::Version));
        assert_eq!(parse("reboot"), Ok(Command::Reboot));
        assert_eq!(parse("x").unwrap_err().to_string(), "unknown command 'x' (try help)");
        assert_eq!(parse("mem now").unwrap_err(), ParseError::ExtraArguments { command: "mem" });
    }

    #[test]
    fn editing() {
        let mut ed = LineEditor::new();
        assert_eq!(type_line(&mut ed, b"hellp\x7f\x7fp\r").as_deref(), Some("help"));
        assert_eq!(type_line(&mut ed, b"junk\x15mem\n").as_deref(), Some("mem"));
        assert_eq!(type_line(&mut ed, b"abc\x03cpus\r").as_deref(), Some("cpus"));
        // Arrow keys and other escape sequences are dropped.
        assert_eq!(type_line(&mut ed, b"ve\x1b[Arsion\x1b[1;5C\r").as_deref(), Some("version"));
        assert_eq!(type_line(&mut ed, b"\x7f\x7f\r").as_deref(), Some(""));
    }

    #[test]
    fn long_and_binary_input_is_bounded() {
        let mut ed = LineEditor::new();
        let mut input: Vec<u8> = (0..1000).map(|i| b'a' + (i % 26) as u8).collect();
        input.extend_from_slice(&[0, 0xff, 0x80, 0x07]);
        input.push(b'\r');
        let line = type_line(&mut ed, &input).unwrap();
        assert_eq!(line.len(), MAX_LINE);
        // Ctrl-U on a full line erases all of it.
        for _ in 0..MAX_LINE {
            ed.feed(b'x');
        }
        match ed.feed(0x15) {
            Edit::Echo(e) => assert_eq!(e.len(), 3 * MAX_LINE),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_byte_is_safe() {
        let mut ed = LineEditor::new();
        for round in 0..4u32 {
            for b in 0..=255u8 {
                let _ = ed.feed(b.wrapping_mul(round as u8 + 1));
            }
        }
    }
}

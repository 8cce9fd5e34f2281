//! The console escape: while attached to a VM's console, `~.` at the start of a line detaches.
//!
//! What it does: [`EscapeFilter`] sits between the serial port and a guest's console and passes
//! keystrokes through, except for cu(1)'s escape character `~` typed at the start of a line
//! (after CR or LF, or first thing after attaching). That `~` is held back and the next byte
//! decides: `.` detaches, `?` asks for the list of escapes, `~` sends one `~`, and anything else
//! sends the `~` and that byte.
//!
//! What it does not do: print anything (the caller prints the escape list on
//! [`EscapeAction::Help`] and its own message on detach), time out a held `~` (the caller may
//! [`EscapeFilter::flush`] it), or know cu's other escapes (`~^D`, `~#`...): those bytes are
//! forwarded like any other. It keeps no buffer: at most two bytes are written per byte fed.

use alloc::vec::Vec;

/// The escape character, as in cu(1).
pub const ESCAPE: u8 = b'~';

/// The list of escapes, for the caller to print on [`EscapeAction::Help`] (lines end in "\r\n").
pub const ESCAPE_HELP: &str = "~.  detach from the console\r\n~~  send a ~\r\n~?  this list\r\n";

/// What the caller should do after a byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EscapeAction {
    /// Keep going (send whatever was added to `to_guest`).
    Continue,
    /// `~.`: detach from the console. Nothing was forwarded.
    Detach,
    /// `~?`: print the escape list ([`ESCAPE_HELP`]). Nothing was forwarded.
    Help,
}

/// Watches keystrokes for `~.` at the start of a line. See the module documentation.
#[derive(Debug, Clone)]
pub struct EscapeFilter {
    at_line_start: bool,
    /// A `~` at the start of a line was held back.
    pending: bool,
}

impl Default for EscapeFilter {
    fn default() -> Self {
        Self::new()
    }
}

impl EscapeFilter {
    /// A filter for a fresh attach: it starts "at the start of a line".
    pub fn new() -> Self {
        Self { at_line_start: true, pending: false }
    }

    /// Whether a `~` is being held back, waiting for the next byte.
    pub fn pending(&self) -> bool {
        self.pending
    }

    /// Send a held-back `~` after all (e.g. when the user paused after it); no-op otherwise.
    pub fn flush(&mut self, to_guest: &mut Vec<u8>) {
        if core::mem::take(&mut self.pending) {
            to_guest.push(ESCAPE);
            self.at_line_start = false;
        }
    }

    /// Feed one keystroke; bytes for the guest are appended to `to_guest`.
    pub fn feed(&mut self, byte: u8, to_guest: &mut Vec<u8>) -> EscapeAction {
        if core::mem::take(&mut self.pending) {
            return match byte {
                b'.' => {
                    // Ready for the next attach.
                    self.at_line_start = true;
                    EscapeAction::Detach
                }
                // Still at the start of the line: `~?` then `~.` works.
                b'?' => EscapeAction::Help,
                ESCAPE => {
                    to_guest.push(ESCAPE);
                    self.at_line_start = false;
                    EscapeAction::Continue
                }
                other => {
                    to_guest.push(ESCAPE);
                    self.forward(other, to_guest);
                    EscapeAction::Continue
                }
            };
        }
        if self.at_line_start && byte == ESCAPE {
            self.pending = true;
            return EscapeAction::Continue;
        }
        self.forward(byte, to_guest);
        EscapeAction::Continue
    }

    fn forward(&mut self, byte: u8, to_guest: &mut Vec<u8>) {
        to_guest.push(byte);
        self.at_line_start = matches!(byte, b'\r' | b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feed `bytes` to `f`; return what reached the guest and the actions other than Continue.
    fn run(f: &mut EscapeFilter, bytes: &[u8]) -> (Vec<u8>, Vec<EscapeAction>) {
        let mut out = Vec::new();
        let mut actions = Vec::new();
        for &b in bytes {
            match f.feed(b, &mut out) {
                EscapeAction::Continue => {}
                a => actions.push(a),
            }
        }
        (out, actions)
    }

    #[test]
    fn plain_bytes_pass_through() {
        let mut f = EscapeFilter::new();
        let input: Vec<u8> = (0..=255u8).filter(|&b| b != b'~').collect();
        assert_eq!(run(&mut f, &input), (input.clone(), alloc::vec![]));
    }

    #[test]
    fn tilde_dot_at_attach_detaches() {
        let mut f = EscapeFilter::new();
        assert_eq!(run(&mut f, b"~."), (alloc::vec![], alloc::vec![EscapeAction::Detach]));
    }

    #[test]
    fn tilde_dot_after_cr_or_lf_detaches() {
        for sep in [b"\r", b"\n"] {
            let mut f = EscapeFilter::new();
            let mut input = b"ls".to_vec();
            input.extend_from_slice(sep);
            input.extend_from_slice(b"~.");
            let mut want = b"ls".to_vec();
            want.extend_from_slice(sep);
            assert_eq!(run(&mut f, &input), (want, alloc::vec![EscapeAction::Detach]));
        }
    }

    #[test]
    fn tilde_dot_mid_line_is_forwarded() {
        let mut f = EscapeFilter::new();
        assert_eq!(run(&mut f, b"cd ~.ssh\r"), (b"cd ~.ssh\r".to_vec(), alloc::vec![]));
        assert_eq!(run(&mut f, b"x~.\r"), (b"x~.\r".to_vec(), alloc::vec![]));
    }

    #[test]
    fn double_tilde_sends_one() {
        let mut f = EscapeFilter::new();
        assert_eq!(run(&mut f, b"~~/bin\r"), (b"~/bin\r".to_vec(), alloc::vec![]));
        // After ~~ we are no longer at the start of a line: ~. is forwarded.
        assert_eq!(run(&mut f, b"~~~.\r"), (b"~~.\r".to_vec(), alloc::vec![]));
    }

    #[test]
    fn tilde_other_sends_both() {
        let mut f = EscapeFilter::new();
        assert_eq!(run(&mut f, b"~x\r"), (b"~x\r".to_vec(), alloc::vec![]));
        // ~ then CR: both go, and the CR starts a new line.
        assert_eq!(run(&mut f, b"~\r~."), (b"~\r".to_vec(), alloc::vec![EscapeAction::Detach]));
        // Ctrl-D is not an escape here.
        assert_eq!(run(&mut f, b"~\x04"), (b"~\x04".to_vec(), alloc::vec![]));
        assert_eq!(run(&mut f, b"\x04"), (b"\x04".to_vec(), alloc::vec![]));
    }

    #[test]
    fn tilde_question_asks_for_help_and_stays_at_line_start() {
        let mut f = EscapeFilter::new();
        assert_eq!(run(&mut f, b"~?"), (alloc::vec![], alloc::vec![EscapeAction::Help]));
        assert_eq!(run(&mut f, b"~."), (alloc::vec![], alloc::vec![EscapeAction::Detach]));
    }

    #[test]
    fn tilde_at_end_of_input_is_held() {
        let mut f = EscapeFilter::new();
        assert_eq!(run(&mut f, b"~"), (alloc::vec![], alloc::vec![]));
        assert!(f.pending());
        // The next byte decides.
        assert_eq!(run(&mut f, b"a"), (b"~a".to_vec(), alloc::vec![]));
        assert!(!f.pending());
        // Or the caller flushes it.
        let mut f = EscapeFilter::new();
        run(&mut f, b"~");
        let mut out = Vec::new();
        f.flush(&mut out);
        assert_eq!(out, b"~");
        assert!(!f.pending());
        // No longer at the start of a line.
        assert_eq!(run(&mut f, b"~."), (b"~.".to_vec(), alloc::vec![]));
        // Flushing with nothing held does nothing.
        let mut out = Vec::new();
        f.flush(&mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn detach_leaves_the_filter_ready_for_the_next_attach() {
        let mut f = EscapeFilter::new();
        run(&mut f, b"abc\r~.");
        assert_eq!(run(&mut f, b"~."), (alloc::vec![], alloc::vec![EscapeAction::Detach]));
    }

    #[test]
    fn output_is_bounded() {
        let mut f = EscapeFilter::new();
        let mut x: u32 = 7;
        let mut out = Vec::new();
        for _ in 0..100_000 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let b = [b'~', b'.', b'\r', b'?', b'a'][(x >> 16) as usize % 5];
            out.clear();
            f.feed(b, &mut out);
            assert!(out.len() <= 2);
        }
    }
}

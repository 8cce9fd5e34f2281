//! The control shell's line editor: turns serial-port bytes into lines, with echo and history.
//!
//! What it does: printable ASCII is appended at the end of the line (there is no cursor
//! movement inside the line); backspace (0x08) and DEL (0x7f) erase the last character; Ctrl-U
//! erases the line and Ctrl-W the last word; Ctrl-C drops the line and reports
//! [`EditorEvent::Interrupt`]; CR or LF ends the line (an LF right after a CR is ignored, so a
//! CR LF pair counts once); the up and down arrows (`ESC [ A`/`ESC [ B` and `ESC O A`/`ESC O B`)
//! walk a history of at most [`HISTORY_LEN`] lines, replacing the line on screen.
//!
//! What it does not do: it does not print the prompt (the caller does, after each line and
//! after an interrupt), it does not interpret the line, and it keeps no UTF-8: bytes from 0x80
//! up, other control bytes and every other escape sequence are swallowed without echo.
//!
//! Input is hostile: the line holds at most [`MAX_LINE`] bytes (further bytes are dropped and
//! not echoed), escape sequences are parsed by a small state machine that never buffers, and
//! the history holds at most [`HISTORY_LEN`] lines, so memory is bounded whatever arrives.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;

/// The longest line the editor keeps, in bytes; further bytes are dropped and not echoed.
pub const MAX_LINE: usize = 256;

/// How many lines the history keeps (the oldest is forgotten first).
pub const HISTORY_LEN: usize = 32;

/// The longest run of parameter bytes accepted inside one CSI sequence before it is abandoned.
const MAX_CSI_PARAMS: u8 = 16;

/// What a byte completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EditorEvent {
    /// Enter was pressed; this is the line (without the line ending). "\r\n" was echoed.
    Line(String),
    /// Ctrl-C: the line was dropped and "^C\r\n" echoed; the caller prints a new prompt.
    Interrupt,
}

/// Where the editor is inside an escape sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escape {
    /// Not in an escape sequence.
    None,
    /// After ESC.
    Start,
    /// After `ESC [`: parameter and intermediate bytes until a final byte in 0x40..=0x7e.
    Csi { params: u8 },
    /// After `ESC O`: one final byte.
    Ss3,
}

/// A bounded line editor with history. See the module documentation.
#[derive(Debug, Clone)]
pub struct LineEditor {
    line: String,
    escape: Escape,
    /// The previous byte was a CR, so an LF now is the second half of a CR LF pair.
    after_cr: bool,
    history: VecDeque<String>,
    /// The history entry on screen, or `None` while editing a new line.
    browsing: Option<usize>,
    /// The partly typed new line, kept while browsing the history.
    draft: String,
}

impl Default for LineEditor {
    fn default() -> Self {
        Self::new()
    }
}

impl LineEditor {
    /// An editor with an empty line and an empty history.
    pub fn new() -> Self {
        Self {
            line: String::new(),
            escape: Escape::None,
            after_cr: false,
            history: VecDeque::new(),
            browsing: None,
            draft: String::new(),
        }
    }

    /// The line typed so far (so the caller can redraw it after printing something else).
    pub fn current(&self) -> &str {
        &self.line
    }

    /// The history, oldest first.
    pub fn history(&self) -> impl Iterator<Item = &str> {
        self.history.iter().map(String::as_str)
    }

    /// Redraw the prompt and the line typed so far on a fresh screen line: writes CR, "erase to
    /// end of line" (`ESC [ K`), `prompt` and the line. For use after an asynchronous message.
    pub fn redraw(&self, prompt: &str, out: &mut Vec<u8>) {
        out.extend_from_slice(b"\r\x1b[K");
        out.extend_from_slice(prompt.as_bytes());
        out.extend_from_slice(self.line.as_bytes());
    }

    /// Feed one input byte. Bytes to echo are appended to `out`.
    pub fn feed(&mut self, byte: u8, out: &mut Vec<u8>) -> Option<EditorEvent> {
        let after_cr = core::mem::replace(&mut self.after_cr, false);
        match self.escape {
            Escape::None => {}
            Escape::Start => {
                match byte {
                    b'[' => self.escape = Escape::Csi { params: 0 },
                    b'O' => self.escape = Escape::Ss3,
                    // A control byte (ESC again, CR, Ctrl-C...) ends the sequence and counts.
                    0x00..=0x1f => {
                        self.escape = Escape::None;
                        return self.feed_plain(byte, after_cr, out);
                    }
                    // ESC and one more byte (Alt+key and the like): swallowed.
                    _ => self.escape = Escape::None,
                }
                return None;
            }
            Escape::Csi { params } => {
                match byte {
                    0x20..=0x3f if params < MAX_CSI_PARAMS => self.escape = Escape::Csi { params: params + 1 },
                    // Too long to be a real key: abandon it, and swallow this byte.
                    0x20..=0x3f => self.escape = Escape::None,
                    0x40..=0x7e => {
                        self.escape = Escape::None;
                        self.arrow(byte, out);
                    }
                    _ => {
                        self.escape = Escape::None;
                        return self.feed_plain(byte, after_cr, out);
                    }
                }
                return None;
            }
            Escape::Ss3 => {
                self.escape = Escape::None;
                match byte {
                    0x40..=0x7e => self.arrow(byte, out),
                    0x00..=0x1f => return self.feed_plain(byte, after_cr, out),
                    _ => {}
                }
                return None;
            }
        }
        self.feed_plain(byte, after_cr, out)
    }

    /// A byte outside any escape sequence.
    fn feed_plain(&mut self, byte: u8, after_cr: bool, out: &mut Vec<u8>) -> Option<EditorEvent> {
        match byte {
            b'\n' if after_cr => None,
            b'\r' | b'\n' => {
                self.after_cr = byte == b'\r';
                out.extend_from_slice(b"\r\n");
                let line = core::mem::take(&mut self.line);
                self.end_browsing();
                self.remember(&line);
                Some(EditorEvent::Line(line))
            }
            0x03 => {
                out.extend_from_slice(b"^C\r\n");
                self.line.clear();
                self.end_browsing();
                Some(EditorEvent::Interrupt)
            }
            0x08 | 0x7f => {
                if self.line.pop().is_some() {
                    out.extend_from_slice(b"\x08 \x08");
                }
                None
            }
            0x15 => {
                // Ctrl-U: erase the line.
                erase(self.line.len(), out);
                self.line.clear();
                None
            }
            0x17 => {
                // Ctrl-W: erase trailing blanks, then the word before them.
                let kept = self.line.trim_end_matches(' ').trim_end_matches(|c| c != ' ').len();
                erase(self.line.len() - kept, out);
                self.line.truncate(kept);
                None
            }
            0x1b => {
                self.escape = Escape::Start;
                None
            }
            0x20..=0x7e => {
                if self.line.len() < MAX_LINE {
                    self.line.push(char::from(byte));
                    out.push(byte);
                }
                None
            }
            _ => None,
        }
    }

    /// The final byte of a CSI or SS3 sequence: up and down walk the history, the rest is ignored.
    fn arrow(&mut self, byte: u8, out: &mut Vec<u8>) {
        match byte {
            b'A' => self.history_up(out),
            b'B' => self.history_down(out),
            _ => {}
        }
    }

    fn history_up(&mut self, out: &mut Vec<u8>) {
        let index = match self.browsing {
            None if self.history.is_empty() => return,
            None => {
                self.draft = self.line.clone();
                self.history.len() - 1
            }
            Some(0) => return,
            Some(i) => i - 1,
        };
        self.browsing = Some(index);
        let entry = self.history.get(index).cloned().unwrap_or_default();
        self.replace_line(entry, out);
    }

    fn history_down(&mut self, out: &mut Vec<u8>) {
        let Some(i) = self.browsing else { return };
        if i + 1 < self.history.len() {
            self.browsing = Some(i + 1);
            let entry = self.history.get(i + 1).cloned().unwrap_or_default();
            self.replace_line(entry, out);
        } else {
            self.browsing = None;
            let draft = core::mem::take(&mut self.draft);
            self.replace_line(draft, out);
        }
    }

    /// Replace the line on screen and in the buffer.
    fn replace_line(&mut self, mut line: String, out: &mut Vec<u8>) {
        erase(self.line.len(), out);
        // History entries and drafts were typed here, so they are already bounded; stay safe anyway.
        line.truncate(MAX_LINE);
        out.extend_from_slice(line.as_bytes());
        self.line = line;
    }

    fn end_browsing(&mut self) {
        self.browsing = None;
        self.draft.clear();
    }

    /// Add a finished line to the history, unless it is blank or repeats the newest entry.
    fn remember(&mut self, line: &str) {
        if line.trim().is_empty() || self.history.back().is_some_and(|last| last == line) {
            return;
        }
        if self.history.len() == HISTORY_LEN {
            self.history.pop_front();
        }
        self.history.push_back(String::from(line));
    }
}

/// Echo what erases the last `n` characters on screen.
fn erase(n: usize, out: &mut Vec<u8>) {
    for _ in 0..n {
        out.extend_from_slice(b"\x08 \x08");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feed `bytes`; return the events and the echo.
    fn feed_all(ed: &mut LineEditor, bytes: &[u8]) -> (Vec<EditorEvent>, Vec<u8>) {
        let mut out = Vec::new();
        let events = bytes.iter().filter_map(|&b| ed.feed(b, &mut out)).collect();
        (events, out)
    }

    fn lines(ed: &mut LineEditor, bytes: &[u8]) -> Vec<String> {
        feed_all(ed, bytes)
            .0
            .into_iter()
            .filter_map(|e| match e {
                EditorEvent::Line(l) => Some(l),
                EditorEvent::Interrupt => None,
            })
            .collect()
    }

    fn line(s: &str) -> EditorEvent {
        EditorEvent::Line(s.into())
    }

    #[test]
    fn typing_echoes_and_enter_completes() {
        let mut ed = LineEditor::new();
        let (events, out) = feed_all(&mut ed, b"show\r");
        assert_eq!(events, [line("show")]);
        assert_eq!(out, b"show\r\n");
        assert_eq!(ed.current(), "");
    }

    #[test]
    fn cr_lf_counts_once() {
        let mut ed = LineEditor::new();
        assert_eq!(feed_all(&mut ed, b"a\r\nb\r\n").0, [line("a"), line("b")]);
        // LF alone, CR alone, and LF CR (two line ends) all work.
        assert_eq!(feed_all(&mut ed, b"c\nd\re\n\r").0, [line("c"), line("d"), line("e"), line("")]);
        // Only the LF right after the CR is skipped.
        assert_eq!(feed_all(&mut ed, b"\r\n\n").0, [line(""), line("")]);
        let (events, out) = feed_all(&mut ed, b"x\r\n");
        assert_eq!(events, [line("x")]);
        assert_eq!(out, b"x\r\n");
    }

    #[test]
    fn cr_then_escape_then_lf_is_a_new_line() {
        let mut ed = LineEditor::new();
        // Anything between CR and LF breaks the pair.
        assert_eq!(feed_all(&mut ed, b"a\rb\n").0, [line("a"), line("b")]);
    }

    #[test]
    fn backspace_and_delete() {
        let mut ed = LineEditor::new();
        let (events, out) = feed_all(&mut ed, b"shox\x08w\x7f\x7fow\r");
        assert_eq!(events, [line("show")]);
        assert_eq!(out, b"shox\x08 \x08w\x08 \x08\x08 \x08ow\r\n");
        // Backspace on an empty line echoes nothing.
        let (events, out) = feed_all(&mut ed, b"\x7f\x08\r");
        assert_eq!(events, [line("")]);
        assert_eq!(out, b"\r\n");
    }

    #[test]
    fn ctrl_u_erases_the_line() {
        let mut ed = LineEditor::new();
        let (events, out) = feed_all(&mut ed, b"abc\x15mem\r");
        assert_eq!(events, [line("mem")]);
        assert_eq!(out, b"abc\x08 \x08\x08 \x08\x08 \x08mem\r\n");
    }

    #[test]
    fn ctrl_w_erases_a_word() {
        let mut ed = LineEditor::new();
        assert_eq!(lines(&mut ed, b"stop foo  \x17bar\r"), ["stop bar"]);
        assert_eq!(lines(&mut ed, b"one\x17\x17two\r"), ["two"]);
    }

    #[test]
    fn ctrl_c_interrupts() {
        let mut ed = LineEditor::new();
        let (events, out) = feed_all(&mut ed, b"stop 1\x03");
        assert_eq!(events, [EditorEvent::Interrupt]);
        assert_eq!(out, b"stop 1^C\r\n");
        assert_eq!(ed.current(), "");
        assert_eq!(lines(&mut ed, b"show\r"), ["show"]);
        // The interrupted line did not enter the history.
        assert_eq!(ed.history().collect::<Vec<_>>(), ["show"]);
    }

    #[test]
    fn long_lines_are_capped_without_echo() {
        let mut ed = LineEditor::new();
        let input: Vec<u8> = (0..1000).map(|i| b'a' + (i % 26) as u8).collect();
        let (_, out) = feed_all(&mut ed, &input);
        assert_eq!(out.len(), MAX_LINE);
        assert_eq!(ed.current().len(), MAX_LINE);
        let got = lines(&mut ed, b"\r");
        assert_eq!(got[0].as_bytes(), &input[..MAX_LINE]);
        // After a backspace one more byte fits.
        feed_all(&mut ed, &input);
        let (_, out) = feed_all(&mut ed, b"\x7fZZ");
        assert_eq!(out, b"\x08 \x08Z");
    }

    #[test]
    fn control_and_high_bytes_are_ignored() {
        let mut ed = LineEditor::new();
        let (events, out) = feed_all(&mut ed, b"a\x00\x01\x07\x09\x80\xff\xc3\xa9b\r");
        assert_eq!(events, [line("ab")]);
        assert_eq!(out, b"ab\r\n");
    }

    #[test]
    fn other_escape_sequences_are_swallowed() {
        let mut ed = LineEditor::new();
        // Right/left arrows, Ctrl-right, F5, Home, Delete, Alt-x, SS3 F1, a long CSI.
        let input = b"ve\x1b[C\x1b[D\x1b[1;5C\x1b[15~\x1b[H\x1b[3~r\x1bx\x1bOPsion\x1b[?2004h\r";
        let (events, out) = feed_all(&mut ed, input);
        assert_eq!(events, [line("version")]);
        assert_eq!(out, b"version\r\n");
    }

    #[test]
    fn an_over_long_csi_is_abandoned() {
        let mut ed = LineEditor::new();
        let mut input = b"\x1b[".to_vec();
        input.extend_from_slice(&[b'1'; 40]);
        input.extend_from_slice(b"ok\r");
        // The CSI gives up after MAX_CSI_PARAMS parameter bytes; the rest are plain digits.
        let expected = "1".repeat(40 - usize::from(MAX_CSI_PARAMS) - 1) + "ok";
        assert_eq!(lines(&mut ed, &input), [expected]);
    }

    #[test]
    fn control_bytes_end_an_escape_and_count() {
        let mut ed = LineEditor::new();
        // ESC then Enter: the Enter still ends the line.
        assert_eq!(lines(&mut ed, b"mem\x1b\r"), ["mem"]);
        assert_eq!(lines(&mut ed, b"cpus\x1b[\r"), ["cpus"]);
        assert_eq!(lines(&mut ed, b"help\x1bO\r"), ["help"]);
        // ESC ESC [ A: the second ESC starts the sequence.
        let (_, out) = feed_all(&mut ed, b"\x1b\x1b[A");
        assert_eq!(out, b"help");
        let (events, _) = feed_all(&mut ed, b"\x1b\x03");
        assert_eq!(events, [EditorEvent::Interrupt]);
    }

    #[test]
    fn history_up_and_down() {
        let mut ed = LineEditor::new();
        lines(&mut ed, b"show\rstop 1\rmem\r");
        let (_, out) = feed_all(&mut ed, b"ve");
        assert_eq!(out, b"ve");
        // Up: the draft is erased and the newest entry shown.
        let (_, out) = feed_all(&mut ed, b"\x1b[A");
        assert_eq!(out, b"\x08 \x08\x08 \x08mem");
        assert_eq!(ed.current(), "mem");
        let (_, out) = feed_all(&mut ed, b"\x1bOA");
        assert_eq!(out, b"\x08 \x08\x08 \x08\x08 \x08stop 1");
        feed_all(&mut ed, b"\x1b[A");
        assert_eq!(ed.current(), "show");
        // At the oldest entry, up does nothing.
        let (_, out) = feed_all(&mut ed, b"\x1b[A");
        assert_eq!(out, b"");
        assert_eq!(ed.current(), "show");
        feed_all(&mut ed, b"\x1b[B");
        assert_eq!(ed.current(), "stop 1");
        feed_all(&mut ed, b"\x1bOB");
        assert_eq!(ed.current(), "mem");
        // Down past the newest entry brings back the draft.
        let (_, out) = feed_all(&mut ed, b"\x1b[B");
        assert_eq!(out, b"\x08 \x08\x08 \x08\x08 \x08ve");
        assert_eq!(ed.current(), "ve");
        // Further down does nothing.
        let (_, out) = feed_all(&mut ed, b"\x1b[B");
        assert_eq!(out, b"");
        assert_eq!(lines(&mut ed, b"rsion\r"), ["version"]);
    }

    #[test]
    fn recalled_lines_can_be_edited_and_entered() {
        let mut ed = LineEditor::new();
        lines(&mut ed, b"stop 1\r");
        assert_eq!(lines(&mut ed, b"\x1b[A\x7f2\r"), ["stop 2"]);
        assert_eq!(ed.history().collect::<Vec<_>>(), ["stop 1", "stop 2"]);
        // Entering a recalled line unchanged does not duplicate it.
        assert_eq!(lines(&mut ed, b"\x1b[A\r"), ["stop 2"]);
        assert_eq!(ed.history().count(), 2);
    }

    #[test]
    fn up_with_empty_history_does_nothing() {
        let mut ed = LineEditor::new();
        let (events, out) = feed_all(&mut ed, b"ab\x1b[A\x1b[B\r");
        assert_eq!(events, [line("ab")]);
        assert_eq!(out, b"ab\r\n");
    }

    #[test]
    fn history_skips_blank_lines_and_consecutive_duplicates() {
        let mut ed = LineEditor::new();
        lines(&mut ed, b"show\r\r   \rshow\rmem\rshow\r");
        assert_eq!(ed.history().collect::<Vec<_>>(), ["show", "mem", "show"]);
    }

    #[test]
    fn history_is_bounded() {
        let mut ed = LineEditor::new();
        for i in 0..100 {
            let l = alloc::format!("cmd {i}\r");
            lines(&mut ed, l.as_bytes());
        }
        let h: Vec<_> = ed.history().collect();
        assert_eq!(h.len(), HISTORY_LEN);
        assert_eq!(h[0], "cmd 68");
        assert_eq!(h[HISTORY_LEN - 1], "cmd 99");
        for _ in 0..HISTORY_LEN + 5 {
            feed_all(&mut ed, b"\x1b[A");
        }
        assert_eq!(ed.current(), "cmd 68");
    }

    #[test]
    fn ctrl_c_while_browsing_returns_to_a_new_line() {
        let mut ed = LineEditor::new();
        lines(&mut ed, b"show\r");
        feed_all(&mut ed, b"x\x1b[A\x03");
        assert_eq!(ed.current(), "");
        // Down does nothing: we are no longer browsing.
        let (_, out) = feed_all(&mut ed, b"\x1b[B");
        assert_eq!(out, b"");
    }

    #[test]
    fn redraw_writes_prompt_and_line() {
        let mut ed = LineEditor::new();
        feed_all(&mut ed, b"sho");
        let mut out = Vec::new();
        ed.redraw("keel> ", &mut out);
        assert_eq!(out, b"\r\x1b[Kkeel> sho");
    }

    #[test]
    fn every_byte_sequence_is_safe() {
        let mut ed = LineEditor::new();
        let mut out = Vec::new();
        let mut x: u32 = 12345;
        for _ in 0..200_000 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let b = (x >> 16) as u8;
            let _ = ed.feed(b, &mut out);
            assert!(ed.current().len() <= MAX_LINE);
            out.clear();
        }
        assert!(ed.history().count() <= HISTORY_LEN);
    }
}

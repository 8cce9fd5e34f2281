//! Turns one file's text into tokens, following the `yylex`/`lgetc` of vmd's parse.y:
//! - `#` starts a comment to the end of the line; a backslash before a newline joins lines
//!   (also inside a comment, as in vmd), and outside quotes a backslash before any other character
//!   is dropped.
//! - `"..."` and `'...'` are strings; inside them a backslash escapes the quote, a blank or a
//!   newline (which is then dropped), and a bare newline is dropped too.
//! - A word starts with a letter, digit, `:`, `_` or `/` and runs on over letters, digits and
//!   punctuation other than `( ) { } ! = # ,`. An unquoted word that is a keyword is a keyword.
//! - A run of digits (with an optional leading `-`) that ends at a blank, newline, `)`, `,`, `/`,
//!   `}` or `=` is a number; `512M` or `10.0.0.1` are words.
//! - `$name` at the start of a token is replaced by the macro's value, which is then read again as
//!   input, but `$` inside that value is not expanded again (so expansion cannot recurse). Macros
//!   are not expanded inside quotes or in the middle of a word.
//! - Anything else (`{`, `}`, `=`, `,`, ...) is a one-character token.
//!
//! Differences from vmd: a carriage return counts as a blank (CRLF files work), a token longer
//! than [`crate::MAX_TOKEN_LEN`] bytes is an error rather than 8 KiB, and the total text produced
//! by macro expansion is bounded by [`crate::MAX_MACRO_EXPANSION`].
//! Does not: know the grammar (the parser decides what a token means where), or read includes.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::str::Chars;

use crate::error::{needs_escape, quoted, Error};
use crate::{MAX_MACRO_EXPANSION, MAX_TOKEN_LEN};

macro_rules! keywords {
    ($($variant:ident = $text:literal,)*) => {
        /// The reserved words: vmd's keyword table plus Keel's `initrd` and `cmdline`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum Kw { $($variant,)* }

        impl Kw {
            pub(crate) const ALL: &'static [Kw] = &[$(Kw::$variant,)*];

            pub(crate) fn as_str(self) -> &'static str {
                match self { $(Kw::$variant => $text,)* }
            }
        }
    };
}

keywords! {
    Add = "add",
    Agentx = "agentx",
    Allow = "allow",
    Boot = "boot",
    Cdrom = "cdrom",
    Cmdline = "cmdline",
    Context = "context",
    Delay = "delay",
    Device = "device",
    Disable = "disable",
    Disk = "disk",
    Down = "down",
    Enable = "enable",
    Format = "format",
    Group = "group",
    Id = "id",
    Include = "include",
    Inet6 = "inet6",
    Initrd = "initrd",
    Instance = "instance",
    Interface = "interface",
    Interfaces = "interfaces",
    Lladdr = "lladdr",
    Local = "local",
    Locked = "locked",
    Memory = "memory",
    Net = "net",
    Owner = "owner",
    Parallel = "parallel",
    Path = "path",
    Prefix = "prefix",
    Rdomain = "rdomain",
    Sev = "sev",
    Seves = "seves",
    Size = "size",
    Socket = "socket",
    Staggered = "staggered",
    Start = "start",
    Switch = "switch",
    Up = "up",
    Vm = "vm",
}

/// The keyword spelled exactly `word` (keywords are case-sensitive, as in vmd).
pub(crate) fn lookup(word: &str) -> Option<Kw> {
    Kw::ALL.iter().copied().find(|kw| kw.as_str() == word)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    Kw(Kw),
    /// A quoted string or a bare word that is not a keyword.
    Str(String),
    Num(i64),
    /// Any other single character, e.g. `{`, `}`, `=`, `,`.
    Char(char),
    Newline,
    Eof,
}

impl fmt::Display for Tok {
    /// How a token is named in "found ..." of an error message.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Kw(kw) => write!(f, "'{}'", kw.as_str()),
            Tok::Str(s) => f.write_str(&quoted(s)),
            Tok::Num(n) => write!(f, "number {n}"),
            Tok::Char(c) if needs_escape(*c) || *c == '\'' => write!(f, "character '{}'", c.escape_default()),
            Tok::Char(c) => write!(f, "'{c}'"),
            Tok::Newline => f.write_str("end of line"),
            Tok::Eof => f.write_str("end of file"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub tok: Tok,
    /// The line the token starts on (1-based).
    pub line: u32,
}

/// What can be pushed back in front of the input: characters, and the two markers that bracket
/// a macro's value (vmd's START_EXPAND / DONE_EXPAND bytes) so `$` inside it is left alone.
#[derive(Debug, Clone, Copy)]
enum Item {
    Ch(char),
    StartExpand,
    DoneExpand,
}

/// Macro definitions, shared by all files of one parse.
pub(crate) type Macros = BTreeMap<String, String>;

pub(crate) struct Lexer<'a> {
    file: &'a str,
    src: Chars<'a>,
    /// Pushed-back items; the last one is read next.
    pushback: Vec<Item>,
    expanding: bool,
    line: u32,
    /// The last character taken from `src` was a newline (so EOF is reported on the line before).
    at_line_start: bool,
}

fn allowed_to_end_number(c: char) -> bool {
    c.is_ascii_whitespace() || matches!(c, ')' | ',' | '/' | '}' | '=')
}

fn allowed_in_string(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || (c.is_ascii_punctuation() && !matches!(c, '(' | ')' | '{' | '}' | '!' | '=' | '#' | ','))
}

fn starts_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '/')
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(file: &'a str, text: &'a str) -> Self {
        Self { file, src: text.chars(), pushback: Vec::new(), expanding: false, line: 1, at_line_start: true }
    }

    fn error(&self, line: u32, msg: impl Into<String>) -> Error {
        Error::new(self.file, line, msg)
    }

    /// Next raw character: pushed-back input first, markers consumed (vmd's `igetc`).
    fn igetc(&mut self) -> Option<char> {
        loop {
            match self.pushback.pop() {
                Some(Item::Ch(c)) => return Some(c),
                Some(Item::StartExpand) => self.expanding = true,
                Some(Item::DoneExpand) => self.expanding = false,
                None => {
                    let c = self.src.next();
                    if let Some(c) = c {
                        self.at_line_start = c == '\n';
                    }
                    return c;
                }
            }
        }
    }

    fn unget(&mut self, c: Option<char>) {
        if let Some(c) = c {
            self.pushback.push(Item::Ch(c));
        }
    }

    /// Next character outside quotes: backslash-newline joins lines, backslash-other yields the
    /// other character (vmd's `lgetc(0)`).
    fn lgetc(&mut self) -> Option<char> {
        loop {
            let c = self.igetc();
            if c != Some('\\') {
                return c;
            }
            let next = self.igetc();
            if next != Some('\n') {
                return next;
            }
            self.line += 1;
        }
    }

    fn eof_line(&self) -> u32 {
        if self.at_line_start && self.line > 1 {
            self.line - 1
        } else {
            self.line
        }
    }

    /// The next token. `macros` are the definitions so far; `expanded` counts the characters all
    /// expansions of this parse have produced.
    pub(crate) fn next(&mut self, macros: &Macros, expanded: &mut usize) -> Result<Token, Error> {
        loop {
            let mut c = self.lgetc();
            while matches!(c, Some(' ' | '\t' | '\r')) {
                c = self.lgetc();
            }
            let line = self.line;
            if c == Some('#') {
                c = self.lgetc();
                while c.is_some() && c != Some('\n') {
                    c = self.lgetc();
                }
            }
            let Some(c) = c else {
                return Ok(Token { tok: Tok::Eof, line: self.eof_line() });
            };
            if c == '$' && !self.expanding {
                self.expand(line, macros, expanded)?;
                continue;
            }
            let tok = match c {
                '"' | '\'' => self.quoted_string(c, line)?,
                '\n' => {
                    self.line += 1;
                    Tok::Newline
                }
                c if c == '-' || c.is_ascii_digit() => self.number_or_word(c, line)?,
                c if starts_word(c) => self.word(c, line)?,
                c => Tok::Char(c),
            };
            return Ok(Token { tok, line });
        }
    }

    /// `$name` seen: push the macro's value back as input, bracketed by the expansion markers.
    fn expand(&mut self, line: u32, macros: &Macros, expanded: &mut usize) -> Result<(), Error> {
        let mut name = String::new();
        loop {
            let c = self.lgetc();
            match c {
                Some(c) if c.is_ascii_alphanumeric() || c == '_' => {
                    if name.len() >= MAX_TOKEN_LEN {
                        return Err(self.error(line, format!("macro name too long (max {MAX_TOKEN_LEN} bytes)")));
                    }
                    name.push(c);
                }
                other => {
                    self.unget(other);
                    break;
                }
            }
        }
        if name.is_empty() {
            return Err(self.error(line, "syntax error: '$' must be followed by a macro name"));
        }
        let Some(value) = macros.get(&name) else {
            return Err(self.error(line, format!("macro {} not defined", quoted(&name))));
        };
        *expanded = expanded.saturating_add(value.len());
        if *expanded > MAX_MACRO_EXPANSION {
            return Err(
                self.error(line, format!("macro expansion too large (over {MAX_MACRO_EXPANSION} bytes in all)"))
            );
        }
        self.pushback.push(Item::DoneExpand);
        self.pushback.extend(value.chars().rev().map(Item::Ch));
        self.pushback.push(Item::StartExpand);
        Ok(())
    }

    fn too_long(&self, line: u32) -> Error {
        self.error(line, format!("syntax error: string too long (max {MAX_TOKEN_LEN} bytes)"))
    }

    fn quoted_string(&mut self, quote: char, line: u32) -> Result<Tok, Error> {
        let mut s = String::new();
        loop {
            let Some(mut c) = self.igetc() else {
                return Err(self.error(line, "syntax error: unterminated quoted string"));
            };
            if c == '\n' {
                self.line += 1;
                continue;
            } else if c == '\\' {
                let Some(next) = self.igetc() else {
                    return Err(self.error(line, "syntax error: unterminated quoted string"));
                };
                if next == quote || next == ' ' || next == '\t' {
                    c = next;
                } else if next == '\n' {
                    self.line += 1;
                    continue;
                } else {
                    self.unget(Some(next));
                }
            } else if c == quote {
                return Ok(Tok::Str(s));
            } else if c == '\0' {
                return Err(self.error(self.line, "syntax error: NUL character in quoted string"));
            }
            if s.len() + c.len_utf8() > MAX_TOKEN_LEN {
                return Err(self.too_long(line));
            }
            s.push(c);
        }
    }

    fn number_or_word(&mut self, first: char, line: u32) -> Result<Tok, Error> {
        let mut digits = String::new();
        digits.push(first);
        let mut c = self.lgetc();
        while let Some(d) = c.filter(char::is_ascii_digit) {
            if digits.len() >= MAX_TOKEN_LEN {
                return Err(self.too_long(line));
            }
            digits.push(d);
            c = self.lgetc();
        }
        self.unget(c);
        let only_minus = digits == "-";
        if !only_minus && c.is_none_or(allowed_to_end_number) {
            return match digits.parse::<i64>() {
                Ok(n) => Ok(Tok::Num(n)),
                Err(_) => {
                    Err(self.error(line, format!("syntax error: invalid number {}: out of range", quoted(&digits))))
                }
            };
        }
        // Not a number: give back all but the first character and read it as a word (or `-`).
        for d in digits[1..].chars().rev() {
            self.pushback.push(Item::Ch(d));
        }
        if first == '-' {
            return Ok(Tok::Char('-'));
        }
        self.word(first, line)
    }

    fn word(&mut self, first: char, line: u32) -> Result<Tok, Error> {
        let mut s = String::new();
        s.push(first);
        let mut c = self.lgetc();
        while let Some(ch) = c.filter(|&ch| allowed_in_string(ch)) {
            if s.len() >= MAX_TOKEN_LEN {
                return Err(self.too_long(line));
            }
            s.push(ch);
            c = self.lgetc();
        }
        self.unget(c);
        Ok(match lookup(&s) {
            Some(kw) => Tok::Kw(kw),
            None => Tok::Str(s),
        })
    }
}

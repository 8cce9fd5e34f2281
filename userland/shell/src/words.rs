//! Splits a command line into words, as a small subset of sh(1) quoting.
//!
//! What it does: words are separated by whitespace; a double-quoted part (`"my vm"`) keeps its
//! blanks, and inside it `\"` and `\\` stand for `"` and `\`; quoted and unquoted parts next to
//! each other join into one word (`a"b c"` is `ab c`); `""` is an empty word.
//!
//! What it does not do: no single quotes, no backslash escapes outside double quotes, no
//! variables, globs or comments. A line may hold at most [`MAX_WORDS`] words.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// The most words one line may hold.
pub const MAX_WORDS: usize = 64;

/// Why a line could not be split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WordsError {
    /// A `"` was never closed.
    UnterminatedQuote,
    /// More than [`MAX_WORDS`] words.
    TooManyWords,
}

impl fmt::Display for WordsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnterminatedQuote => f.write_str("unterminated quote"),
            Self::TooManyWords => write!(f, "too many words (at most {MAX_WORDS})"),
        }
    }
}

/// Split `line` into words. See the module documentation for the quoting rules.
pub fn split_words(line: &str) -> Result<Vec<String>, WordsError> {
    let mut words = Vec::new();
    let mut word = String::new();
    // Whether a word is under way (needed because `""` is a word although it is empty).
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c.is_whitespace() {
            if in_word {
                push(&mut words, core::mem::take(&mut word))?;
                in_word = false;
            }
            continue;
        }
        in_word = true;
        if c != '"' {
            word.push(c);
            continue;
        }
        loop {
            match chars.next() {
                None => return Err(WordsError::UnterminatedQuote),
                Some('"') => break,
                Some('\\') => match chars.next() {
                    None => return Err(WordsError::UnterminatedQuote),
                    Some(e @ ('"' | '\\')) => word.push(e),
                    Some(other) => {
                        word.push('\\');
                        word.push(other);
                    }
                },
                Some(other) => word.push(other),
            }
        }
    }
    if in_word {
        push(&mut words, word)?;
    }
    Ok(words)
}

fn push(words: &mut Vec<String>, word: String) -> Result<(), WordsError> {
    if words.len() == MAX_WORDS {
        return Err(WordsError::TooManyWords);
    }
    words.push(word);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(line: &str) -> Vec<String> {
        split_words(line).unwrap()
    }

    #[test]
    fn whitespace_separates() {
        assert_eq!(split("  stop  -f\t1 "), ["stop", "-f", "1"]);
        assert!(split("").is_empty());
        assert!(split(" \t ").is_empty());
    }

    #[test]
    fn double_quotes_group() {
        assert_eq!(split(r#"start "myvm" -d "/my disk.img""#), ["start", "myvm", "-d", "/my disk.img"]);
        assert_eq!(split(r#"a"b c"d"#), ["ab cd"]);
        assert_eq!(split(r#"load """#), ["load", ""]);
        assert_eq!(split(r#""" """#), ["", ""]);
    }

    #[test]
    fn escapes_inside_quotes() {
        assert_eq!(split(r#""say \"hi\" \\ \n""#), [r#"say "hi" \ \n"#]);
        // Outside quotes a backslash is an ordinary character.
        assert_eq!(split(r"a\b"), [r"a\b"]);
    }

    #[test]
    fn unterminated_quotes() {
        assert_eq!(split_words(r#"start "my"#), Err(WordsError::UnterminatedQuote));
        assert_eq!(split_words(r#"start "my\"#), Err(WordsError::UnterminatedQuote));
        assert_eq!(split_words(r#"""#), Err(WordsError::UnterminatedQuote));
    }

    #[test]
    fn word_count_is_bounded() {
        let line = "a ".repeat(MAX_WORDS);
        assert_eq!(split_words(&line).unwrap().len(), MAX_WORDS);
        let line = "a ".repeat(MAX_WORDS + 1);
        assert_eq!(split_words(&line), Err(WordsError::TooManyWords));
        assert_eq!(WordsError::TooManyWords.to_string(), "too many words (at most 64)");
    }
}

//! Names: the one rule for a VM's name (in vm.conf's `vm "name"` and `instance "name"`, the
//! shell's `start name`, `-t name` and every verb that takes an id or name, and vmd) and for a
//! switch's name.
//!
//! What it does: [`check_vm_name`] and [`check_switch_name`] say whether a name is allowed and,
//! if not, why ([`NameError`]); the reason names the offending character.
//!
//! What it does not do: quote the name for a message (each front end has its own quoting, see
//! [`NameError::message`]), or know which VMs or switches exist.

use alloc::format;
use alloc::string::String;
use core::fmt;

/// The longest VM name, in bytes: OpenBSD's `VMM_MAX_NAME_LEN` is 64 with the terminating NUL.
pub const VM_NAME_MAX: usize = 63;
/// The longest switch name, in bytes (vmd copies it into a buffer of the VM name's size).
pub const SWITCH_NAME_MAX: usize = 63;

/// Why a name was refused. `Display` is the reason alone (`it must start with a letter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameError {
    Empty,
    /// Longer than the limit (the length in bytes, and the limit).
    TooLong {
        len: usize,
        max: usize,
    },
    /// A VM name must start with an ASCII letter.
    BadStart,
    /// A character other than an ASCII letter, digit, `.`, `-` or `_`.
    BadChar(char),
}

impl NameError {
    /// The error as one line: `what` is the kind of name (`VM name`, `switch name`), `shown`
    /// the name as the front end quotes it: `invalid VM name "1web": it must start with a
    /// letter`, `VM name must not be empty`.
    pub fn message(&self, what: &str, shown: &str) -> String {
        match self {
            Self::Empty => format!("{what} must not be empty"),
            other => format!("invalid {what} {shown}: {other}"),
        }
    }
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Empty => f.write_str("it is empty"),
            Self::TooLong { len, max } => write!(f, "it is {len} bytes long (at most {max})"),
            Self::BadStart => f.write_str("it must start with a letter"),
            Self::BadChar(c) => {
                f.write_str("it may contain only letters, digits, '.', '-' and '_', not ")?;
                if c.is_ascii_graphic() || c == ' ' {
                    write!(f, "'{c}'")
                } else {
                    write!(f, "'{}'", c.escape_default())
                }
            }
        }
    }
}

/// vm.conf(5)'s rule for a VM name: 1 to [`VM_NAME_MAX`] bytes of ASCII letters, digits, `.`,
/// `-` and `_`, starting with a letter. (OpenBSD's vmd itself also lets a name start with a
/// digit; Keel follows the manual, which keeps every name apart from every numeric id.)
pub fn check_vm_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > VM_NAME_MAX {
        return Err(NameError::TooLong { len: name.len(), max: VM_NAME_MAX });
    }
    if let Some(c) = name.chars().find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))) {
        return Err(NameError::BadChar(c));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Err(NameError::BadStart);
    }
    Ok(())
}

/// A switch's name: 1 to [`SWITCH_NAME_MAX`] bytes (vmd checks nothing more).
pub fn check_switch_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > SWITCH_NAME_MAX {
        return Err(NameError::TooLong { len: name.len(), max: SWITCH_NAME_MAX });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_names() {
        for ok in ["a", "web", "web-1.example_x", "A1", "a..", "a_-.", &"a".repeat(VM_NAME_MAX)] {
            assert_eq!(check_vm_name(ok), Ok(()), "{ok:?}");
        }
        let cases: &[(&str, NameError)] = &[
            ("", NameError::Empty),
            ("1web", NameError::BadStart),
            ("123", NameError::BadStart),
            ("-web", NameError::BadStart),
            (".web", NameError::BadStart),
            ("_web", NameError::BadStart),
            ("my!vm", NameError::BadChar('!')),
            ("a b", NameError::BadChar(' ')),
            ("we/b", NameError::BadChar('/')),
            ("wéb", NameError::BadChar('é')),
            ("1é", NameError::BadChar('é')),
        ];
        for &(name, want) in cases {
            assert_eq!(check_vm_name(name), Err(want), "{name:?}");
        }
        let long = "a".repeat(VM_NAME_MAX + 1);
        assert_eq!(check_vm_name(&long), Err(NameError::TooLong { len: 64, max: 63 }));
        // Too long is said before what is in it.
        assert_eq!(check_vm_name(&"!".repeat(100)), Err(NameError::TooLong { len: 100, max: 63 }));
    }

    #[test]
    fn switch_names() {
        assert_eq!(check_switch_name("uplink"), Ok(()));
        assert_eq!(check_switch_name("1 odd/name"), Ok(()));
        assert_eq!(check_switch_name(""), Err(NameError::Empty));
        assert_eq!(check_switch_name(&"s".repeat(64)), Err(NameError::TooLong { len: 64, max: 63 }));
    }

    #[test]
    fn messages() {
        assert_eq!(NameError::Empty.message("VM name", "\"\""), "VM name must not be empty");
        assert_eq!(
            NameError::BadStart.message("VM name", "'1web'"),
            "invalid VM name '1web': it must start with a letter"
        );
        assert_eq!(
            NameError::BadChar('\u{1b}').to_string(),
            "it may contain only letters, digits, '.', '-' and '_', not '\\u{1b}'"
        );
        assert_eq!(NameError::TooLong { len: 64, max: 63 }.to_string(), "it is 64 bytes long (at most 63)");
    }
}

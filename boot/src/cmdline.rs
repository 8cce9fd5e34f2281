//! The kernel command line: space-separated `key=value` words and bare flags.
//!
//! Pure and allocation-free. Quoting is not supported (GRUB passes the line through as typed).

/// The value of the last `key=value` word, so a later word overrides an earlier one.
pub fn value<'a>(cmdline: &'a str, key: &str) -> Option<&'a str> {
    cmdline
        .split_ascii_whitespace()
        .filter_map(|word| word.split_once('='))
        .filter(|(k, _)| *k == key)
        .map(|(_, v)| v)
        .next_back()
}

/// Whether a bare word `flag` is present.
pub fn has_flag(cmdline: &str, flag: &str) -> bool {
    cmdline.split_ascii_whitespace().any(|word| word == flag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_flags() {
        let line = "/boot/keel.elf log=debug qemu-exit log=trace x=";
        assert_eq!(value(line, "log"), Some("trace"));
        assert_eq!(value(line, "x"), Some(""));
        assert_eq!(value(line, "missing"), None);
        assert!(has_flag(line, "qemu-exit"));
        assert!(!has_flag(line, "qemu"));
        assert_eq!(value("", "log"), None);
    }
}

//! Human-readable byte counts, as OpenBSD's fmt_scaled(3) writes them and (stricter) as
//! scan_scaled(3) reads them: the one syntax for sizes in the shell and in vm.conf.
//!
//! What it does: [`fmt_scaled`] formats a byte count with at most four digits and a unit
//! (`0B`, `1023B`, `1.0K`, `88.1M`, `512M`, `11.6G`), rounding as libutil's `fmt_scaled` does;
//! [`scan_scaled`] reads a count such as `512M`, `4.5G` or `1024` (plain bytes).
//!
//! What it does not do: no negative numbers (sizes are never negative here), no SI (1000)
//! units (`K` is 1024, as in OpenBSD), and none of scan_scaled(3)'s leniency: no leading
//! blanks or `+`, nothing after the unit (scan_scaled accepts ` +1G.`). Every text read here
//! reads the same in scan_scaled(3). Bounds for a memory size are in [`crate::memory`].

use alloc::string::String;
use core::fmt;

/// Unit letters, from bytes to exbibytes.
const UNITS: &[u8; 7] = b"BKMGTPE";

/// 1024 to the power of `i`.
const fn scale(i: usize) -> u64 {
    1u64 << (10 * i)
}

/// Format `bytes` as fmt_scaled(3) does: `0B`, `999B`, `1.0K`, `1.5K`, `121K`, `1.0M`, `88.1M`,
/// `512M`, `1.0G`, `11.6G`. Below 100 of a unit one decimal is shown, from 100 up none; the
/// fraction is rounded to the nearest tenth (and a whole number at 100 and more).
///
/// Every `u64` formats; fmt_scaled(3) itself stops at 2^63 - 1 (its argument is a `long long`).
pub fn fmt_scaled(bytes: u64) -> String {
    // Pick the unit: the largest whose count (bytes / 1024^unit) is below 1024.
    let unit = (0..UNITS.len()).find(|&i| bytes / 1024 < scale(i)).unwrap_or(UNITS.len() - 1);
    let mut number = bytes / scale(unit);
    // The remainder in units of the next smaller unit, then in tenths (rounded half up).
    let mut fract = if unit == 0 { 0 } else { (bytes % scale(unit)) / scale(unit - 1) };
    fract = (10 * fract + 512) / 1024;
    if fract >= 10 {
        number += 1;
        fract = 0;
    }
    let letter = char::from(UNITS[unit]);
    if number == 0 {
        String::from("0B")
    } else if unit == 0 || number >= 100 {
        if fract >= 5 {
            number += 1;
        }
        alloc::format!("{number}{letter}")
    } else {
        alloc::format!("{number}.{fract}{letter}")
    }
}

/// Why [`scan_scaled`] refused a string. `Display` is the reason alone, for a message that
/// names the text itself (`invalid memory size "1GB": unknown unit ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanError {
    /// Nothing at all.
    Empty,
    /// Starts with `-`.
    Negative,
    /// No digits where the number should be (`G`, `.`, `lots`, `+1G`).
    NoDigits,
    /// More than one `.` (`1.2.3G`).
    TwoPoints,
    /// Something other than one unit letter after the number (`1GB`, `1X`, `1 G`, `5e3`).
    BadUnit,
    /// Larger than a `u64`.
    TooLarge,
}

impl fmt::Display for ScanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "no size given",
            Self::Negative => "a size cannot be negative",
            Self::NoDigits => "expected a number, e.g. 512M or 1.5G",
            Self::TwoPoints => "more than one '.' in the number",
            Self::BadUnit => "unknown unit (use K, M, G or T after the number; a plain number is bytes)",
            Self::TooLarge => "too large (more than 16E)",
        })
    }
}

/// Read a byte count as scan_scaled(3) does: digits, an optional `.` and fraction, and an
/// optional unit letter `B K M G T P E` (either case): `1024`, `512M`, `1.5G`, `4k`. Without a
/// unit the number is in bytes and a fraction is dropped; with one the fraction counts
/// (`1.5K` is 1536; anything below a byte is dropped). Stricter than scan_scaled(3): an empty
/// string (which it reads as 0), blanks, a sign and text after the unit are refused.
pub fn scan_scaled(text: &str) -> Result<u64, ScanError> {
    if text.is_empty() {
        return Err(ScanError::Empty);
    }
    if text.starts_with('-') {
        return Err(ScanError::Negative);
    }
    let bytes = text.as_bytes();
    let digits_end = bytes.iter().position(|b| !b.is_ascii_digit() && *b != b'.').unwrap_or(bytes.len());
    let (number, rest) = text.split_at(digits_end);
    let (whole, fraction) = match number.split_once('.') {
        Some((_, f)) if f.contains('.') => return Err(ScanError::TwoPoints),
        Some((w, f)) => (w, f),
        None => (number, ""),
    };
    if whole.is_empty() && fraction.is_empty() {
        return Err(ScanError::NoDigits);
    }
    let unit = match rest.as_bytes() {
        [] => 0,
        [u] => UNITS.iter().position(|c| c.eq_ignore_ascii_case(u)).ok_or(ScanError::BadUnit)?,
        _ => return Err(ScanError::BadUnit),
    };
    let mut value: u64 = 0;
    for d in whole.bytes() {
        value = value.checked_mul(10).and_then(|v| v.checked_add(u64::from(d - b'0'))).ok_or(ScanError::TooLarge)?;
    }
    value = value.checked_mul(scale(unit)).ok_or(ScanError::TooLarge)?;
    // The fraction, to at most 19 digits (more cannot change the result by a byte here).
    let mut numerator: u128 = 0;
    let mut denominator: u128 = 1;
    for d in fraction.bytes().take(19) {
        numerator = numerator * 10 + u128::from(d - b'0');
        denominator *= 10;
    }
    let part = numerator * u128::from(scale(unit)) / denominator;
    // part < scale(unit) <= 2^60, so it fits a u64.
    value.checked_add(u64::try_from(part).map_err(|_| ScanError::TooLarge)?).ok_or(ScanError::TooLarge)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fmt_scaled_matches_libutil_regress() {
        // Positive cases of OpenBSD's regress/lib/libutil/fmt_scaled/fmt_test.c.
        let cases: &[(u64, &str)] = &[
            (0, "0B"),
            (1, "1B"),
            (100, "100B"),
            (999, "999B"),
            (1000, "1000B"),
            (1023, "1023B"),
            (1024, "1.0K"),
            (1025, "1.0K"),
            (1234, "1.2K"),
            (1484, "1.4K"),
            (1485, "1.5K"),
            (1536, "1.5K"),
            (1786, "1.7K"),
            (1800, "1.8K"),
            (2000, "2.0K"),
            (123_456, "121K"),
            (578_318, "565K"),
            (902_948, "882K"),
            (1_048_576, "1.0M"),
            (1_048_628, "1.0M"),
            (1_049_447, "1.0M"),
            (7_299_072, "7.0M"),
            (409_478_144, "391M"),
            (999_999_999, "954M"),
            (1_499_999_999, "1.4G"),
            (12_475_423_744, "11.6G"),
            (1 << 61, "2.0E"),
            (1 << 62, "4.0E"),
            (1_099_512_676_352, "1.0T"),
        ];
        for &(n, want) in cases {
            assert_eq!(fmt_scaled(n), want, "fmt_scaled({n})");
        }
    }

    #[test]
    fn fmt_scaled_vm_sizes() {
        assert_eq!(fmt_scaled(512 << 20), "512M");
        assert_eq!(fmt_scaled(1 << 30), "1.0G");
        assert_eq!(fmt_scaled(128 << 30), "128G");
        assert_eq!(fmt_scaled(92_379_545), "88.1M");
        assert_eq!(fmt_scaled(4_718_592_000), "4.4G");
        // Rounding into the next whole number, and at the unit boundary.
        assert_eq!(fmt_scaled(1_048_575), "1024K");
        assert_eq!(fmt_scaled((99 << 20) + (1000 << 10)), "100M");
        assert_eq!(fmt_scaled(u64::MAX), "16.0E");
    }

    #[test]
    fn scan_scaled_reads_sizes() {
        let cases: &[(&str, u64)] = &[
            ("0", 0),
            ("123", 123),
            ("1k", 1024),
            ("100.944", 100),
            ("10099", 10099),
            ("1M", 1_048_576),
            ("1.1M", 1_153_433),
            ("1.111111111111111111M", 1_165_084),
            ("1.55M", 1_625_292),
            ("1.9M", 1_992_294),
            ("4.5k", 4608),
            ("4.5555555555555555K", 4664),
            ("4.555555555555555555555555555555K", 4664),
            ("1G", 1_073_741_824),
            ("1234567890", 1_234_567_890),
            ("1.5E", 1_729_382_256_910_270_464),
            ("512b", 512),
            (".5K", 512),
            ("2.", 2),
        ];
        for &(text, want) in cases {
            assert_eq!(scan_scaled(text), Ok(want), "scan_scaled({text:?})");
        }
    }

    #[test]
    fn scan_scaled_refuses_garbage() {
        use ScanError::*;
        let cases: &[(&str, ScanError)] = &[
            ("", Empty),
            (".", NoDigits),
            ("G", NoDigits),
            ("x", NoDigits),
            ("+1G", NoDigits),
            ("++42", NoDigits),
            (" 1G", NoDigits),
            ("-2K", Negative),
            ("--1", Negative),
            ("-", Negative),
            ("1..0", TwoPoints),
            ("1.2.3G", TwoPoints),
            ("1.5Q", BadUnit),
            ("1ab", BadUnit),
            ("5.0e3", BadUnit),
            ("5.0E3", BadUnit),
            ("1 G", BadUnit),
            ("1G ", BadUnit),
            ("1G.", BadUnit),
            ("1GB", BadUnit),
            ("1é", BadUnit),
            ("32948093840918378473209480483092", TooLarge),
            ("16E", TooLarge),
            ("18446744073709551616", TooLarge),
        ];
        for &(text, want) in cases {
            assert_eq!(scan_scaled(text), Err(want), "scan_scaled({text:?})");
        }
        assert_eq!(scan_scaled("18446744073709551615"), Ok(u64::MAX));
    }

    #[test]
    fn scan_errors_read_well() {
        assert_eq!(
            ScanError::BadUnit.to_string(),
            "unknown unit (use K, M, G or T after the number; a plain number is bytes)"
        );
        assert_eq!(ScanError::NoDigits.to_string(), "expected a number, e.g. 512M or 1.5G");
    }
}

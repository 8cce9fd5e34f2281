//! Byte sizes with a scale suffix, as scan_scaled(3) reads them, and vmd's rules for a VM's
//! memory size (at least 1 MiB, rounded down to whole MiB, bounded above).
//!
//! scan_scaled(3): an optional `+`, decimal digits with an optional fraction (`1.5G`), and an
//! optional unit, one of `B K M G T P E` in either case, each 1024 times the one before. A plain
//! number is bytes. Stricter than scan_scaled: there must be at least one digit, and nothing may
//! follow the unit (scan_scaled accepts `1G.`).
//! Does not: accept negative sizes, exponents, or SI (1000-based) units.

use alloc::format;
use alloc::string::String;

use crate::error::quoted;

/// Smallest memory size vmd accepts.
pub const MIN_MEMORY: u64 = 1 << 20;
/// Largest memory size this crate accepts (vmd's VMM_MAX_VM_MEM_SIZE is 128 GiB; Keel allows 1 TiB).
pub const MAX_MEMORY: u64 = 1 << 40;

/// Reads `s` as scan_scaled(3) does: `"512M"` is 512 MiB, `"1.5G"` is 1.5 GiB, `"4096"` is 4096
/// bytes. Fractions of a byte are dropped.
pub fn scan_scaled(s: &str) -> Result<u64, String> {
    let t = s.trim_start_matches(|c: char| c.is_ascii_whitespace());
    let t = t.strip_prefix('+').unwrap_or(t);
    if t.starts_with('-') {
        return Err(String::from("size must not be negative"));
    }
    let num_end = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(num_end);
    let (whole, fraction) = match num.split_once('.') {
        Some((w, f)) => (w, f),
        None => (num, ""),
    };
    if fraction.contains('.') {
        return Err(String::from("more than one '.' in number"));
    }
    if whole.is_empty() && fraction.is_empty() {
        return Err(String::from("expected a number, e.g. 512M or 1G"));
    }
    let shift = match unit.as_bytes() {
        [] | [b'b' | b'B'] => 0,
        [b'k' | b'K'] => 10,
        [b'm' | b'M'] => 20,
        [b'g' | b'G'] => 30,
        [b't' | b'T'] => 40,
        [b'p' | b'P'] => 50,
        [b'e' | b'E'] => 60,
        _ => return Err(format!("unknown unit {} (use K, M, G or T)", quoted(unit))),
    };
    let too_large = || String::from("size too large");
    let mut value: u128 = 0;
    for d in whole.bytes() {
        value = value.checked_mul(10).and_then(|v| v.checked_add(u128::from(d - b'0'))).ok_or_else(too_large)?;
        if value > u128::from(u64::MAX) {
            return Err(too_large());
        }
    }
    let mut bytes = value << shift;
    // The fraction, scaled: at most 19 digits matter (10^19 > 2^63), further ones are dropped.
    let mut frac: u128 = 0;
    let mut denom: u128 = 1;
    for d in fraction.bytes().take(19) {
        frac = frac * 10 + u128::from(d - b'0');
        denom *= 10;
    }
    bytes += (frac << shift) / denom;
    u64::try_from(bytes).map_err(|_| too_large())
}

/// A VM's memory size as vmd's `parse_size` reads it: scan_scaled(3), at least 1 MiB, at most
/// [`MAX_MEMORY`], rounded down to a whole MiB. `parse_size("1G")` is `1 << 30`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    check_memory(scan_scaled(s)?)
}

/// vmd's bounds and rounding for a memory size given in bytes (`memory 1073741824`).
pub fn check_memory(bytes: u64) -> Result<u64, String> {
    if bytes < MIN_MEMORY {
        return Err(String::from("memory size must be at least 1M"));
    }
    if bytes > MAX_MEMORY {
        return Err(String::from("memory size too large (limit is 1T)"));
    }
    Ok(bytes & !(MIN_MEMORY - 1))
}

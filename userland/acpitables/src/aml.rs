//! A small ACPI Machine Language encoder: the handful of constructs the DSDT needs (names,
//! scopes, devices, packages, buffers, integers, strings, EISA IDs) and the resource descriptors
//! of a `_CRS` buffer. Each function returns the encoded bytes; nesting is by passing the encoded
//! children in.
//!
//! Every encoder is total: inputs that AML cannot express (a name segment that is not 1-4
//! characters of `A-Z 0-9 _`, a package of more than 255 elements, an object of 256 MiB or more)
//! are reported as [`AmlError`] instead of producing bad bytes.
//!
//! Does not: encode methods, operation regions, fields or any other executable AML.
//!
//! See: ACPI 6.5 sections 20.2 (AML grammar: 20.2.2 name objects, 20.2.3 data objects, 20.2.4
//! package length, 20.2.5 term objects) and 6.4 (resource data types); EISA ID compression in
//! 19.3.4 ("ASL Macros", EISAID).

use alloc::vec::Vec;

/// Why something could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AmlError {
    /// A name segment that is empty, longer than 4, or has characters outside `A-Z 0-9 _`
    /// (the first not a digit).
    BadName,
    /// More than 255 package elements.
    TooManyElements,
    /// An object too large for a package length (2^28 bytes).
    TooLong,
    /// An EISA ID that is not three letters and four hex digits.
    BadEisaId,
}

pub type Result<T> = core::result::Result<T, AmlError>;

// Opcodes (20.2).
const ZERO_OP: u8 = 0x00;
const ONE_OP: u8 = 0x01;
const NAME_OP: u8 = 0x08;
const BYTE_PREFIX: u8 = 0x0A;
const WORD_PREFIX: u8 = 0x0B;
const DWORD_PREFIX: u8 = 0x0C;
const STRING_PREFIX: u8 = 0x0D;
const QWORD_PREFIX: u8 = 0x0E;
const SCOPE_OP: u8 = 0x10;
const BUFFER_OP: u8 = 0x11;
const PACKAGE_OP: u8 = 0x12;
const DUAL_NAME_PREFIX: u8 = 0x2E;
const MULTI_NAME_PREFIX: u8 = 0x2F;
const ROOT_CHAR: u8 = b'\\';
const EXT_OP_PREFIX: u8 = 0x5B;
const DEVICE_OP: u8 = 0x82;

/// The PkgLength encoding of an object whose contents (after the PkgLength) are `len` bytes; the
/// encoded value counts the PkgLength bytes themselves (20.2.4).
pub fn pkg_length(len: usize) -> Result<Vec<u8>> {
    for extra in 0..4usize {
        let total = len.checked_add(1 + extra).ok_or(AmlError::TooLong)?;
        let limit = match extra {
            0 => 0x40,
            1 => 0x1000,
            2 => 0x10_0000,
            _ => 0x1000_0000,
        };
        if total < limit {
            if extra == 0 {
                return Ok(alloc::vec![total as u8]);
            }
            let mut out = alloc::vec![(extra as u8) << 6 | (total & 0xF) as u8];
            for i in 0..extra {
                out.push((total >> (4 + 8 * i)) as u8);
            }
            return Ok(out);
        }
    }
    Err(AmlError::TooLong)
}

/// One 4-character name segment: `seg` padded with `_` (20.2.2 NameSeg).
pub fn name_seg(seg: &str) -> Result<[u8; 4]> {
    let bytes = seg.as_bytes();
    let valid = |(i, &c): (usize, &u8)| c.is_ascii_uppercase() || c == b'_' || (i > 0 && c.is_ascii_digit());
    if bytes.is_empty() || bytes.len() > 4 || !bytes.iter().enumerate().all(valid) {
        return Err(AmlError::BadName);
    }
    let mut out = [b'_'; 4];
    out[..bytes.len()].copy_from_slice(bytes);
    Ok(out)
}

/// A NameString: an optional leading `\` (root), then segments separated by `.` (20.2.2).
pub fn name_string(path: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let rest = match path.strip_prefix('\\') {
        Some(rest) => {
            out.push(ROOT_CHAR);
            rest
        }
        None => path,
    };
    if rest.is_empty() {
        // The root itself: `\` followed by a null name.
        out.push(0);
        return Ok(out);
    }
    let segs: Vec<[u8; 4]> = rest.split('.').map(name_seg).collect::<Result<_>>()?;
    match segs.len() {
        1 => {}
        2 => out.push(DUAL_NAME_PREFIX),
        n if n <= 255 => {
            out.push(MULTI_NAME_PREFIX);
            out.push(n as u8);
        }
        _ => return Err(AmlError::TooManyElements),
    }
    for seg in segs {
        out.extend_from_slice(&seg);
    }
    Ok(out)
}

/// An integer in the shortest encoding: ZeroOp, OneOp, or a Byte/Word/DWord/QWord constant.
pub fn integer(value: u64) -> Vec<u8> {
    match value {
        0 => alloc::vec![ZERO_OP],
        1 => alloc::vec![ONE_OP],
        v if v <= 0xFF => alloc::vec![BYTE_PREFIX, v as u8],
        v if v <= 0xFFFF => {
            let mut out = alloc::vec![WORD_PREFIX];
            out.extend_from_slice(&(v as u16).to_le_bytes());
            out
        }
        v if v <= 0xFFFF_FFFF => dword(v as u32),
        v => {
            let mut out = alloc::vec![QWORD_PREFIX];
            out.extend_from_slice(&v.to_le_bytes());
            out
        }
    }
}

/// A DWord constant, whatever its value (EISA IDs are always encoded this way).
pub fn dword(value: u32) -> Vec<u8> {
    let mut out = alloc::vec![DWORD_PREFIX];
    out.extend_from_slice(&value.to_le_bytes());
    out
}

/// A string constant (ASCII, no NUL inside).
pub fn string(s: &str) -> Result<Vec<u8>> {
    if !s.bytes().all(|c| (1..0x80).contains(&c)) {
        return Err(AmlError::BadName);
    }
    let mut out = alloc::vec![STRING_PREFIX];
    out.extend_from_slice(s.as_bytes());
    out.push(0);
    Ok(out)
}

/// The compressed EISA ID of `id` such as "PNP0A03": three letters in 5 bits each, then four
/// hex digits, stored big-endian (19.3.4 EISAID).
pub fn eisa_id(id: &str) -> Result<u32> {
    let b = id.as_bytes();
    if b.len() != 7 || !b[..3].iter().all(u8::is_ascii_uppercase) || !b[3..].iter().all(u8::is_ascii_hexdigit) {
        return Err(AmlError::BadEisaId);
    }
    let letters = u16::from(b[0] - 0x40) << 10 | u16::from(b[1] - 0x40) << 5 | u16::from(b[2] - 0x40);
    let digits = core::str::from_utf8(&b[3..]).ok().and_then(|s| u16::from_str_radix(s, 16).ok());
    let digits = digits.ok_or(AmlError::BadEisaId)?;
    let [l0, l1] = letters.to_be_bytes();
    let [d0, d1] = digits.to_be_bytes();
    Ok(u32::from_le_bytes([l0, l1, d0, d1]))
}

/// `opcode PkgLength contents`.
fn with_pkg_length(opcode: &[u8], contents: &[u8]) -> Result<Vec<u8>> {
    let mut out = opcode.to_vec();
    out.extend(pkg_length(contents.len())?);
    out.extend_from_slice(contents);
    Ok(out)
}

/// `Package (n) { elements }` (20.2.5.4 DefPackage); each element an encoded data object.
pub fn package(elements: &[Vec<u8>]) -> Result<Vec<u8>> {
    let count = u8::try_from(elements.len()).map_err(|_| AmlError::TooManyElements)?;
    let mut contents = alloc::vec![count];
    for e in elements {
        contents.extend_from_slice(e);
    }
    with_pkg_length(&[PACKAGE_OP], &contents)
}

/// `Buffer (len) { bytes }` (20.2.5.4 DefBuffer).
pub fn buffer(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut contents = integer(bytes.len() as u64);
    contents.extend_from_slice(bytes);
    with_pkg_length(&[BUFFER_OP], &contents)
}

/// `Name (path, object)` (20.2.5.1 DefName).
pub fn name(path: &str, object: &[u8]) -> Result<Vec<u8>> {
    let mut out = alloc::vec![NAME_OP];
    out.extend(name_string(path)?);
    out.extend_from_slice(object);
    Ok(out)
}

/// `Scope (path) { terms }` (20.2.5.1 DefScope).
pub fn scope(path: &str, terms: &[u8]) -> Result<Vec<u8>> {
    let mut contents = name_string(path)?;
    contents.extend_from_slice(terms);
    with_pkg_length(&[SCOPE_OP], &contents)
}

/// `Device (path) { terms }` (20.2.5.2 DefDevice).
pub fn device(path: &str, terms: &[u8]) -> Result<Vec<u8>> {
    let mut contents = name_string(path)?;
    contents.extend_from_slice(terms);
    with_pkg_length(&[EXT_OP_PREFIX, DEVICE_OP], &contents)
}

/// Resource descriptors for `_CRS` buffers (6.4).
pub mod resource {
    use alloc::vec::Vec;

    /// Address space descriptor resource types (6.4.3.5 Table 6.49).
    const TYPE_MEMORY: u8 = 0;
    const TYPE_IO: u8 = 1;
    const TYPE_BUS: u8 = 2;
    /// General flags: producer, positive decode, min and max fixed (_MIF, _MAF).
    const GENERAL_FIXED: u8 = 0x0C;
    /// I/O type-specific flags: EntireRange (_RNG = 3).
    const IO_ENTIRE_RANGE: u8 = 0x03;
    /// Memory type-specific flags: read-write, non-cacheable.
    const MEM_RW: u8 = 0x01;

    /// I/O port descriptor, 16-bit decode (6.4.2.5).
    pub fn io(min: u16, max: u16, align: u8, len: u8) -> Vec<u8> {
        let mut out = alloc::vec![0x47, 0x01];
        out.extend_from_slice(&min.to_le_bytes());
        out.extend_from_slice(&max.to_le_bytes());
        out.push(align);
        out.push(len);
        out
    }

    /// Word address space descriptor (6.4.3.5.3) for `[min, max]`.
    fn word(kind: u8, type_flags: u8, min: u16, max: u16) -> Vec<u8> {
        let mut out = alloc::vec![0x88, 0x0D, 0x00, kind, GENERAL_FIXED, type_flags];
        let len = max.wrapping_sub(min).wrapping_add(1);
        for v in [0u16, min, max, 0, len] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    /// `WordBusNumber` for buses `[min, max]`.
    pub fn word_bus_number(min: u16, max: u16) -> Vec<u8> {
        word(TYPE_BUS, 0, min, max)
    }

    /// `WordIO` for ports `[min, max]`.
    pub fn word_io(min: u16, max: u16) -> Vec<u8> {
        word(TYPE_IO, IO_ENTIRE_RANGE, min, max)
    }

    /// `DWordMemory` for `[min, max]` (6.4.3.5.2), non-cacheable read-write.
    pub fn dword_memory(min: u32, max: u32) -> Vec<u8> {
        let mut out = alloc::vec![0x87, 0x17, 0x00, TYPE_MEMORY, GENERAL_FIXED, MEM_RW];
        let len = max.wrapping_sub(min).wrapping_add(1);
        for v in [0u32, min, max, 0, len] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    /// `QWordMemory` for `[min, max]` (6.4.3.5.1), non-cacheable read-write.
    pub fn qword_memory(min: u64, max: u64) -> Vec<u8> {
        let mut out = alloc::vec![0x8A, 0x2B, 0x00, TYPE_MEMORY, GENERAL_FIXED, MEM_RW];
        let len = max.wrapping_sub(min).wrapping_add(1);
        for v in [0u64, min, max, 0, len] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    /// The end tag (6.4.2.9), checksum 0 ("the checksum is not used").
    pub fn end() -> Vec<u8> {
        alloc::vec![0x79, 0x00]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkg_lengths() {
        assert_eq!(pkg_length(0).unwrap(), [1]);
        assert_eq!(pkg_length(0x3E).unwrap(), [0x3F]);
        // 63 bytes of contents + 1 = 64: needs two bytes (total 65 = 0x41).
        assert_eq!(pkg_length(0x3F).unwrap(), [0x41, 0x04]);
        assert_eq!(pkg_length(0xFFD).unwrap(), [0x4F, 0xFF]);
        assert_eq!(pkg_length(0xFFE).unwrap(), [0x81, 0x00, 0x01], "total 0x1001");
        assert_eq!(pkg_length(0xF_FFFC).unwrap(), [0x8F, 0xFF, 0xFF]);
        assert_eq!(pkg_length(0xF_FFFD).unwrap(), [0xC1, 0x00, 0x00, 0x01]);
        assert_eq!(pkg_length(0x0FFF_FFFB).unwrap(), [0xCF, 0xFF, 0xFF, 0xFF]);
        assert_eq!(pkg_length(0x0FFF_FFFC), Err(AmlError::TooLong));
        assert_eq!(pkg_length(usize::MAX), Err(AmlError::TooLong));
    }

    #[test]
    fn names() {
        assert_eq!(&name_seg("_S5").unwrap(), b"_S5_");
        assert_eq!(&name_seg("PCI0").unwrap(), b"PCI0");
        assert_eq!(name_seg(""), Err(AmlError::BadName));
        assert_eq!(name_seg("ABCDE"), Err(AmlError::BadName));
        assert_eq!(name_seg("0ABC"), Err(AmlError::BadName));
        assert_eq!(name_seg("ab"), Err(AmlError::BadName));
        assert_eq!(name_string("\\_S5").unwrap(), b"\\_S5_");
        assert_eq!(name_string("\\_SB.PCI0").unwrap(), b"\\\x2e_SB_PCI0");
        assert_eq!(name_string("\\_SB.PCI0.S08").unwrap(), b"\\\x2f\x03_SB_PCI0S08_");
        assert_eq!(name_string("\\").unwrap(), b"\\\x00");
        assert_eq!(name_string("A..B"), Err(AmlError::BadName));
    }

    #[test]
    fn data_objects() {
        assert_eq!(integer(0), [0x00]);
        assert_eq!(integer(1), [0x01]);
        assert_eq!(integer(5), [0x0A, 5]);
        assert_eq!(integer(0x1234), [0x0B, 0x34, 0x12]);
        assert_eq!(integer(0x0001_FFFF), [0x0C, 0xFF, 0xFF, 0x01, 0x00]);
        assert_eq!(integer(1 << 32), [0x0E, 0, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(string("AB").unwrap(), [0x0D, b'A', b'B', 0]);
        assert_eq!(string("A\0"), Err(AmlError::BadName));
        // The well-known encoding of PNP0A03 (as iasl emits it: 0C 41 D0 0A 03).
        assert_eq!(eisa_id("PNP0A03").unwrap(), 0x030A_D041);
        assert_eq!(dword(eisa_id("PNP0A03").unwrap()), [0x0C, 0x41, 0xD0, 0x0A, 0x03]);
        assert_eq!(eisa_id("PNP0B00").unwrap(), 0x000B_D041);
        assert_eq!(eisa_id("PNP0A0"), Err(AmlError::BadEisaId));
        assert_eq!(eisa_id("pnp0A03"), Err(AmlError::BadEisaId));
        assert_eq!(eisa_id("PNP0A0G"), Err(AmlError::BadEisaId));
    }

    /// `Name (\_S5, Package (4) {5, 5, 0, 0})` as iasl encodes it.
    #[test]
    fn s5_object() {
        let pkg = package(&[integer(5), integer(5), integer(0), integer(0)]).unwrap();
        assert_eq!(
            name("\\_S5", &pkg).unwrap(),
            [0x08, b'\\', b'_', b'S', b'5', b'_', 0x12, 0x08, 0x04, 0x0A, 0x05, 0x0A, 0x05, 0x00, 0x00]
        );
        let too_many: Vec<Vec<u8>> = (0..256).map(|_| integer(0)).collect();
        assert_eq!(package(&too_many), Err(AmlError::TooManyElements));
    }

    #[test]
    fn containers() {
        assert_eq!(buffer(&[0x79, 0]).unwrap(), [0x11, 0x05, 0x0A, 0x02, 0x79, 0x00]);
        assert_eq!(scope("\\_SB", &[]).unwrap(), [0x10, 0x06, b'\\', b'_', b'S', b'B', b'_']);
        assert_eq!(device("PCI0", &[0x01]).unwrap(), [0x5B, 0x82, 0x06, b'P', b'C', b'I', b'0', 0x01]);
        // A long body switches to a two-byte PkgLength.
        let long = device("PCI0", &[0u8; 100]).unwrap();
        assert_eq!(&long[..4], &[0x5B, 0x82, 0x4A, 0x06], "total 106 = 0x6A");
        assert_eq!(long.len(), 2 + 2 + 4 + 100);
    }

    #[test]
    fn resources() {
        // As iasl encodes QEMU's PCI0 _CRS entries.
        assert_eq!(
            resource::word_bus_number(0, 0xFF),
            [0x88, 0x0D, 0x00, 0x02, 0x0C, 0x00, 0, 0, 0, 0, 0xFF, 0, 0, 0, 0x00, 0x01]
        );
        assert_eq!(resource::io(0xCF8, 0xCF8, 1, 8), [0x47, 0x01, 0xF8, 0x0C, 0xF8, 0x0C, 0x01, 0x08]);
        assert_eq!(
            resource::word_io(0x0D00, 0xFFFF),
            [0x88, 0x0D, 0x00, 0x01, 0x0C, 0x03, 0, 0, 0x00, 0x0D, 0xFF, 0xFF, 0, 0, 0x00, 0xF3]
        );
        let mem = resource::dword_memory(0xE000_0000, 0xEFFF_FFFF);
        assert_eq!(mem.len(), 26);
        assert_eq!(&mem[..6], &[0x87, 0x17, 0x00, 0x00, 0x0C, 0x01]);
        assert_eq!(&mem[22..], &0x1000_0000u32.to_le_bytes());
        let q = resource::qword_memory(1 << 36, (1 << 37) - 1);
        assert_eq!(q.len(), 46);
        assert_eq!(&q[38..], &(1u64 << 36).to_le_bytes());
        assert_eq!(resource::end(), [0x79, 0x00]);
    }
}

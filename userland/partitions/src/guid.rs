//! GUIDs as GPT stores them (UEFI 2.10 appendix A: the first three fields little-endian, the last
//! eight bytes in order), their text form, and the partition type GUIDs Keel names. It does not
//! make GUIDs: a caller that writes a table brings its own random ones.

use core::fmt;

/// A GUID, as its 16 bytes on disk.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// The all-zero GUID: an unused GPT entry's type.
    pub const ZERO: Guid = Guid([0; 16]);

    /// The GUID written `d1-d2-d3-d4[0..2]-d4[2..8]` in text.
    pub const fn from_fields(d1: u32, d2: u16, d3: u16, d4: [u8; 8]) -> Guid {
        let a = d1.to_le_bytes();
        let b = d2.to_le_bytes();
        let c = d3.to_le_bytes();
        Guid([a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d4[0], d4[1], d4[2], d4[3], d4[4], d4[5], d4[6], d4[7]])
    }

    /// Parse the text form `XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX` (either case).
    pub fn parse(text: &str) -> Option<Guid> {
        let t = text.as_bytes();
        if t.len() != 36 || t[8] != b'-' || t[13] != b'-' || t[18] != b'-' || t[23] != b'-' {
            return None;
        }
        let hex = |range: core::ops::Range<usize>| -> Option<u64> {
            let digits = text.get(range)?;
            // from_str_radix alone would take a leading '+'.
            if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            u64::from_str_radix(digits, 16).ok()
        };
        let mut d4 = [0u8; 8];
        d4[..2].copy_from_slice(&(hex(19..23)? as u16).to_be_bytes());
        d4[2..].copy_from_slice(&hex(24..36)?.to_be_bytes()[2..]);
        Some(Guid::from_fields(hex(0..8)? as u32, hex(9..13)? as u16, hex(14..18)? as u16, d4))
    }

    pub fn is_zero(&self) -> bool {
        *self == Guid::ZERO
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = &self.0;
        write!(
            f,
            "{:08X}-{:04X}-{:04X}-{:02X}{:02X}-",
            u32::from_le_bytes([g[0], g[1], g[2], g[3]]),
            u16::from_le_bytes([g[4], g[5]]),
            u16::from_le_bytes([g[6], g[7]]),
            g[8],
            g[9]
        )?;
        g[10..].iter().try_for_each(|b| write!(f, "{b:02X}"))
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Partition type GUIDs (UEFI 2.10 table 5.7 for the EFI system partition; the others are the
/// owners' published values, as `sgdisk -L` lists them).
pub mod types {
    use super::Guid;

    /// EFI system partition (FAT).
    pub const EFI_SYSTEM: Guid =
        Guid::from_fields(0xC12A7328, 0xF81F, 0x11D2, [0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E, 0xC9, 0x3B]);
    /// Microsoft basic data: FAT, exFAT or NTFS (what Windows and macOS mount; a datastore's type).
    pub const MICROSOFT_BASIC_DATA: Guid =
        Guid::from_fields(0xEBD0A0A2, 0xB9E5, 0x4433, [0x87, 0xC0, 0x68, 0xB6, 0xB7, 0x26, 0x99, 0xC7]);
    /// Linux file system data.
    pub const LINUX_FILESYSTEM: Guid =
        Guid::from_fields(0x0FC63DAF, 0x8483, 0x4772, [0x8E, 0x79, 0x3D, 0x69, 0xD8, 0x47, 0x7D, 0xE4]);
    /// Linux swap.
    pub const LINUX_SWAP: Guid =
        Guid::from_fields(0x0657FD6D, 0xA4AB, 0x43C4, [0x84, 0xE5, 0x09, 0x33, 0xC8, 0x4B, 0x4F, 0x4F]);
    /// Linux LVM physical volume.
    pub const LINUX_LVM: Guid =
        Guid::from_fields(0xE6D6D379, 0xF507, 0x44C2, [0xA2, 0x3C, 0x23, 0x8F, 0x2A, 0x3D, 0xF9, 0x28]);
    /// Linux RAID member.
    pub const LINUX_RAID: Guid =
        Guid::from_fields(0xA19D880F, 0x05FC, 0x4D3B, [0xA0, 0x06, 0x74, 0x3F, 0x0F, 0x84, 0x91, 0x1E]);
    /// BIOS boot partition (GRUB's core image on a GPT disk).
    pub const BIOS_BOOT: Guid =
        Guid::from_fields(0x21686148, 0x6449, 0x6E6F, [0x74, 0x4E, 0x65, 0x65, 0x64, 0x45, 0x46, 0x49]);
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::string::ToString;

    #[test]
    fn text_form_round_trips_and_matches_the_disk_order() {
        let text = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
        assert_eq!(types::EFI_SYSTEM.to_string(), text);
        assert_eq!(Guid::parse(text), Some(types::EFI_SYSTEM));
        assert_eq!(Guid::parse(&text.to_lowercase()), Some(types::EFI_SYSTEM));
        // On disk the first field is little-endian: 28 73 2A C1.
        assert_eq!(&types::EFI_SYSTEM.0[..4], &[0x28, 0x73, 0x2A, 0xC1]);
        assert_eq!(Guid::parse("C12A7328-F81F-11D2-BA4B-00A0C93EC93"), None);
        assert_eq!(Guid::parse("C12A7328+F81F-11D2-BA4B-00A0C93EC93B"), None);
        assert_eq!(Guid::parse("C12A7328-F81F-11D2-BA4B-00A0C93EC9ZB"), None);
        assert_eq!(Guid::parse("C12A7328-+81F-11D2-BA4B-00A0C93EC93B"), None);
    }
}

//! The IDENTIFY DEVICE data an ATA disk returns (ATA8-ACS 7.16, Table 22; ACS-3 for word 106
//! and the logical sector size): names, the LBA48 sector count, the logical sector size and
//! the cache commands. Pure decoding of 512 bytes the device wrote, checked as hostile: what a
//! driver cannot use makes the disk unusable, never a panic.

use alloc::string::String;

/// Bytes of IDENTIFY DEVICE data.
pub const IDENTIFY_BYTES: usize = 512;

/// What the driver keeps of a disk's IDENTIFY DEVICE data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AtaIdentity {
    /// Serial number (words 10-19).
    pub serial: String,
    /// Firmware revision (words 23-26).
    pub firmware: String,
    /// Model number (words 27-46).
    pub model: String,
    /// User-addressable logical sectors for 48-bit commands (words 100-103).
    pub sector_count: u64,
    /// Bytes per logical sector (512, or words 117-118 when word 106 says so).
    pub sector_size: u32,
    /// FLUSH CACHE EXT is supported (word 83 bit 13); else FLUSH CACHE is used.
    pub flush_ext: bool,
    /// A volatile write cache is enabled (word 85 bit 5).
    pub write_cache: bool,
}

/// Why a device is not offered as a disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AtaUnusable {
    /// Word 0 bit 15 set: not an ATA device.
    NotAta,
    /// No 48-bit addressing (word 83 bit 10): READ/WRITE DMA EXT cannot be used.
    NoLba48,
    /// A sector count of 0.
    Empty,
    /// A logical sector size that is not a power of two from 512 bytes to 64 KiB.
    SectorSize(u32),
    /// Word 255 carries the 0xA5 signature but the checksum is wrong.
    Checksum,
}

/// The largest LBA48 address space: 2^48 sectors.
const MAX_SECTORS: u64 = 1 << 48;

fn word(data: &[u8; IDENTIFY_BYTES], index: usize) -> u16 {
    u16::from_le_bytes([data[2 * index], data[2 * index + 1]])
}

impl AtaIdentity {
    pub fn decode(data: &[u8; IDENTIFY_BYTES]) -> Result<Self, AtaUnusable> {
        // Integrity word: signature A5h in bits 7:0, then all 512 bytes sum to 0. See: ATA8-ACS 7.16.7.85
        if data[510] == 0xa5 && data.iter().fold(0u8, |sum, &b| sum.wrapping_add(b)) != 0 {
            return Err(AtaUnusable::Checksum);
        }
        if word(data, 0) & 1 << 15 != 0 {
            return Err(AtaUnusable::NotAta);
        }
        if word(data, 83) & 1 << 10 == 0 {
            return Err(AtaUnusable::NoLba48);
        }
        let sectors = (100..104).rev().fold(0u64, |count, index| count << 16 | word(data, index) as u64);
        if sectors == 0 {
            return Err(AtaUnusable::Empty);
        }
        // Word 106 is valid when bit 14 is 1 and bit 15 is 0; bit 12: the logical sector is
        // longer than 256 words, and words 117-118 give its length in words. See: ACS-3 7.12.7.43
        let sizes = word(data, 106);
        let sector_size = if sizes & 0xc000 == 0x4000 && sizes & 1 << 12 != 0 {
            let words = word(data, 117) as u32 | (word(data, 118) as u32) << 16;
            words.saturating_mul(2)
        } else {
            512
        };
        if !sector_size.is_power_of_two() || !(512..=65536).contains(&sector_size) {
            return Err(AtaUnusable::SectorSize(sector_size));
        }
        Ok(AtaIdentity {
            serial: ata_string(data, 10, 20),
            firmware: ata_string(data, 23, 27),
            model: ata_string(data, 27, 47),
            sector_count: sectors.min(MAX_SECTORS),
            sector_size,
            flush_ext: word(data, 83) & 1 << 13 != 0,
            write_cache: word(data, 85) & 1 << 5 != 0,
        })
    }
}

/// Words `first..end` as an ATA string: each word holds two characters, the first in its high
/// byte. Trailing spaces and NULs dropped, anything not printable shown as `?`.
fn ata_string(data: &[u8; IDENTIFY_BYTES], first: usize, end: usize) -> String {
    let mut text = String::new();
    for index in first..end {
        let [low, high] = word(data, index).to_le_bytes();
        for byte in [high, low] {
            text.push(if (0x20..0x7f).contains(&byte) {
                byte as char
            } else if byte == 0 {
                ' '
            } else {
                '?'
            });
        }
    }
    let kept = text.trim_end().len();
    text.truncate(kept);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn put_word(data: &mut [u8; IDENTIFY_BYTES], index: usize, value: u16) {
        data[2 * index..2 * index + 2].copy_from_slice(&value.to_le_bytes());
    }

    fn disk(sectors: u64) -> [u8; IDENTIFY_BYTES] {
        let mut data = [0u8; IDENTIFY_BYTES];
        for (offset, pair) in b"QM00001 ".chunks(2).enumerate() {
            put_word(&mut data, 10 + offset, (pair[0] as u16) << 8 | pair[1] as u16);
        }
        put_word(&mut data, 83, 1 << 10 | 1 << 13);
        put_word(&mut data, 85, 1 << 5);
        for index in 0..4 {
            put_word(&mut data, 100 + index, (sectors >> (16 * index)) as u16);
        }
        data
    }

    #[test]
    fn a_disk_decodes() {
        let id = AtaIdentity::decode(&disk(1 << 33)).unwrap();
        assert_eq!(id.serial, "QM00001");
        assert_eq!((id.sector_count, id.sector_size, id.flush_ext, id.write_cache), (1 << 33, 512, true, true));
    }

    #[test]
    fn hostile_data_is_refused() {
        assert_eq!(AtaIdentity::decode(&disk(0)), Err(AtaUnusable::Empty));
        let mut data = disk(8);
        put_word(&mut data, 106, 0x4000 | 1 << 12);
        put_word(&mut data, 117, 260);
        assert_eq!(AtaIdentity::decode(&data), Err(AtaUnusable::SectorSize(520)));
        put_word(&mut data, 117, 0);
        assert_eq!(AtaIdentity::decode(&data), Err(AtaUnusable::SectorSize(0)));
        put_word(&mut data, 117, 0xffff);
        put_word(&mut data, 118, 0xffff);
        assert_eq!(AtaIdentity::decode(&data), Err(AtaUnusable::SectorSize(u32::MAX)));
        put_word(&mut data, 117, 2048);
        put_word(&mut data, 118, 0);
        assert_eq!(AtaIdentity::decode(&data).unwrap().sector_size, 4096);
        let mut data = disk(8);
        put_word(&mut data, 83, 0);
        assert_eq!(AtaIdentity::decode(&data), Err(AtaUnusable::NoLba48));
        put_word(&mut data, 0, 0x8000);
        assert_eq!(AtaIdentity::decode(&data), Err(AtaUnusable::NotAta));
        let mut data = disk(8);
        data[510] = 0xa5;
        assert_eq!(AtaIdentity::decode(&data), Err(AtaUnusable::Checksum));
        let sum = data.iter().fold(0u8, |s, &b| s.wrapping_add(b));
        data[511] = data[511].wrapping_sub(sum);
        assert!(AtaIdentity::decode(&data).is_ok());
        let mut ones = [0xff; IDENTIFY_BYTES];
        ones[510] = 0;
        assert_eq!(AtaIdentity::decode(&ones), Err(AtaUnusable::NotAta));
        let mut huge = disk(u64::MAX);
        put_word(&mut huge, 27, 0x0102);
        let id = AtaIdentity::decode(&huge).unwrap();
        assert_eq!(id.sector_count, 1 << 48);
        assert_eq!(&id.model, "??");
    }
}

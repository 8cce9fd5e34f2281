//! The up-case table (exFAT spec 7.2): loading a volume's table (compressed form with identity
//! runs, checksum per 7.2.2), building one for mkfs, and the NameHash (7.6.4) that lookups and
//! new entry sets use. Names compare case-insensitively through the volume's own table, as the
//! spec requires (7.2.5); characters past the table map to themselves.

use alloc::vec::Vec;

use crate::error::{Error, Result};

/// A volume's up-case mapping for the UTF-16 units it covers.
pub struct UpcaseTable {
    map: Vec<u16>,
}

/// The table checksum (spec 7.2.2): the same rotate-and-add as the boot checksum, every byte.
pub fn table_checksum(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0u32, |sum, &b| sum.rotate_right(1).wrapping_add(u32::from(b)))
}

impl UpcaseTable {
    /// Decompress a table read from disk whose TableChecksum is `checksum`.
    pub fn load(bytes: &[u8], checksum: u32) -> Result<Self> {
        if table_checksum(bytes) != checksum {
            return Err(Error::Corrupt("up-case table checksum mismatch"));
        }
        let mut map = Vec::with_capacity(0x10000);
        let mut words = bytes.chunks_exact(2).map(|w| u16::from_le_bytes([w[0], w[1]]));
        while let Some(word) = words.next() {
            if map.len() >= 0x10000 {
                break;
            }
            // Spec 7.2.1: FFFFh followed by a count is a run of identity mappings.
            if word == 0xFFFF {
                let Some(run) = words.next() else { break };
                let end = (map.len() + usize::from(run)).min(0x10000);
                for unit in map.len()..end {
                    map.push(unit as u16);
                }
            } else {
                map.push(word);
            }
        }
        Ok(UpcaseTable { map })
    }

    /// The up-case of one unit.
    pub fn upcase(&self, unit: u16) -> u16 {
        self.map.get(usize::from(unit)).copied().unwrap_or(unit)
    }

    /// Whether two names are equal ignoring case.
    pub fn names_equal(&self, a: &[u16], b: &[u16]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(&x, &y)| self.upcase(x) == self.upcase(y))
    }

    /// NameHash of a name (spec 7.6.4): over the up-cased units, low byte then high byte.
    pub fn name_hash(&self, name: &[u16]) -> u16 {
        let mut hash = 0u16;
        for &unit in name {
            for b in self.upcase(unit).to_le_bytes() {
                hash = hash.rotate_right(1).wrapping_add(u16::from(b));
            }
        }
        hash
    }
}

/// A compressed up-case table for mkfs: every BMP character whose upper case is one BMP unit maps
/// to it (Rust's Unicode tables), identity runs compressed (spec 7.2.1). Returns the bytes.
pub fn build_table() -> Vec<u8> {
    let mut words: Vec<u16> = Vec::new();
    let mut identity_run = 0u16;
    let flush_run = |words: &mut Vec<u16>, run: &mut u16| {
        if *run > 0 {
            words.extend_from_slice(&[0xFFFF, *run]);
            *run = 0;
        }
    };
    for unit in 0..=0xFFFFu32 {
        let upper = char::from_u32(unit)
            .and_then(|c| {
                let mut up = c.to_uppercase();
                match (up.next(), up.next()) {
                    (Some(u), None) if (u as u32) <= 0xFFFF => Some(u as u32 as u16),
                    _ => None,
                }
            })
            .unwrap_or(unit as u16);
        if upper == unit as u16 {
            identity_run += 1;
        } else {
            flush_run(&mut words, &mut identity_run);
            words.push(upper);
        }
    }
    flush_run(&mut words, &mut identity_run);
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_built_table_loads_and_folds_case() {
        let bytes = build_table();
        assert!(bytes.len() < 8192);
        let table = UpcaseTable::load(&bytes, table_checksum(&bytes)).unwrap();
        assert_eq!(table.upcase(u16::from(b'a')), u16::from(b'A'));
        assert_eq!(table.upcase(0xE9), 0xC9);
        assert_eq!(table.upcase(u16::from(b'_')), u16::from(b'_'));
        let a: Vec<u16> = "Straße".encode_utf16().collect();
        let b: Vec<u16> = "STRAßE".encode_utf16().collect();
        assert!(table.names_equal(&a, &b));
        assert_eq!(table.name_hash(&a), table.name_hash(&b));
        assert!(UpcaseTable::load(&bytes, 0).is_err());
    }
}

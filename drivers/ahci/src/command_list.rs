//! The in-memory structures a port's commands live in (AHCI 1.3.1 4.2): the command list's
//! headers, the command table (the command FIS, then the PRDT), and the PRDT entries, each at
//! most 4 MiB, that describe the data. Layout and splitting only; the port writes them.
//!
//! One DMA page per port holds it all: the command list (32 headers, 1 KiB aligned) at 0, the
//! received-FIS area (256 bytes, 256 aligned) at 0x400, the command table (128 aligned) at
//! 0x500. Only slot 0 is used: one command at a time.

use alloc::vec::Vec;

/// Where each structure lies in the port's memory.
pub const COMMAND_LIST: usize = 0x000;
pub const RECEIVED_FIS: usize = 0x400;
pub const COMMAND_TABLE: usize = 0x500;
/// The PRDT's offset within the command table. See: AHCI 1.3.1 4.2.3
pub const PRDT: usize = 0x80;
/// Bytes per PRDT entry.
pub const PRDT_ENTRY_BYTES: usize = 16;
/// The D2H Register FIS's offset in the received-FIS area. See: AHCI 1.3.1 4.2.1
#[cfg(test)]
pub const RECEIVED_D2H: usize = 0x40;

/// The most bytes one PRDT entry describes (DBC is 22 bits, 0-based). See: AHCI 1.3.1 4.2.3.3
pub const MAX_ENTRY_BYTES: usize = 4 << 20;

/// The bytes a port's memory needs for a PRDT of `entries` entries.
pub fn port_memory_bytes(entries: usize) -> usize {
    COMMAND_TABLE + PRDT + entries * PRDT_ENTRY_BYTES
}

/// Command header 0 for a command FIS of 5 dwords, `write` when data goes to the device, with
/// `entries` PRDT entries, the table at `table`. See: AHCI 1.3.1 4.2.2 (Figure 24)
pub fn command_header(write: bool, entries: u16, table: u64) -> [u8; 32] {
    let dw0 = 5 | (write as u32) << 6 | (entries as u32) << 16;
    let mut header = [0u8; 32];
    header[0..4].copy_from_slice(&dw0.to_le_bytes());
    // DW1, PRDBC: the HBA counts the bytes transferred here; starts at 0.
    header[8..16].copy_from_slice(&table.to_le_bytes());
    header
}

/// A PRDT entry: data at `address` (even), `bytes` long (even, at most 4 MiB), no interrupt
/// on its completion. See: AHCI 1.3.1 4.2.3.3 (Figure 26)
pub fn prdt_entry(address: u64, bytes: usize) -> [u8; PRDT_ENTRY_BYTES] {
    let mut entry = [0u8; PRDT_ENTRY_BYTES];
    entry[0..8].copy_from_slice(&address.to_le_bytes());
    let count = (bytes.saturating_sub(1) as u32) & 0x3f_ffff;
    entry[12..16].copy_from_slice(&count.to_le_bytes());
    entry
}

/// The PRDT for the first `len` bytes of a buffer made of `pieces` (physical address, length),
/// each piece cut into entries of at most 4 MiB.
pub fn prdt_for(pieces: &[(u64, usize)], len: usize) -> Vec<(u64, usize)> {
    let mut entries = Vec::new();
    let mut left = len;
    for &(address, piece_len) in pieces {
        let mut offset = 0;
        while left > 0 && offset < piece_len {
            let now = left.min(piece_len - offset).min(MAX_ENTRY_BYTES);
            entries.push((address + offset as u64, now));
            offset += now;
            left -= now;
        }
        if left == 0 {
            break;
        }
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_and_entries_encode() {
        let header = command_header(true, 3, 0x1_2345_6780);
        assert_eq!(u32::from_le_bytes(header[0..4].try_into().unwrap()), 5 | 1 << 6 | 3 << 16);
        assert_eq!(u64::from_le_bytes(header[8..16].try_into().unwrap()), 0x1_2345_6780);
        let entry = prdt_entry(0x8000, MAX_ENTRY_BYTES);
        assert_eq!(u32::from_le_bytes(entry[12..16].try_into().unwrap()), 0x3f_ffff);
    }

    #[test]
    fn the_prdt_splits_at_four_mib_and_at_pieces() {
        let pieces = [(0x1000_0000, 10 << 20), (0x4000_0000, 64 << 10)];
        let entries = prdt_for(&pieces, (10 << 20) + 4096);
        assert_eq!(
            entries,
            [(0x1000_0000, 4 << 20), (0x1040_0000, 4 << 20), (0x1080_0000, 2 << 20), (0x4000_0000, 4096)]
        );
        assert_eq!(prdt_for(&pieces, 512), [(0x1000_0000, 512)]);
        assert!(prdt_for(&pieces, 0).is_empty());
    }
}

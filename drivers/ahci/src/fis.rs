//! The Register Host-to-Device FIS that carries an ATA command (SATA 3.x 10.5.5, placed in the
//! command table as AHCI 1.3.1 4.2.3 says), and the ATA commands the driver sends
//! (ATA8-ACS 7). Layout only.

/// ATA command codes. See: ATA8-ACS 7.16 (IDENTIFY DEVICE), 7.25 (READ DMA EXT),
/// 7.63 (WRITE DMA EXT), 7.15 (FLUSH CACHE EXT), 7.14 (FLUSH CACHE)
pub const IDENTIFY_DEVICE: u8 = 0xec;
pub const READ_DMA_EXT: u8 = 0x25;
pub const WRITE_DMA_EXT: u8 = 0x35;
pub const FLUSH_CACHE_EXT: u8 = 0xea;
pub const FLUSH_CACHE: u8 = 0xe7;

/// FIS type of a Register Host-to-Device FIS.
pub const REGISTER_H2D: u8 = 0x27;
/// Its length in bytes (CFL in the command header counts dwords: 5).
pub const H2D_BYTES: usize = 20;

/// An ATA command as a Register H2D FIS with the C bit set (a command, not a control update):
/// 48-bit LBA, 16-bit sector count, LBA mode in the device register.
pub fn register_h2d(command: u8, lba: u64, count: u16) -> [u8; H2D_BYTES] {
    let lba = lba.to_le_bytes();
    let count = count.to_le_bytes();
    let mut fis = [0u8; H2D_BYTES];
    fis[0] = REGISTER_H2D;
    fis[1] = 1 << 7;
    fis[2] = command;
    fis[4..7].copy_from_slice(&lba[0..3]);
    fis[7] = 1 << 6;
    fis[8..11].copy_from_slice(&lba[3..6]);
    fis[12..14].copy_from_slice(&count);
    fis
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_fis_carries_lba48_and_count() {
        let fis = register_h2d(READ_DMA_EXT, 0x0000_a1b2_c3d4_e5f6, 0x1234);
        assert_eq!(fis[..4], [0x27, 0x80, 0x25, 0]);
        assert_eq!(fis[4..8], [0xf6, 0xe5, 0xd4, 0x40]);
        assert_eq!(fis[8..12], [0xc3, 0xb2, 0xa1, 0]);
        assert_eq!(fis[12..14], [0x34, 0x12]);
    }
}

//! What a partition holds, as far as its type and its first block tell: the partition type (a GPT
//! type GUID or an MBR type byte) names a family, and the first block (a volume boot record)
//! tells exFAT, FAT32, FAT12/16 and NTFS apart, which share types (Microsoft basic data, MBR 0x07).
//! It does not mount or check a file system: a `kind` is a hint for listings and for finding
//! datastore candidates; the file-system crate decides whether a volume is usable.

use crate::guid::{types, Guid};

/// What a partition holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartitionKind {
    /// An EFI system partition (a FAT file system the firmware boots from).
    Efi,
    /// An exFAT volume.
    ExFat,
    /// A FAT32 volume.
    Fat32,
    /// A FAT12 or FAT16 volume.
    Fat,
    /// An NTFS volume.
    Ntfs,
    /// A Microsoft data type (basic data, MBR 0x07) whose first block names no file system Keel knows.
    MicrosoftData,
    /// Linux file system data.
    Linux,
    LinuxSwap,
    LinuxLvm,
    LinuxRaid,
    /// GRUB's BIOS boot partition.
    BiosBoot,
    /// A type Keel does not name.
    Unknown,
}

impl PartitionKind {
    /// A short name for listings.
    pub fn name(self) -> &'static str {
        match self {
            PartitionKind::Efi => "EFI",
            PartitionKind::ExFat => "exFAT",
            PartitionKind::Fat32 => "FAT32",
            PartitionKind::Fat => "FAT",
            PartitionKind::Ntfs => "NTFS",
            PartitionKind::MicrosoftData => "Microsoft data",
            PartitionKind::Linux => "Linux",
            PartitionKind::LinuxSwap => "Linux swap",
            PartitionKind::LinuxLvm => "Linux LVM",
            PartitionKind::LinuxRaid => "Linux RAID",
            PartitionKind::BiosBoot => "BIOS boot",
            PartitionKind::Unknown => "unknown",
        }
    }

    /// Whether the first block decides (a type several file systems share, or no type Keel knows).
    fn refined_by_content(self) -> bool {
        matches!(
            self,
            PartitionKind::MicrosoftData
                | PartitionKind::Fat
                | PartitionKind::Fat32
                | PartitionKind::ExFat
                | PartitionKind::Ntfs
                | PartitionKind::Linux
                | PartitionKind::Unknown
        )
    }

    /// The kind for a type and the partition's first block (`None` if it could not be read).
    pub(crate) fn of(type_kind: PartitionKind, first_block: Option<&[u8]>) -> PartitionKind {
        match first_block.and_then(file_system_of_boot_block) {
            Some(found) if type_kind.refined_by_content() => found,
            _ => type_kind,
        }
    }
}

impl core::fmt::Display for PartitionKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// The family a GPT partition type GUID names.
pub fn kind_of_gpt_type(type_guid: &Guid) -> PartitionKind {
    match *type_guid {
        types::EFI_SYSTEM => PartitionKind::Efi,
        types::MICROSOFT_BASIC_DATA => PartitionKind::MicrosoftData,
        types::LINUX_FILESYSTEM => PartitionKind::Linux,
        types::LINUX_SWAP => PartitionKind::LinuxSwap,
        types::LINUX_LVM => PartitionKind::LinuxLvm,
        types::LINUX_RAID => PartitionKind::LinuxRaid,
        types::BIOS_BOOT => PartitionKind::BiosBoot,
        _ => PartitionKind::Unknown,
    }
}

/// The family an MBR partition type byte names (the values fdisk's `l` lists).
pub fn kind_of_mbr_type(type_byte: u8) -> PartitionKind {
    match type_byte {
        0x01 | 0x04 | 0x06 | 0x0E | 0x11 | 0x14 | 0x16 | 0x1E => PartitionKind::Fat,
        0x0B | 0x0C | 0x1B | 0x1C => PartitionKind::Fat32,
        0x07 | 0x17 => PartitionKind::MicrosoftData,
        0x83 => PartitionKind::Linux,
        0x82 => PartitionKind::LinuxSwap,
        0x8E => PartitionKind::LinuxLvm,
        0xFD => PartitionKind::LinuxRaid,
        0xEF => PartitionKind::Efi,
        _ => PartitionKind::Unknown,
    }
}

/// The file system a volume boot record announces, if any: exFAT and NTFS by their name at byte 3
/// (exFAT 1.00 3.1.2 FileSystemName), FAT by a plausible BIOS parameter block (Microsoft FAT
/// specification 3.1: FAT32 when BPB_FATSz16 is 0). Each needs the 0x55AA signature at 510.
pub fn file_system_of_boot_block(block: &[u8]) -> Option<PartitionKind> {
    if block.len() < 512 || block[510] != 0x55 || block[511] != 0xAA {
        return None;
    }
    match &block[3..11] {
        b"EXFAT   " => return Some(PartitionKind::ExFat),
        b"NTFS    " => return Some(PartitionKind::Ntfs),
        _ => {}
    }
    let jump = (block[0] == 0xEB && block[2] == 0x90) || block[0] == 0xE9;
    let u16_at = |o: usize| u16::from_le_bytes([block[o], block[o + 1]]);
    let bytes_per_sector = u16_at(11);
    let sectors_per_cluster = block[13];
    let plausible_bpb = jump
        && matches!(bytes_per_sector, 512 | 1024 | 2048 | 4096)
        && sectors_per_cluster.is_power_of_two()
        && u16_at(14) >= 1 // reserved sectors
        && block[16] >= 1; // FATs
    if !plausible_bpb {
        return None;
    }
    let fat_size_32 = u32::from_le_bytes([block[36], block[37], block[38], block[39]]);
    match u16_at(22) {
        0 if fat_size_32 != 0 => Some(PartitionKind::Fat32),
        0 => None,
        _ => Some(PartitionKind::Fat),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boot_block() -> [u8; 512] {
        let mut b = [0u8; 512];
        b[510] = 0x55;
        b[511] = 0xAA;
        b
    }

    #[test]
    fn boot_blocks_tell_the_file_systems_apart() {
        let mut exfat = boot_block();
        exfat[3..11].copy_from_slice(b"EXFAT   ");
        assert_eq!(file_system_of_boot_block(&exfat), Some(PartitionKind::ExFat));
        let mut fat32 = boot_block();
        fat32[..3].copy_from_slice(&[0xEB, 0x58, 0x90]);
        fat32[11..13].copy_from_slice(&512u16.to_le_bytes());
        fat32[13] = 8;
        fat32[14] = 32;
        fat32[16] = 2;
        fat32[36] = 100;
        assert_eq!(file_system_of_boot_block(&fat32), Some(PartitionKind::Fat32));
        let mut fat16 = fat32;
        fat16[22] = 10;
        assert_eq!(file_system_of_boot_block(&fat16), Some(PartitionKind::Fat));
        fat16[13] = 3;
        assert_eq!(file_system_of_boot_block(&fat16), None);
        assert_eq!(file_system_of_boot_block(&boot_block()), None);
        assert_eq!(file_system_of_boot_block(&exfat[..100]), None);
    }

    #[test]
    fn content_refines_only_shared_types() {
        let mut exfat = boot_block();
        exfat[3..11].copy_from_slice(b"EXFAT   ");
        assert_eq!(PartitionKind::of(PartitionKind::MicrosoftData, Some(&exfat)), PartitionKind::ExFat);
        assert_eq!(PartitionKind::of(PartitionKind::Efi, Some(&exfat)), PartitionKind::Efi);
        assert_eq!(PartitionKind::of(PartitionKind::MicrosoftData, None), PartitionKind::MicrosoftData);
        assert_eq!(kind_of_mbr_type(0x0C), PartitionKind::Fat32);
        assert_eq!(kind_of_gpt_type(&types::LINUX_FILESYSTEM), PartitionKind::Linux);
    }
}

//! The legacy MBR (UEFI 2.10 5.2.1, table 5.1 and 5.2): four primary slots at byte 446, and the
//! extended partition's chain of EBRs, each holding one logical partition (its start relative to
//! that EBR) and a link to the next EBR (relative to the extended partition's start). The chain is
//! bounded by [`MAX_LOGICAL_PARTITIONS`], a link must stay inside the extended partition, and an
//! EBR is never read twice. It does not read CHS addresses (LBA fields only) or write MBRs (the GPT
//! writer makes its protective MBR itself).

use alloc::string::String;
use alloc::vec::Vec;

use keel_block::BlockDevice;

use crate::kind::kind_of_mbr_type;
use crate::{
    check, read_block, Guid, Partition, PartitionTable, PartitionType, Scheme, Warning, MAX_LOGICAL_PARTITIONS,
};

/// The type of the protective MBR's one partition (UEFI 2.10 5.2.3): "GPT follows".
pub(crate) const PROTECTIVE_TYPE: u8 = 0xEE;

/// Where the four slots start, and each slot's size.
const SLOTS_AT: usize = 446;
const SLOT_LEN: usize = 16;

/// One 16-byte slot (UEFI 2.10 table 5.2).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Slot {
    pub boot_indicator: u8,
    pub type_byte: u8,
    pub starting_lba: u32,
    pub size_in_lba: u32,
}

impl Slot {
    /// A slot holds a partition when both its type and its size are nonzero.
    pub fn is_used(&self) -> bool {
        self.type_byte != 0 && self.size_in_lba != 0
    }
    pub fn boot_indicator_valid(&self) -> bool {
        matches!(self.boot_indicator, 0x00 | 0x80)
    }
    fn is_extended(&self) -> bool {
        matches!(self.type_byte, 0x05 | 0x0F | 0x85)
    }
}

/// The four slots of an MBR or EBR block (at least 512 bytes).
pub(crate) fn slots(block: &[u8]) -> [Slot; 4] {
    core::array::from_fn(|i| {
        let s = &block[SLOTS_AT + i * SLOT_LEN..][..SLOT_LEN];
        Slot {
            boot_indicator: s[0],
            type_byte: s[4],
            starting_lba: u32::from_le_bytes([s[8], s[9], s[10], s[11]]),
            size_in_lba: u32::from_le_bytes([s[12], s[13], s[14], s[15]]),
        }
    })
}

/// Whether the slots look like a partition table rather than a boot block's code: every boot
/// indicator valid and at least one slot used (Linux's msdos.c makes the same call before it
/// takes block 0 for a FAT boot sector).
pub(crate) fn looks_like_a_table(slots: &[Slot; 4]) -> bool {
    slots.iter().all(Slot::boot_indicator_valid) && slots.iter().any(Slot::is_used)
}

/// The partitions of an MBR disk whose block 0 is `block0` (with the 0x55AA signature).
pub(crate) fn read<D: BlockDevice + ?Sized>(disk: &mut D, block0: &[u8], mut warnings: Vec<Warning>) -> PartitionTable {
    let disk_signature = u32::from_le_bytes([block0[440], block0[441], block0[442], block0[443]]);
    let mut candidates = Vec::new();
    let mut extended: Option<(u64, u64)> = None; // (first, count)
    for (slot, index) in slots(block0).iter().zip(1u32..) {
        if !slot.is_used() {
            continue;
        }
        if !slot.boot_indicator_valid() {
            warnings.push(Warning::BadBootIndicator { index });
        } else if slot.is_extended() {
            if extended.is_some() {
                warnings.push(Warning::ExtraExtended { index });
            } else {
                extended = Some((slot.starting_lba as u64, slot.size_in_lba as u64));
            }
        } else {
            candidates.push(partition(index, slot, 0));
        }
    }
    if let Some(ext) = extended {
        read_logical(disk, ext, &mut candidates, &mut warnings);
    }
    let usable = (1, disk.block_count().saturating_sub(1));
    check::finish(disk, Scheme::Mbr { disk_signature }, candidates, usable, warnings)
}

/// Follow the EBR chain of the extended partition `(first, count)`, adding logical partitions 5
/// onwards.
fn read_logical<D: BlockDevice + ?Sized>(
    disk: &mut D,
    (ext_first, ext_count): (u64, u64),
    candidates: &mut Vec<Partition>,
    warnings: &mut Vec<Warning>,
) {
    let ext_end = ext_first + ext_count; // both from u32: no overflow
    let mut visited: Vec<u64> = Vec::new();
    let mut ebr_lba = ext_first;
    for index in (5u32..).take(MAX_LOGICAL_PARTITIONS) {
        visited.push(ebr_lba);
        let block = match read_block(disk, ebr_lba) {
            Ok(block) if block[510] == 0x55 && block[511] == 0xAA => block,
            _ => {
                warnings.push(Warning::BadEbr { lba: ebr_lba });
                return;
            }
        };
        let [logical, link, ..] = slots(&block);
        if logical.is_used() {
            let p = partition(index, &logical, ebr_lba);
            if p.first_lba < ext_first || p.first_lba + p.block_count > ext_end {
                warnings.push(Warning::LogicalOutsideExtended { index });
            } else {
                candidates.push(p);
            }
        }
        if !link.is_used() || !link.is_extended() {
            return;
        }
        let next = ext_first + link.starting_lba as u64;
        if next >= ext_end || visited.contains(&next) {
            warnings.push(Warning::EbrLinkRefused { lba: next });
            return;
        }
        ebr_lba = next;
    }
    warnings.push(Warning::TooManyLogical);
}

/// The partition a slot describes, its start relative to `base`.
fn partition(index: u32, slot: &Slot, base: u64) -> Partition {
    let type_byte = slot.type_byte;
    Partition {
        index,
        first_lba: base + slot.starting_lba as u64,
        block_count: slot.size_in_lba as u64,
        type_id: PartitionType::Mbr(type_byte),
        unique_guid: Guid::ZERO,
        name: String::new(),
        attributes: (slot.boot_indicator & 0x80) as u64,
        kind: kind_of_mbr_type(type_byte),
    }
}

//! The rules every partition [`crate::read_partitions`] returns obeys, applied in one place to the
//! candidates either table reader found: at least one block, on the disk, inside the usable range,
//! and no block shared with another partition. It does not read tables; it only judges entries
//! (and, for those kept, reads their first block to name their file system).

use alloc::vec::Vec;

use keel_block::BlockDevice;

use crate::{kind_from_content, Partition, PartitionTable, Scheme, Warning};

/// Keep the candidates that obey the rules (in their order, which is index order), warn about the
/// others, and name each kept partition's kind from its first block. `usable` is the inclusive
/// range of blocks partitions may use.
pub(crate) fn finish<D: BlockDevice + ?Sized>(
    disk: &mut D,
    scheme: Scheme,
    candidates: Vec<Partition>,
    usable: (u64, u64),
    mut warnings: Vec<Warning>,
) -> PartitionTable {
    let disk_blocks = disk.block_count();
    let mut placed = Vec::with_capacity(candidates.len());
    for p in candidates {
        let end = p.first_lba.checked_add(p.block_count);
        if end.is_none_or(|end| end > disk_blocks) {
            warnings.push(Warning::PastTheEnd { index: p.index });
        } else if p.first_lba < usable.0 || p.last_lba() > usable.1 {
            warnings.push(Warning::OutsideUsableRange { index: p.index });
        } else {
            placed.push(p);
        }
    }
    let overlapping = find_overlaps(&placed, &mut warnings);
    let mut partitions: Vec<Partition> =
        placed.into_iter().zip(overlapping).filter(|(_, overlaps)| !overlaps).map(|(p, _)| p).collect();
    for p in &mut partitions {
        p.kind = kind_from_content(disk, p.kind, p.first_lba);
    }
    PartitionTable { scheme, partitions, warnings }
}

/// Which partitions share a block with another. A sweep in order of first block: a partition that
/// starts before the furthest end seen so far overlaps the partition holding that end (and every
/// overlapping pair is found this way, the earlier one when it is replaced as the furthest).
fn find_overlaps(placed: &[Partition], warnings: &mut Vec<Warning>) -> Vec<bool> {
    let mut order: Vec<usize> = (0..placed.len()).collect();
    order.sort_by_key(|&i| (placed[i].first_lba, placed[i].index));
    let mut overlapping = alloc::vec![false; placed.len()];
    let mut furthest: Option<(u64, usize)> = None; // (end, which)
    for i in order {
        let p = &placed[i];
        let end = p.first_lba + p.block_count;
        match furthest {
            Some((far_end, holder)) if p.first_lba < far_end => {
                overlapping[i] = true;
                overlapping[holder] = true;
                warnings.push(Warning::Overlap { index: p.index, other: placed[holder].index });
                if end > far_end {
                    furthest = Some((end, i));
                }
            }
            _ => furthest = Some((end, i)),
        }
    }
    overlapping
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Guid, PartitionKind, PartitionType};
    use alloc::string::String;
    use alloc::vec;

    fn part(index: u32, first_lba: u64, block_count: u64) -> Partition {
        Partition {
            index,
            first_lba,
            block_count,
            type_id: PartitionType::Mbr(0x83),
            unique_guid: Guid::ZERO,
            name: String::new(),
            attributes: 0,
            kind: PartitionKind::Linux,
        }
    }

    #[test]
    fn every_member_of_an_overlapping_group_is_found() {
        let mut w = Vec::new();
        // 1 covers 2 and 3; 4 touches nothing; 5 overlaps only 4's neighbour 6.
        let parts =
            vec![part(1, 0, 100), part(2, 10, 10), part(3, 15, 15), part(4, 100, 5), part(5, 200, 10), part(6, 205, 1)];
        assert_eq!(find_overlaps(&parts, &mut w), vec![true, true, true, false, true, true]);
        // A long partition replaced as the furthest by one it overlaps.
        let parts = vec![part(1, 0, 20), part(2, 19, 50), part(3, 30, 1)];
        assert_eq!(find_overlaps(&parts, &mut w), vec![true, true, true]);
        assert_eq!(find_overlaps(&[part(1, 0, 10), part(2, 10, 10)], &mut w), vec![false, false]);
    }
}

//! Tests of the readers and the writer against tables Linux's tools made (testdata/make.sh:
//! sgdisk, sfdisk, mkfs.vfat, mkfs.exfat; compared with `sfdisk --dump`), the same tables made
//! hostile byte by byte, and the writer's output checked by `sgdisk -v` and `sfdisk --dump` when
//! those are installed.

extern crate std;

use std::format;
use std::string::{String, ToString};
use std::vec;
use std::vec::Vec;

use keel_block::{BlockDevice, BlockError, MemDisk};

use super::*;
use crate::crc32::crc32;

/// A test image from its stored nonzero blocks.
fn image(sectors: &[u8]) -> Vec<u8> {
    let block_size = u32::from_le_bytes(sectors[0..4].try_into().unwrap()) as usize;
    let blocks = u64::from_le_bytes(sectors[4..12].try_into().unwrap()) as usize;
    let mut bytes = vec![0u8; block_size * blocks];
    for record in sectors[12..].chunks_exact(8 + block_size) {
        let lba = u64::from_le_bytes(record[..8].try_into().unwrap()) as usize;
        bytes[lba * block_size..][..block_size].copy_from_slice(&record[8..]);
    }
    bytes
}

const GPT_SGDISK: &[u8] = include_bytes!("../testdata/gpt_sgdisk.sectors");
const GPT_SFDISK: &[u8] = include_bytes!("../testdata/gpt_sfdisk.sectors");
const MBR_SFDISK: &[u8] = include_bytes!("../testdata/mbr_sfdisk.sectors");

/// One partition line of `sfdisk --dump`.
#[derive(Debug, Default, PartialEq)]
struct Dumped {
    index: u32,
    start: u64,
    size: u64,
    type_text: String,
    uuid: String,
    name: String,
    bootable: bool,
}

/// The partition lines of an `sfdisk --dump` output (names unescaped from `\xNN`).
fn parse_dump(text: &str) -> Vec<Dumped> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| l.contains(" : start=")) {
        let (device, fields) = line.split_once(" : ").unwrap();
        let digits = device.chars().rev().take_while(|c| c.is_ascii_digit()).count();
        let mut d = Dumped { index: device[device.len() - digits..].parse().unwrap(), ..Dumped::default() };
        for field in fields.split(", ") {
            match field.split_once('=').map(|(k, v)| (k.trim(), v.trim())) {
                Some(("start", v)) => d.start = v.parse().unwrap(),
                Some(("size", v)) => d.size = v.parse().unwrap(),
                Some(("type", v)) => d.type_text = v.to_string(),
                Some(("uuid", v)) => d.uuid = v.to_string(),
                Some(("name", v)) => d.name = unescape(v.trim_matches('"')),
                None if field.trim() == "bootable" => d.bootable = true,
                _ => {}
            }
        }
        out.push(d);
    }
    out
}

fn unescape(text: &str) -> String {
    let mut bytes = Vec::new();
    let mut rest = text.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'\\' && tail.first() == Some(&b'x') && tail.len() >= 3 {
            bytes.push(u8::from_str_radix(std::str::from_utf8(&tail[1..3]).unwrap(), 16).unwrap());
            rest = &tail[3..];
        } else {
            bytes.push(b);
            rest = tail;
        }
    }
    String::from_utf8(bytes).unwrap()
}

/// Check the reader's partitions against the tool's dump.
fn assert_matches_dump(table: &PartitionTable, dump: &str) {
    let dumped: Vec<Dumped> =
        parse_dump(dump).into_iter().filter(|d| !matches!(d.type_text.as_str(), "5" | "f" | "85")).collect();
    assert_eq!(table.partitions.len(), dumped.len(), "{table:?}");
    for (p, d) in table.partitions.iter().zip(&dumped) {
        assert_eq!((p.index, p.first_lba, p.block_count), (d.index, d.start, d.size));
        match p.type_id {
            PartitionType::Gpt(guid) => {
                assert_eq!(guid.to_string(), d.type_text);
                assert_eq!(p.unique_guid.to_string(), d.uuid);
                assert_eq!(p.name, d.name);
            }
            PartitionType::Mbr(byte) => {
                assert_eq!(format!("{byte:x}"), d.type_text);
                assert_eq!(p.attributes & 0x80 != 0, d.bootable);
            }
            PartitionType::WholeDisk => panic!("no dump for a whole-disk file system"),
        }
    }
}

fn read(bytes: &[u8]) -> Result<PartitionTable, ReadError> {
    read_partitions(&mut MemDisk::from_bytes(512, bytes.to_vec()))
}

fn kinds(table: &PartitionTable) -> Vec<PartitionKind> {
    table.partitions.iter().map(|p| p.kind).collect()
}

fn indices(table: &PartitionTable) -> Vec<u32> {
    table.partitions.iter().map(|p| p.index).collect()
}

// ---- tables made by the tools ----

#[test]
fn sgdisk_gpt_reads_as_sfdisk_dumps_it() {
    let table = read(&image(GPT_SGDISK)).unwrap();
    assert_eq!(
        table.scheme,
        Scheme::Gpt { disk_guid: Guid::parse("11111111-2222-3333-4444-555555555555").unwrap(), from_backup: false }
    );
    assert_eq!(table.warnings, []);
    assert_matches_dump(&table, include_str!("../testdata/gpt_sgdisk.dump"));
    // The EFI partition holds FAT32 but stays "EFI"; basic data tells exFAT by its boot block.
    assert_eq!(kinds(&table), [PartitionKind::Efi, PartitionKind::ExFat, PartitionKind::Linux]);
}

#[test]
fn sfdisk_gpt_with_a_gap_and_a_one_block_partition() {
    let table = read(&image(GPT_SFDISK)).unwrap();
    assert_eq!(table.warnings, []);
    assert_matches_dump(&table, include_str!("../testdata/gpt_sfdisk.dump"));
    assert_eq!(kinds(&table), [PartitionKind::Linux, PartitionKind::LinuxSwap]);
    assert_eq!(table.partitions[1].last_lba(), 8192);
}

#[test]
fn sfdisk_mbr_with_logical_partitions() {
    let table = read(&image(MBR_SFDISK)).unwrap();
    assert_eq!(table.scheme, Scheme::Mbr { disk_signature: 0xdead_beef });
    assert_eq!(table.warnings, []);
    assert_matches_dump(&table, include_str!("../testdata/mbr_sfdisk.dump"));
    assert_eq!(
        kinds(&table),
        [
            PartitionKind::Fat32,
            PartitionKind::Linux,
            PartitionKind::MicrosoftData,
            PartitionKind::Linux,
            PartitionKind::LinuxSwap
        ]
    );
}

#[test]
fn a_partition_is_a_window_of_the_disk() {
    let mut disk = MemDisk::from_bytes(512, image(GPT_SGDISK));
    let table = read_partitions(&mut disk).unwrap();
    let mut window = table.partitions[1].window(&mut disk).unwrap();
    assert_eq!(window.block_count(), 8192);
    let mut boot = [0u8; 512];
    window.read_blocks(0, &mut boot).unwrap();
    assert_eq!(&boot[3..11], b"EXFAT   ");
}

// ---- damaged and hostile GPTs ----

const BLOCK: usize = 512;
const PRIMARY: usize = 1;

/// The LBA of the backup header of a test image: the last block.
fn backup_lba(bytes: &[u8]) -> usize {
    bytes.len() / BLOCK - 1
}

fn header_u32(bytes: &[u8], header: usize, offset: usize) -> u32 {
    u32::from_le_bytes(bytes[header * BLOCK + offset..][..4].try_into().unwrap())
}

fn set_u32(bytes: &mut [u8], at: usize, value: u32) {
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

fn set_u64(bytes: &mut [u8], at: usize, value: u64) {
    bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

/// Where the header at `header` keeps its entry array, and the array's length.
fn entry_array(bytes: &[u8], header: usize) -> (usize, usize) {
    let lba = u64::from_le_bytes(bytes[header * BLOCK + 72..][..8].try_into().unwrap()) as usize;
    let len = header_u32(bytes, header, 80) as usize * header_u32(bytes, header, 84) as usize;
    (lba.saturating_mul(BLOCK), len)
}

/// Recompute the entry array's and the header's CRCs of the header at `header`, as a tool that
/// wrote a hostile table on purpose would.
fn fix_crcs(bytes: &mut [u8], header: usize) {
    let (at, len) = entry_array(bytes, header);
    if let Some(array) = at.checked_add(len).and_then(|end| bytes.get(at..end)) {
        let crc = crc32(array);
        set_u32(bytes, header * BLOCK + 88, crc);
    }
    let size = header_u32(bytes, header, 12) as usize;
    set_u32(bytes, header * BLOCK + 16, 0);
    let crc = crc32(&bytes[header * BLOCK..][..size]);
    set_u32(bytes, header * BLOCK + 16, crc);
}

/// Edit entry `index` (from 1) in both copies' arrays, then fix the CRCs.
fn edit_entry(bytes: &mut [u8], index: usize, edit: impl Fn(&mut [u8])) {
    for header in [PRIMARY, backup_lba(bytes)] {
        let (at, _) = entry_array(bytes, header);
        edit(&mut bytes[at + (index - 1) * 128..][..128]);
        fix_crcs(bytes, header);
    }
}

#[test]
fn a_damaged_primary_header_falls_back_to_the_backup() {
    let mut bytes = image(GPT_SGDISK);
    bytes[BLOCK + 20] ^= 1; // reserved field: covered by the header CRC
    let table = read(&bytes).unwrap();
    assert_eq!(table.warnings, [Warning::PrimaryGptDamaged(GptProblem::HeaderCrc)]);
    assert!(matches!(table.scheme, Scheme::Gpt { from_backup: true, .. }));
    assert_matches_dump(&table, include_str!("../testdata/gpt_sgdisk.dump"));
}

#[test]
fn a_damaged_primary_entry_array_falls_back_to_the_backup() {
    let mut bytes = image(GPT_SGDISK);
    bytes[2 * BLOCK + 40] ^= 0x10; // partition 1's last LBA
    let table = read(&bytes).unwrap();
    assert_eq!(table.warnings, [Warning::PrimaryGptDamaged(GptProblem::EntryArrayCrc)]);
    assert_matches_dump(&table, include_str!("../testdata/gpt_sgdisk.dump"));
}

#[test]
fn a_wiped_primary_and_a_backup_found_at_the_last_block() {
    let mut bytes = image(GPT_SGDISK);
    bytes[BLOCK..2 * BLOCK].fill(0);
    let table = read(&bytes).unwrap();
    assert_eq!(table.warnings, [Warning::PrimaryGptDamaged(GptProblem::NoSignature)]);
    assert_eq!(table.partitions.len(), 3);
}

#[test]
fn a_grown_disk_finds_the_backup_where_the_primary_says() {
    // The image was copied to a larger disk: the backup is no longer at the last block.
    let mut bytes = image(GPT_SFDISK);
    bytes.extend_from_slice(&[0u8; 64 * BLOCK]);
    let table = read(&bytes).unwrap();
    assert_eq!(table.warnings, []);
    bytes[2 * BLOCK] ^= 1; // the primary's array: its header still names the alternate
    let table = read(&bytes).unwrap();
    assert_eq!(table.warnings, [Warning::PrimaryGptDamaged(GptProblem::EntryArrayCrc)]);
    assert_eq!(table.partitions.len(), 2);
}

#[test]
fn a_damaged_backup_is_a_warning() {
    let mut bytes = image(GPT_SGDISK);
    let last = backup_lba(&bytes);
    bytes[last * BLOCK + 24] ^= 1; // MyLBA
    let table = read(&bytes).unwrap();
    assert_eq!(table.warnings, [Warning::BackupGptDamaged(GptProblem::HeaderCrc)]);
    fix_crcs(&mut bytes, last);
    assert_eq!(read(&bytes).unwrap().warnings, [Warning::BackupGptDamaged(GptProblem::WrongLba)]);
}

#[test]
fn both_copies_damaged_is_an_error() {
    let mut bytes = image(GPT_SGDISK);
    bytes[2 * BLOCK] ^= 1;
    let last = backup_lba(&bytes);
    bytes[last * BLOCK] = b'X';
    assert_eq!(
        read(&bytes),
        Err(ReadError::Gpt { primary: GptProblem::EntryArrayCrc, backup: GptProblem::NoSignature })
    );
    assert!(read(&bytes).unwrap_err().to_string().contains("CRC mismatch"));
}

#[test]
fn overlapping_partitions_are_both_left_out() {
    let mut bytes = image(GPT_SGDISK);
    edit_entry(&mut bytes, 2, |e| set_u64(e, 32, 8000)); // 2 now starts inside 1
    let table = read(&bytes).unwrap();
    assert_eq!(table.warnings, [Warning::Overlap { index: 2, other: 1 }]);
    assert_eq!(indices(&table), [3]);
}

#[test]
fn entries_past_the_end_or_outside_the_usable_range_are_left_out() {
    let mut bytes = image(GPT_SGDISK);
    edit_entry(&mut bytes, 1, |e| set_u64(e, 32, 1)); // over the primary header
    edit_entry(&mut bytes, 2, |e| set_u64(e, 40, u64::MAX)); // the whole 64-bit range
    edit_entry(&mut bytes, 3, |e| set_u64(e, 40, 32_735)); // the backup array
    let table = read(&bytes).unwrap();
    assert_eq!(
        table.warnings,
        [
            Warning::OutsideUsableRange { index: 1 },
            Warning::PastTheEnd { index: 2 },
            Warning::OutsideUsableRange { index: 3 }
        ]
    );
    assert_eq!(table.partitions, []);
    let mut bytes = image(GPT_SGDISK);
    edit_entry(&mut bytes, 1, |e| set_u64(e, 32, 0));
    edit_entry(&mut bytes, 1, |e| set_u64(e, 40, u64::MAX));
    edit_entry(&mut bytes, 2, |e| set_u64(e, 40, 100)); // before its start
    let table = read(&bytes).unwrap();
    assert_eq!(table.warnings, [Warning::EndBeforeStart { index: 2 }, Warning::PastTheEnd { index: 1 }]);
    assert_eq!(indices(&table), [3]);
}

#[test]
fn hostile_headers_are_refused_not_followed() {
    let cases: &[(usize, u64, GptProblem)] = &[
        (80, 0xFFFF_FFFF, GptProblem::EntryArrayTooLarge),
        (84, 0, GptProblem::EntrySize(0)),
        (84, 129, GptProblem::EntrySize(129)),
        (84, 384, GptProblem::EntrySize(384)),
        (84, 0x8000_0000, GptProblem::EntryArrayTooLarge),
        (12, 91, GptProblem::HeaderSize(91)),
        (12, 513, GptProblem::HeaderSize(513)),
        (72, 0, GptProblem::EntryArrayPlacement),
        (72, 1, GptProblem::EntryArrayPlacement),
        (72, 100, GptProblem::EntryArrayPlacement),
        (72, u64::MAX - 1, GptProblem::EntryArrayPlacement),
        (40, 0, GptProblem::UsableRange),
        (48, 32_768, GptProblem::UsableRange),
        (40, 32_734 + 1, GptProblem::UsableRange),
    ];
    for &(offset, value, problem) in cases {
        let mut bytes = image(GPT_SGDISK);
        if offset == 72 || offset == 40 || offset == 48 {
            set_u64(&mut bytes, BLOCK + offset, value);
        } else {
            set_u32(&mut bytes, BLOCK + offset, value as u32);
        }
        fix_crcs(&mut bytes, PRIMARY);
        let table = read(&bytes).unwrap();
        assert_eq!(table.warnings, [Warning::PrimaryGptDamaged(problem)], "offset {offset} value {value:#x}");
        assert_eq!(table.partitions.len(), 3);
    }
}

#[test]
fn a_large_entry_array_within_the_limit_is_read() {
    // 8192 entries of 128 bytes: the limit, 1 MiB; the disk is big enough to hold it.
    let mut disk = MemDisk::new(512, 8192);
    write_gpt(&mut disk, &new_gpt("x")).unwrap();
    let mut bytes = disk.into_bytes();
    set_u32(&mut bytes, BLOCK + 80, 8192);
    set_u64(&mut bytes, BLOCK + 40, 2 + 2048); // first usable after the bigger array
    set_u64(&mut bytes, 2 * BLOCK + 32, 4096); // the partition moves up
    fix_crcs(&mut bytes, PRIMARY);
    let table = read(&bytes).unwrap();
    assert_eq!(table.warnings, [], "{table:?}"); // the backup keeps its own 128 entries
    assert_eq!(table.partitions.len(), 1);
}

#[test]
fn a_gpt_without_protective_mbr_or_with_a_hybrid_one() {
    let mut bytes = image(GPT_SGDISK);
    bytes[..BLOCK].fill(0);
    let table = read(&bytes).unwrap();
    assert_eq!(table.warnings, [Warning::NoProtectiveMbr]);
    assert_eq!(table.partitions.len(), 3);
    let mut bytes = image(GPT_SGDISK);
    bytes[446 + 16 + 4] = 0x0C; // slot 2: a FAT32 partition beside the 0xEE one
    bytes[446 + 16 + 12] = 1;
    assert_eq!(read(&bytes).unwrap().warnings, [Warning::HybridMbr]);
}

// ---- damaged and hostile MBRs ----

/// The LBAs of the EBRs of the MBR test image, in chain order.
const EBRS: [usize; 3] = [10240, 16384, 22528];
const EXTENDED_START: u64 = 10240;

#[test]
fn an_ebr_loop_stops_the_chain() {
    let mut bytes = image(MBR_SFDISK);
    // The last EBR links back to the first.
    let link = EBRS[2] * BLOCK + 446 + 16;
    bytes[link + 4] = 0x05;
    set_u32(&mut bytes, link + 8, 0);
    set_u32(&mut bytes, link + 12, 1);
    let table = read(&bytes).unwrap();
    assert_eq!(table.warnings, [Warning::EbrLinkRefused { lba: EXTENDED_START }]);
    assert_eq!(indices(&table), [1, 2, 5, 6, 7]);
    // The first EBR links to itself.
    let mut bytes = image(MBR_SFDISK);
    set_u32(&mut bytes, EBRS[0] * BLOCK + 446 + 16 + 8, 0);
    assert_eq!(read(&bytes).unwrap().warnings, [Warning::EbrLinkRefused { lba: EXTENDED_START }]);
    // A link outside the extended partition.
    let mut bytes = image(MBR_SFDISK);
    set_u32(&mut bytes, EBRS[0] * BLOCK + 446 + 16 + 8, 1_000_000);
    assert_eq!(read(&bytes).unwrap().warnings, [Warning::EbrLinkRefused { lba: EXTENDED_START + 1_000_000 }]);
}

#[test]
fn a_missing_ebr_signature_ends_the_chain() {
    let mut bytes = image(MBR_SFDISK);
    bytes[EBRS[1] * BLOCK + 510] = 0;
    let table = read(&bytes).unwrap();
    assert_eq!(table.warnings, [Warning::BadEbr { lba: EBRS[1] as u64 }]);
    assert_eq!(indices(&table), [1, 2, 5]);
}

#[test]
fn a_long_ebr_chain_is_bounded() {
    let blocks = 4 + 2 * 300;
    let mut bytes = vec![0u8; blocks * BLOCK];
    let mbr_slot = |bytes: &mut [u8], block: usize, slot: usize, type_byte: u8, first: u32, count: u32| {
        let at = block * BLOCK + 446 + slot * 16;
        bytes[at + 4] = type_byte;
        set_u32(bytes, at + 8, first);
        set_u32(bytes, at + 12, count);
        bytes[block * BLOCK + 510..block * BLOCK + 512].copy_from_slice(&[0x55, 0xAA]);
    };
    mbr_slot(&mut bytes, 0, 0, 0x05, 2, (blocks - 2) as u32);
    for i in 0..300 {
        let ebr = 2 + 2 * i;
        mbr_slot(&mut bytes, ebr, 0, 0x83, 1, 1);
        mbr_slot(&mut bytes, ebr, 1, 0x05, (2 * i + 2) as u32, 2);
    }
    let table = read(&bytes).unwrap();
    assert_eq!(table.partitions.len(), MAX_LOGICAL_PARTITIONS);
    assert_eq!(table.warnings, [Warning::TooManyLogical]);
    assert_eq!(table.partitions.last().unwrap().index, 4 + MAX_LOGICAL_PARTITIONS as u32);
}

#[test]
fn hostile_mbr_slots() {
    let mut bytes = image(MBR_SFDISK);
    set_u32(&mut bytes, 446 + 12, u32::MAX); // partition 1 past the end
    set_u32(&mut bytes, 446 + 16 + 8, 2048); // partition 2 over partition 1: but 1 is gone first
    let table = read(&bytes).unwrap();
    assert_eq!(table.warnings, [Warning::PastTheEnd { index: 1 }]);
    assert_eq!(indices(&table), [2, 5, 6, 7]);
    let mut bytes = image(MBR_SFDISK);
    set_u32(&mut bytes, 446 + 16 + 8, 2048 + 4095); // 2 shares one block with 1
    let table = read(&bytes).unwrap();
    assert_eq!(table.warnings, [Warning::Overlap { index: 2, other: 1 }]);
    assert_eq!(indices(&table), [5, 6, 7]);
    // A logical partition reaching past its extended partition.
    let mut bytes = image(MBR_SFDISK);
    set_u32(&mut bytes, EBRS[2] * BLOCK + 446 + 12, 80_000);
    let table = read(&bytes).unwrap();
    assert_eq!(table.warnings, [Warning::LogicalOutsideExtended { index: 7 }]);
    // A partition over block 0, a second extended partition, a bad boot indicator.
    let mut bytes = image(MBR_SFDISK);
    set_u32(&mut bytes, 446 + 8, 0);
    bytes[446 + 48 + 4] = 0x0F;
    set_u32(&mut bytes, 446 + 48 + 8, 100_000);
    set_u32(&mut bytes, 446 + 48 + 12, 10);
    let table = read(&bytes).unwrap();
    assert_eq!(table.warnings, [Warning::ExtraExtended { index: 4 }, Warning::OutsideUsableRange { index: 1 }]);
    bytes[446 + 16] = 0x12;
    // A slot with an invalid boot indicator makes block 0 something other than a table.
    assert_eq!(read(&bytes).unwrap().scheme, Scheme::Unrecognized);
}

// ---- no table ----

#[test]
fn blank_unrecognized_and_whole_disk() {
    assert_eq!(read(&[0u8; 8192]).unwrap().scheme, Scheme::Blank);
    let mut bytes = vec![0u8; 8192];
    bytes[700] = 1;
    assert_eq!(read(&bytes).unwrap().scheme, Scheme::Unrecognized);
    // An exFAT volume on the whole disk.
    let exfat = image(GPT_SGDISK)[10240 * BLOCK..(10240 + 16) * BLOCK].to_vec();
    let table = read(&exfat).unwrap();
    assert_eq!(table.scheme, Scheme::WholeDisk);
    assert_eq!(table.partitions[0].kind, PartitionKind::ExFat);
    assert_eq!((table.partitions[0].first_lba, table.partitions[0].block_count), (0, 16));
    // The FAT32 boot sector too, but not when its slots look like a table.
    let fat32 = image(GPT_SGDISK)[2048 * BLOCK..(2048 + 16) * BLOCK].to_vec();
    assert_eq!(read(&fat32).unwrap().partitions[0].kind, PartitionKind::Fat32);
}

#[test]
fn bad_block_sizes_and_failing_disks() {
    assert_eq!(read_partitions(&mut MemDisk::new(256, 16)), Err(ReadError::BlockSize(256)));
    assert_eq!(read_partitions(&mut MemDisk::new(1000, 16)), Err(ReadError::BlockSize(1000)));
    assert_eq!(read_partitions(&mut MemDisk::new(512, 0)), Err(ReadError::Io(BlockError::OutOfRange)));
    let mut disk = MemDisk::from_bytes(512, image(GPT_SGDISK));
    disk.fail_after(0);
    assert_eq!(read_partitions(&mut disk), Err(ReadError::Io(BlockError::Gone)));
    // The disk vanishes after block 0: both GPT copies unreadable.
    let mut disk = MemDisk::from_bytes(512, image(GPT_SGDISK));
    disk.fail_after(1);
    assert_eq!(
        read_partitions(&mut disk),
        Err(ReadError::Gpt { primary: GptProblem::Io(BlockError::Gone), backup: GptProblem::Io(BlockError::Gone) })
    );
}

// ---- the writer ----

fn new_gpt(name: &str) -> NewGpt<'_> {
    NewGpt {
        disk_guid: Guid::parse("01234567-89AB-CDEF-0123-456789ABCDEF").unwrap(),
        partition_guid: Guid::parse("FEDCBA98-7654-3210-FEDC-BA9876543210").unwrap(),
        type_guid: types::MICROSOFT_BASIC_DATA,
        name,
    }
}

#[test]
fn a_written_gpt_reads_back() {
    for (block_size, blocks) in [(512u32, 32768u64), (4096, 8192), (512, 2048 + 34 + 1)] {
        let mut disk = MemDisk::new(block_size, blocks);
        disk.start_log();
        let written = write_gpt(&mut disk, &new_gpt("Keel datastore")).unwrap();
        assert_eq!(disk.log().last(), Some(&keel_block::DiskEvent::Flush));
        let table = read_partitions(&mut disk).unwrap();
        assert_eq!(table.warnings, [], "block size {block_size}");
        assert_eq!(table.partitions, std::slice::from_ref(&written));
        assert_eq!(written.first_lba * block_size as u64, 1 << 20);
        assert_eq!(written.last_lba(), blocks - 1 - (16384 / block_size as u64).max(1) - 1);
        assert_eq!(written.kind, PartitionKind::MicrosoftData);
    }
}

#[test]
fn the_writer_refuses_what_does_not_fit() {
    assert_eq!(write_gpt(&mut MemDisk::new(512, 2048 + 33), &new_gpt("x")), Err(WriteError::TooSmall));
    assert_eq!(write_gpt(&mut MemDisk::new(512, 0), &new_gpt("x")), Err(WriteError::TooSmall));
    assert_eq!(write_gpt(&mut MemDisk::new(512, 1), &new_gpt("x")), Err(WriteError::TooSmall));
    assert_eq!(write_gpt(&mut MemDisk::new(512, 4096), &new_gpt(&"n".repeat(37))), Err(WriteError::NameTooLong));
    let mut read_only = MemDisk::new(512, 4096);
    read_only.set_read_only(true);
    assert_eq!(write_gpt(&mut read_only, &new_gpt("x")), Err(WriteError::Io(BlockError::ReadOnly)));
}

/// Run a host tool on a file, or `None` when it is not installed.
fn run_tool(tool: &str, args: &[&str]) -> Option<std::process::Output> {
    std::process::Command::new(tool).args(args).output().ok()
}

#[test]
fn linux_tools_accept_what_the_writer_writes() {
    let mut disk = MemDisk::new(512, 32768);
    let written = write_gpt(&mut disk, &new_gpt("Keel datastore")).unwrap();
    let path = std::env::temp_dir().join(format!("keel-partitions-{}.img", std::process::id()));
    std::fs::write(&path, disk.bytes()).unwrap();
    let file = path.to_str().unwrap();
    let verify = run_tool("sgdisk", &["-v", file]);
    let dump = run_tool("sfdisk", &["--dump", file]);
    std::fs::remove_file(&path).unwrap();
    let (Some(verify), Some(dump)) = (verify, dump) else {
        std::eprintln!("sgdisk or sfdisk not installed (Debian: gdisk, fdisk): not checked");
        return;
    };
    let verify = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.contains("No problems found"), "{verify}");
    let dump = String::from_utf8_lossy(&dump.stdout);
    assert!(dump.contains("label-id: 01234567-89AB-CDEF-0123-456789ABCDEF"), "{dump}");
    let table = PartitionTable { scheme: Scheme::Blank, partitions: vec![written], warnings: vec![] };
    assert_matches_dump(&table, &dump);
}

/// A fuzz seed (`fuzz/fuzz_targets/partition_table.rs`'s format, 512-byte blocks, no failures)
/// as a disk.
fn seed_disk(seed: &[u8]) -> MemDisk {
    let blocks = u64::from_le_bytes(seed[1..9].try_into().unwrap()) as usize;
    let body = &seed[9..];
    let given = body.len() / BLOCK;
    let (head, tail) = body.split_at(given.div_ceil(2) * BLOCK);
    let mut bytes = vec![0u8; blocks * BLOCK];
    bytes[..head.len()].copy_from_slice(head);
    let tail_at = bytes.len() - tail.len();
    bytes[tail_at..].copy_from_slice(tail);
    MemDisk::from_bytes(512, bytes)
}

#[test]
fn the_fuzz_seeds_hold_the_tables_they_are_named_after() {
    let gpt = read_partitions(&mut seed_disk(include_bytes!("../fuzz/corpus/partition_table/gpt_small"))).unwrap();
    assert_eq!((gpt.warnings.as_slice(), indices(&gpt)), (&[][..], vec![1, 2]));
    let mbr = read_partitions(&mut seed_disk(include_bytes!("../fuzz/corpus/partition_table/mbr_logical"))).unwrap();
    assert_eq!((mbr.warnings.as_slice(), indices(&mbr)), (&[][..], vec![1, 5, 6]));
}

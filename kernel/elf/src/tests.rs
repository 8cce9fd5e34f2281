//! Host tests over hand-built ELF images.

use super::*;

const USER: (u64, u64) = (0x1000, 0x0000_8000_0000_0000);

/// (vaddr, mem_size, file_size, flags, p_type)
fn elf(entry: u64, segs: &[(u64, u64, u64, u32, u32)]) -> Vec<u8> {
    let mut b = vec![0u8; 64 + 56 * segs.len()];
    b[0..4].copy_from_slice(b"\x7fELF");
    b[4] = 2;
    b[5] = 1;
    b[6] = 1;
    b[16..18].copy_from_slice(&2u16.to_le_bytes());
    b[18..20].copy_from_slice(&62u16.to_le_bytes());
    b[24..32].copy_from_slice(&entry.to_le_bytes());
    b[32..40].copy_from_slice(&64u64.to_le_bytes());
    b[54..56].copy_from_slice(&56u16.to_le_bytes());
    b[56..58].copy_from_slice(&(segs.len() as u16).to_le_bytes());
    let mut data_off = b.len() as u64;
    let mut data = Vec::new();
    for (i, &(vaddr, mem, file, flags, ty)) in segs.iter().enumerate() {
        let o = 64 + 56 * i;
        b[o..o + 4].copy_from_slice(&ty.to_le_bytes());
        b[o + 4..o + 8].copy_from_slice(&flags.to_le_bytes());
        b[o + 8..o + 16].copy_from_slice(&data_off.to_le_bytes());
        b[o + 16..o + 24].copy_from_slice(&vaddr.to_le_bytes());
        b[o + 32..o + 40].copy_from_slice(&file.to_le_bytes());
        b[o + 40..o + 48].copy_from_slice(&mem.to_le_bytes());
        data.extend(std::iter::repeat_n(0xccu8, file as usize));
        data_off += file;
    }
    b.extend(data);
    b
}

const RX: u32 = PF_R | PF_X;
const RW: u32 = PF_R | PF_W;

#[test]
fn typical_program() {
    let bytes = elf(
        0x40_0010,
        &[(0x40_0000, 0x1234, 0x1234, RX, PT_LOAD), (0x40_2000, 0x3000, 0x100, RW, PT_LOAD), (0, 0, 0, 0, 0x6474e551)],
    );
    let p = parse(&bytes, USER.0, USER.1).unwrap();
    assert_eq!(p.entry, 0x40_0010);
    assert_eq!(p.segments().len(), 2);
    assert!(p.segments()[0].executable && !p.segments()[0].writable);
    assert_eq!(p.segments()[1].pages(), (0x40_2000, 0x40_5000));
}

#[test]
fn data_and_bss_share_a_page() {
    // What lld emits for user.ld: .data and .bss in two RW segments on one page.
    let bytes = elf(
        0x40_0000,
        &[
            (0x40_0000, 0x40bf, 0x40bf, RX, PT_LOAD),
            (0x40_6000, 0xe8, 0xe8, RW, PT_LOAD),
            (0x40_60e8, 0x38, 0, RW, PT_LOAD),
        ],
    );
    let p = parse(&bytes, USER.0, USER.1).unwrap();
    let (regions, n) = p.regions();
    assert_eq!(n, 2);
    assert_eq!(regions[0], Region { start: 0x40_0000, end: 0x40_5000, writable: false, executable: true });
    assert_eq!(regions[1], Region { start: 0x40_6000, end: 0x40_7000, writable: true, executable: false });
}

#[test]
fn rejections() {
    let ok = |segs: &[(u64, u64, u64, u32, u32)]| parse(&elf(0x40_0000, segs), USER.0, USER.1);
    assert_eq!(parse(b"MZ\x90\x00", USER.0, USER.1), Err(ElfError::NotElf));
    assert_eq!(parse(b"\x7fELF", USER.0, USER.1), Err(ElfError::Not64BitLittleEndianX86));
    assert!(matches!(
        ok(&[(0x40_0000, 0x1000, 0x1000, RX | PF_W, PT_LOAD)]),
        Err(ElfError::BadSegment { why: "writable and executable (W^X)", .. })
    ));
    assert!(matches!(
        ok(&[(0xffff_8000_0000_0000, 0x1000, 0, RX, PT_LOAD)]),
        Err(ElfError::BadSegment { why: "outside user space", .. })
    ));
    assert!(matches!(ok(&[(0, 0x1000, 0, RX, PT_LOAD)]), Err(ElfError::BadSegment { why: "outside user space", .. })));
    assert!(matches!(ok(&[(u64::MAX - 10, 0x1000, 0, RX, PT_LOAD)]), Err(ElfError::BadSegment { .. })));
    assert!(matches!(ok(&[(0x40_0000, 0x10, 0x20, RX, PT_LOAD)]), Err(ElfError::BadSegment { .. })));
    assert!(matches!(
        ok(&[(0x40_0000, 0x700, 0x10, RX, PT_LOAD), (0x40_0800, 0x1000, 0, RW, PT_LOAD)]),
        Err(ElfError::BadSegment {
            why: "overlaps another segment, or shares a page with one that has other rights",
            ..
        })
    ));
    assert!(matches!(
        ok(&[(0x40_0000, 0x1000, 0x10, RX, PT_LOAD), (0x40_0800, 0x1000, 0, RX, PT_LOAD)]),
        Err(ElfError::BadSegment {
            why: "overlaps another segment, or shares a page with one that has other rights",
            ..
        })
    ));
    assert_eq!(ok(&[(0x40_0000, 0x1000, 0, RX, PT_DYNAMIC)]), Err(ElfError::Dynamic));
    assert_eq!(ok(&[(0x50_0000, 0x1000, 0, RX, PT_LOAD)]), Err(ElfError::EntryNotExecutable));
    assert_eq!(ok(&[(0x40_0000, 0x1000, 0, RW, PT_LOAD)]), Err(ElfError::EntryNotExecutable));
    let many: Vec<_> = (0..9).map(|i| (0x40_0000 + i * 0x1000, 0x10, 0, RX, PT_LOAD)).collect();
    assert_eq!(ok(&many), Err(ElfError::TooManySegments));
    // File range past the end.
    let mut bytes = elf(0x40_0000, &[(0x40_0000, 0x1000, 0x10, RX, PT_LOAD)]);
    bytes.truncate(bytes.len() - 1);
    assert!(matches!(parse(&bytes, USER.0, USER.1), Err(ElfError::BadSegment { .. })));
    // Every truncation of a valid file is an error, never a panic.
    let bytes = elf(0x40_0000, &[(0x40_0000, 0x1000, 0x10, RX, PT_LOAD)]);
    for n in 0..bytes.len() {
        assert!(parse(&bytes[..n], USER.0, USER.1).is_err());
    }
}
